#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: restore_opensearch
short_description: Restore named OpenSearch indices from a catalogued snapshot
version_added: 0.3.0
description:
  - "Runbook 000 (Restore Index From Snapshot): read the catalog record of the snapshot (latest,
    or by id) and check its SHA-256 -> check that the repository still holds the snapshot in
    state C(SUCCESS) with the indices asked for -> for indices that exist: refuse
    (O(existing=fail)), close them (V(close); OpenSearch restores over a closed index) or restore
    beside them under another name (V(rename), O(rename_prefix)) -> C(POST
    /_snapshot/REPO/SNAP/_restore) with C(include_global_state: false) and
    C(wait_for_completion=true) -> count the documents and compare them with the counts recorded
    at backup time."
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
      - Reads the catalog, the repository and the indices and reports what it would do.
  diff_mode:
    support: full
  idempotent:
    description: Every run restores again.
    support: none
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
        description: Seconds per request (the restore waits for completion).
        type: float
        default: 600
  backup_id:
    description: The snapshot's backup id (C(opensearch_YYYYMMDD_HHMMSS)) or V(latest).
    type: str
    default: latest
  indices:
    description: Indices to restore; empty restores every index of the snapshot.
    type: list
    elements: str
    default: []
  existing:
    description: What to do with indices that exist.
    type: str
    choices: [fail, close, rename]
    default: fail
  rename_prefix:
    description: With O(existing=rename), the restored indices are named C(<prefix><index>).
    type: str
    default: restored_
  validate_only:
    description: Check the record and the repository's snapshot; restore nothing.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Restore the documents index from the latest snapshot, closing the damaged one
  failsafe.datastores.restore_opensearch:
    server:
      url: https://opensearch:9200
      user: admin
      password: "{{ vault_opensearch_password }}"
    indices: [documents]
    existing: close
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: restore-reader
      secret_key: "{{ vault_s3_secret_key }}"
'''

RETURN = r'''
backup:
  description: The catalog record of the snapshot.
  returned: always
  type: dict
restored:
  description: Index names after the restore (renamed ones with their new names).
  returned: always
  type: list
  elements: str
closed:
  description: Existing indices closed before the restore.
  returned: always
  type: list
  elements: str
counts:
  description: Documents per restored index, and C(matches) - whether they equal the counts at backup time.
  returned: always
  type: dict
timings:
  description: Seconds for C(checks), C(restore), C(count) and C(total).
  returned: always
  type: dict
diff:
  description: Indices before and after.
  returned: when diff mode is on
  type: dict
'''

import hashlib
import json

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
STEPS = (("checks", None, "checked"), ("restore", "checked", "restored"),
         ("count", "restored", "counted"))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=_s3.store_option(),
            server=dict(type="dict", required=True, options=dict(OPENSEARCH_SPEC)),
            backup_id=dict(type="str", default="latest"),
            indices=dict(type="list", elements="str", default=[]),
            existing=dict(type="str", choices=["fail", "close", "rename"], default="fail"),
            rename_prefix=dict(type="str", default="restored_"),
            validate_only=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    _s3.ensure_boto3(module)
    params = module.params
    store = params["store"]
    timer = Timer()
    result = dict(changed=False, backup={}, restored=[], closed=[], counts={})
    states = {}
    try:
        cluster = OpenSearch(params["server"])
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        try:
            record = catalog.find(catalog.load_records(store, s3, [ENGINE]), params["backup_id"],
                                  ENGINE)
        except catalog.CatalogError as exc:
            raise OpenSearchError("%s. Nothing was changed" % exc)
        result["backup"] = catalog.summary(record)
        body = _s3.get_bytes(store, s3, record["key"])
        if not catalog.usable(record) or hashlib.sha256(body).hexdigest() != record["sha256"]:
            raise OpenSearchError(
                "refusing backup %s (%s): its record does not match its SHA-256 %s (or it is not "
                "a success). Nothing was changed" % (record["backup_id"], record["key"],
                                                     record.get("sha256")))
        described = json.loads(body.decode("utf-8"))
        repo, snap = described["repository"], described["snapshot"]["snapshot"]
        live = cluster.snapshot(repo, snap)
        if not live or live.get("state") != "SUCCESS":
            raise OpenSearchError(
                "repository %s no longer holds snapshot %s in state SUCCESS (found %s): the "
                "catalog record outlived its data. Nothing was changed"
                % (repo, snap, live.get("state") if live else "nothing"))
        indices = params["indices"] or list(live.get("indices") or [])
        missing = sorted(set(indices) - set(live.get("indices") or []))
        if missing:
            raise OpenSearchError("snapshot %s has no index %s (it has %s). Nothing was changed"
                                  % (snap, ", ".join(missing), ", ".join(live.get("indices") or [])))
        states = dict((index, cluster.index_state(index)) for index in indices)
        present = sorted(i for i, state in states.items() if state is not None)
        if present and params["existing"] == "fail" and not params["validate_only"]:
            raise OpenSearchError(
                "indices %s exist: set existing=close (restore over them) or existing=rename "
                "(restore beside them as %s<index>). Nothing was changed"
                % (", ".join(present), params["rename_prefix"]))
        rename = params["existing"] == "rename" and bool(present)
        result["restored"] = [(params["rename_prefix"] + i) if rename else i for i in indices]
        result["changed"] = not params["validate_only"]
        timer.mark("checked")
        if module.check_mode or params["validate_only"]:
            finish(module, result, timer, states)
        if params["existing"] == "close":
            for index in present:
                if states[index] == "open":
                    cluster.close(index)
                    result["closed"].append(index)
        cluster.restore(repo, snap, indices, params["rename_prefix"] if rename else None)
        timer.mark("restored")
        recorded = described.get("counts") or {}
        for original, name in zip(indices, result["restored"]):
            found = cluster.count(name)
            result["counts"][name] = dict(found=found, at_backup=recorded.get(original),
                                          matches=found == recorded.get(original))
        timer.mark("counted")
    except (_s3.S3Error, OpenSearchError, ValueError, KeyError) as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finish(module, result, timer, states)


def finish(module, result, timer, states):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(indices=states),
                              after=dict(indices=result["restored"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
