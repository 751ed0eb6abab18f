"""Qdrant backups against a protocol-level stand-in of Qdrant's snapshot API (NOT a Qdrant:
engines/qdrant_standin.py checks every request) and the lab's real S3 server."""

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


def test_snapshots_to_s3_and_back(run_module, s3_store, qdrant_standin):
    qdrant_standin.collections.update(documents=1200, chunks=50)
    args = dict(server=qdrant_standin.server(), store=s3_store.store,
                collections=["documents", "chunks"])
    checked = run_module("backup_qdrant", args, check=True)
    assert checked.changed and not qdrant_standin.snapshots and s3_store.keys() == []
    assert not any(m == "POST" for m, _p, _q in qdrant_standin.requests)
    done = run_module("backup_qdrant", args)
    assert not done.failed, done.msg
    assert [b["dataset"] for b in done["backups"]] == ["documents", "chunks"]
    for backup in done["backups"]:
        meta = s3_store.head(backup["key"])
        assert meta["status"] == "success" and meta["sha256"] == s3_store.sha256(backup["key"])
        assert backup["key"].endswith(".snapshot") and "/qdrant/" in backup["key"]
    assert qdrant_standin.snapshots == {}  # deleted from the node once in S3
    manifest = json.loads(s3_store.body(done["manifest_key"]))
    assert [m["counts"] for m in manifest["members"]] == [{"documents": 1200}, {"chunks": 50}]

    # the collection is lost, then recovered (verified before Qdrant is touched)
    del qdrant_standin.collections["documents"]
    restore = dict(server=qdrant_standin.server(), store=s3_store.store, collection="documents")
    checked = run_module("restore_qdrant", restore, check=True)
    assert checked.changed and "documents" not in qdrant_standin.collections
    restored = run_module("restore_qdrant", restore)
    assert not restored.failed, restored.msg
    assert restored["points"] == 1200 and qdrant_standin.points("documents") == 1200
    uploads = [q for m, p, q in qdrant_standin.requests if p.endswith("/snapshots/upload")]
    assert uploads[-1]["priority"] == ["snapshot"]
    assert uploads[-1]["checksum"] == [done["backups"][0]["sha256"]]
    # a collection with points is not overwritten without existing=replace
    refused = run_module("restore_qdrant", restore)
    assert refused.failed and "holds 1200 points" in refused.msg


def test_a_flipped_byte_never_reaches_qdrant(run_module, s3_store, qdrant_standin):
    qdrant_standin.collections.update(documents=10)
    done = run_module("backup_qdrant", dict(server=qdrant_standin.server(), store=s3_store.store,
                                            collections=["documents"]))
    s3_store.flip_byte(done["backups"][0]["key"])
    before = len(qdrant_standin.requests)
    refused = run_module("restore_qdrant", dict(server=qdrant_standin.server(),
                                                store=s3_store.store, collection="documents",
                                                existing="replace"))
    assert refused.failed and "Qdrant was not touched" in refused.msg
    assert not any(p.endswith("/upload") for _m, p, _q in qdrant_standin.requests[before:])


def test_a_wrong_api_key_is_a_clear_error(run_module, s3_store, qdrant_standin):
    qdrant_standin.collections.update(documents=10)
    failed = run_module("backup_qdrant", dict(
        server=qdrant_standin.server(api_key="not-the-key"), store=s3_store.store,
        collections=["documents"]))
    assert failed.failed and "refused the API key" in failed.msg
    assert "not-the-key" not in json.dumps(dict(failed))
    assert s3_store.keys() == []
