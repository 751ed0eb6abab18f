"""redis_replication_info against the lab's Redis pair and Sentinels."""

from __future__ import annotations

import pytest

# The Redis components need the generic lab (lab.core.Component with ports and packages) and
# its engine plugins (tests/integration/engines/redis.py); without them, skip with the reason.
pytest.importorskip("lab.sentinel", reason="the lab has no Redis components (generic lab needed)",
                    exc_type=ImportError)

import json


def test_master_replica_and_sentinel_view(redis_pair, run_module):
    res = run_module("redis_replication_info", redis_pair.east.login(
        sentinels=redis_pair.sentinel_peers(), master_name=redis_pair.master_name))
    assert not res.failed, res.msg
    assert res["role"] == "master" and res["changed"] is False
    assert [r["address"] for r in res["replicas"]] == [redis_pair.west.address]
    assert res["replicas"][0]["lag_bytes"] >= 0
    view = res["sentinel"]
    assert view["agreed_master"] == redis_pair.east.address
    assert view["quorum_ok"] is True and view["failover_in_progress"] is False
    assert view["reachable"] == view["total"] == 3
    assert all(s["master"] == redis_pair.east.address for s in view["sentinels"])

    res = run_module("redis_replication_info", redis_pair.west.login())
    assert res["role"] == "replica" and res["master_link_status"] == "up"
    assert f"{res['master_host']}:{res['master_port']}" == redis_pair.east.address
    assert res["config_file"] and res["sentinel"] is None


def test_lag_is_reported(redis_pair, run_module):
    lag = redis_pair.lag_replica(100_000)
    try:
        res = run_module("redis_replication_info", redis_pair.east.login())
        assert res["replicas"][0]["lag_bytes"] >= lag > 0
    finally:
        redis_pair.release_replica()


def test_a_wrong_password_is_not_an_unreachable_server(redis_pair, run_module, lab_secrets):
    res = run_module("redis_replication_info", redis_pair.east.login(login_password="wrong-pw"))
    assert res.failed
    assert res.msg.startswith("authentication failed at Redis at %s" % redis_pair.east.address)
    assert "wrong-pw" not in json.dumps(dict(res)) + res.stdout


def test_an_unreachable_server(redis_pair, run_module, closed_port):
    res = run_module("redis_replication_info",
                     redis_pair.east.login(login_port=closed_port(redis_pair.east.host)))
    assert res.failed and res.msg.startswith("cannot reach Redis at")


def test_an_unreachable_sentinel_is_reported(redis_pair, run_module):
    redis_pair.stop_sentinels(["sentinel-witness"])
    res = run_module("redis_replication_info", redis_pair.west.login(
        sentinels=redis_pair.sentinel_peers(), master_name=redis_pair.master_name))
    assert not res.failed, res.msg
    view = res["sentinel"]
    assert view["reachable"] == 2 and view["agreed_master"] is None
    assert view["quorum_ok"] is True
    down = [s for s in view["sentinels"] if not s["reachable"]]
    assert len(down) == 1 and down[0]["error"].startswith("cannot reach Sentinel at")


# redis_nodes_info: every node in one call, the Sentinels asked once beside them.

def test_nodes_info_reads_every_node_and_the_sentinels_at_once(redis_pair, run_module):
    nodes = [dict(redis_pair.east.peer(), name="east"), dict(redis_pair.west.peer(), name="west")]
    for check in (True, False):
        res = run_module("redis_nodes_info", dict(
            nodes=nodes, sentinels=redis_pair.sentinel_peers(),
            master_name=redis_pair.master_name), check=check)
        assert not res.failed, res.msg
        assert res["changed"] is False and list(res["nodes"]) == ["east", "west"]
        east, west = res["nodes"]["east"], res["nodes"]["west"]
        assert east["reachable"] is True and east["role"] == "master"
        assert [r["address"] for r in east["replicas"]] == [redis_pair.west.address]
        assert west["role"] == "replica" and west["master_link_status"] == "up"
        assert res["sentinel"]["agreed_master"] == redis_pair.east.address
        assert res["sentinel"]["quorum_ok"] is True
        # The same roles, by another client.
        assert redis_pair.role(redis_pair.east) == "master"
        assert redis_pair.role(redis_pair.west) == "slave"


def test_nodes_info_reports_a_lost_node_and_fails_for_a_refusing_one(
        redis_pair, run_module, closed_port, lab_secrets):
    port = closed_port(redis_pair.east.host)
    res = run_module("redis_nodes_info", dict(nodes=[
        dict(redis_pair.east.peer(port=port), name="lost"),
        dict(redis_pair.west.peer(), name="west")]))
    assert not res.failed, res.msg
    lost = res["nodes"]["lost"]
    assert lost["failed"] is True and lost["reachable"] is False
    assert lost["msg"].startswith("cannot reach Redis at")
    assert res["nodes"]["west"]["role"] == "replica"

    res = run_module("redis_nodes_info", dict(nodes=[
        dict(redis_pair.east.peer(password="wrong-pw"), name="refusing"),
        dict(redis_pair.west.peer(), name="west")]))
    assert res.failed
    assert res.msg.startswith("1 of 2 nodes answered but could not be read - refusing: "
                              "authentication failed at Redis at %s" % redis_pair.east.address)
    assert res["nodes"]["refusing"]["reachable"] is None
    assert res["nodes"]["west"]["role"] == "replica"
    assert "wrong-pw" not in json.dumps(dict(res)) + res.stdout
