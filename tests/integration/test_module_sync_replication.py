"""postgresql_sync_replication on the lab: check -> real -> check -> real, verified through
separate psycopg sessions; commits block (and say so) when the only synchronous standby is gone."""

from __future__ import annotations

import threading
import time

import pytest

MODULE = "postgresql_sync_replication"


@pytest.fixture
def sync_pair(pg_pair):
    """The canonical pair; us-east is made asynchronous again after the test, whatever happened."""
    try:
        yield pg_pair
    finally:
        pg_pair.set_setting(pg_pair.east, "synchronous_standby_names", None)
        pg_pair.set_setting(pg_pair.east, "synchronous_commit", None)
        pg_pair.set_setting(pg_pair.west, "synchronous_standby_names", None)


def show(pair, node, name="synchronous_standby_names"):
    return pair.scalar(node, f"SHOW {name}")


def auto_conf_names(pair, node):
    return pair.scalar(node, "SELECT setting FROM pg_file_settings "
                             "WHERE name = 'synchronous_standby_names' AND applied")


def test_check_real_check_real_then_async_again(sync_pair, run_module):
    pair, east = sync_pair, sync_pair.east
    args = dict(node=east.peer(), standby_names=["us_west"], method="any", num_sync=1)
    assert show(pair, east) == ""

    check = run_module(MODULE, args, check=True, diff=True)
    assert not check.failed, check.msg
    assert check["changed"] is True
    assert check["synchronous_standby_names"] == "ANY 1 (us_west)"
    assert check["statements"] == [
        "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (us_west)'",
        "SELECT pg_reload_conf()"]
    assert check["diff"]["before"]["synchronous_standby_names"] == ""
    assert check["diff"]["after"]["synchronous_standby_names"] == "ANY 1 (us_west)"
    assert check["blocked"] is False and check["streaming"] == ["us_west"]
    assert show(pair, east) == "", "check mode changed the setting"
    assert auto_conf_names(pair, east) is None, "check mode wrote postgresql.auto.conf"

    real = run_module(MODULE, args, diff=True)
    assert not real.failed, real.msg
    assert real["changed"] is True
    assert real["synchronous_standby_names"] == "ANY 1 (us_west)"
    assert real["synchronous_commit"] == "on"
    assert real["blocked"] is False and real["missing"] == []
    assert real["timings"]["change"] is not None
    # Independently: a new session sees it, the standby is a quorum member, a commit returns.
    assert show(pair, east) == "ANY 1 (us_west)"
    assert pair.scalar(east, "SELECT sync_state FROM pg_stat_replication "
                             "WHERE application_name = 'us_west'") == "quorum"
    row = pair.insert(east, "synchronous commit")
    assert pair.scalar(pair.west, "SELECT count(*) FROM failsafe_it WHERE id = %s",
                       (row,)) in (0, 1)  # flushed there; replay may lag a moment
    assert pair.wait_row(pair.west, row)

    check2 = run_module(MODULE, args, check=True, diff=True)
    assert not check2.failed and check2["changed"] is False, check2
    assert check2["statements"] == []
    real2 = run_module(MODULE, args)
    assert not real2.failed and real2["changed"] is False, real2
    assert real2["statements"] == [] and real2["steps"] == []

    # Back to asynchronous, the same four steps.
    back = dict(node=east.peer(), standby_names=[])
    a_check = run_module(MODULE, back, check=True)
    assert not a_check.failed and a_check["changed"] is True, a_check
    assert show(pair, east) == "ANY 1 (us_west)"
    a_real = run_module(MODULE, back)
    assert not a_real.failed and a_real["changed"] is True, a_real
    assert a_real["synchronous"] is False and a_real["blocked"] is False
    assert show(pair, east) == ""
    for step in (dict(check=True), dict()):
        again = run_module(MODULE, back, **step)
        assert not again.failed and again["changed"] is False, again


def test_a_missing_synchronous_standby_blocks_commits_and_is_reported(sync_pair, run_module):
    pair, east = sync_pair, sync_pair.east
    real = run_module(MODULE, dict(node=east.peer(), standby_names=["nobody_streams_as_me"]))
    assert not real.failed, real.msg
    assert real["blocked"] is True
    assert real["missing"] == ["nobody_streams_as_me"]
    assert "COMMITS BLOCK" in real["msg"]
    # Independently: a commit waits for the standby (wait event SyncRep) until cancelled;
    # PostgreSQL then warns that it committed locally only.
    notices = []
    conn = pair.connect(east)
    conn.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    pid = conn.info.backend_pid
    writer = threading.Thread(
        target=conn.execute, args=("INSERT INTO failsafe_it (note) VALUES ('blocked')",),
        daemon=True)
    writer.start()
    waited = False
    for _attempt in range(300):
        if pair.scalar(east, "SELECT wait_event FROM pg_stat_activity WHERE pid = %s",
                       (pid,)) == "SyncRep":
            waited = True
            break
        time.sleep(0.05)
    assert waited, "the commit never waited for the synchronous standby"
    pair.query(east, "SELECT pg_cancel_backend(%s)", (pid,))
    writer.join(30)
    assert not writer.is_alive()
    assert any("canceling wait for synchronous replication" in n for n in notices), notices
    info = run_module("postgresql_replication_info", dict(node=east.peer()))
    assert not info.failed, info.msg
    assert info["synchronous_standby_names"] == "ANY 1 (nobody_streams_as_me)"
    assert info["sync_blocked"] is True
    assert info["sync_missing"] == ["nobody_streams_as_me"]
    # Asynchronous again: commits return at once.
    back = run_module(MODULE, dict(node=east.peer(), standby_names=[]))
    assert not back.failed and back["blocked"] is False, back
    assert pair.insert(east, "unblocked") > 0


def test_replication_info_reports_sync_state(sync_pair, run_module):
    pair, east = sync_pair, sync_pair.east
    real = run_module(MODULE, dict(node=east.peer(), standby_names=["us_west"],
                                   method="first"))
    assert not real.failed, real.msg
    info = run_module("postgresql_replication_info", dict(node=east.peer()))
    assert not info.failed, info.msg
    assert info["synchronous_standby_names"] == "FIRST 1 (us_west)"
    assert info["sync_blocked"] is False
    assert [s["sync_state"] for s in info["standbys"]] == ["sync"]


def test_a_role_without_privilege_fails_clearly(sync_pair, run_module):
    pair, east = sync_pair, sync_pair.east
    pair.query(east, "DROP ROLE IF EXISTS failsafe_weak")
    pair.query(east, "CREATE ROLE failsafe_weak LOGIN PASSWORD 'weak-secret'")
    try:
        result = run_module(MODULE, dict(node=east.peer(user="failsafe_weak",
                                                        password="weak-secret"),
                                         standby_names=["us_west"]))
        assert result.failed
        assert "Traceback" not in result.msg and "lacks this privilege" in result.msg, result.msg
        assert "setting synchronous_standby_names" in result.msg
        assert show(pair, east) == ""
    finally:
        pair.query(east, "DROP ROLE IF EXISTS failsafe_weak")
