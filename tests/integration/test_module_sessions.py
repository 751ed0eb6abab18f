"""postgresql_sessions: real idle and active sessions on the lab's primary, four steps, every
outcome read back from pg_stat_activity in sessions of the test's own."""

from __future__ import annotations

import threading
import time

import psycopg

MODULE = "postgresql_sessions"


def alive(pair, pids) -> set:
    rows = pair.query(pair.east, "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)",
                      (list(pids),))
    return {row[0] for row in rows}


def walsender_pid(pair):
    return pair.scalar(pair.east, "SELECT pid FROM pg_stat_replication")


class ActiveQuery:
    """A session running one long query (pg_sleep) in a thread, as an application would."""

    def __init__(self, node, seconds=120):
        self.conn = psycopg.connect(node.conninfo(application_name="it_active"), autocommit=True)
        self.pid = self.conn.info.backend_pid
        self.error = None
        self.thread = threading.Thread(target=self._run, args=(seconds,), daemon=True)
        self.thread.start()

    def _run(self, seconds):
        try:
            self.conn.execute("SELECT pg_sleep(%s)", (seconds,))
        except psycopg.Error as exc:
            self.error = exc

    def close(self):
        try:
            self.conn.cancel()
        except psycopg.Error:
            pass
        self.thread.join(10)
        self.conn.close()


def test_sessions_diagnose_then_terminate_four_steps(pg_pair, run_module):
    east = pg_pair.east
    peer = east.peer()
    idle = [pg_pair.connect(east, application_name="it_idle") for _number in range(2)]
    kept = pg_pair.connect(east, application_name="it_keep")
    in_tx = pg_pair.connect(east, autocommit=False, application_name="it_in_tx")
    in_tx.execute("SELECT 1")  # idle in transaction: the runbook does not end these
    active = ActiveQuery(east)
    idle_pids = {c.info.backend_pid for c in idle}
    kept_pid, in_tx_pid = kept.info.backend_pid, in_tx.info.backend_pid
    sender = walsender_pid(pg_pair)
    assert sender, "us-west does not stream from us-east"
    time.sleep(2.5)  # every session above is now older than the thresholds below
    args = dict(node=peer, idle_seconds=2, active_seconds=2, databases=["postgres"],
                exclude_applications=["it_keep"])
    try:
        # 0. diagnosis: counts against max_connections, top clients, ends nothing.
        diag = run_module(MODULE, dict(node=peer, terminate=False))
        assert not diag.failed, diag.msg
        assert diag["changed"] is False and diag["terminated"] == []
        assert diag["max_connections"] == int(pg_pair.scalar(east, "SHOW max_connections"))
        assert diag["by_state"]["idle"]["count"] >= 3
        assert diag["by_state"]["active"]["count"] >= 1
        assert diag["connections"] >= 6
        assert diag["other_backends"].get("walsender") == 1
        top = {(c["application_name"], c["count"]) for c in diag["top_clients"]}
        assert ("it_idle", 2) in top
        assert diag["selected"] == [], "the runbook's 10/5 minutes select none of these"

        # 1. check mode: lists who would go, ends nothing.
        check = run_module(MODULE, args, check=True, diff=True)
        assert not check.failed, check.msg
        assert check["changed"] is True
        would = {s["pid"]: s["reason"] for s in check["terminated"]}
        assert {pid: "idle" for pid in idle_pids}.items() <= would.items()
        assert would.get(active.pid) == "active"
        assert kept_pid not in would and in_tx_pid not in would and sender not in would
        assert check["diff"]["after"] == {"sessions": []}
        assert alive(pg_pair, idle_pids | {active.pid, kept_pid}) == \
            idle_pids | {active.pid, kept_pid}, "check mode ended a session"

        # 2. real: the idle and the long-running sessions are gone, nothing else.
        real = run_module(MODULE, args)
        assert not real.failed, real.msg
        assert real["changed"] is True
        ended = {s["pid"] for s in real["terminated"]}
        assert idle_pids | {active.pid} <= ended
        assert all(s["application_name"] != "failsafe.sessions" for s in real["terminated"])
        assert set(real["timings"]) >= {"read", "terminate", "total"}
        assert alive(pg_pair, idle_pids | {active.pid}) == set()
        assert alive(pg_pair, {kept_pid, in_tx_pid}) == {kept_pid, in_tx_pid}
        active.thread.join(10)
        assert active.error is not None, "the long query was not ended"
        # Replication survives: the same walsender, us-west still streams.
        assert walsender_pid(pg_pair) == sender
        assert pg_pair.receiver(pg_pair.west)["status"] == "streaming"
        row = pg_pair.insert(east, "after the sessions were ended")
        assert pg_pair.wait_row(pg_pair.west, row)

        # 3. check again and 4. real again: nothing left to end.
        check2 = run_module(MODULE, args, check=True)
        assert not check2.failed, check2.msg
        assert check2["changed"] is False and check2["terminated"] == []
        real2 = run_module(MODULE, args)
        assert not real2.failed, real2.msg
        assert real2["changed"] is False and real2["terminated"] == []
        assert alive(pg_pair, {kept_pid, in_tx_pid}) == {kept_pid, in_tx_pid}
    finally:
        active.close()


def test_sessions_refuses_bad_input_and_ends_nothing(pg_pair, run_module):
    held = pg_pair.connect(pg_pair.east, application_name="it_idle")
    pid = held.info.backend_pid
    result = run_module(MODULE, dict(node=pg_pair.east.peer(), kinds=[], idle_seconds=0))
    assert result.failed
    assert "kinds is empty" in result.msg and "Nothing was changed" in result.msg
    negative = run_module(MODULE, dict(node=pg_pair.east.peer(), idle_seconds=-5))
    assert negative.failed and "idle must be 0 or more seconds" in negative.msg
    assert alive(pg_pair, {pid}) == {pid}
