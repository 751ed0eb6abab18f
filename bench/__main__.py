"""python -m bench: PostgreSQL switchover and failover benchmarks on a lab of their own.

Starts a fresh bench lab (FAILSAFE_LAB_DIR=/var/tmp/failsafe-bench-lab, regions
us-east=127.0.5.1, us-west=127.0.6.1), renders its inventory, and measures under a live
lab.writer.Writer:

  1. planned switchovers with playbooks/postgresql_switchover.yml (alternating -l us-west / -l us-east)
  2. the hand-written fence / catch-up / promote procedure (psycopg, in this process)
  3. emergency failovers: kill -9 of the primary's postmaster + playbooks/postgresql_failover.yml

Then (or alone with --only redis) bench/redis.py: planned Redis failovers by playbook and
SENTINEL FAILOVER alone under a pinned and a Sentinel-aware writer, on a Redis-only bench lab.

Then (or alone with --only regional) bench/regional.py: planned regional failovers by
playbook (PostgreSQL, Redis, DNS together), alternating, under PostgreSQL and Redis clients.

`--only backup` measures backups, restores and checksum verification instead, on a lab of its
own (bench/backup.py).

Writes bench/results/switchover.json, bench/results/failover.json,
bench/results/redis_failover.json and bench/results/regional_failover.json (only the selected one with --only), prints tables, and
always stops the lab. See bench/README.md.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.common import (
    BENCH_LAB_DIR,
    BENCH_LAB_REGIONS,
    RESULTS_DIR,
    Ansible,
    configure_env,
    loadavg,
    log,
    machine_info,
    now_iso,
    pg_nodes,
    write_json,
)

TARGET_SWITCHOVER_MEDIAN_WINDOW_S = 0.5
TARGET_FAILOVER_S = 5.0

REFERENCE_SWITCHOVER = {
    "label": "reference-from-field-notes, not measured here",
    "source": "/work/shared/FIELD-NOTES.md",
    "patroni_4_1_5_switchover_writer_outage_s": 2.40,
    "patroni_switchover_rows_lost": 0,
    "hand_scripted_switchover_writer_outage_s": 0.097,
    "hand_scripted_switchover_total_s": 0.10,
}
REFERENCE_FAILOVER = {
    "label": "reference-from-field-notes, not measured here",
    "source": "/work/shared/FIELD-NOTES.md",
    "patroni_node_loss_until_writes_s": {"ttl_30": 22.8, "ttl_20_minimum": 19.8,
                                         "approximately": 20},
    "patroni_node_loss_rows_lost": "0-1 (async)",
}


def fmt(value, unit=" s", digits=3):
    if value is None:
        return "-"
    return f"{value:.{digits}f}{unit}"


def med(summary_dict):
    return None if not summary_dict else summary_dict["median"]


def run_switchover_section(lab, ansible, args, work: Path, writer_cls, started_at) -> dict:
    from bench import switchover

    report_dir = work / "switchover-reports"
    report_dir.mkdir()
    result = {
        "benchmark": "postgresql planned switchover",
        "timestamp": started_at,
        "status": "incomplete",
    }

    writer = writer_cls.for_lab(lab, f"bench-switchover-{int(time.time())}")
    with writer.running(linger=0.3):
        ans_rows = switchover.ansible_runs(lab, ansible, writer, args.switchover_runs, report_dir)
    ans_verdict = writer.verify()

    hand_rows = []
    hand_verdict = None
    if args.hand_runs:
        writer = writer_cls.for_lab(lab, f"bench-hand-{int(time.time())}")
        with writer.running(linger=0.3):
            hand_rows = switchover.hand_runs(lab, ansible, writer, args.hand_runs)
        hand_verdict = writer.verify()

    ans_summary = switchover.summarise_ansible(ans_rows)
    ans_summary["writer_verify_at_end"] = ans_verdict.as_dict()
    median_window = med(ans_summary["writer_window_s"])
    lost_total = ans_verdict.lost
    hand_summary = None
    ratio = None
    if hand_rows:
        hand_summary = switchover.summarise_hand(hand_rows)
        hand_summary["writer_verify_at_end"] = hand_verdict.as_dict()
        hw = hand_summary["writer_window_s"]
        aw = ans_summary["writer_window_s"]
        ratio = {
            "definition": "ansible writer window / hand-script writer window",
            "median_over_median": round(aw["median"] / hw["median"], 2) if hw["median"] else None,
            "min_over_min": round(aw["min"] / hw["min"], 2) if hw["min"] else None,
            "max_over_max": round(aw["max"] / hw["max"], 2) if hw["max"] else None,
        }
    result.update({
        "status": "complete",
        "lab": {"state_dir": BENCH_LAB_DIR, "regions": BENCH_LAB_REGIONS,
                "pg_port": pg_nodes(lab)[0].port},
        "writer": {
            "client": "lab.writer.Writer",
            "conninfo": "host=<us-east>,<us-west> target_session_attrs=read-write "
                        "connect_timeout=2, autocommit, one INSERT per transaction, 1 ms pause",
        },
        "ansible_switchover": {
            "method": "ansible-playbook -i <bench inventory> playbooks/postgresql_switchover.yml "
                      "-l <standby region group> -e postgresql_switchover_report_dir=DIR; "
                      "alternating directions; the playbook rejoins the old primary",
            "runs": ans_rows,
            "summary": ans_summary,
        },
        "hand_script": None if not hand_rows else {
            "method": "psycopg in the bench process: ALTER SYSTEM SET "
                      "default_transaction_read_only=on + pg_reload_conf() + poll a new "
                      "session (1 ms) -> pg_terminate_backend(all client backends) and wait "
                      "until they have exited -> wait pg_last_wal_replay_lsn() >= "
                      "pg_current_wal_flush_lsn() (1 ms polls) -> pg_promote(wait => false) "
                      "+ pg_is_in_recovery() every 5 ms -> reset an inherited fence if any. "
                      "Rejoin between runs with playbooks/postgresql_rejoin.yml, not timed.",
            "runs": hand_rows,
            "summary": hand_summary,
        },
        "ratio_ansible_to_hand_window": ratio,
        "targets": {
            "median_writer_window_below_s": TARGET_SWITCHOVER_MEDIAN_WINDOW_S,
            "median_writer_window_s": median_window,
            "median_writer_window_met": median_window is not None
            and median_window < TARGET_SWITCHOVER_MEDIAN_WINDOW_S,
            "rows_lost_target": 0,
            "rows_lost": lost_total,
            "rows_lost_met": lost_total == 0,
        },
        "reference_from_field_notes": REFERENCE_SWITCHOVER,
    })
    return result


def run_failover_section(lab, ansible, args, work: Path, writer_cls, started_at) -> dict:
    from bench import failover

    report_dir = work / "failover-reports"
    report_dir.mkdir()
    writer = writer_cls.for_lab(lab, f"bench-failover-{int(time.time())}")
    with writer.running(linger=0.3):
        rows = failover.failover_runs(lab, ansible, writer, args.failover_runs, report_dir)
    verdict = writer.verify()
    summ = failover.summarise(rows)
    summ["writer_verify_at_end"] = verdict.as_dict()
    k2w = med(summ["kill_to_first_write_s"])
    p2w = med(summ["playbook_start_to_first_write_s"])
    return {
        "benchmark": "postgresql emergency failover",
        "timestamp": started_at,
        "status": "complete",
        "lab": {"state_dir": BENCH_LAB_DIR, "regions": BENCH_LAB_REGIONS,
                "pg_port": pg_nodes(lab)[0].port},
        "writer": {
            "client": "lab.writer.Writer",
            "conninfo": "host=<us-east>,<us-west> target_session_attrs=read-write "
                        "connect_timeout=2, autocommit, one INSERT per transaction, 1 ms pause",
        },
        "method": "kill -9 of the primary's postmaster (pid from postmaster.pid in its data "
                  "directory), at once ansible-playbook -i <bench inventory> "
                  "playbooks/postgresql_failover.yml -l <standby region group> "
                  "-e postgresql_failover_report_dir=DIR; the playbook promotes the standby "
                  "and rejoins the killed node (pg_rewind after single-user crash recovery). "
                  "Failure detection is not part of it: the playbook starts right after the kill.",
        "runs": rows,
        "summary": summ,
        "targets": {
            "first_write_below_s": TARGET_FAILOVER_S,
            "median_playbook_start_to_first_write_s": p2w,
            "playbook_start_to_first_write_met": p2w is not None and p2w < TARGET_FAILOVER_S,
            "median_kill_to_first_write_s": k2w,
            "kill_to_first_write_met": k2w is not None and k2w < TARGET_FAILOVER_S,
            "rows_lost_note": "asynchronous streaming: acknowledged rows may be lost; reported, "
                              "no target",
        },
        "reference_from_field_notes": REFERENCE_FAILOVER,
    }


def print_tables(sw: dict | None, fo: dict | None) -> None:
    print()
    if sw:
        a = sw["ansible_switchover"]["summary"]
        print("Planned switchover (writer-observed write-unavailability window, seconds)")
        print(f"  {'':<26} {'median':>8} {'min':>8} {'max':>8}  rows lost")
        for label, s, lost in (
            ("ansible playbook", a["writer_window_s"], a["rows_lost_total"]),
            ("  module write_unavailable", a["module_write_unavailable_s"], None),
            ("  playbook wall time", a["playbook_wall_s"], None),
        ):
            print(f"  {label:<26} {fmt(s['median'], ''):>8} {fmt(s['min'], ''):>8} "
                  f"{fmt(s['max'], ''):>8}  {'' if lost is None else lost}")
        if sw.get("hand_script"):
            h = sw["hand_script"]["summary"]
            s = h["writer_window_s"]
            print(f"  {'hand script':<26} {fmt(s['median'], ''):>8} {fmt(s['min'], ''):>8} "
                  f"{fmt(s['max'], ''):>8}  {h['rows_lost_total']}")
            r = sw["ratio_ansible_to_hand_window"]
            print(f"  ratio ansible / hand (median/median): {r['median_over_median']}")
        t = sw["targets"]
        print(f"  target median < {t['median_writer_window_below_s']} s: "
              f"{'MET' if t['median_writer_window_met'] else 'NOT MET'}; "
              f"0 rows lost: {'MET' if t['rows_lost_met'] else 'NOT MET'} "
              f"(Patroni reference from field notes: 2.40 s, not measured here)")
    if fo:
        s = fo["summary"]
        print("Emergency failover (kill -9 of the primary, seconds)")
        print(f"  {'':<26} {'median':>8} {'min':>8} {'max':>8}")
        for label, key in (("kill -> first write", "kill_to_first_write_s"),
                           ("playbook start -> write", "playbook_start_to_first_write_s"),
                           ("playbook wall time", "playbook_wall_s")):
            v = s[key]
            print(f"  {label:<26} {fmt(v['median'], ''):>8} {fmt(v['min'], ''):>8} "
                  f"{fmt(v['max'], ''):>8}")
        t = fo["targets"]
        print(f"  acknowledged rows lost per run: acked before the kill "
              f"{[r['rows_acked_before_kill_lost'] for r in fo['runs']]}, acked after it by the "
              f"dead primary's backends {[r['rows_acked_after_kill_by_old_primary_lost'] for r in fo['runs']]}")
        print(f"  target < {t['first_write_below_s']} s: playbook start -> write "
              f"{'MET' if t['playbook_start_to_first_write_met'] else 'NOT MET'}, kill -> write "
              f"{'MET' if t['kill_to_first_write_met'] else 'NOT MET'} "
              f"(Patroni node loss reference from field notes: ~20 s, not measured here)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["switchover", "failover", "redis", "regional", "backup"],
                        help="run one benchmark (only its JSON file is written)")
    parser.add_argument("--backup-rows", type=int, default=950000,
                        help="rows of the backup benchmark's large database (~1.1 kB each); "
                             "the small one has a quarter")
    parser.add_argument("--switchover-runs", type=int, default=5)
    parser.add_argument("--hand-runs", type=int, default=5)
    parser.add_argument("--failover-runs", type=int, default=3)
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument("--profile-tasks", action="store_true",
                        help="diagnostics: enable ansible.posix.profile_tasks in the playbook "
                             "logs (implies --keep-logs; adds a little overhead)")
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the playbook logs and reports (kept anyway on failure)")
    from bench import redis as redis_bench

    redis_bench.add_arguments(parser)
    from bench import regional as regional_bench

    regional_bench.add_arguments(parser)
    args = parser.parse_args(argv)
    if args.only == "redis":
        return redis_bench.main(args=args)
    if args.only == "regional":
        return regional_bench.main(args=args)
    if args.only == "backup":
        from bench import backup

        return backup.run(args)

    configure_env()
    from lab import inventory as lab_inventory
    from lab.topology import make_lab
    from lab.writer import Writer

    started_at = now_iso()
    bench_started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="failsafe-bench-"))
    lab = make_lab()
    ok = False
    sw = fo = None
    try:
        log(f"fresh bench lab in {lab.config.state_dir} ({BENCH_LAB_REGIONS}); work dir {work}")
        lab.down()
        lab.up(["postgresql"])
        inventory = lab_inventory.write(lab, work / "inventory")
        ansible = Ansible(inventory, work, profile_tasks=args.profile_tasks)
        if args.profile_tasks:
            args.keep_logs = True
        machine = machine_info(lab)
        machine["loadavg_1_5_15_at_start"] = loadavg()
        log(f"machine: {machine}")
        if args.only in (None, "switchover"):
            sw = run_switchover_section(lab, ansible, args, work, Writer, started_at)
            sw["machine"] = dict(machine, loadavg_1_5_15_at_end=loadavg())
            write_json(args.results_dir / "switchover.json", sw)
            log(f"wrote {args.results_dir / 'switchover.json'}")
        if args.only in (None, "failover"):
            fo = run_failover_section(lab, ansible, args, work, Writer, started_at)
            fo["machine"] = dict(machine, loadavg_1_5_15_at_end=loadavg())
            write_json(args.results_dir / "failover.json", fo)
            log(f"wrote {args.results_dir / 'failover.json'}")
        ok = True
    except Exception:  # noqa: BLE001 - report, stop the lab, keep the logs
        traceback.print_exc()
        log(f"benchmark failed; playbook logs and reports kept in {work}")
    finally:
        log("stopping the bench lab")
        try:
            lab.down()
        except Exception as exc:  # noqa: BLE001
            log(f"lab down failed: {exc}")
    if ok and args.only is None:
        ok = redis_bench.main(args=args) == 0
    if ok and args.only is None:
        ok = regional_bench.main(args=args) == 0
    if ok:
        print_tables(sw, fo)
        print(f"\ntotal bench time {time.monotonic() - bench_started:.0f} s")
        if not args.keep_logs:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"logs and reports kept in {work}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
