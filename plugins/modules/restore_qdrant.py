#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: restore_qdrant
short_description: Recover a Qdrant collection from a snapshot in S3, verified first
version_added: 0.3.0
description:
  - "Runbook 002 (Qdrant restore): read the catalog -> download the snapshot from S3 into
    O(work_dir) while hashing SHA-256 -> compare with the catalog (a mismatch is refused, naming
    the backup and both digests; Qdrant is not touched) -> C(POST
    /collections/NAME/snapshots/upload) with the file, Qdrant's own C(checksum) (it verifies
    again) and C(priority) -> read the collection's points back."
  - A collection that exists with points is refused unless O(existing=replace) (recovery
    overwrites it).
  - Tested against a protocol-level stand-in of Qdrant's HTTP API, not a real Qdrant.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.backup
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the catalog and the collection and reports what it would do; uploads nothing.
  diff_mode:
    support: full
  idempotent:
    description: Every run recovers the collection again (Qdrant keeps no record of the snapshot a collection came from).
    support: none
options:
  server:
    description: The Qdrant node.
    type: dict
    required: true
    suboptions:
      url:
        description: Its REST URL (C(http://qdrant:6333)).
        type: str
        required: true
      api_key:
        description: The API key (C(api-key) header). Never returned or logged.
        type: str
      ca_cert:
        description: CA bundle for an C(https) URL.
        type: path
      timeout:
        description: Seconds per HTTP request (the upload and recovery included).
        type: float
        default: 600
  backup_id:
    description: The backup (C(qdrant_YYYYMMDD_HHMMSS)), or V(latest) of O(collection).
    type: str
    default: latest
  collection:
    description: Collection to recover into; default the collection the backup was taken of (required with V(latest)).
    type: str
  priority:
    description: Qdrant's source of truth when other replicas exist.
    type: str
    choices: [snapshot, replica, no_sync]
    default: snapshot
  existing:
    description: A collection with points is refused (V(fail)) or overwritten (V(replace)).
    type: str
    choices: [fail, replace]
    default: fail
  validate_only:
    description: Download and compare the checksum; do not touch Qdrant.
    type: bool
    default: false
  work_dir:
    description: Directory for the snapshot while it is uploaded.
    type: path
    default: /var/tmp
'''

EXAMPLES = r'''
- name: Recover the documents collection from the latest snapshot
  failsafe.datastores.restore_qdrant:
    server:
      url: http://qdrant:6333
      api_key: "{{ vault_qdrant_api_key }}"
    collection: documents
    existing: replace
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: restore-reader
      secret_key: "{{ vault_s3_secret_key }}"
'''

RETURN = r'''
backup:
  description: The catalog record of the snapshot restored (or validated).
  returned: always
  type: dict
collection:
  description: The collection recovered.
  returned: always
  type: str
validated:
  description: True when the checksum matched.
  returned: always
  type: bool
points:
  description: points_count of the collection after the recovery (before, with O(validate_only)).
  returned: always
  type: int
timings:
  description: Seconds for C(checks), C(download_verify), C(recover) and C(total).
  returned: always
  type: dict
diff:
  description: The collection's points before and after.
  returned: when diff mode is on
  type: dict
'''

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog
from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
from ansible_collections.failsafe.datastores.plugins.module_utils._backup_qdrant import (
    QDRANT_SPEC,
    Qdrant,
    QdrantError,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

ENGINE = "qdrant"
STEPS = (("checks", None, "checked"), ("download_verify", "checked", "downloaded"),
         ("recover", "downloaded", "recovered"))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=_s3.store_option(),
            server=dict(type="dict", required=True, options=dict(QDRANT_SPEC)),
            backup_id=dict(type="str", default="latest"),
            collection=dict(type="str"),
            priority=dict(type="str", choices=["snapshot", "replica", "no_sync"],
                          default="snapshot"),
            existing=dict(type="str", choices=["fail", "replace"], default="fail"),
            validate_only=dict(type="bool", default=False),
            work_dir=dict(type="path", default="/var/tmp"),
        ),
        supports_check_mode=True,
    )
    _s3.ensure_boto3(module)
    params = module.params
    store = params["store"]
    timer = Timer()
    result = dict(changed=False, backup={}, collection=params["collection"] or "",
                  validated=False, points=None)
    before = None
    path = None
    try:
        qdrant = Qdrant(params["server"])
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        records = catalog.load_records(store, s3, [ENGINE])
        if params["backup_id"] in ("", "latest") and not params["collection"]:
            raise QdrantError("backup_id=latest needs collection. Nothing was changed")
        try:
            record = catalog.find(records, params["backup_id"], ENGINE,
                                  params["collection"] if params["backup_id"] in ("", "latest")
                                  else None)
        except catalog.CatalogError as exc:
            raise QdrantError("%s. Nothing was changed" % exc)
        if not catalog.usable(record):
            raise QdrantError("backup %s is not a usable success (%s). Nothing was changed"
                              % (record["backup_id"], "; ".join(record["problems"])))
        collection = params["collection"] or record.get("dataset")
        result.update(backup=catalog.summary(record), collection=collection)
        before = qdrant.points(collection)
        result["points"] = before
        if before and params["existing"] == "fail" and not params["validate_only"]:
            raise QdrantError("collection %s at %s holds %d points: set existing=replace to "
                              "overwrite it with backup %s. Nothing was changed"
                              % (collection, qdrant.describe(), before, record["backup_id"]))
        result["changed"] = not params["validate_only"]
        timer.mark("checked")
        if module.check_mode:
            finish(module, result, timer, before)
        handle, path = tempfile.mkstemp(prefix="failsafe-qdrant-", suffix=".snapshot",
                                        dir=params["work_dir"])
        with os.fdopen(handle, "wb") as out:
            digest, size = _s3.download_stream(store, s3, record["key"], out.write)
        if digest != record["sha256"] or size != record.get("size_bytes", size):
            raise QdrantError(
                "refusing backup %s (%s): its SHA-256 does not match the catalog: expected %s "
                "(%s bytes), found %s (%s bytes). Qdrant was not touched"
                % (record["backup_id"], record["key"], record["sha256"],
                   record.get("size_bytes"), digest, size))
        result["validated"] = True
        timer.mark("downloaded")
        if params["validate_only"]:
            finish(module, result, timer, before)
        qdrant.upload_recover(collection, path, digest, params["priority"])
        result["points"] = qdrant.points(collection)
        timer.mark("recovered")
    except (_s3.S3Error, QdrantError, OSError) as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finally:
        if path and os.path.exists(path):
            os.unlink(path)
    finish(module, result, timer, before)


def finish(module, result, timer, before):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(points=before), after=dict(points=result["points"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
