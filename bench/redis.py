"""Redis planned failover: the collection's playbook versus `SENTINEL FAILOVER` alone.

`python -m bench --only redis` (or `python -m bench.redis`). Starts a fresh bench lab with only
the Redis kinds (a master in us-east, a replica in us-west, three Sentinels with quorum 2) and
measures, with the same two writing clients in every run (lab.redis_writer, retries off):

  pinned    connected to the master of the moment for good (an application with a fixed
            address): after a correct failover its writes fail with READONLY; what it saw
            acknowledged must be on the new master;
  sentinel  asks the Sentinels for the master (redis-py Sentinel.master_for) and follows it.

Sections, alternating directions (-l us-west, -l us-east, ...):

  1. playbook     playbooks/redis_failover.yml with the default sentinel_method=remonitor;
  2. playbook, sentinel_method=failover (Sentinel's own failover after the hand-over);
  3. SENTINEL FAILOVER alone on one Sentinel, then wait until Sentinel has converted the old
     master (what the runbooks do), to show what it loses.

For each run: acknowledged writes lost per client, the Sentinel-aware client's longest time
without an acknowledged write around the run, the pinned client's failed attempts, and the
module's own timings. Writes bench/results/redis_failover.json (no machine paths in it), prints
a table, and always stops the lab.
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
    BENCH_LAB_REGIONS,
    RESULTS_DIR,
    Ansible,
    configure_env,
    loadavg,
    log,
    now_iso,
    r4,
    summary,
    write_json,
)

PLAYBOOK = "playbooks/redis_failover.yml"
TARGET_WINDOW_S = 0.5
SETTLE_TIMEOUT = 90.0

REFERENCE = {
    "label": "reference-from-field-notes, not measured here",
    "source": "FIELD-NOTES (shared), 'Planned Redis failover with Sentinel watching'",
    "sentinel_failover_alone_lost_per_client_per_trial": "56-77 k (up to ~180 k)",
    "failover_to_then_sentinel_failover_gap_s": 1.41,
    "client_pause_sentinel_failover_replicaof_gap_s": 1.18,
    "failover_to_then_sentinel_remove_monitor_gap_s": "0.25-0.46",
}


def nodes(lab):
    from lab.redis import RedisNode

    return lab.of_kind(RedisNode.kind)


def sentinels(lab):
    from lab.sentinel import SentinelNode

    return lab.of_kind(SentinelNode.kind)


def state(lab) -> dict:
    """Roles, the replica's link and what every Sentinel answers (None where unreachable)."""
    import redis

    from lab import redis as lab_redis

    roles, link = {}, None
    for node in nodes(lab):
        try:
            info = lab_redis.client(node.host, node.port).info("replication")
            roles[node.name] = info["role"]
            if info["role"] == "slave":
                link = (f"{info['master_host']}:{info['master_port']}",
                        info["master_link_status"], bool(info.get("master_sync_in_progress")))
        except redis.RedisError:
            roles[node.name] = None
    answers, others, failing = {}, [], False
    for sentinel in sentinels(lab):
        try:
            conn = lab_redis.client(sentinel.host, sentinel.port, None)
            address = conn.sentinel_get_master_addr_by_name(lab_redis.MASTER_NAME)
            answers[sentinel.name] = f"{address[0]}:{address[1]}"
            master = conn.sentinel_master(lab_redis.MASTER_NAME)
            others.append(master.get("num-other-sentinels", 0))
            failing |= bool(master.get("is_failover_in_progress"))
        except redis.RedisError:
            answers[sentinel.name] = None
    return {"roles": roles, "link": link, "answers": answers, "other_sentinels": others,
            "failover_in_progress": failing}


def wait_settled(lab, timeout=SETTLE_TIMEOUT, expect=None):
    """One master (`expect`, if given), its replica synchronised, every Sentinel answering it,
    knowing the others and not failing over. Returns the master and the replica components."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = state(lab)
        masters = [n for n in nodes(lab) if last["roles"].get(n.name) == "master"]
        if len(masters) == 1 and last["link"] and masters[0] is (expect or masters[0]):
            master = masters[0]
            replica = next(n for n in nodes(lab) if n is not master)
            address = f"{master.host}:{master.port}"
            if last["link"] == (address, "up", False) \
                    and set(last["answers"].values()) == {address} \
                    and min(last["other_sentinels"]) >= len(sentinels(lab)) - 1 \
                    and not last["failover_in_progress"]:
                return master, replica
        time.sleep(0.1)
    raise RuntimeError(f"the Redis lab did not settle within {timeout}s: {last}")


def measure(lab, run_key: str, action) -> dict:
    """Run `action(master, replica)` under the two writers; returns the measurements."""
    from lab import redis as lab_redis
    from lab.redis_writer import RedisWriter, running

    master, replica = wait_settled(lab)
    writers = RedisWriter.pair_for_lab(lab, run_key, pinned_to=master)
    extra = {}
    with running(writers, linger=0.5):
        time.sleep(0.5)
        started = time.monotonic()
        extra = action(master, replica) or {}
        ended = time.monotonic()
        # Until the Sentinel-aware client writes again (or 60 s).
        while time.monotonic() < ended + 60 and not writers[1].acked_since(ended):
            time.sleep(0.02)
    new_master, _replica = wait_settled(lab)
    conn = lab_redis.client(new_master.host, new_master.port)
    pinned, follower = (w.verify(conn) for w in writers)
    conn.close()
    return dict(
        direction=f"{master.site} -> {new_master.site}",
        action_seconds=r4(ended - started),
        # Only acknowledged writes that survived count: a write the old master acknowledged and
        # the failover threw away is no service.
        sentinel_client_outage_s=r4(writers[1].max_gap(started, ended + 0.5,
                                                       exclude=follower.missing)),
        sentinel_client=follower.as_dict(),
        pinned_client=pinned.as_dict(),
        acknowledged_writes_lost=pinned.lost + follower.lost,
        **extra,
    )


def playbook_action(ansible, report_dir: Path, method: str):
    def action(master, replica):
        run = ansible.playbook(PLAYBOOK, limit=replica.site, report_dir=report_dir,
                               extra={"redis_failover_report_dir": str(report_dir),
                                      "redis_failover_sentinel_method": method,
                                      "failsafe_lock_path": str(report_dir / "locks")})
        reports = [r for r in run.reports if "timings" in r and "target" in r]
        timings = reports[-1]["timings"] if reports else {}
        return dict(playbook_wall_s=r4(run.wall),
                    module=dict((k, timings.get(k)) for k in (
                        "write_unavailable", "sentinel_clients_unavailable", "catchup",
                        "handover", "sentinel", "sentinel_quorum", "total")))
    return action


def sentinel_alone_action(lab):
    import redis

    from lab import redis as lab_redis

    def replica_is_candidate(conn, replica) -> bool:
        """The Sentinel's own view: the replica answers, is not down, its INFO is fresh."""
        for seen in conn.sentinel_slaves(lab_redis.MASTER_NAME):
            if (seen.get("ip"), int(seen.get("port", 0))) == (replica.host, replica.port):
                return (seen.get("is_slave") and not seen.get("is_sdown")
                        and not seen.get("is_disconnected")
                        and int(seen.get("info-refresh", 10**6)) < 2000)
        return False

    def action(master, replica):
        first = sentinels(lab)[0]
        conn = lab_redis.client(first.host, first.port, None)
        deadline = time.monotonic() + 30
        while not replica_is_candidate(conn, replica) and time.monotonic() < deadline:
            time.sleep(0.1)
        started = time.monotonic()
        attempts = 0
        # Sentinel accepts the command, then may abort it (no replica it finds good enough):
        # asked again, as an operator would; the attempts are in the results.
        while True:
            attempts += 1
            try:
                conn.execute_command("SENTINEL", "FAILOVER", lab_redis.MASTER_NAME)
            except redis.ResponseError as exc:  # the previous attempt still runs: wait for it
                if "INPROG" not in str(exc):
                    raise
            try:
                # The runbook's "verify": until the old master has been converted into a replica.
                wait_settled(lab, timeout=30.0 if attempts < 3 else SETTLE_TIMEOUT, expect=replica)
                break
            except RuntimeError:
                if attempts >= 3:
                    raise
        conn.close()
        return dict(until_converted_s=r4(time.monotonic() - started), attempts=attempts)
    return action


def summarise(rows: list[dict]) -> dict:
    return dict(
        runs=len(rows),
        sentinel_client_outage_s=summary(r["sentinel_client_outage_s"] for r in rows),
        module_write_unavailable_s=summary((r.get("module") or {}).get("write_unavailable")
                                           for r in rows),
        module_sentinel_clients_unavailable_s=summary(
            (r.get("module") or {}).get("sentinel_clients_unavailable") for r in rows),
        playbook_wall_s=summary(r.get("playbook_wall_s") for r in rows),
        acknowledged_writes_lost_total=sum(r["acknowledged_writes_lost"] for r in rows),
        pinned_client_lost_per_run=[r["pinned_client"]["acknowledged_writes_lost"] for r in rows],
        sentinel_client_lost_per_run=[r["sentinel_client"]["acknowledged_writes_lost"]
                                      for r in rows],
    )


def section(lab, name, runs, action_for, results):
    rows = []
    for number in range(runs):
        row = measure(lab, f"bench:{name}:{number}:{time.time():.0f}", action_for())
        log(f"{name} {number + 1}/{runs} {row['direction']}: Sentinel client outage "
            f"{row['sentinel_client_outage_s']} s, lost {row['acknowledged_writes_lost']}")
        rows.append(row)
    results[name] = dict(runs=rows, summary=summarise(rows))
    return results[name]


def machine(lab) -> dict:
    import platform
    from importlib.metadata import version

    from lab import redis as lab_redis

    master = nodes(lab)[0]
    info = dict(nproc=__import__("os").cpu_count(), python=platform.python_version(),
                ansible_core=version("ansible-core"), redis_py=version("redis"))
    try:
        info["redis"] = lab_redis.client(master.host, master.port).info("server")["redis_version"]
    except Exception:  # noqa: BLE001 - informative only
        info["redis"] = None
    return info


def run(args, work: Path) -> dict:
    from lab import inventory as lab_inventory
    from lab.topology import make_lab

    lab = make_lab()
    started_at = now_iso()
    results: dict = {}
    try:
        log(f"fresh Redis bench lab ({BENCH_LAB_REGIONS})")
        lab.down()
        lab.up(["redis_sentinel"])
        inventory = lab_inventory.write(lab, work / "inventory")
        ansible = Ansible(inventory, work)
        report_dir = work / "reports"
        report_dir.mkdir()
        info = dict(machine(lab), loadavg_1_5_15_at_start=loadavg())
        section(lab, "playbook_remonitor", args.redis_runs,
                lambda: playbook_action(ansible, report_dir, "remonitor"), results)
        if args.redis_method_runs:
            section(lab, "playbook_sentinel_failover", args.redis_method_runs,
                    lambda: playbook_action(ansible, report_dir, "failover"), results)
        if args.redis_alone_runs:
            section(lab, "sentinel_failover_alone", args.redis_alone_runs,
                    lambda: sentinel_alone_action(lab), results)
        info["loadavg_1_5_15_at_end"] = loadavg()
    finally:
        log("stopping the Redis bench lab")
        lab.down()
    main_summary = results["playbook_remonitor"]["summary"]
    median = (main_summary["sentinel_client_outage_s"] or {}).get("median")
    from lab import sentinel as lab_sentinel

    return {
        "benchmark": "redis planned failover",
        "timestamp": started_at,
        "status": "complete",
        "lab": {"regions": BENCH_LAB_REGIONS, "redis": "master us-east, replica us-west",
                "sentinels": "us-east, us-west, witness; quorum %d; down-after-milliseconds %d"
                             % (lab_sentinel.QUORUM, lab_sentinel.DOWN_AFTER_MS)},
        "clients": {
            "pinned": "redis-py Redis(host=<master at the start>), retries off, timeouts 0.5 s, "
                      "SADD of a sequence number, 1 ms pause",
            "sentinel": "redis-py Sentinel(...).master_for(name), retries off, timeouts 0.5 s, "
                        "SADD of a sequence number, 1 ms pause",
            "outage": "the Sentinel-aware client's longest time without a surviving acknowledged "
                      "write overlapping the run (acknowledged writes that were lost do not "
                      "count; the pinned client never writes again after a correct failover: "
                      "its failed attempts are counted instead)",
            "lost": "acknowledged sequence numbers missing on the master after the run",
        },
        "methods": {
            "playbook_remonitor": "ansible-playbook playbooks/redis_failover.yml -l <replica's "
                                  "region>; module: CLIENT PAUSE WRITE -> replica offset -> "
                                  "FAILOVER TO ... FORCE -> SENTINEL REMOVE/MONITOR/SET on "
                                  "every Sentinel",
            "playbook_sentinel_failover": "the same with -e redis_failover_sentinel_method="
                                          "failover (SENTINEL FAILOVER after the hand-over)",
            "sentinel_failover_alone": "SENTINEL FAILOVER on one Sentinel (the runbooks' "
                                       "command), then wait until Sentinel has converted the "
                                       "old master",
        },
        "results": results,
        "targets": {
            "sentinel_client_outage_median_below_s": TARGET_WINDOW_S,
            "sentinel_client_outage_median_s": median,
            "outage_met": median is not None and median < TARGET_WINDOW_S,
            "acknowledged_writes_lost": main_summary["acknowledged_writes_lost_total"],
            "lost_met": main_summary["acknowledged_writes_lost_total"] == 0,
        },
        "reference_from_field_notes": REFERENCE,
        "machine": info,
    }


def print_table(result: dict) -> None:
    print("\nRedis planned failover (seconds; lost = acknowledged writes missing afterwards)")
    print(f"  {'':<30} {'median':>8} {'min':>8} {'max':>8}  lost pinned / sentinel client")
    for name, data in result["results"].items():
        s = data["summary"]
        outage = s["sentinel_client_outage_s"] or {}
        print(f"  {name:<30} {outage.get('median', '-'):>8} {outage.get('min', '-'):>8} "
              f"{outage.get('max', '-'):>8}  {s['pinned_client_lost_per_run']} / "
              f"{s['sentinel_client_lost_per_run']}")
        module = s["module_write_unavailable_s"]
        if module:
            print(f"  {'  module write_unavailable':<30} {module['median']:>8} {module['min']:>8} "
                  f"{module['max']:>8}")
    t = result["targets"]
    print(f"  target: Sentinel client outage median < {t['sentinel_client_outage_median_below_s']} s "
          f"{'MET' if t['outage_met'] else 'NOT MET'}, 0 lost {'MET' if t['lost_met'] else 'NOT MET'}")


def add_arguments(parser) -> None:
    parser.add_argument("--redis-runs", type=int, default=5,
                        help="planned failovers by playbook (default sentinel_method)")
    parser.add_argument("--redis-method-runs", type=int, default=3,
                        help="planned failovers by playbook with sentinel_method=failover")
    parser.add_argument("--redis-alone-runs", type=int, default=3,
                        help="SENTINEL FAILOVER alone")


def main(argv=None, args=None) -> int:
    if args is None:
        parser = argparse.ArgumentParser(prog="python -m bench.redis", description=__doc__)
        add_arguments(parser)
        parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
        parser.add_argument("--keep-logs", action="store_true")
        args = parser.parse_args(argv)
    configure_env()
    work = Path(tempfile.mkdtemp(prefix="failsafe-bench-redis-"))
    started = time.monotonic()
    try:
        result = run(args, work)
    except Exception:  # noqa: BLE001 - report, keep the logs
        traceback.print_exc()
        log(f"Redis benchmark failed; logs kept in {work}")
        return 1
    write_json(args.results_dir / "redis_failover.json", result)
    print_table(result)
    print(f"\ntotal Redis bench time {time.monotonic() - started:.0f} s")
    if getattr(args, "keep_logs", False):
        print(f"logs and reports kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
