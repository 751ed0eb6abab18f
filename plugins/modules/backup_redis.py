#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_redis
short_description: Stream a Redis RDB snapshot to S3, hashed and catalogued on the way
version_added: 0.3.0
description:
  - "Asks the server for a full resynchronisation as a replica would (C(PSYNC ? -1)): the server
    forks, writes an RDB snapshot and streams it; the module compresses it with C(zstd) and
    uploads it by S3 multipart while hashing SHA-256 in-process. No file is written on the
    server's disk by the module and none is copied locally (runbook 003: C(redis-cli --rdb), then
    C(aws s3 cp))."
  - The replication offset the snapshot corresponds to (C(+FULLRESYNC <replid> <offset>)) is
    recorded as the backup's position, and the keys per database (C(INFO keyspace)) at backup
    time go into the set manifest for the integrity check after a restore.
  - "Catalog: C(<prefix>/redis/YYYY/MM/DD/redis_YYYYMMDD_HHMMSS.rdb.zst), status C(success) only
    after the upload completed and its SHA-256 was stored (see M(failsafe.datastores.backup_postgresql))."
  - Take it from a replica to spare the master the fork, or from the master.
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
      - Connects, checks the bucket and reports the key; takes no snapshot.
  diff_mode:
    support: full
  idempotent:
    description: Every run takes a new backup, unless O(min_interval) finds a recent enough success.
    support: partial
options:
  server:
    description: The Redis server to back up.
    type: dict
    required: true
    suboptions:
      host:
        description: Host name or address.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        default: 6379
      username:
        description: ACL user (Redis 6+); empty for the default user.
        type: str
      password:
        description: Password (C(requirepass) or the ACL user's). Never returned or logged.
        type: str
      tls:
        description: Connect with TLS.
        type: bool
        default: false
      ca_cert:
        description: CA bundle for O(server.tls).
        type: path
      connect_timeout:
        description: Seconds to wait for a connection.
        type: float
        default: 5
  source_name:
    description: Name of the source in the catalog (the inventory host); default O(server.host).
    type: str
  source_region:
    description: Region of the source, recorded in the catalog.
    type: str
  set_id:
    description: Backup set this backup belongs to; empty makes a set of its own and writes its manifest.
    type: str
    default: ""
  min_interval:
    description: Seconds; when the newest successful Redis backup of this source is younger, take none (changed=false).
    type: int
    default: 0
  part_size_mb:
    description: Multipart part size in MiB (doubles every 1000 parts).
    type: int
    default: 8
  upload_workers:
    description: Parts uploaded at the same time.
    type: int
    default: 4
  timeout:
    description: Seconds without data from Redis before the backup fails.
    type: float
    default: 600
requirements:
  - zstd
'''

EXAMPLES = r'''
- name: Back up Redis from its replica
  failsafe.datastores.backup_redis:
    server:
      host: redis-west.example.com
      password: "{{ vault_redis_password }}"
    source_region: us-west
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: backup-writer
      secret_key: "{{ vault_s3_secret_key }}"
  delegate_to: localhost
'''

RETURN = r'''
backup:
  description: The catalog record of the backup (or of the recent one when skipped).
  returned: always
  type: dict
member:
  description: The backup as a member of a set manifest (for M(failsafe.datastores.backup_set)).
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
  description: Keys per database (C(db0), ...) when the snapshot was taken.
  returned: always
  type: dict
rdb_bytes:
  description: Size of the RDB snapshot before compression.
  returned: always
  type: int
history:
  description: What was recorded in the history table (C(recorded), C(table), C(error)).
  returned: always
  type: dict
timings:
  description: Seconds for C(checks), C(snapshot_upload), C(finalize), C(manifest), C(history) and C(total).
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
    record_history,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._backup_redis import (
    REDIS_SPEC,
    RdbStream,
    RedisError,
    Resp,
    compress_upload,
    keyspace,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    peer_option,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

ENGINE = "redis"
EXTENSION = "rdb.zst"
FORMAT = "redis-rdb+zstd"
STEPS = (("checks", None, "checked"), ("snapshot_upload", "checked", "uploaded"),
         ("finalize", "uploaded", "finalized"), ("manifest", "finalized", "manifest"),
         ("history", "manifest", "history"))


def recent_success(store, s3, source_name, min_interval):
    now = catalog.utcnow()
    for record in catalog.load_records(store, s3, [ENGINE]):
        if record.get("source_host") == source_name and catalog.usable(record):
            if (now - catalog.created(record)).total_seconds() < min_interval:
                return record
            return None
    return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=_s3.store_option(),
            history=peer_option(),
            history_table=dict(type="str", default="backup_history"),
            server=dict(type="dict", required=True, options=dict(REDIS_SPEC)),
            source_name=dict(type="str"),
            source_region=dict(type="str"),
            set_id=dict(type="str", default=""),
            min_interval=dict(type="int", default=0),
            part_size_mb=dict(type="int", default=8),
            upload_workers=dict(type="int", default=4),
            timeout=dict(type="float", default=600),
        ),
        supports_check_mode=True,
    )
    _s3.ensure_boto3(module)
    params = module.params
    store, server = params["store"], params["server"]
    timer = Timer()
    result = dict(changed=False, backup={}, member={}, set_id="", manifest_key="",
                  skipped_reason="", counts={}, rdb_bytes=None,
                  history=dict(recorded=0, table=None, error=None))
    record = None
    try:
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        source_name = params["source_name"] or server["host"]
        if params["min_interval"] > 0:
            recent = recent_success(store, s3, source_name, params["min_interval"])
            if recent is not None:
                result.update(backup=catalog.summary(recent), set_id=recent.get("set_id") or "",
                              skipped_reason="the newest successful backup %s of %s is younger "
                              "than min_interval=%ss" % (recent["backup_id"], source_name,
                                                         params["min_interval"]))
                finish(module, result, timer)
        with Resp(server) as conn:
            info = conn.info()
        now = catalog.utcnow()
        key, bid = catalog.free_backup_key(store, s3, ENGINE, now, EXTENSION)
        set_name = params["set_id"] or catalog.set_id(now, 0 if bid.count("_") == 2 else
                                                      int(bid.rsplit("_", 1)[1]))
        record = dict(backup_id=bid, set_id=set_name, engine=ENGINE, created=catalog.iso(now),
                      status=catalog.STATUS_UPLOADING, source_host=source_name,
                      source_region=params["source_region"], format=FORMAT, key=key,
                      dataset="redis", engine_version=info.get("redis_version"))
        result.update(changed=True, set_id=set_name, backup=catalog.summary(record))
        timer.mark("checked")
        if module.check_mode:
            finish(module, result, timer)
        counts = keyspace(info)
        stream = RdbStream(server, timeout=params["timeout"])
        try:
            record["position"] = "offset=%d replid=%s" % (stream.offset, stream.replid)
            upload = compress_upload(store, s3, key, catalog.to_metadata(record), stream,
                                     params["part_size_mb"] * _s3.MiB, params["upload_workers"])
        finally:
            stream.close()
        timer.mark("uploaded")
        record.update(sha256=upload.sha256, size_bytes=upload.size, data_bytes=stream.size,
                      status=catalog.STATUS_SUCCESS)
        _s3.replace_metadata(store, s3, key, catalog.to_metadata(record))
        timer.mark("finalized")
        member = dict(engine=ENGINE, backup_id=bid, key=key, sha256=upload.sha256,
                      size_bytes=upload.size, status=catalog.STATUS_SUCCESS,
                      position=record["position"], engine_version=record["engine_version"],
                      source_host=source_name, source_region=params["source_region"],
                      counts=counts)
        result.update(member=member, counts=counts, rdb_bytes=stream.size)
        if not params["set_id"]:
            mkey = catalog.manifest_key(store.get("prefix"), set_name, now)
            _s3.put_bytes(store, s3, mkey, catalog.manifest_json(
                catalog.manifest(set_name, now, [member])))
            result["manifest_key"] = mkey
        timer.mark("manifest")
        result["backup"] = catalog.summary(dict(record, stored_bytes=upload.size, problems=[]))
        result["history"] = record_history(params["history"], params["history_table"], [record])
        timer.mark("history")
    except (_s3.S3Error, RedisError, PipelineError, OSError) as exc:
        message = str(exc)
        if record is not None and not module.check_mode:
            failed = dict(record, status=catalog.STATUS_FAILED)
            result["history"] = record_history(params["history"], params["history_table"],
                                               [failed], {record["backup_id"]: message})
            message += (". The backup %s failed: no success was recorded in the catalog"
                        % record["backup_id"])
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=message, **result)
    finish(module, result, timer)


def finish(module, result, timer):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(), after=dict(catalog=result["backup"])
                              if result["changed"] else dict())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
