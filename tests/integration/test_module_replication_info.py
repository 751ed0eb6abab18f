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
