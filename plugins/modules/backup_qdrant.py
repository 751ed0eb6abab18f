#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_qdrant
short_description: Qdrant collection snapshots streamed to S3 and catalogued
version_added: 0.3.0
description:
  - "Runbook 002 (Qdrant, snapshots via API): for each collection, C(POST
    /collections/NAME/snapshots) -> stream the snapshot down and into an S3 multipart upload,
    hashing SHA-256 in-process -> compare with the checksum Qdrant reports for the snapshot ->
    delete the snapshot from the Qdrant node (O(delete_snapshot)). No local copy."
  - "Catalog: C(<prefix>/qdrant/YYYY/MM/DD/qdrant_YYYYMMDD_HHMMSS.snapshot) (the runbook's layout),
    dataset = the collection, status C(success) only after the upload completed, the checksums
    agreed and were stored. The points per collection go into the set manifest."
  - Tested against a protocol-level stand-in of Qdrant's HTTP API (no Qdrant server can run on
    the project's machines), not a real Qdrant.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.backup
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the collections and the bucket and reports the keys; creates no snapshot.
  diff_mode:
    support: full
  idempotent:
    description: Every run takes new snapshots.
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
        description: Seconds per HTTP request (snapshot creation and transfer included).
        type: float
        default: 600
  collections:
    description: Collections to back up, one object each.
    type: list
    elements: str
    required: true
  source_name:
    description: Name of the source in the catalog; default the URL's host.
    type: str
  source_region:
    description: Region of the source, recorded in the catalog.
    type: str
  set_id:
    description: Backup set the snapshots belong to; empty makes a set of their own and writes its manifest.
    type: str
    default: ""
  delete_snapshot:
    description: Delete each snapshot from the Qdrant node once it is in S3.
    type: bool
    default: true
  part_size_mb:
    description: Multipart part size in MiB (doubles every 1000 parts).
    type: int
    default: 8
'''

EXAMPLES = r'''
- name: Back up the vector collections
  failsafe.datastores.backup_qdrant:
    server:
      url: http://qdrant:6333
      api_key: "{{ vault_qdrant_api_key }}"
    collections: [documents]
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: backup-writer
      secret_key: "{{ vault_s3_secret_key }}"
'''

RETURN = r'''
backups:
  description: The catalog record of each collection's backup.
  returned: always
  type: list
  elements: dict
members:
  description: The backups as members of a set manifest (for M(failsafe.datastores.backup_set)).
  returned: always
  type: list
  elements: dict
set_id:
  description: The set the backups belong to.
  returned: always
  type: str
manifest_key:
  description: Key of the set manifest this module wrote; empty when a playbook completes the set.
  returned: always
  type: str
timings:
  description: Seconds for C(checks), C(snapshots) (create, transfer, verify, delete) and C(total).
  returned: always
  type: dict
diff:
  description: The catalog entries before (none) and after.
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog
from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
from ansible_collections.failsafe.datastores.plugins.module_utils._backup_qdrant import (
    QDRANT_SPEC,
    Qdrant,
    QdrantError,
    ResponseReader,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

ENGINE = "qdrant"
EXTENSION = "snapshot"
FORMAT = "qdrant-snapshot"
STEPS = (("checks", None, "checked"), ("snapshots", "checked", "snapshots"))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=_s3.store_option(),
            server=dict(type="dict", required=True, options=dict(QDRANT_SPEC)),
            collections=dict(type="list", elements="str", required=True),
            source_name=dict(type="str"),
            source_region=dict(type="str"),
            set_id=dict(type="str", default=""),
            delete_snapshot=dict(type="bool", default=True),
            part_size_mb=dict(type="int", default=8),
        ),
        supports_check_mode=True,
    )
    _s3.ensure_boto3(module)
    params = module.params
    store = params["store"]
    timer = Timer()
    result = dict(changed=False, backups=[], members=[], set_id="", manifest_key="")
    record = None
    try:
        qdrant = Qdrant(params["server"])
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        points = {}
        for collection in params["collections"]:
            points[collection] = qdrant.points(collection)
            if points[collection] is None:
                raise QdrantError("collection %s does not exist at %s. Nothing was backed up"
                                  % (collection, qdrant.describe()))
        now = catalog.utcnow()
        set_name = params["set_id"] or catalog.set_id(now)
        source = params["source_name"] or qdrant.parts.hostname
        result.update(changed=True, set_id=set_name)
        timer.mark("checked")
        if module.check_mode:
            result["backups"] = [dict(engine=ENGINE, dataset=c, status="planned")
                                 for c in params["collections"]]
            finish(module, result, timer)
        for collection in params["collections"]:
            key, bid = catalog.free_backup_key(store, s3, ENGINE, now, EXTENSION)
            record = dict(backup_id=bid, set_id=set_name, engine=ENGINE, created=catalog.iso(now),
                          status=catalog.STATUS_UPLOADING, source_host=source,
                          source_region=params["source_region"], format=FORMAT, key=key,
                          dataset=collection)
            snapshot = qdrant.create_snapshot(collection) or {}
            conn, response = qdrant.open_snapshot(collection, snapshot["name"])
            try:
                upload = _s3.upload_stream(store, s3, key, ResponseReader(response),
                                           catalog.to_metadata(record),
                                           part_size=params["part_size_mb"] * _s3.MiB)
            finally:
                conn.close()
            if snapshot.get("checksum") and snapshot["checksum"] != upload.sha256:
                _s3.delete(store, s3, [key])
                raise QdrantError(
                    "snapshot %s of %s read %s but Qdrant reports SHA-256 %s: the copy was "
                    "deleted, the snapshot stays on the node for inspection"
                    % (snapshot["name"], collection, upload.sha256, snapshot["checksum"]))
            record.update(sha256=upload.sha256, size_bytes=upload.size,
                          status=catalog.STATUS_SUCCESS, position="snapshot=%s" % snapshot["name"])
            _s3.replace_metadata(store, s3, key, catalog.to_metadata(record))
            if params["delete_snapshot"]:
                qdrant.delete_snapshot(collection, snapshot["name"])
            result["backups"].append(catalog.summary(dict(record, stored_bytes=upload.size,
                                                          problems=[])))
            result["members"].append(dict(
                engine=ENGINE, backup_id=bid, key=key, sha256=upload.sha256,
                size_bytes=upload.size, status=catalog.STATUS_SUCCESS, position=record["position"],
                source_host=source, source_region=params["source_region"], collection=collection,
                counts={collection: points[collection]}))
            record = None
        if not params["set_id"]:
            mkey = catalog.manifest_key(store.get("prefix"), set_name, now)
            _s3.put_bytes(store, s3, mkey, catalog.manifest_json(
                catalog.manifest(set_name, now, result["members"])))
            result["manifest_key"] = mkey
        timer.mark("snapshots")
    except (_s3.S3Error, QdrantError) as exc:
        message = str(exc)
        if record is not None:
            message += ". The backup %s failed: no success was recorded" % record["backup_id"]
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=message, **result)
    finish(module, result, timer)


def finish(module, result, timer):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(), after=dict(catalog=result["backups"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
