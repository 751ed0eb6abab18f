#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_verify
short_description: Re-read backups from S3 and compare their SHA-256 with the catalog
version_added: 0.3.0
description:
  - Streams each selected backup object from S3, hashes it with SHA-256 in-process (no local
    copy) and compares the digest and the size with the backup's catalog record (runbook 002,
    "Checksum Mismatch").
  - Every mismatch is reported (backup id, key, expected and found digest and size), not only
    the first; the task fails when there is one unless O(fail_on_mismatch=false).
  - A backup whose record is not a success (interrupted, no checksum) is reported as
    unverifiable.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.backup
  - failsafe.datastores.attributes
  - failsafe.datastores.attributes.INFO_MODULE
attributes:
  idempotent:
    description: Only reads.
    support: full
options:
  engines:
    description: Engines whose backups are checked.
    type: list
    elements: str
    default: [postgresql, redis]
    choices: [postgresql, redis, neo4j, qdrant, opensearch]
  scope:
    description:
      - V(newest) checks the newest successful backup of each engine, V(all) every backup,
        V(ids) the backups named in O(backup_ids).
    type: str
    choices: [newest, all, ids]
    default: newest
  backup_ids:
    description: The backups to check with O(scope=ids).
    type: list
    elements: str
    default: []
  fail_on_mismatch:
    description: Fail the task when a backup does not match (the scheduled job does).
    type: bool
    default: true
  workers:
    description: Objects read at the same time.
    type: int
    default: 2
'''

EXAMPLES = r'''
- name: Verify the newest backup of each engine
  failsafe.datastores.backup_verify:
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: backup-writer
      secret_key: "{{ vault_s3_secret_key }}"
  register: verified
'''

RETURN = r'''
checked:
  description:
    - Every backup read, with C(backup_id), C(engine), C(key), C(ok), C(expected_sha256),
      C(found_sha256), C(expected_bytes), C(found_bytes), C(seconds).
  returned: always
  type: list
  elements: dict
mismatches:
  description: The checked backups whose digest or size differ from the catalog (same fields as RV(checked)).
  returned: always
  type: list
  elements: dict
unverifiable:
  description: Selected backups that have no usable record (C(backup_id), C(problems)).
  returned: always
  type: list
  elements: dict
bytes_read:
  description: Bytes read from S3.
  returned: always
  type: int
throughput_mb_s:
  description: Megabytes (10^6 bytes) hashed per second.
  returned: always
  type: float
timings:
  description: Seconds to read the catalog (C(catalog)), to re-read and hash (C(verify)), and C(total).
  returned: always
  type: dict
'''

import time
from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog
from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer


def select(records, params):
    """The records to check and those that cannot be checked (pure)."""
    if params["scope"] == "ids":
        wanted = set(params["backup_ids"])
        chosen = [r for r in records if r.get("backup_id") in wanted]
        missing = wanted - set(r.get("backup_id") for r in chosen)
        unverifiable = [dict(backup_id=b, problems=["not in the catalog"]) for b in sorted(missing)]
    elif params["scope"] == "all":
        chosen = list(records)
        unverifiable = []
    else:
        chosen = [n for n in (catalog.newest_success(records, e) for e in params["engines"]) if n]
        unverifiable = []
    check = [r for r in chosen if r.get("sha256") and r.get("status") == catalog.STATUS_SUCCESS]
    unverifiable += [dict(backup_id=r["backup_id"], problems=r.get("problems"))
                     for r in chosen if r not in check]
    return check, unverifiable


def verify_one(store, s3, record):
    started = time.monotonic()
    found, size = _s3.download_stream(store, s3, record["key"])
    ok = found == record["sha256"] and (record.get("size_bytes") is None
                                        or size == record["size_bytes"])
    return dict(backup_id=record["backup_id"], engine=record.get("engine"), key=record["key"],
                ok=ok, expected_sha256=record["sha256"], found_sha256=found,
                expected_bytes=record.get("size_bytes"), found_bytes=size,
                seconds=round(time.monotonic() - started, 3))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=_s3.store_option(),
            engines=dict(type="list", elements="str", default=["postgresql", "redis"],
                         choices=list(catalog.ENGINES)),
            scope=dict(type="str", choices=["newest", "all", "ids"], default="newest"),
            backup_ids=dict(type="list", elements="str", default=[]),
            fail_on_mismatch=dict(type="bool", default=True),
            workers=dict(type="int", default=2),
        ),
        supports_check_mode=True,
    )
    _s3.ensure_boto3(module)
    params = module.params
    store = params["store"]
    timer = Timer()
    result = dict(changed=False, checked=[], mismatches=[], unverifiable=[], bytes_read=0,
                  throughput_mb_s=None)
    try:
        s3 = _s3.client(store, max_pool=max(10, params["workers"] * 2))
        _s3.check_bucket(store, s3)
        records = catalog.load_records(store, s3, params["engines"])
        timer.mark("catalog")
        check, result["unverifiable"] = select(records, params)
        with ThreadPoolExecutor(max_workers=max(1, params["workers"])) as pool:
            result["checked"] = list(pool.map(lambda r: verify_one(store, s3, r), check))
        timer.mark("verify")
    except _s3.S3Error as exc:
        result["timings"] = timer.report((("catalog", None, "catalog"),
                                          ("verify", "catalog", "verify")))
        module.fail_json(msg=str(exc), **result)
    result["mismatches"] = [c for c in result["checked"] if not c["ok"]]
    result["bytes_read"] = sum(c["found_bytes"] for c in result["checked"])
    seconds = timer.between("catalog", "verify") or 1e-9
    result["throughput_mb_s"] = round(result["bytes_read"] / 1e6 / seconds, 1)
    result["timings"] = timer.report((("catalog", None, "catalog"), ("verify", "catalog", "verify")))
    if result["mismatches"] and params["fail_on_mismatch"]:
        module.fail_json(
            msg="%d of %d backups do not match their catalog checksum: %s. Do not restore them; "
                "restore an older backup (backup_info lists them) and check the S3 service"
                % (len(result["mismatches"]), len(result["checked"]), "; ".join(
                    "%s (%s): expected SHA-256 %s and %s bytes, found %s and %s bytes"
                    % (m["backup_id"], m["key"], m["expected_sha256"], m["expected_bytes"],
                       m["found_sha256"], m["found_bytes"]) for m in result["mismatches"])),
            **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
