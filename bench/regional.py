"""Planned regional failover by ansible-playbook, alternating directions, under live clients.

Per run: the PostgreSQL writer's longest time without an acknowledged commit (it follows the
primary with target_session_attrs=read-write), the Sentinel-aware Redis client's longest time
without a surviving acknowledged write, acknowledged writes lost by every client (one Redis
client stays connected to the old master), the application's downtime as the run report records
it (writers stopped to writers started; null when the lab has no application writers), and the
whole playbook. Then, in the same run, SENTINEL FAILOVER alone with the same Redis clients.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.common import (
    BENCH_LAB_REGIONS,
    Ansible,
    log,
    loadavg,
    now_iso,
    r4,
    summary,
)

PLAYBOOK = "playbooks/regional_failover.yml"
KINDS = ["postgresql", "postgresql_witness", "redis", "redis_sentinel", "bind", "route53_emulator",
         "app"]
TARGETS = {"postgresql_outage_median_below_s": 0.5, "redis_outage_median_below_s": 0.5,
           "application_downtime_median_below_s": 10.0, "playbook_median_below_s": 30.0}


def one_run(lab, ansible, report_dir: Path, limit: str, number: int) -> dict:
    from lab import redis as lab_redis
    from lab.redis_writer import RedisWriter, running
    from lab.writer import Writer

    from bench.redis import wait_settled

    master, _replica = wait_settled(lab)
    run_id = f"bench-regional-{number}-{time.time():.0f}"
    pg = Writer.for_lab(lab, run_id=run_id)
    redis_clients = RedisWriter.pair_for_lab(lab, run_id, pinned_to=master)
    with pg.running(linger=0.5), running(redis_clients, linger=0.5):
        time.sleep(0.5)
        run = ansible.playbook(PLAYBOOK, limit=limit, report_dir=report_dir,
                               extra={"failsafe_report_dir": str(report_dir)})
        ended = time.monotonic()
        while time.monotonic() < ended + 30 and not redis_clients[1].acked_since(ended):
            time.sleep(0.02)
    new_master, _replica = wait_settled(lab)
    conn = lab_redis.client(new_master.host, new_master.port)
    pinned, follower = (w.verify(conn) for w in redis_clients)
    conn.close()
    pg_verdict = pg.verify()
    reports = [r for r in run.reports if r.get("schema") and r["run"].get("playbook")]
    record = (reports[-1]["stats"].get("failsafe_run") or {}) if reports else {}
    stores = record.get("stores") or {}
    return dict(
        direction=f"-> {limit}",
        playbook_wall_s=r4(run.wall),
        postgresql_client_outage_s=r4(pg.max_gap(run.started, run.ended)),
        postgresql_module_write_unavailable_s=(stores.get("postgresql") or {}).get(
            "write_outage_seconds"),
        postgresql_lost=pg_verdict.lost,
        postgresql_acknowledged=pg_verdict.acknowledged,
        redis_client_outage_s=r4(redis_clients[1].max_gap(run.started, run.ended + 0.5,
                                                          exclude=follower.missing)),
        redis_module_write_unavailable_s=(stores.get("redis") or {}).get("write_outage_seconds"),
        redis_lost=pinned.lost + follower.lost,
        application_downtime_s=record.get("application_downtime_seconds"),
        phases={p["name"]: p["duration_seconds"] for p in (reports[-1]["phases"] if reports else [])
                if p["name"] in ("preflight", "lock", "change", "dns", "verify", "rejoin")},
    )


def run(args, work: Path) -> dict:
    from lab import inventory as lab_inventory
    from lab.topology import make_lab

    from bench import redis as redis_bench

    lab = make_lab()
    started_at = now_iso()
    rows: list = []
    alone: list = []
    try:
        log(f"fresh regional bench lab ({BENCH_LAB_REGIONS}): {', '.join(KINDS)}")
        lab.down()
        lab.up(KINDS)
        inventory = lab_inventory.write(lab, work / "inventory")
        ansible = Ansible(inventory, work)
        report_dir = work / "reports"
        report_dir.mkdir()
        info = dict(loadavg_1_5_15_at_start=loadavg())
        for number in range(args.regional_runs):
            limit = "us-west" if number % 2 == 0 else "us-east"
            row = one_run(lab, ansible, report_dir, limit, number)
            log(f"regional {number + 1}/{args.regional_runs} {row['direction']}: playbook "
                f"{row['playbook_wall_s']} s, PostgreSQL client outage "
                f"{row['postgresql_client_outage_s']} s, Redis {row['redis_client_outage_s']} s, "
                f"lost {row['postgresql_lost']} + {row['redis_lost']}")
            rows.append(row)
        for number in range(args.regional_alone_runs):
            row = redis_bench.measure(lab, f"bench:regional-alone:{number}:{time.time():.0f}",
                                      redis_bench.sentinel_alone_action(lab))
            log(f"SENTINEL FAILOVER alone {number + 1}: outage {row['sentinel_client_outage_s']}"
                f" s, lost {row['acknowledged_writes_lost']}")
            alone.append(row)
        info["loadavg_1_5_15_at_end"] = loadavg()
    finally:
        log("stopping the regional bench lab")
        lab.down()
    figures = dict(
        runs=len(rows),
        postgresql_client_outage_s=summary(r["postgresql_client_outage_s"] for r in rows),
        redis_client_outage_s=summary(r["redis_client_outage_s"] for r in rows),
        application_downtime_s=summary(r["application_downtime_s"] for r in rows),
        playbook_wall_s=summary(r["playbook_wall_s"] for r in rows),
        acknowledged_lost_total=sum(r["postgresql_lost"] + r["redis_lost"] for r in rows),
    )

    def met(key, target):
        value = (figures[key] or {}).get("median")
        return None if value is None else value < target

    return {
        "benchmark": "planned regional failover",
        "timestamp": started_at,
        "status": "complete",
        "playbook": f"ansible-playbook {PLAYBOOK} -l <other region>, alternating",
        "clients": {
            "postgresql": "lab.writer: one row per transaction, target_session_attrs=read-write",
            "redis": "lab.redis_writer: one client pinned to the master at the start, one asking "
                     "Sentinel; SADD of a sequence number, 1 ms pause",
        },
        "results": {"runs": rows, "summary": figures,
                    "sentinel_failover_alone": dict(runs=alone,
                                                    summary=redis_bench.summarise(alone))},
        "targets": dict(
            TARGETS,
            postgresql_outage_met=met("postgresql_client_outage_s",
                                      TARGETS["postgresql_outage_median_below_s"]),
            redis_outage_met=met("redis_client_outage_s", TARGETS["redis_outage_median_below_s"]),
            application_downtime_met=met("application_downtime_s",
                                         TARGETS["application_downtime_median_below_s"]),
            playbook_met=met("playbook_wall_s", TARGETS["playbook_median_below_s"]),
            lost_met=figures["acknowledged_lost_total"] == 0,
        ),
        "machine": info,
    }


def add_arguments(parser) -> None:
    parser.add_argument("--regional-runs", type=int, default=5,
                        help="planned regional failovers, alternating directions")
    parser.add_argument("--regional-alone-runs", type=int, default=2,
                        help="SENTINEL FAILOVER alone with the same Redis clients")


def main(argv=None, args=None) -> int:
    import argparse
    import json
    import shutil
    import tempfile
    import traceback

    from bench.common import RESULTS_DIR, configure_env, write_json

    if args is None:
        parser = argparse.ArgumentParser(prog="python -m bench.regional", description=__doc__)
        add_arguments(parser)
        parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
        parser.add_argument("--keep-logs", action="store_true")
        args = parser.parse_args(argv)
    configure_env()
    work = Path(tempfile.mkdtemp(prefix="failsafe-bench-regional-"))
    try:
        result = run(args, work)
    except Exception:  # noqa: BLE001 - report, keep the logs
        traceback.print_exc()
        log(f"regional benchmark failed; logs kept in {work}")
        return 1
    write_json(args.results_dir / "regional_failover.json", result)
    print(json.dumps(dict(summary=result["results"]["summary"], targets=result["targets"]),
                     indent=2))
    if getattr(args, "keep_logs", False):
        print(f"logs and reports kept in {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
