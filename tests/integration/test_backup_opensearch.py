"""OpenSearch snapshots against a protocol-level stand-in of its REST API (NOT an OpenSearch:
engines/opensearch_standin.py checks every request) and the lab's real S3 server."""

from __future__ import annotations

import json

import pytest

# These tests run on the generic lab (lab.topology.make_lab, tests/integration/engines/): on a
# checkout without it they are skipped rather than failing on missing fixtures.
try:
    from lab.topology import make_lab as _generic_lab  # noqa: F401 pylint: disable=unused-import
except ImportError:
    pytest.skip("needs the generic lab (lab.topology.make_lab)", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("lab_env")


def test_snapshot_and_restore_named_indices(run_module, s3_store, opensearch_standin):
    standin = opensearch_standin
    standin.indices.update(documents={"docs": 1500, "state": "open"},
                           entities={"docs": 300, "state": "open"})
    args = dict(server=standin.server(), store=s3_store.store, indices=["documents", "entities"])
    checked = run_module("backup_opensearch", args, check=True)
    assert checked.changed and checked["repository_changed"] and not standin.repositories
    done = run_module("backup_opensearch", args)
    assert not done.failed, done.msg
    repo = standin.repositories["failsafe"]
    base_path = s3_store.prefix + "/opensearch-repository"
    assert repo == {"type": "s3", "settings": {"bucket": "backups", "base_path": base_path}}
    assert done["counts"] == {"documents": 1500, "entities": 300}
    key = done["backup"]["key"]
    assert s3_store.head(key)["sha256"] == s3_store.sha256(key)
    record = json.loads(s3_store.body(key))
    assert record["snapshot"]["state"] == "SUCCESS" and record["counts"]["documents"] == 1500
    again = run_module("backup_opensearch", args)
    assert not again["repository_changed"]  # registered once

    # damage: documents lost most of its documents
    standin.indices["documents"]["docs"] = 12
    restore = dict(server=standin.server(), store=s3_store.store, indices=["documents"],
                   backup_id=done["backup"]["backup_id"])
    refused = run_module("restore_opensearch", restore)
    assert refused.failed and "indices documents exist" in refused.msg
    assert standin.indices["documents"] == {"docs": 12, "state": "open"}
    renamed = run_module("restore_opensearch", dict(restore, existing="rename"))
    assert not renamed.failed, renamed.msg
    assert renamed["restored"] == ["restored_documents"]
    assert renamed["counts"]["restored_documents"] == {"found": 1500, "at_backup": 1500,
                                                       "matches": True}
    assert standin.indices["documents"]["docs"] == 12  # left as it was
    closed = run_module("restore_opensearch", dict(restore, existing="close"))
    assert not closed.failed, closed.msg
    assert closed["closed"] == ["documents"] and standin.indices["documents"]["docs"] == 1500
    restores = [b for m, p, q, b in standin.requests if p.endswith("/_restore")]
    assert all(b["include_global_state"] is False for b in restores)


def test_a_tampered_record_or_a_vanished_snapshot_is_refused(run_module, s3_store,
                                                             opensearch_standin):
    standin = opensearch_standin
    standin.indices.update(documents={"docs": 5, "state": "open"})
    done = run_module("backup_opensearch", dict(server=standin.server(), store=s3_store.store,
                                                indices=["documents"]))
    standin.snapshots.clear()
    vanished = run_module("restore_opensearch", dict(server=standin.server(), store=s3_store.store,
                                                     existing="close"))
    assert vanished.failed and "no longer holds snapshot" in vanished.msg
    assert standin.indices["documents"]["state"] == "open"
    s3_store.flip_byte(done["backup"]["key"], offset=5)
    tampered = run_module("restore_opensearch", dict(server=standin.server(), store=s3_store.store,
                                                     existing="close"))
    assert tampered.failed and "does not match its SHA-256" in tampered.msg


def test_wrong_credentials_are_a_clear_error(run_module, s3_store, opensearch_standin):
    opensearch_standin.indices.update(documents={"docs": 5, "state": "open"})
    failed = run_module("backup_opensearch", dict(
        server=opensearch_standin.server(password="not-the-password"), store=s3_store.store,
        indices=["documents"]))
    assert failed.failed and "refused the credentials" in failed.msg
    assert "not-the-password" not in json.dumps(dict(failed)) and s3_store.keys() == []
