#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_retention
short_description: Delete backups older than the retention policy, never the last good ones
version_added: 0.3.0
description:
  - Applies the retention policy (runbook 002, 30 days) to the catalog in S3.
  - "Never deleted: the newest successful backup of each engine, however old; any member of a
    backup set that is kept (a set is kept when one of its members is), so that a recovery point
    across engines is never broken up."
  - Backups that are not a success (interrupted, failed, no checksum) are deleted once older
    than O(incomplete_grace_hours), and so are multipart uploads abandoned as long ago.
  - Set manifests are deleted once none of their members remains.
  - "Point-in-time recovery: the newest base backup of each cluster is kept like any dataset's
    newest backup, and with O(prune_wal) archived WAL segments older than the start of the
    oldest base backup kept go too (history files stay; the WAL of a cluster without a kept base
    backup stays)."
  - In check mode it lists what would be deleted, and why, and deletes nothing.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.backup
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Lists what would be deleted; deletes nothing.
  diff_mode:
    support: full
  idempotent:
    description: A second run finds nothing more to delete.
    support: full
options:
  keep_days:
    description: Successful backups younger than this many days are kept.
    type: int
    default: 30
  incomplete_grace_hours:
    description: Backups that are not a success, and abandoned multipart uploads, younger than this are left alone (they may still be running).
    type: float
    default: 24
  prune_wal:
    description: Delete archived WAL that no kept base backup needs.
    type: bool
    default: true
  engines:
    description: Engines whose backups the policy applies to.
    type: list
    elements: str
    default: [postgresql, redis]
    choices: [postgresql, redis, neo4j, qdrant, opensearch]
'''

EXAMPLES = r'''
- name: Apply the 30-day retention
  failsafe.datastores.backup_retention:
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: backup-writer
      secret_key: "{{ vault_s3_secret_key }}"
    keep_days: 30
'''

RETURN = r'''
deleted:
  description: Backups deleted (or that would be, in check mode), each with C(backup_id), C(engine), C(created), C(key), C(size_bytes) and C(reason).
  returned: always
  type: list
  elements: dict
kept:
  description: Backups kept, each with C(backup_id), C(engine), C(created) and the C(reason).
  returned: always
  type: list
  elements: dict
deleted_manifests:
  description: Keys of set manifests deleted (or that would be).
  returned: always
  type: list
  elements: str
deleted_wal:
  description: Number of archived WAL segments deleted (or that would be).
  returned: always
  type: int
aborted_uploads:
  description: Keys of abandoned multipart uploads aborted (or that would be).
  returned: always
  type: list
  elements: str
freed_bytes:
  description: Bytes freed (or that would be).
  returned: always
  type: int
timings:
  description: Seconds to read the catalog (C(catalog)), to delete (C(delete)), and C(total).
  returned: always
  type: dict
diff:
  description: Backup ids before and after.
  returned: when diff mode is on
  type: dict
'''

import datetime

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog
from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer


def entry(record, reason, with_size=False):
    out = dict(backup_id=record["backup_id"], engine=record.get("engine"),
               created=record.get("created"), reason=reason)
    if with_size:
        out.update(key=record["key"], size_bytes=record.get("stored_bytes"))
    return out


def wal_prefix_of(store):
    return "/".join(p.strip("/") for p in (store.get("prefix") or "", "wal/postgresql")
                    if p.strip("/")) + "/"


def stale_uploads(store, s3, engines, grace_hours, now):
    found = []
    prefixes = [catalog.engine_prefix(store.get("prefix"), e) for e in engines]
    response = _s3.call(store, "listing multipart uploads", s3.list_multipart_uploads,
                        Bucket=store["bucket"])
    for upload in response.get("Uploads") or []:
        started = upload.get("Initiated")
        if not any(upload["Key"].startswith(p) for p in prefixes) or started is None:
            continue
        if now - started > datetime.timedelta(hours=grace_hours):
            found.append(upload)
    return found


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=_s3.store_option(),
            keep_days=dict(type="int", default=30),
            incomplete_grace_hours=dict(type="float", default=24),
            engines=dict(type="list", elements="str", default=["postgresql", "redis"],
                         choices=list(catalog.ENGINES)),
            prune_wal=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    _s3.ensure_boto3(module)
    params = module.params
    store = params["store"]
    if params["keep_days"] < 1:
        module.fail_json(msg="keep_days must be 1 or more, got %d" % params["keep_days"])
    timer = Timer()
    result = dict(changed=False, deleted=[], kept=[], deleted_manifests=[], aborted_uploads=[],
                  deleted_wal=0, freed_bytes=0)
    try:
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        now = catalog.utcnow()
        records = catalog.load_records(store, s3, params["engines"])
        manifests = catalog.load_manifests(store, s3)
        delete, keep = catalog.retention(records, manifests, now, params["keep_days"],
                                         params["incomplete_grace_hours"])
        uploads = stale_uploads(store, s3, params["engines"], params["incomplete_grace_hours"],
                                now)
        wal, sizes = [], {}
        if params["prune_wal"] and "postgresql" in params["engines"]:
            listed = _s3.list_keys(store, s3, wal_prefix_of(store))
            sizes = dict((key, size) for key, size, _modified in listed)
            kept_bases = [r for r, _reason in keep if (r.get("dataset") or "").startswith("base:")]
            wal = catalog.wal_to_delete(sorted(sizes), kept_bases)
        timer.mark("catalog")
        remaining = set(r["backup_id"] for r, _reason in keep)
        # Manifests of sets entirely gone; sets of engines outside this run keep theirs.
        doomed_manifests = [m for m in catalog.manifests_to_delete(manifests, remaining)
                            if all(member.get("engine") in params["engines"]
                                   for member in m.get("members") or [])]
        result.update(
            deleted=[entry(r, why, True) for r, why in delete],
            kept=[entry(r, why) for r, why in keep],
            deleted_manifests=[m["key"] for m in doomed_manifests],
            aborted_uploads=[u["Key"] for u in uploads],
            deleted_wal=len(wal),
            freed_bytes=sum(r.get("stored_bytes") or 0 for r, _why in delete)
            + sum(sizes[k] for k in wal),
        )
        result["changed"] = bool(delete or doomed_manifests or uploads or wal)
        if result["changed"] and not module.check_mode:
            _s3.delete(store, s3, [r["key"] for r, _why in delete])
            _s3.delete(store, s3, result["deleted_manifests"])
            _s3.delete(store, s3, wal)
            for upload in uploads:
                _s3.call(store, "aborting an abandoned upload", s3.abort_multipart_upload,
                         Bucket=store["bucket"], Key=upload["Key"], UploadId=upload["UploadId"])
        timer.mark("delete")
    except _s3.S3Error as exc:
        result["timings"] = timer.report((("catalog", None, "catalog"),
                                          ("delete", "catalog", "delete")))
        module.fail_json(msg=str(exc), **result)
    result["timings"] = timer.report((("catalog", None, "catalog"), ("delete", "catalog", "delete")))
    if module._diff:
        result["diff"] = dict(
            before="\n".join(sorted(r["backup_id"] for r in records)) + "\n",
            after="\n".join(sorted(remaining)) + "\n")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
