#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_opensearch
short_description: OpenSearch snapshot into its S3 repository, recorded in the backup catalog
version_added: 0.3.0
description:
  - "Runbook 000 (OpenSearch snapshots): make sure the snapshot repository is registered with
    the wanted settings (C(PUT /_snapshot/REPO), only when it differs), create a snapshot of
    O(indices) with C(include_global_state: false) and C(wait_for_completion=true), require state
    C(SUCCESS) with no failed shard, count the documents of each index, and write the catalog
    record."
  - "The snapshot's data is written by the OpenSearch nodes into the repository (the
    C(repository-s3) plugin, by default in the store's bucket under C(<prefix>/opensearch-repository));
    the catalog object C(<prefix>/opensearch/YYYY/MM/DD/opensearch_YYYYMMDD_HHMMSS.snapshot.json)
    holds the snapshot's description (indices, shards, uuid, document counts) and its SHA-256 is
    that of this record, not of the repository's files (OpenSearch checksums those itself)."
  - Tested against a protocol-level stand-in of OpenSearch's REST API, not a real OpenSearch.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.backup
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the repository and reports what it would register and snapshot; changes nothing.
  diff_mode:
    support: full
  idempotent:
    description: The repository is registered once; every run takes a new snapshot.
    support: partial
options:
  server:
    description: The OpenSearch cluster.
    type: dict
    required: true
    suboptions:
      url:
        description: Its REST URL (C(https://opensearch:9200)).
        type: str
        required: true
      user:
        description: User for basic authentication.
        type: str
      password:
        description: Its password. Never returned or logged.
        type: str
      ca_cert:
        description: CA bundle for an C(https) URL.
        type: path
      timeout:
        description: Seconds per request (the snapshot waits for completion).
        type: float
        default: 600
  indices:
    description: Indices (or patterns) to snapshot.
    type: list
    elements: str
    required: true
  repository:
    description: Name of the snapshot repository.
    type: str
    default: failsafe
  repository_settings:
    description:
      - The repository's definition (C(type) and C(settings)). Empty registers an C(s3)
        repository in the store's bucket under C(<prefix>/opensearch-repository).
    type: dict
    default: {}
  source_name:
    description: Name of the source in the catalog; default the URL's host.
    type: str
  source_region:
    description: Region of the source, recorded in the catalog.
    type: str
  set_id:
    description: Backup set the snapshot belongs to; empty makes a set of its own and writes its manifest.
    type: str
    default: ""
'''

EXAMPLES = r'''
- name: Snapshot the search indices
  failsafe.datastores.backup_opensearch:
    server:
      url: https://opensearch:9200
      user: admin
      password: "{{ vault_opensearch_password }}"
    indices: [documents, entities]
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: backup-writer
      secret_key: "{{ vault_s3_secret_key }}"
'''

RETURN = r'''
backup:
  description: The catalog record of the snapshot.
  returned: always
  type: dict
member:
  description: The snapshot as a member of a set manifest.
  returned: always
  type: dict
repository_changed:
  description: Whether the repository was registered or its settings changed (or would be).
  returned: always
  type: bool
snapshot:
  description: OpenSearch's description of the snapshot (C(snapshot), C(uuid), C(state), C(indices), C(shards)).
  returned: always
  type: dict
counts:
  description: Documents per index when the snapshot was taken.
  returned: always
  type: dict
manifest_key:
  description: Key of the set manifest this module wrote; empty when a playbook completes the set.
  returned: always
  type: str
timings:
  description: Seconds for C(checks), C(snapshot), C(record) and C(total).
  returned: always
  type: dict
diff:
  description: The repository definition before and after.
  returned: when diff mode is on
  type: dict
'''

import hashlib

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog
from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
from ansible_collections.failsafe.datastores.plugins.module_utils._backup_opensearch import (
    OPENSEARCH_SPEC,
    OpenSearch,
    OpenSearchError,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

ENGINE = "opensearch"
EXTENSION = "snapshot.json"
FORMAT = "opensearch-snapshot-record"
STEPS = (("checks", None, "checked"), ("snapshot", "checked", "snapshot"),
         ("record", "snapshot", "record"))


def default_repository(store):
    settings = dict(bucket=store["bucket"], base_path="/".join(
        p.strip("/") for p in (store.get("prefix") or "", "opensearch-repository") if p.strip("/")))
    return dict(type="s3", settings=settings)


def same_repository(current, wanted):
    if not current or current.get("type") != wanted.get("type"):
        return False
    have = dict((k, str(v)) for k, v in (current.get("settings") or {}).items())
    return all(have.get(k) == str(v) for k, v in (wanted.get("settings") or {}).items())


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=_s3.store_option(),
            server=dict(type="dict", required=True, options=dict(OPENSEARCH_SPEC)),
            indices=dict(type="list", elements="str", required=True),
            repository=dict(type="str", default="failsafe"),
            repository_settings=dict(type="dict", default={}),
            source_name=dict(type="str"),
            source_region=dict(type="str"),
            set_id=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    _s3.ensure_boto3(module)
    params = module.params
    store = params["store"]
    timer = Timer()
    result = dict(changed=False, backup={}, member={}, repository_changed=False, snapshot={},
                  counts={}, manifest_key="")
    before = after = None
    try:
        cluster = OpenSearch(params["server"])
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        wanted = params["repository_settings"] or default_repository(store)
        before = cluster.repository(params["repository"])
        after = wanted if not same_repository(before, wanted) else before
        result.update(changed=True, repository_changed=after is wanted)
        now = catalog.utcnow()
        key, bid = catalog.free_backup_key(store, s3, ENGINE, now, EXTENSION)
        timer.mark("checked")
        if module.check_mode:
            finish(module, result, timer, before, after)
        if result["repository_changed"]:
            cluster.put_repository(params["repository"], wanted)
        created = cluster.create_snapshot(params["repository"], bid, params["indices"])
        snapshot = created.get("snapshot") or {}
        shards = snapshot.get("shards") or {}
        if snapshot.get("state") != "SUCCESS" or shards.get("failed"):
            raise OpenSearchError(
                "snapshot %s ended in state %s with %s failed shards: it is not a backup. "
                "Read the cluster's log, then run again" % (bid, snapshot.get("state"),
                                                            shards.get("failed")))
        counts = dict((index, cluster.count(index)) for index in snapshot.get("indices") or [])
        result.update(snapshot=dict((k, snapshot.get(k)) for k in (
            "snapshot", "uuid", "state", "indices", "shards")), counts=counts)
        timer.mark("snapshot")
        record_body = catalog.manifest_json(dict(
            schema="failsafe.opensearch_snapshot/1", repository=params["repository"],
            repository_definition=wanted, snapshot=result["snapshot"], counts=counts))
        digest = hashlib.sha256(record_body).hexdigest()
        set_name = params["set_id"] or catalog.set_id(now)
        record = dict(backup_id=bid, set_id=set_name, engine=ENGINE, created=catalog.iso(now),
                      status=catalog.STATUS_SUCCESS, sha256=digest, size_bytes=len(record_body),
                      source_host=params["source_name"] or cluster.parts.hostname,
                      source_region=params["source_region"], format=FORMAT, key=key,
                      dataset=",".join(sorted(params["indices"])),
                      position="repository=%s snapshot=%s uuid=%s" % (
                          params["repository"], bid, snapshot.get("uuid")))
        # One PUT of a small record, written only after the snapshot succeeded: it is complete
        # or absent, never half a success.
        _s3.put_bytes(store, s3, key, record_body, catalog.to_metadata(record))
        member = dict(engine=ENGINE, backup_id=bid, key=key, sha256=digest,
                      size_bytes=len(record_body), status=catalog.STATUS_SUCCESS,
                      position=record["position"], source_host=record["source_host"],
                      source_region=params["source_region"], counts=counts)
        result.update(backup=catalog.summary(dict(record, stored_bytes=len(record_body),
                                                  problems=[])), member=member)
        if not params["set_id"]:
            mkey = catalog.manifest_key(store.get("prefix"), set_name, now)
            _s3.put_bytes(store, s3, mkey, catalog.manifest_json(
                catalog.manifest(set_name, now, [member])))
            result["manifest_key"] = mkey
        timer.mark("record")
    except (_s3.S3Error, OpenSearchError) as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finish(module, result, timer, before, after)


def finish(module, result, timer, before, after):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(repository=before or {}),
                              after=dict(repository=after or {}))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
