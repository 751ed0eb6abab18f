#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_postgresql_base
short_description: Stream a PostgreSQL base backup to S3 for point-in-time recovery
version_added: 0.3.0
description:
  - "C(pg_basebackup -Ft -X none -D -) (a tar of the whole cluster on stdout) -> C(zstd) on
    several threads -> S3 multipart upload with SHA-256 in-process, catalogued like every backup
    (C(<prefix>/postgresql/YYYY/MM/DD/postgresql_YYYYMMDD_HHMMSS.base.tar.zst), format
    C(pg_basebackup-tar+zstd), dataset C(base:<system identifier>))."
  - The WAL it needs comes from the continuous archive (M(failsafe.datastores.backup_postgresql_wal)),
    which must be set up first; C(pg_basebackup) waits until the backup's last WAL file is
    archived, so a base backup that succeeded is restorable.
  - "Recorded position: C(start_lsn) (the server's WAL position just before the backup began, a
    lower bound of its redo point), C(end_lsn) and C(end_time) (just after it ended: recovery
    targets must lie after C(end_time))."
  - "Restore it to a point in time with M(failsafe.datastores.restore_postgresql_pitr)."
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.backup
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Connects, checks archiving and the bucket and reports the key; copies nothing.
  diff_mode:
    support: full
  idempotent:
    description: Every run takes a new base backup.
    support: none
options:
  source:
    description: The server to back up (a role with C(REPLICATION), allowed by C(pg_hba.conf) for replication).
    type: dict
    required: true
    suboptions:
      host:
        description: Host name or address of the server.
        type: str
        required: true
      port:
        description: TCP port of the server.
        type: int
        default: 5432
      user:
        description: Role to connect as.
        type: str
        default: postgres
      password:
        description: Password of O(source.user). Never returned or logged.
        type: str
      db:
        description: Database for the checks before the backup.
        type: str
        default: postgres
      connect_timeout:
        description: Seconds to wait for a connection.
        type: int
        default: 5
      ssl_mode:
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(source.ssl_mode=verify-ca) and O(source.ssl_mode=verify-full).
        type: path
      log_file:
        description: The server's log file (C(failsafe_pg_log_file)); not used here, accepted so that the C(pg_conn) dict passes unchanged.
        type: path
  source_name:
    description: Name of the source in the catalog (the inventory host); default O(source.host).
    type: str
  source_region:
    description: Region of the source, recorded in the catalog.
    type: str
  compression_threads:
    description: zstd threads.
    type: int
    default: 2
  part_size_mb:
    description: Multipart part size in MiB (it doubles every 1000 parts).
    type: int
    default: 8
  bin_dir:
    description: Directory of C(pg_basebackup); default the newest C(/usr/lib/postgresql/*/bin).
    type: path
requirements:
  - psycopg >= 3.1
  - pg_basebackup of the server's major version
  - zstd
'''

EXAMPLES = r'''
- name: Base backup for PITR
  failsafe.datastores.backup_postgresql_base:
    source:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: backup-writer
      secret_key: "{{ vault_s3_secret_key }}"
'''

RETURN = r'''
backup:
  description: The catalog record of the base backup.
  returned: always
  type: dict
start_lsn:
  description: WAL position just before the backup began.
  returned: always
  type: str
end_lsn:
  description: WAL position just after it ended (WAL up to here is needed).
  returned: always
  type: str
throughput_mb_s:
  description: Megabytes (10^6 bytes) of cluster per second.
  returned: always
  type: float
timings:
  description: Seconds for C(checks), C(backup_upload), C(finalize) and C(total).
  returned: always
  type: dict
diff:
  description: The catalog entry before (none) and after.
  returned: when diff mode is on
  type: dict
'''

import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog
from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
from ansible_collections.failsafe.datastores.plugins.module_utils._backup_pg import (
    PipelineError,
    find_bin,
    find_tool,
    libpq_env,
    pipeline_upload,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    connect,
    describe,
    ensure_driver,
    PEER_SPEC,
    PostgresError,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import scalar
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

ENGINE = "postgresql"
FORMAT = "pg_basebackup-tar+zstd"
EXTENSION = "base.tar.zst"
STEPS = (("checks", None, "checked"), ("backup_upload", "checked", "uploaded"),
         ("finalize", "uploaded", "finalized"))

LSN = "SELECT pg_current_wal_lsn()::text"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=_s3.store_option(),
            source=dict(type="dict", required=True, options=dict(PEER_SPEC)),
            source_name=dict(type="str"),
            source_region=dict(type="str"),
            compression_threads=dict(type="int", default=2),
            part_size_mb=dict(type="int", default=8),
            bin_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    _s3.ensure_boto3(module)
    params = module.params
    store, source = params["store"], params["source"]
    timer = Timer()
    result = dict(changed=False, backup={}, start_lsn="", end_lsn="", throughput_mb_s=None)
    try:
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        with connect(source, application_name="failsafe.backup") as conn:
            if scalar(conn, "SHOW archive_mode") == "off" or \
                    "failsafe_wal_s3" not in (scalar(conn, "SHOW archive_command") or ""):
                raise PostgresError(
                    "WAL of %s is not archived to S3 by the collection (archive_command: %s): a "
                    "base backup without its WAL cannot be restored. Set up archiving with "
                    "backup_postgresql_wal first. Nothing was changed"
                    % (describe(source), scalar(conn, "SHOW archive_command")))
            sysid = str(scalar(conn, "SELECT system_identifier FROM pg_control_system()"))
            version = scalar(conn, "SHOW server_version")
            cluster_bytes = scalar(conn, "SELECT sum(pg_database_size(oid))::bigint FROM pg_database")
            result["start_lsn"] = scalar(conn, LSN)
        now = catalog.utcnow()
        key, bid = catalog.free_backup_key(store, s3, ENGINE, now, EXTENSION)
        record = dict(backup_id=bid, set_id=catalog.set_id(now), engine=ENGINE,
                      created=catalog.iso(now), status=catalog.STATUS_UPLOADING,
                      source_host=params["source_name"] or source["host"],
                      source_region=params["source_region"], format=FORMAT, key=key,
                      dataset="base:%s" % sysid, engine_version=version)
        result.update(changed=True, backup=catalog.summary(record))
        timer.mark("checked")
        if not module.check_mode:
            basebackup = [find_bin("pg_basebackup", params["bin_dir"]), "-D", "-", "-Ft",
                          "-X", "none", "-c", "fast", "--verbose", "--no-password"]
            zstd = [find_tool("zstd"), "-q", "-c", "-1", "-T%d" % params["compression_threads"]]
            upload, _errors = pipeline_upload(
                store, s3, key, catalog.to_metadata(record), [basebackup, zstd],
                libpq_env(source), params["part_size_mb"] * _s3.MiB, 4)
            timer.mark("uploaded")
            with connect(source, application_name="failsafe.backup") as conn:
                result["end_lsn"] = scalar(conn, LSN)
            record.update(sha256=upload.sha256, size_bytes=upload.size,
                          status=catalog.STATUS_SUCCESS,
                          position="start_lsn=%s end_lsn=%s end_time=%s" % (
                              result["start_lsn"], result["end_lsn"],
                              catalog.iso(catalog.utcnow() + datetime.timedelta(seconds=1))))
            _s3.replace_metadata(store, s3, key, catalog.to_metadata(record))
            timer.mark("finalized")
            seconds = timer.between("checked", "uploaded") or 1e-9
            result["throughput_mb_s"] = round(cluster_bytes / 1e6 / seconds, 1)
            result["backup"] = catalog.summary(dict(record, stored_bytes=upload.size, problems=[]))
    except (_s3.S3Error, PostgresError, PipelineError) as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(), after=dict(catalog=result["backup"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
