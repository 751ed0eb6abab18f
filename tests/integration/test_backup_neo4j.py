"""Neo4j dumps against a stand-in `neo4j-admin` (NOT Neo4j: engines/neo4j_standin.py accepts only
the documented invocations and logs them) and the lab's real S3 server."""

from __future__ import annotations

import pytest

# These tests run on the generic lab (lab.topology.make_lab, tests/integration/engines/): on a
# checkout without it they are skipped rather than failing on missing fixtures.
try:
    from lab.topology import make_lab as _generic_lab  # noqa: F401 pylint: disable=unused-import
except ImportError:
    pytest.skip("needs the generic lab (lab.topology.make_lab)", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("lab_env")


def test_dump_to_s3_and_load_back(run_module, s3_store, neo4j_standin):
    standin = neo4j_standin
    original = standin.content()
    args = dict(store=s3_store.store, neo4j_admin=str(standin.admin),
                stop_command=standin.stop_command, start_command=standin.start_command)
    checked = run_module("backup_neo4j", args, check=True)
    assert checked.changed and standin.calls() == [] and s3_store.keys() == []
    done = run_module("backup_neo4j", args)
    assert not done.failed, done.msg
    assert standin.calls() == ["stop", "neo4j-admin database dump neo4j --to-stdout", "start"]
    key = done["backup"]["key"]
    assert s3_store.head(key)["status"] == "success" and s3_store.sha256(key) == done["backup"]["sha256"]
    standin.store.write_bytes(b"damaged")
    restored = run_module("restore_neo4j", args)
    assert not restored.failed, restored.msg
    assert standin.content() == original
    calls = standin.calls()[3:]
    assert calls[0] == "stop" and calls[-1] == "start"
    assert calls[1].startswith("neo4j-admin database load neo4j --from-path=")
    assert calls[1].endswith(" --overwrite-destination=true")


def test_a_flipped_byte_stops_nothing(run_module, s3_store, neo4j_standin):
    standin = neo4j_standin
    args = dict(store=s3_store.store, neo4j_admin=str(standin.admin),
                stop_command=standin.stop_command, start_command=standin.start_command)
    done = run_module("backup_neo4j", args)
    s3_store.flip_byte(done["backup"]["key"])
    standin.store.write_bytes(b"current")
    refused = run_module("restore_neo4j", args)
    assert refused.failed and "Nothing was stopped or loaded" in refused.msg
    assert standin.calls()[3:] == [] and standin.content() == b"current"


def test_a_failing_dump_leaves_no_success_and_restarts_the_database(run_module, s3_store,
                                                                    neo4j_standin):
    standin = neo4j_standin
    failed = run_module("backup_neo4j", dict(
        store=s3_store.store, neo4j_admin=str(standin.admin), database="no-such",
        stop_command=standin.stop_command, start_command=standin.start_command))
    assert failed.failed and "neo4j-admin" in failed.msg
    assert standin.calls()[-1] == "start"
    assert s3_store.keys("neo4j") == [] and s3_store.uploads() == []
