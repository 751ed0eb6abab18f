#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_postgresql
short_description: Stream a logical PostgreSQL backup to S3, hashed and catalogued on the way
version_added: 0.3.0
description:
  - "Dumps one database with C(pg_dump -Fc -Z0) (no compression in pg_dump, which is single-threaded
    zlib and the bottleneck), compresses with C(zstd) on several threads, and uploads the stream
    by S3 multipart while hashing SHA-256 in-process: no local copy, memory bounded by the part
    size whatever the size of the database."
  - The dump runs in a snapshot exported by the module's own transaction, so the row counts it
    records (O(record_counts)) and the WAL position are those of the dump.
  - "Catalog (runbook 002): the object is C(<prefix>/postgresql/YYYY/MM/DD/postgresql_YYYYMMDD_HHMMSS.dump.zst)
    with its record as metadata. It is uploaded with status C(uploading) and becomes C(success),
    with its SHA-256 and size, only after the upload completed; a failed or interrupted backup
    leaves nothing a restore or the retention would take for a success."
  - Unless O(set_id) names a set that a playbook completes with M(failsafe.datastores.backup_set),
    the backup is a set of its own and its manifest is written.
  - No Ansible module of C(community.postgresql) or C(amazon.aws) streams a dump into S3 with a
    checksum; C(community.postgresql.postgresql_db state=dump) writes a local file first.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.backup
  - failsafe.datastores.backup.POSTGRESQL
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Connects, checks the bucket and reports the object key and the commands it would run;
        dumps and uploads nothing.
  diff_mode:
    support: full
  idempotent:
    description:
      - Every run takes a new backup, unless O(min_interval) finds a recent enough success.
    support: partial
options:
  source:
    description: The server and database to back up.
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
        description: Role to connect as; it must be able to read every table of the database.
        type: str
        default: postgres
      password:
        description: Password of O(source.user). Never returned or logged.
        type: str
      db:
        description: The database to back up.
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
  set_id:
    description:
      - Backup set this backup belongs to. Empty makes a set of its own and writes its manifest.
    type: str
    default: ""
  min_interval:
    description:
      - Seconds. When the newest successful dump of this source's database is younger, take
        none and report changed=false. 0 always takes a backup.
    type: int
    default: 0
  record_counts:
    description: Count the rows of every table in the dump's snapshot and keep the counts in the set's manifest (for the integrity check after a restore).
    type: bool
    default: true
  compression_level:
    description: zstd level (1 is fastest; higher is smaller and slower).
    type: int
    default: 1
  compression_threads:
    description: zstd threads (C(-T)).
    type: int
    default: 2
  part_size_mb:
    description:
      - Multipart part size in MiB (it doubles every 1000 parts, so it never limits the size of
        a backup); memory use is about this times (O(upload_workers) + 2).
    type: int
    default: 8
  upload_workers:
    description: Parts uploaded at the same time.
    type: int
    default: 4
  bin_dir:
    description: Directory of C(pg_dump); default the newest C(/usr/lib/postgresql/*/bin), then C(PATH).
    type: path
  keep_local_copy:
    description: Also write the compressed dump to this file (no local copy is made without it).
    type: path
requirements:
  - psycopg >= 3.1
  - pg_dump of the server's major version or newer
  - zstd
notes:
  - "The database and S3 are reached from the host that runs the module (the controller with
    C(delegate_to: localhost), or a backup host): an inventory choice."
'''

EXAMPLES = r'''
- name: Back up the application database
  failsafe.datastores.backup_postgresql:
    source:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"
      db: ai_platform
    source_region: us-east
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: backup-writer
      secret_key: "{{ vault_s3_secret_key }}"
    history:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"
      db: ai_platform
  delegate_to: localhost
  register: pg_backup
'''

RETURN = r'''
backup:
  description: The catalog record of the backup (or of the recent one when skipped).
  returned: always
  type: dict
  sample: {"backup_id": "postgresql_20250130_020000", "status": "success",
           "key": "prod/postgresql/2025/01/30/postgresql_20250130_020000.dump.zst",
           "sha256": "9f86d08...", "size_bytes": 134742016, "position": "lsn=0/3000060"}
member:
  description: The backup as a member of a set manifest (give it to M(failsafe.datastores.backup_set)).
  returned: always
  type: dict
set_id:
  description: The set the backup belongs to.
  returned: always
  type: str
manifest_key:
  description: Key of the set manifest this module wrote; empty when a playbook completes the set.
  returned: always
  type: str
skipped_reason:
  description: Why no backup was taken (O(min_interval)); empty otherwise.
  returned: always
  type: str
counts:
  description: Rows per table (schema.table) in the dump's snapshot.
  returned: always
  type: dict
database_bytes:
  description: C(pg_database_size) of the source database.
  returned: always
  type: int
throughput_mb_s:
  description: Database megabytes (10^6 bytes) per second of the dump-and-upload step.
  returned: always
  type: float
commands:
  description: The commands of the pipeline (no secrets).
  returned: always
  type: list
  elements: str
history:
  description: What was recorded in the history table (C(recorded), C(table), C(error)).
  returned: always
  type: dict
timings:
  description: Seconds per step (C(checks), C(snapshot), C(dump_upload), C(finalize), C(manifest), C(history)) and C(total).
  returned: always
  type: dict
diff:
  description: The catalog entry before (none) and after.
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog
from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
from ansible_collections.failsafe.datastores.plugins.module_utils._backup_pg import (
    PipelineError,
    find_bin,
    find_tool,
    libpq_env,
    pipeline_upload,
    record_history,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    connect,
    ensure_driver,
    peer_option,
    PEER_SPEC,
    PostgresError,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import scalar
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

ENGINE = "postgresql"
EXTENSION = "dump.zst"
FORMAT = "pg_dump-custom+zstd"

STEPS = (
    ("checks", None, "checked"),
    ("snapshot", "checked", "snapshot"),
    ("dump_upload", "snapshot", "uploaded"),
    ("finalize", "uploaded", "finalized"),
    ("manifest", "finalized", "manifest"),
    ("history", "manifest", "history"),
)

COUNT_TABLES = (
    "SELECT n.nspname AS schema, c.relname AS name FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    " AND n.nspname NOT LIKE 'pg_toast%%' AND NOT c.relispartition"
    " ORDER BY 1, 2"
)


def snapshot_facts(conn, record_counts):
    """In the open REPEATABLE READ transaction: snapshot id, position, version, counts, size."""
    from psycopg import sql

    recovering = scalar(conn, "SELECT pg_is_in_recovery()")
    snapshot = scalar(conn, "SELECT pg_export_snapshot()")
    position = scalar(conn, "SELECT pg_last_wal_replay_lsn()::text" if recovering
                      else "SELECT pg_current_wal_lsn()::text")
    counts = {}
    if record_counts:
        for row in conn.execute(COUNT_TABLES).fetchall():
            name = "%s.%s" % (row["schema"], row["name"])
            counts[name] = scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(row["schema"], row["name"])))
    return dict(snapshot=snapshot, position="lsn=%s" % position, counts=counts,
                version=scalar(conn, "SHOW server_version"),
                database_bytes=scalar(conn, "SELECT pg_database_size(current_database())"))


def main():
    argument_spec = dict(
        store=_s3.store_option(),
        history=peer_option(),
        history_table=dict(type="str", default="backup_history"),
        source=dict(type="dict", required=True, options=dict(PEER_SPEC)),
        source_name=dict(type="str"),
        source_region=dict(type="str"),
        set_id=dict(type="str", default=""),
        min_interval=dict(type="int", default=0),
        record_counts=dict(type="bool", default=True),
        compression_level=dict(type="int", default=1),
        compression_threads=dict(type="int", default=2),
        part_size_mb=dict(type="int", default=8),
        upload_workers=dict(type="int", default=4),
        bin_dir=dict(type="path"),
        keep_local_copy=dict(type="path"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_driver(module)
    _s3.ensure_boto3(module)
    params = module.params
    store, source = params["store"], params["source"]
    if params["part_size_mb"] < 5:
        module.fail_json(msg="part_size_mb must be 5 or more (S3's smallest part), got %d"
                         % params["part_size_mb"])
    timer = Timer()
    result = dict(changed=False, backup={}, member={}, set_id="", manifest_key="",
                  skipped_reason="", counts={}, database_bytes=None, throughput_mb_s=None,
                  commands=[], history=dict(recorded=0, table=None, error=None))
    record = None
    try:
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        source_name = params["source_name"] or source["host"]
        if params["min_interval"] > 0:
            recent = recent_success(store, s3, source_name, source["db"], params["min_interval"])
            if recent is not None:
                result.update(backup=catalog.summary(recent), set_id=recent.get("set_id") or "",
                              skipped_reason="the newest successful backup %s of %s is younger "
                              "than min_interval=%ss" % (recent["backup_id"], source_name,
                                                         params["min_interval"]))
                finish(module, result, timer, None)
        now = catalog.utcnow()
        key, bid = catalog.free_backup_key(store, s3, ENGINE, now, EXTENSION)
        set_name = params["set_id"] or catalog.set_id(now, 0 if bid.count("_") == 2 else
                                                      int(bid.rsplit("_", 1)[1]))
        pg_dump = find_bin("pg_dump", params["bin_dir"])
        zstd = find_tool("zstd")
        dump_cmd = [pg_dump, "-Fc", "-Z0", "--no-password"]
        zstd_cmd = [zstd, "-q", "-c", "-%d" % params["compression_level"],
                    "-T%d" % params["compression_threads"]]
        result["commands"] = [" ".join(dump_cmd + ["--snapshot=<exported>", "-d", source["db"]]),
                              " ".join(zstd_cmd),
                              "S3 multipart upload to s3://%s/%s (SHA-256 in-process)"
                              % (store["bucket"], key)]
        record = dict(backup_id=bid, set_id=set_name, engine=ENGINE, created=catalog.iso(now),
                      status=catalog.STATUS_UPLOADING, source_host=source_name,
                      source_region=params["source_region"], format=FORMAT, key=key,
                      dataset=source["db"])
        result.update(changed=True, set_id=set_name, backup=catalog.summary(record))
        timer.mark("checked")
        if module.check_mode:
            conn = connect(source, application_name="failsafe.backup")
            conn.close()
            finish(module, result, timer, record)

        conn = connect(source, autocommit=False, application_name="failsafe.backup")
        with conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            facts = snapshot_facts(conn, params["record_counts"])
            timer.mark("snapshot")
            record.update(engine_version=facts["version"], position=facts["position"])
            result.update(counts=facts["counts"], database_bytes=facts["database_bytes"])
            upload = dump_and_upload(params, store, s3, key, record,
                                     dump_cmd + ["--snapshot=%s" % facts["snapshot"]], zstd_cmd)
            conn.rollback()
        timer.mark("uploaded")
        record.update(sha256=upload.sha256, size_bytes=upload.size, status=catalog.STATUS_SUCCESS)
        _s3.replace_metadata(store, s3, key, catalog.to_metadata(record))
        timer.mark("finalized")
        seconds = timer.between("snapshot", "uploaded") or 1e-9
        result["throughput_mb_s"] = round(facts["database_bytes"] / 1e6 / seconds, 1)
        member = dict(engine=ENGINE, backup_id=bid, key=key, sha256=upload.sha256,
                      size_bytes=upload.size, status=catalog.STATUS_SUCCESS,
                      position=facts["position"], engine_version=facts["version"],
                      source_host=source_name, source_region=params["source_region"],
                      database=source["db"], counts=facts["counts"])
        result["member"] = member
        if not params["set_id"]:
            mkey = catalog.manifest_key(store.get("prefix"), set_name, now)
            _s3.put_bytes(store, s3, mkey, catalog.manifest_json(
                catalog.manifest(set_name, now, [member])))
            result["manifest_key"] = mkey
        timer.mark("manifest")
        result["backup"] = catalog.summary(dict(record, stored_bytes=upload.size,
                                                problems=[]))
        result["history"] = record_history(params["history"], params["history_table"], [record])
        timer.mark("history")
    except (_s3.S3Error, PostgresError, PipelineError) as exc:
        message = str(exc)
        if record is not None and not module.check_mode:
            failed = dict(record, status=catalog.STATUS_FAILED)
            result["history"] = record_history(params["history"], params["history_table"],
                                               [failed], {record["backup_id"]: message})
            message += (". The backup %s failed: no success was recorded in the catalog"
                        % record["backup_id"])
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=message, **result)
    finish(module, result, timer, record)


def recent_success(store, s3, source_name, database, min_interval):
    """The newest successful dump of this source's database, when younger than min_interval."""
    now = catalog.utcnow()
    for record in catalog.load_records(store, s3, [ENGINE]):
        if record.get("source_host") == source_name and record.get("dataset") == database \
                and record.get("format") == FORMAT and catalog.usable(record):
            if (now - catalog.created(record)).total_seconds() < min_interval:
                return record
            return None
    return None


def dump_and_upload(params, store, s3, key, record, dump_cmd, zstd_cmd):
    upload, _errors = pipeline_upload(
        store, s3, key, catalog.to_metadata(record), [dump_cmd, zstd_cmd],
        libpq_env(params["source"]), params["part_size_mb"] * _s3.MiB, params["upload_workers"],
        params["keep_local_copy"])
    return upload


def finish(module, result, timer, record):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(), after=dict(catalog=result["backup"]) if result["changed"] else dict())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
