"""opensearch_cluster_info and opensearch_reroute against a recorded-response STAND-IN of
OpenSearch's REST API (NOT an OpenSearch: engines/opensearch_standin.py checks every request
and records it). The tests assert the exact sequence of requests each run sends, that check
mode and every refusal send nothing that writes, and read the state back independently with
the real `opensearch-py` client (which also shows that the stand-in's answers are what that
client accepts)."""

from __future__ import annotations

import json
import time

import pytest
from opensearchpy import OpenSearch as OpenSearchPy

pytestmark = pytest.mark.usefixtures("lab_env")

HOUR_MS = 3600 * 1000


def client(standin) -> OpenSearchPy:
    return OpenSearchPy(hosts=[standin.url], http_auth=(standin.user, standin.password),
                        timeout=10)


@pytest.fixture
def lost_primary(opensearch_standin):
    """chunks_v1 shard 0: its primary's node left and no copy remains; concepts_v1 is fine."""
    standin = opensearch_standin
    standin.nodes[:] = ["opensearch-data-0", "opensearch-data-1", "opensearch-data-2"]
    standin.add_shard("concepts_v1", 0, "p", "STARTED", "opensearch-data-0")
    standin.add_shard("concepts_v1", 0, "r", "STARTED", "opensearch-data-2")
    standin.add_shard("chunks_v1", 0, "p", "UNASSIGNED", reason="NODE_LEFT")
    standin.indices.update(chunks_v1={"docs": 0, "state": "open"},
                           concepts_v1={"docs": 10, "state": "open"})
    standin.repositories["medkg"] = {"type": "s3", "settings": {"bucket": "backups"}}
    return standin


def add_snapshot(standin, name, indices, hours_ago, state="SUCCESS"):
    standin.snapshots[("medkg", name)] = {
        "snapshot": name, "uuid": name, "state": state, "indices": indices,
        "end_time_in_millis": int(time.time() * 1000 - hours_ago * HOUR_MS),
        "docs": {i: 1 for i in indices}}


def sent(standin, since=0):
    return [(m, p) for m, p, _q, _b in standin.requests[since:]]


def reroute_args(standin, **overrides):
    return dict(dict(server=standin.server(), index="chunks_v1", shard=0,
                     node="opensearch-data-1", accept_data_loss=True,
                     snapshot_repository="medkg", snapshot_max_age_hours=24), **overrides)


def test_cluster_info_explains_the_lost_primary(run_module, lost_primary):
    info = run_module("opensearch_cluster_info", dict(server=lost_primary.server()))
    assert not info.failed, info.msg
    assert info["status"] == "red" and info["health"]["unassigned_shards"] == 1
    assert [n["name"] for n in info["nodes"]] == lost_primary.nodes
    assert info["lost_primaries"] == ["chunks_v1[0]"]
    (shard,) = info["unassigned"]
    assert shard["primary"] and shard["reason"] == "NODE_LEFT"
    assert shard["can_allocate"] == "no_valid_shard_copy"
    assert sent(lost_primary) == [("GET", "/_cluster/health"), ("GET", "/_cat/nodes"),
                                  ("GET", "/_cat/shards"),
                                  ("POST", "/_cluster/allocation/explain")]
    assert lost_primary.requests[-1][3] == {"index": "chunks_v1", "shard": 0, "primary": True}
    assert lost_primary.writes() == []
    assert client(lost_primary).cluster.health()["status"] == "red"


def test_reroute_refusals_send_nothing_that_writes(run_module, lost_primary, closed_port):
    add_snapshot(lost_primary, "nightly-old", ["chunks_v1"], hours_ago=30)
    add_snapshot(lost_primary, "nightly-other", ["concepts_v1"], hours_ago=1)

    no_loss = run_module("opensearch_reroute", reroute_args(lost_primary, accept_data_loss=False))
    assert no_loss.failed and "set accept_data_loss=true" in no_loss.msg
    no_creds = run_module("opensearch_reroute", reroute_args(
        lost_primary, server=lost_primary.server(password=None)))
    assert no_creds.failed and no_creds.msg.startswith("missing credentials for a reroute")
    assert sent(lost_primary) == []  # neither sent anything at all

    stale = run_module("opensearch_reroute", reroute_args(lost_primary))
    assert stale.failed and "no SUCCESS snapshot of chunks_v1 in repository medkg newer than " \
        "24.0 h (newest: nightly-old, 30." in stale.msg
    assert sent(lost_primary) == [("GET", "/_cat/shards/chunks_v1"),
                                  ("GET", "/_snapshot/medkg/_all")]
    no_repo = run_module("opensearch_reroute", reroute_args(lost_primary,
                                                            snapshot_repository="other"))
    assert no_repo.failed and "snapshot repository other does not exist" in no_repo.msg
    no_repo_given = run_module("opensearch_reroute", reroute_args(lost_primary,
                                                                  snapshot_repository=None))
    assert no_repo_given.failed and "needs snapshot_repository" in no_repo_given.msg

    refused = run_module("opensearch_reroute", reroute_args(
        lost_primary, server=lost_primary.server(password="not-the-password")))
    assert refused.failed and "refused the credentials" in refused.msg
    assert "not-the-password" not in json.dumps(dict(refused))
    unreachable = run_module("opensearch_reroute", reroute_args(
        lost_primary, server=lost_primary.server(url=f"http://127.0.0.1:{closed_port()}")))
    assert unreachable.failed and unreachable.msg.startswith("cannot reach OpenSearch at")

    add_snapshot(lost_primary, "nightly", ["chunks_v1"], hours_ago=2)
    no_node = run_module("opensearch_reroute", reroute_args(lost_primary, node="data-9"))
    assert no_node.failed and "no node data-9 in the cluster" in no_node.msg
    assert lost_primary.writes() == []
    assert lost_primary.shards[2]["state"] == "UNASSIGNED"


def test_reroute_with_a_recent_snapshot_check_real_check_real(run_module, lost_primary):
    add_snapshot(lost_primary, "nightly-old", ["chunks_v1"], hours_ago=30)
    add_snapshot(lost_primary, "nightly", ["chunks_v1", "concepts_v1"], hours_ago=2)
    add_snapshot(lost_primary, "partial", ["chunks_v1"], hours_ago=1, state="PARTIAL")
    args = reroute_args(lost_primary)

    planned = run_module("opensearch_reroute", args, check=True, diff=True)
    assert not planned.failed, planned.msg
    assert planned.changed and planned["snapshot"]["snapshot"] == "nightly"
    assert 1.9 < planned["snapshot"]["age_hours"] < 2.1
    assert planned["diff"] == {"before": {"state": "UNASSIGNED"}, "after": {"state": "STARTED"}}
    assert planned["explanations"][0]["command"] == "allocate_empty_primary"
    assert sent(lost_primary) == [("GET", "/_cat/shards/chunks_v1"),
                                  ("GET", "/_snapshot/medkg/_all"), ("GET", "/_cat/nodes"),
                                  ("POST", "/_cluster/reroute")]
    assert lost_primary.requests[-1][2] == {"explain": ["true"], "dry_run": ["true"]}
    assert lost_primary.writes() == [] and lost_primary.shards[2]["state"] == "UNASSIGNED"

    mark = len(lost_primary.requests)
    done = run_module("opensearch_reroute", args)
    assert not done.failed and done.changed, done.msg
    assert sent(lost_primary, mark) == [("GET", "/_cat/shards/chunks_v1"),
                                        ("GET", "/_snapshot/medkg/_all"), ("GET", "/_cat/nodes"),
                                        ("POST", "/_cluster/reroute"),
                                        ("POST", "/_cluster/reroute"),
                                        ("GET", "/_cat/shards/chunks_v1")]
    assert lost_primary.writes() == [("POST", "/_cluster/reroute", {"explain": ["true"]})]
    assert lost_primary.requests[mark + 4][3] == {"commands": [{"allocate_empty_primary": {
        "index": "chunks_v1", "shard": 0, "node": "opensearch-data-1",
        "accept_data_loss": True}}]}

    for check in (True, False):
        mark = len(lost_primary.requests)
        again = run_module("opensearch_reroute", args, check=check)
        assert not again.failed and not again.changed, again.msg
        assert sent(lost_primary, mark) == [("GET", "/_cat/shards/chunks_v1")]
    assert len(lost_primary.writes()) == 1

    independent = client(lost_primary)
    rows = independent.cat.shards(index="chunks_v1", format="json")
    assert [(r["prirep"], r["state"], r["node"]) for r in rows] == [
        ("p", "STARTED", "opensearch-data-1")]
    assert independent.cluster.health()["status"] == "green"


def test_recovery_playbook_reroutes_only_when_told(run_playbook, lost_primary, tmp_path):
    """playbooks/opensearch_recovery.yml through ansible-runner (no pod replacement here: that
    part needs a Kubernetes API and is not exercised by this test)."""
    add_snapshot(lost_primary, "nightly", ["chunks_v1"], hours_ago=3)
    inventory = tmp_path / "opensearch.yml"
    inventory.write_text(json.dumps({"all": {"children": {
        "us-east": {"hosts": {"opensearch-0": None}},
        "opensearch": {"hosts": {"opensearch-0": {
            "ansible_connection": "local", "failsafe_region": "us-east",
            "failsafe_opensearch_url": lost_primary.url,
            "failsafe_opensearch_user": lost_primary.user,
            "failsafe_opensearch_password": lost_primary.password,
            "failsafe_opensearch_repository": "medkg"}}}}}}))
    playbook = "playbooks/opensearch_recovery.yml"
    ev = {"opensearch_recovery_node": "opensearch-data-1"}

    unnamed = run_playbook(playbook, inventory=inventory)
    assert unnamed.status == "failed" and "name the node" in unnamed.stdout_text
    refused = run_playbook(playbook, inventory=inventory, extravars=ev)
    assert refused.status == "failed" and "set accept_data_loss=true" in refused.stdout_text
    planned = run_playbook(playbook, inventory=inventory, check=True, extravars=dict(
        ev, opensearch_recovery_accept_data_loss=True))
    assert planned.status == "successful", planned.stdout_text[-3000:]
    assert lost_primary.writes() == []

    done = run_playbook(playbook, inventory=inventory, limit="us-east", extravars=dict(
        ev, opensearch_recovery_accept_data_loss=True))
    assert done.status == "successful", done.stdout_text[-3000:]
    assert "The cluster is green; every primary is assigned." in done.stdout_text
    assert lost_primary.writes() == [("POST", "/_cluster/reroute", {"explain": ["true"]})]
    assert client(lost_primary).cluster.health()["status"] == "green"
    again = run_playbook(playbook, inventory=inventory, extravars=ev)
    assert again.status == "successful" and len(lost_primary.writes()) == 1
