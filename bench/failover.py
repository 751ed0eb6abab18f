"""Emergency failover: kill -9 the primary's postmaster, then the collection's failover playbook."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from bench.common import (
    loadavg,
    ack_snapshot,
    acks_between,
    log,
    r4,
    summary,
    wait_ack_after,
    wait_healthy_pair,
)

FAILOVER_PLAYBOOK = "playbooks/postgresql_failover.yml"


def outage_after(writer, t_kill: float):
    """(last ack before the outage, first ack after it): the longest gap between
    acknowledged commits that ends after the kill.

    The first ack after the kill is normally the first write on the new primary; but a
    backend of the killed postmaster may still acknowledge a commit or two before it notices
    that its postmaster is gone. The longest gap (seconds: the promotion) separates the two.
    """
    ids, times = ack_snapshot(writer)
    best = (0.0, None, None)
    prev = None
    for t in times:
        if prev is not None and t > t_kill and t - prev > best[0]:
            best = (t - prev, prev, t)
        prev = t
    return best[1], best[2]


STEADY_S = 2.0  # steady writing before each kill; commits/s is measured over it


def set_synchronous(primary, standby, synchronous: bool, timeout: float = 30.0) -> None:
    """The primary names the standby in synchronous_standby_names (or none), in force and, when
    synchronous, with the standby confirming commits (sync_state quorum)."""
    import psycopg

    wanted = f"ANY 1 ({standby.slot_name})" if synchronous else ""
    with psycopg.connect(primary.conninfo(), autocommit=True) as conn:
        if conn.execute("SHOW synchronous_standby_names").fetchone()[0] != wanted:
            conn.execute(f"ALTER SYSTEM SET synchronous_standby_names = '{wanted}'")
            conn.execute("SELECT pg_reload_conf()")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with psycopg.connect(primary.conninfo(), autocommit=True) as fresh:
                shown = fresh.execute("SHOW synchronous_standby_names").fetchone()[0]
                state = fresh.execute(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = %s",
                    (standby.slot_name,)).fetchone()
            if shown == wanted and (not synchronous or (state and state[0] == "quorum")):
                return
            time.sleep(0.05)
    raise RuntimeError(f"{primary.name}: synchronous_standby_names {wanted!r} not in force")


def commits_per_s(writer, start: float, end: float):
    acks = acks_between(writer, start, end)
    return r4(len(acks) / (end - start)) if end > start else None


def role_report(run) -> dict:
    """The failover role's own JSON report among those the run wrote (not the run report)."""
    for report in reversed(run.reports):
        if "data_loss" in report and "target" in report:
            return report
    return {}


def failover_runs(lab, ansible, writer, runs: int, report_dir: Path,
                  synchronous=None) -> list[dict]:
    """`synchronous` None: as the lab is; True/False: the primary replicates synchronously (or
    not) before each kill, and the playbook restores synchronous mode after the rejoin; a list:
    the mode of each run (alternating modes spreads the machine's load over both alike)."""
    results = []
    counted: set = set()  # ids already reported missing by an earlier run
    modes = synchronous if isinstance(synchronous, list) else [synchronous] * runs
    for n, synchronous in enumerate(modes, start=1):
        runs = len(modes)
        primary, standby = wait_healthy_pair(lab)
        limit = standby.region
        if synchronous is not None:
            set_synchronous(primary, standby, synchronous)
        t_steady = time.monotonic()
        time.sleep(STEADY_S)
        load = loadavg()
        pid = primary.postmaster_pid()
        if pid is None:
            raise RuntimeError(f"no postmaster.pid for {primary.name}")
        mode = "" if synchronous is None else " (sync)" if synchronous else " (async)"
        log(f"failover {n}/{runs}{mode}: kill -9 {primary.name} postmaster (pid {pid}), then "
            f"ansible-playbook {FAILOVER_PLAYBOOK} -l {limit}")
        failures = writer.failures
        t_kill = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        extra = {"postgresql_failover_report_dir": report_dir,
                 "postgresql_failover_max_data_loss_seconds": 60}
        if synchronous is not None:
            extra["postgresql_failover_synchronous"] = "on" if synchronous else "off"
        run = ansible.playbook(FAILOVER_PLAYBOOK, limit=limit, report_dir=report_dir,
                               extra=extra)
        if wait_ack_after(writer, run.ended) is None:
            raise RuntimeError("the writer did not write after the failover playbook")
        last_old, first_new = outage_after(writer, t_kill)
        acked_after_kill_on_old = [] if first_new is None else \
            acks_between(writer, t_kill, first_new - 1e-9)
        ids, times = ack_snapshot(writer)
        before_kill = set(i for i, t in zip(ids, times) if t <= t_kill)
        report = writer.verify()
        # Only ids acknowledged before the call (the snapshot) and not already attributed to an
        # earlier run (verify() lists every id missing since the writer started).
        missing = (set(report.missing_ids) & set(ids)) - counted
        counted |= missing
        lost_before = sorted(missing & before_kill)
        lost_after_kill = sorted(missing & set(acked_after_kill_on_old))
        failed_attempts = writer.failures - failures
        freport = role_report(run)
        row = {
            "run": n,
            "loadavg_1_5_15_before": load,
            "killed": primary.name,
            "promoted": standby.name,
            "limit": limit,
            "kill_to_first_write_s": r4(first_new - t_kill) if first_new else None,
            "playbook_start_to_first_write_s": r4(first_new - run.started) if first_new else None,
            "kill_to_playbook_start_s": r4(run.started - t_kill),
            "writer_outage_s": r4(first_new - last_old) if first_new and last_old else None,
            "playbook_wall_s": r4(run.wall),
            "writer_failed_attempts": failed_attempts,
            "writer_failed_attempts_per_s_of_outage": r4(failed_attempts / (first_new - last_old))
            if first_new and last_old else None,
            "rows_acked_before_kill_lost": len(lost_before),
            "lost_before_kill_ids": lost_before[:20],
            "rows_acked_after_kill_by_old_primary": len(acked_after_kill_on_old),
            "rows_acked_after_kill_by_old_primary_lost": len(lost_after_kill),
            "lost_after_kill_ids": lost_after_kill[:20],
            "rows_lost_any": len(missing),
            "synchronous": synchronous,
            "writer_commits_per_s_before_kill": commits_per_s(writer, t_steady, t_kill),
            "synchronous_state_after": freport.get("synchronous_state"),
            "module_timings_s": freport.get("timings") or {},
            "data_loss_estimate": {
                "window_seconds_at_most": freport.get("data_loss_window_seconds_at_most"),
                "module": freport.get("data_loss") or {},
            },
            "report_file_found": bool(freport),
        }
        log(f"  kill -> write {row['kill_to_first_write_s']} s, playbook start -> write "
            f"{row['playbook_start_to_first_write_s']} s, playbook {run.wall:.1f} s, "
            f"lost: {len(lost_before)} acked before the kill, {len(lost_after_kill)} of "
            f"{len(acked_after_kill_on_old)} acked after it by the dead primary's backends")
        results.append(row)
    return results


def summarise(rows: list[dict]) -> dict:
    return {
        "kill_to_first_write_s": summary(r["kill_to_first_write_s"] for r in rows),
        "playbook_start_to_first_write_s": summary(r["playbook_start_to_first_write_s"]
                                                   for r in rows),
        "writer_outage_s": summary(r["writer_outage_s"] for r in rows),
        "playbook_wall_s": summary(r["playbook_wall_s"] for r in rows),
        "module_promote_total_s": summary((r["module_timings_s"] or {}).get("total")
                                          for r in rows),
        "rows_acked_before_kill_lost_total": sum(r["rows_acked_before_kill_lost"] for r in rows),
        "rows_acked_before_kill_lost_per_run": summary(r["rows_acked_before_kill_lost"]
                                                       for r in rows),
        "rows_acked_after_kill_by_old_primary_lost_total": sum(
            r["rows_acked_after_kill_by_old_primary_lost"] for r in rows),
        "rows_lost_any_total": sum(r["rows_lost_any"] for r in rows),
        "rows_lost_any_per_run": [r["rows_lost_any"] for r in rows],
        "writer_commits_per_s_before_kill": summary(r.get("writer_commits_per_s_before_kill")
                                                    for r in rows),
    }
