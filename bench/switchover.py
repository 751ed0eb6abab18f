"""Planned switchover: the collection's playbook versus the hand-written three-step procedure.

Both run against the same lab under the same kind of writer (lab.writer.Writer, both regions,
target_session_attrs=read-write). The number that matters is the writer's: the longest time
without an acknowledged commit around the switchover.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg

from bench.common import (
    loadavg,
    acks_between,
    ack_snapshot,
    log,
    r4,
    summary,
    wait_ack_after,
    wait_healthy_pair,
)

SWITCHOVER_PLAYBOOK = "playbooks/postgresql_switchover.yml"
REJOIN_PLAYBOOK = "playbooks/postgresql_rejoin.yml"

# The hand script's polling intervals (FIELD-NOTES: promote then poll pg_is_in_recovery every 5 ms).
FENCE_POLL = 0.001
CATCHUP_POLL = 0.001
PROMOTE_POLL = 0.005
CATCHUP_TIMEOUT = 10.0
PROMOTE_TIMEOUT = 30.0


def inventory_host(node) -> str:
    """lab.inventory names PostgreSQL hosts pg-<region>."""
    return f"pg-{node.region}"


def gap_start(writer, start: float, end: float):
    """Where the longest gap overlapping [start, end] begins (same rule as Writer.max_gap)."""
    _ids, times = ack_snapshot(writer)
    best, at = 0.0, None
    for a, b in zip(times, times[1:]):
        if b >= start and a <= end and b - a > best:
            best, at = b - a, a
    return at


class LossTracker:
    """Acknowledged rows missing on the current primary, attributed to the run that lost them.

    Writer.verify() reads the table and then compares it with every id acknowledged so far;
    while the writer keeps running, ids acknowledged after its SELECT began would look missing.
    So only ids acknowledged before the call (a snapshot taken first) are counted.
    """

    def __init__(self, writer) -> None:
        self.writer = writer
        self.missing: set = set()

    def new_losses(self) -> list:
        ids, _times = ack_snapshot(self.writer)
        before = set(ids)
        report = self.writer.verify()
        missing = {i for i in report.missing_ids if i in before}
        new = sorted(missing - self.missing)
        self.missing |= missing
        return new


# The collection's playbook ------------------------------------------------------------------

def ansible_runs(lab, ansible, writer, runs: int, report_dir: Path) -> list[dict]:
    losses = LossTracker(writer)
    results = []
    for n in range(1, runs + 1):
        primary, standby = wait_healthy_pair(lab)
        limit = standby.region
        time.sleep(1.0)  # steady writing before the switchover
        load = loadavg()
        log(f"switchover {n}/{runs}: {primary.region} -> {standby.region} "
            f"(ansible-playbook {SWITCHOVER_PLAYBOOK} -l {limit})")
        failures = writer.failures
        run = ansible.playbook(SWITCHOVER_PLAYBOOK, limit=limit, report_dir=report_dir,
                               extra={"postgresql_switchover_report_dir": report_dir})
        if wait_ack_after(writer, run.ended) is None:
            raise RuntimeError("the writer did not write after the switchover playbook")
        window = writer.max_gap(run.started, run.ended)
        at = gap_start(writer, run.started, run.ended)
        report = run.reports[-1] if run.reports else {}
        timings = report.get("timings") or {}
        lost = losses.new_losses()
        row = {
            "run": n,
            "loadavg_1_5_15_before": load,
            "direction": f"{primary.region} -> {standby.region}",
            "limit": limit,
            "writer_window_s": r4(window),
            "writer_gap_started_after_playbook_start_s": r4(at - run.started) if at else None,
            "module_write_unavailable_s": timings.get("write_unavailable"),
            "module_timings_s": timings,
            "terminated_sessions": report.get("terminated_sessions"),
            "playbook_wall_s": r4(run.wall),
            "rows_acked_during_playbook": len(acks_between(writer, run.started, run.ended)),
            "writer_failed_attempts": writer.failures - failures,
            "rows_lost": len(lost),
            "lost_ids": lost[:20],
            "report_file_found": bool(run.reports),
        }
        log(f"  writer window {window:.3f} s, module write_unavailable "
            f"{timings.get('write_unavailable')} s, playbook {run.wall:.1f} s, lost {len(lost)}")
        results.append(row)
    return results


# The hand-written procedure -----------------------------------------------------------------

def _one(conn, query, params=None):
    return conn.execute(query, params).fetchone()[0]


def hand_switchover(primary, standby) -> dict:
    """fence (ALTER SYSTEM + reload + poll a new session) -> terminate client backends and
    wait for them to exit -> wait until the standby's replay LSN >= the primary's flush LSN
    -> pg_promote(wait => false), poll pg_is_in_recovery() every 5 ms -> reset an inherited
    fence on the new primary if there is one. Returns monotonic marks."""
    marks = {}
    with psycopg.connect(primary.conninfo(), autocommit=True) as pconn, \
            psycopg.connect(standby.conninfo(), autocommit=True) as sconn:
        status = sconn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
        if not status or status[0] != "streaming":
            raise RuntimeError(f"{standby.name} is not streaming; not switching over")
        marks["start"] = time.monotonic()
        # 1. fence
        pconn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        pconn.execute("SELECT pg_reload_conf()")
        while True:
            with psycopg.connect(primary.conninfo(), autocommit=True) as probe:
                if _one(probe, "SHOW default_transaction_read_only") == "on":
                    break
            time.sleep(FENCE_POLL)
        marks["fenced"] = time.monotonic()
        pids = [row[0] for row in pconn.execute(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND pid <> pg_backend_pid()").fetchall()]
        if pids:
            pconn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid",
                          (pids,))
            while _one(pconn, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)",
                       (pids,)):
                time.sleep(0.001)
        marks["terminated"] = time.monotonic()
        # 2. catch up
        flush = _one(pconn, "SELECT pg_current_wal_flush_lsn()::text")
        deadline = time.monotonic() + CATCHUP_TIMEOUT
        while not _one(sconn, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (flush,)):
            if time.monotonic() > deadline:
                pconn.execute("ALTER SYSTEM RESET default_transaction_read_only")
                pconn.execute("SELECT pg_reload_conf()")
                raise RuntimeError(f"{standby.name} did not replay {flush} within "
                                   f"{CATCHUP_TIMEOUT}s; {primary.name} unfenced")
            time.sleep(CATCHUP_POLL)
        marks["caught_up"] = time.monotonic()
        # 3. promote
        sconn.execute("SELECT pg_promote(wait => false)")
        deadline = time.monotonic() + PROMOTE_TIMEOUT
        while _one(sconn, "SELECT pg_is_in_recovery()"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{standby.name} still in recovery {PROMOTE_TIMEOUT}s "
                                   "after pg_promote()")
            time.sleep(PROMOTE_POLL)
        marks["promoted"] = time.monotonic()
        inherited = _one(sconn, "SHOW default_transaction_read_only") == "on"
        if inherited:
            sconn.execute("ALTER SYSTEM RESET default_transaction_read_only")
            sconn.execute("SELECT pg_reload_conf()")
            while _one(sconn, "SHOW default_transaction_read_only") != "off":
                time.sleep(0.001)
        marks["writable"] = time.monotonic()
        marks["inherited_fence_reset"] = inherited
    return marks


def hand_runs(lab, ansible, writer, runs: int) -> list[dict]:
    losses = LossTracker(writer)
    results = []
    for n in range(1, runs + 1):
        primary, standby = wait_healthy_pair(lab)
        time.sleep(1.0)
        load = loadavg()
        log(f"hand-script switchover {n}/{runs}: {primary.region} -> {standby.region}")
        failures = writer.failures
        m = hand_switchover(primary, standby)
        if wait_ack_after(writer, m["writable"]) is None:
            raise RuntimeError("the writer did not write after the hand-script switchover")
        window = writer.max_gap(m["start"], m["writable"])
        lost = losses.new_losses()
        row = {
            "run": n,
            "loadavg_1_5_15_before": load,
            "direction": f"{primary.region} -> {standby.region}",
            "writer_window_s": r4(window),
            "script_timings_s": {
                "fence": r4(m["fenced"] - m["start"]),
                "terminate": r4(m["terminated"] - m["fenced"]),
                "catchup": r4(m["caught_up"] - m["terminated"]),
                "promote": r4(m["promoted"] - m["caught_up"]),
                "writable": r4(m["writable"] - m["promoted"]),
                "write_unavailable": r4(m["writable"] - m["start"]),
            },
            "inherited_fence_reset": m["inherited_fence_reset"],
            "writer_failed_attempts": writer.failures - failures,
            "rows_lost": len(lost),
            "lost_ids": lost[:20],
        }
        # Rejoin the old primary (not timed): the collection's rejoin playbook.
        rejoin = ansible.playbook(REJOIN_PLAYBOOK, extra={
            "postgresql_rejoin_node": inventory_host(primary),
            "postgresql_rejoin_primary": inventory_host(standby)})
        row["rejoin_wall_s_not_counted"] = r4(rejoin.wall)
        log(f"  writer window {window:.3f} s, script write_unavailable "
            f"{m['writable'] - m['start']:.3f} s, lost {len(lost)}; rejoin {rejoin.wall:.1f} s")
        results.append(row)
    return results


def summarise_ansible(rows: list[dict]) -> dict:
    steps = ["checks", "fence", "terminate", "catchup", "promote", "writable",
             "write_unavailable", "checkpoint", "total"]
    return {
        "writer_window_s": summary(r["writer_window_s"] for r in rows),
        "module_write_unavailable_s": summary(r["module_write_unavailable_s"] for r in rows),
        "module_timings_s": {s: summary((r["module_timings_s"] or {}).get(s) for r in rows)
                             for s in steps},
        "playbook_wall_s": summary(r["playbook_wall_s"] for r in rows),
        "rows_lost_total": sum(r["rows_lost"] for r in rows),
    }


def summarise_hand(rows: list[dict]) -> dict:
    steps = ["fence", "terminate", "catchup", "promote", "writable", "write_unavailable"]
    return {
        "writer_window_s": summary(r["writer_window_s"] for r in rows),
        "script_timings_s": {s: summary(r["script_timings_s"][s] for r in rows) for s in steps},
        "rows_lost_total": sum(r["rows_lost"] for r in rows),
    }
