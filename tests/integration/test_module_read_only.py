"""postgresql_read_only: fence and unfence for real, four steps each, verified independently."""

from __future__ import annotations

import psycopg
import pytest

MODULE = "postgresql_read_only"


def session_alive(conn) -> bool:
    try:
        conn.execute("SELECT 1").fetchone()
        return True
    except psycopg.Error:
        return False


def test_fence_then_unfence_four_steps(pg_pair, run_module):
    east = pg_pair.east
    held = pg_pair.connect(east, application_name="held_before_fence")
    held_pid = held.info.backend_pid
    assert pg_pair.read_only(east) is False

    # 1. check mode: would fence and terminate the held session, changes nothing.
    check = run_module(MODULE, dict(node=east.peer(), read_only=True), check=True, diff=True)
    assert not check.failed, check.msg
    assert check["changed"] is True
    assert check["read_only"] is True
    assert "ALTER SYSTEM SET default_transaction_read_only = on" in check["statements"]
    assert held_pid in [s["pid"] for s in check["terminated"]]
    assert check["diff"]["before"] == {"default_transaction_read_only": False}
    assert check["diff"]["after"] == {"default_transaction_read_only": True}
    assert pg_pair.read_only(east) is False, "check mode fenced the server"
    assert session_alive(held), "check mode terminated a session"
    assert pg_pair.scalar(
        east, "SELECT count(*) FROM pg_file_settings WHERE name = 'default_transaction_read_only'"
    ) == 0, "check mode wrote postgresql.auto.conf"

    # 2. real: fenced, the held session is terminated and really gone.
    real = run_module(MODULE, dict(node=east.peer(), read_only=True), diff=True)
    assert not real.failed, real.msg
    assert real["changed"] is True
    assert real["read_only"] is True
    assert real["in_recovery"] is False
    terminated = {s["pid"]: s for s in real["terminated"]}
    assert held_pid in terminated
    assert terminated[held_pid]["application_name"] == "held_before_fence"
    assert not session_alive(held), "the session opened before the fence is still alive"
    assert pg_pair.scalar(east, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                          (held_pid,)) == 0

    # Independent verification in a new session.
    assert pg_pair.read_only(east) is True
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction, match="read-only transaction"):
        pg_pair.insert(east, "must fail")

    # 3. check again and 4. real again: nothing to do.
    check2 = run_module(MODULE, dict(node=east.peer(), read_only=True), check=True)
    assert not check2.failed, check2.msg
    assert check2["changed"] is False, check2
    assert check2["terminated"] == []
    real2 = run_module(MODULE, dict(node=east.peer(), read_only=True))
    assert not real2.failed, real2.msg
    assert real2["changed"] is False, real2
    assert real2["statements"] == []
    assert pg_pair.read_only(east) is True

    # Unfence: the same four steps.
    u_check = run_module(MODULE, dict(node=east.peer(), read_only=False), check=True, diff=True)
    assert not u_check.failed, u_check.msg
    assert u_check["changed"] is True and u_check["read_only"] is False
    assert u_check["terminated"] == []
    assert u_check["diff"]["after"] == {"default_transaction_read_only": False}
    assert pg_pair.read_only(east) is True, "check mode lifted the fence"

    u_real = run_module(MODULE, dict(node=east.peer(), read_only=False))
    assert not u_real.failed, u_real.msg
    assert u_real["changed"] is True and u_real["read_only"] is False
    assert "ALTER SYSTEM RESET default_transaction_read_only" in u_real["statements"]
    assert pg_pair.read_only(east) is False
    assert pg_pair.insert(east, "writable again") > 0

    u_check2 = run_module(MODULE, dict(node=east.peer(), read_only=False), check=True)
    assert not u_check2.failed and u_check2["changed"] is False, u_check2
    u_real2 = run_module(MODULE, dict(node=east.peer(), read_only=False))
    assert not u_real2.failed and u_real2["changed"] is False, u_real2
    assert pg_pair.insert(east, "still writable") > 0


def test_fence_keeps_excluded_users_sessions(pg_pair, run_module):
    east = pg_pair.east
    held = pg_pair.connect(east, application_name="excluded_admin")
    try:
        real = run_module(MODULE, dict(node=east.peer(), read_only=True, exclude_users=["postgres"]))
        assert not real.failed, real.msg
        assert real["changed"] is True
        assert held.info.backend_pid not in [s["pid"] for s in real["terminated"]]
        assert session_alive(held)
        assert pg_pair.read_only(east) is True
    finally:
        pg_pair.unfence(east)


def test_fence_on_standby_terminates_nothing(pg_pair, run_module):
    west = pg_pair.west
    held = pg_pair.connect(west)
    try:
        real = run_module(MODULE, dict(node=west.peer(), read_only=True))
        assert not real.failed, real.msg
        assert real["in_recovery"] is True
        assert real["terminated"] == []
        assert session_alive(held)
        assert pg_pair.read_only(west) is True
    finally:
        pg_pair.unfence(west)


def test_unreachable_server_fails(pg_pair, run_module, closed_port):
    port = closed_port(pg_pair.east.host)
    result = run_module(MODULE, dict(node=pg_pair.east.peer(port=port), read_only=True))
    assert result.failed
    assert "cannot reach PostgreSQL" in result.msg
