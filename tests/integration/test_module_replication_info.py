"""postgresql_replication_info against the real lab pair."""

from __future__ import annotations

import json

from lab.postgresql import ADMIN_PASSWORD

MODULE = "postgresql_replication_info"


def test_primary_and_standby_facts(pg_pair, run_module):
    east = run_module(MODULE, dict(node=pg_pair.east.peer()))
    west = run_module(MODULE, dict(node=pg_pair.west.peer()))
    assert not east.failed, east.msg
    assert not west.failed, west.msg
    assert east["changed"] is False and west["changed"] is False

    assert east["reachable"] is True and west["reachable"] is True
    assert east["role"] == "primary" and east["in_recovery"] is False
    assert west["role"] == "standby" and west["in_recovery"] is True
    assert east["system_identifier"] == west["system_identifier"]
    assert east["system_identifier"] == str(pg_pair.scalar(
        pg_pair.east, "SELECT system_identifier FROM pg_control_system()"))
    assert east["timeline"] == 1 and west["timeline"] == 1
    assert east["read_only"] is False
    assert east["server_version_num"] >= 150000

    # The primary lists the standby, with an integer lag, and holds its slot.
    by_name = {s["application_name"]: s for s in east["standbys"]}
    assert "us_west" in by_name, east["standbys"]
    standby = by_name["us_west"]
    assert isinstance(standby["lag_bytes"], int) and standby["lag_bytes"] >= 0
    assert standby["state"] == "streaming"
    assert standby["slot_name"] == "us_west"
    slots = {s["slot_name"]: s for s in east["slots"]}
    assert "us_west" in slots and slots["us_west"]["active"] is True
    assert east["current_lsn"] and east["flush_lsn"]

    # The standby's side: receiver streaming from us-east, replay positions, not paused.
    receiver = west["wal_receiver"]
    assert receiver["status"] == "streaming"
    assert receiver["sender_host"] == pg_pair.east.host
    assert receiver["sender_port"] == pg_pair.east.port
    assert receiver["slot_name"] == "us_west"
    assert "lab-replication-secret" not in (receiver["conninfo"] or "")
    assert west["replay_paused"] is False
    assert isinstance(west["replay_lag_bytes"], int)
    assert west["received_lsn"] and west["replayed_lsn"]
    assert west["standbys"] == []


def test_replay_paused_is_reported(pg_pair, run_module):
    pg_pair.pause_replay()
    try:
        west = run_module(MODULE, dict(node=pg_pair.west.peer()))
    finally:
        pg_pair.resume_replay()
    assert not west.failed, west.msg
    assert west["replay_paused"] is True


def test_unreachable_reported_when_allowed(pg_pair, run_module, closed_port):
    port = closed_port(pg_pair.east.host)
    result = run_module(MODULE, dict(node=pg_pair.east.peer(port=port), fail_on_unreachable=False))
    assert not result.failed, result.msg
    assert result["changed"] is False
    assert result["reachable"] is False
    assert str(port) in result["unreachable_reason"]
    assert "role" not in result


def test_unreachable_fails_by_default(pg_pair, run_module, closed_port):
    port = closed_port(pg_pair.east.host)
    result = run_module(MODULE, dict(node=pg_pair.east.peer(port=port)))
    assert result.failed
    assert "cannot reach PostgreSQL" in result.msg and str(port) in result.msg


def test_wrong_password_fails_without_showing_it(pg_pair, run_module):
    wrong = "wrong-Pa55word-xyz"
    # Authentication errors fail even with fail_on_unreachable=false: a wrong password must
    # never look like a dead primary.
    result = run_module(MODULE, dict(node=pg_pair.east.peer(password=wrong),
                                     fail_on_unreachable=False))
    assert result.failed
    assert "authentication failed" in result.msg
    assert wrong not in result.msg
    assert wrong not in json.dumps(dict(result))
    assert ADMIN_PASSWORD not in json.dumps(dict(result))


# postgresql_nodes_info: every node in one call, each as postgresql_replication_info reads it.

def test_nodes_info_reads_every_node_at_once(pg_pair, run_module):
    nodes = [dict(pg_pair.east.peer(), name="east"), dict(pg_pair.west.peer(), name="west")]
    for check in (True, False):
        res = run_module("postgresql_nodes_info", dict(nodes=nodes), check=check)
        assert not res.failed, res.msg
        assert res["changed"] is False
        assert list(res["nodes"]) == ["east", "west"]
        east, west = res["nodes"]["east"], res["nodes"]["west"]
        assert east["reachable"] is True and east["role"] == "primary"
        assert east["read_only"] is False
        assert west["reachable"] is True and west["role"] == "standby"
        assert west["wal_receiver"]["sender_port"] == pg_pair.east.port
        # The same facts, by another client.
        assert east["system_identifier"] == str(pg_pair.scalar(
            pg_pair.east, "SELECT system_identifier FROM pg_control_system()"))
        shown = json.dumps(dict(res)) + res.stdout
        assert pg_pair.east.password not in shown and "lab-replication-secret" not in shown


def test_nodes_info_reports_a_lost_node_and_fails_for_a_refusing_one(
        pg_pair, run_module, closed_port):
    port = closed_port(pg_pair.east.host)
    lost = dict(pg_pair.east.peer(port=port), name="lost")
    res = run_module("postgresql_nodes_info",
                     dict(nodes=[lost, dict(pg_pair.west.peer(), name="west")]))
    assert not res.failed, res.msg
    assert res["nodes"]["lost"]["reachable"] is False
    assert str(port) in res["nodes"]["lost"]["unreachable_reason"]
    assert res["nodes"]["west"]["role"] == "standby"

    refusing = dict(pg_pair.east.peer(password="not-the-password"), name="refusing")
    res = run_module("postgresql_nodes_info",
                     dict(nodes=[refusing, dict(pg_pair.west.peer(), name="west")]))
    assert res.failed
    assert res.msg.startswith("1 of 2 nodes answered but could not be read - refusing: ")
    assert res["nodes"]["refusing"]["failed"] is True
    assert res["nodes"]["west"]["role"] == "standby"
    assert "not-the-password" not in json.dumps(dict(res)) + res.stdout


def test_nodes_info_refuses_two_nodes_of_one_name(pg_pair, run_module):
    node = dict(pg_pair.east.peer(), name="same")
    res = run_module("postgresql_nodes_info", dict(nodes=[node, node]))
    assert res.failed and "the names same appear more than once" in res.msg
