"""backup.yml and restore.yml with the engines no server of which can run here, against their
stand-ins (NOT real servers: engines/neo4j_standin.py, qdrant_standin.py, opensearch_standin.py),
in one backup set with the lab's real S3 server."""

from __future__ import annotations

import json
import shutil

import pytest

# These tests run on the generic lab (lab.topology.make_lab, tests/integration/engines/): on a
# checkout without it they are skipped rather than failing on missing fixtures.
try:
    from lab.topology import make_lab as _generic_lab  # noqa: F401 pylint: disable=unused-import
except ImportError:
    pytest.skip("needs the generic lab (lab.topology.make_lab)", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("lab_env")


def stats(runner, name):
    for event in runner.events:
        if event.get("event") == "playbook_on_stats":
            return (event["event_data"].get("artifact_data") or {}).get(name)
    return None


def test_one_set_of_neo4j_qdrant_and_opensearch_backed_up_and_restored(
        run_playbook, s3_store, lab_env, tmp_path, neo4j_standin, qdrant_standin,
        opensearch_standin):
    qdrant_standin.collections.update(documents=800)
    opensearch_standin.indices.update(entities={"docs": 90, "state": "open"})
    original_graph = neo4j_standin.content()
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    shutil.copy(lab_env.inventory, inventory / "lab.yml")
    (inventory / "others.yml").write_text(json.dumps({"all": {"children": {
        "neo4j": {"hosts": {"neo4j-core-0": {
            "ansible_connection": "local", "failsafe_neo4j_admin": str(neo4j_standin.admin),
            "failsafe_neo4j_stop_command": neo4j_standin.stop_command,
            "failsafe_neo4j_start_command": neo4j_standin.start_command}}},
        "qdrant": {"hosts": {"qdrant-0": {
            "failsafe_qdrant_url": qdrant_standin.url,
            "failsafe_qdrant_api_key": qdrant_standin.api_key,
            "failsafe_qdrant_collections": ["documents"]}}},
        "opensearch": {"hosts": {"opensearch-0": {
            "failsafe_opensearch_url": opensearch_standin.url,
            "failsafe_opensearch_user": opensearch_standin.user,
            "failsafe_opensearch_password": opensearch_standin.password,
            "failsafe_opensearch_indices": ["entities"]}}}}}}))
    ev = dict(failsafe_s3_prefix=s3_store.prefix, failsafe_lock_path=str(tmp_path / "locks"),
              backup_engines=["neo4j", "qdrant", "opensearch"])
    done = run_playbook("playbooks/backup.yml", inventory=inventory, extravars=ev)
    assert done.status == "successful", done.stdout_text[-3000:]
    record = stats(done, "failsafe_backup")
    assert sorted(m["engine"] for m in record["members"]) == ["neo4j", "opensearch", "qdrant"]
    manifest = json.loads(s3_store.body(s3_store.keys("sets")[0]))
    assert manifest["status"] == "success" and len(manifest["members"]) == 3

    # damage everywhere, then restore the set
    neo4j_standin.store.write_bytes(b"damaged")
    del qdrant_standin.collections["documents"]
    opensearch_standin.indices["entities"]["docs"] = 1
    restored = run_playbook("playbooks/restore.yml", inventory=inventory, extravars=dict(
        ev, restore_engines=["neo4j", "qdrant", "opensearch"], restore_confirm=True,
        restore_backup_id=record["set_id"], restore_opensearch_existing="close"))
    assert restored.status == "successful", restored.stdout_text[-3000:]
    assert neo4j_standin.content() == original_graph
    assert qdrant_standin.points("documents") == 800
    assert opensearch_standin.indices["entities"] == {"docs": 90, "state": "open"}
    assert sorted(stats(restored, "failsafe_restore")["others"]) == sorted(
        m["backup_id"] for m in record["members"])
