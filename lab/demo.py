"""make demo: a planned regional failover us-east -> us-west and the failback, under live clients.

lab up (PostgreSQL, Redis with three Sentinels, BIND and the Route 53 emulator, the run-lock
witness) -> clients write to PostgreSQL and Redis all along (one follows the primary, one stays
connected to the old Redis master) -> playbooks/regional_failover.yml -l us-west ->
playbooks/failback.yml -l us-east -> per store: write outage and acknowledged writes lost, the
run reports (JSON and HTML) -> lab down. The reports stay in /var/tmp/failsafe-demo-reports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from lab import app_journal
from lab import redis as lab_redis
from lab.__main__ import print_table
from lab.core import REPO_ROOT
from lab.redis_writer import RedisWriter, running
from lab.topology import make_lab
from lab.writer import Writer

REPORT_DIR = Path(os.environ.get("FAILSAFE_DEMO_REPORT_DIR", "/var/tmp/failsafe-demo-reports"))
KINDS = ["postgresql", "postgresql_witness", "redis", "redis_sentinel", "bind", "route53_emulator",
         "app"]


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 70 - len(text)), flush=True)


def run_playbook(playbook: str, limit: str) -> tuple[dict, float]:
    """Runs it as an operator would; returns its run report (JSON) and its duration."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
               FAILSAFE_REPORT_DIR=str(REPORT_DIR))
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), playbook, "-l", limit,
            "-e", "failsafe_rto_seconds=300"]
    print("$ " + " ".join(argv[1:]), flush=True)
    before = set(REPORT_DIR.glob("run-*.json"))
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, check=False)
    elapsed = time.monotonic() - started
    new = sorted(set(REPORT_DIR.glob("run-*.json")) - before)
    if proc.returncode != 0:
        where = f" (report: {new[-1].with_suffix('.html')})" if new else ""
        raise SystemExit(f"{playbook} failed (exit {proc.returncode}){where}")
    return json.loads(new[-1].read_text()), elapsed


def summary_lines(label: str, report: dict, elapsed: float) -> list[str]:
    summary = report["summary"]
    lines = [f"{label}: {summary['status']} in {elapsed:.1f} s (RTO target "
             f"{summary.get('rto_target_seconds')} s: "
             f"{'met' if summary.get('rto_met') else 'missed'}), application downtime "
             f"{summary.get('application_downtime_seconds')} s"]
    for store, figures in sorted(summary["stores"].items()):
        outage = (figures or {}).get("write_outage_seconds")
        lines.append(f"  {store:<11} write outage {outage if outage is not None else '-'} s, "
                     f"data lost {(figures or {}).get('data_loss')}")
    return lines


def main() -> int:
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    lab = make_lab()
    results = []
    try:
        banner("Starting a fresh lab: two regions of PostgreSQL, Redis, Sentinel, DNS")
        lab.down()
        lab.up(KINDS)
        print_table(lab.status())
        run_id = f"demo-{int(time.time())}"
        pg = Writer.for_lab(lab, run_id=run_id)
        redis_master = next(c for c in lab.of_kind("redis") if c.upstream is None)
        redis_clients = RedisWriter.pair_for_lab(lab, run_id, pinned_to=redis_master)
        banner("Clients write to PostgreSQL and Redis all along")
        with pg.running(linger=0.5), running(redis_clients, linger=1.0):
            time.sleep(1.0)
            for playbook, limit, label in (
                    ("playbooks/regional_failover.yml", "us-west", "regional failover to us-west"),
                    ("playbooks/failback.yml", "us-east", "failback to us-east")):
                banner(label)
                report, elapsed = run_playbook(playbook, limit)
                results.append((label, report, elapsed))
                print_table(lab.status())
                time.sleep(1.0)
        pg_verdict = pg.verify()
        app_losses = app_journal.check_lab(lab)
        # After the failback the master is us-east's again.
        redis_verdicts = [w.verify(lab_redis.client(redis_master.host, redis_master.port))
                          for w in redis_clients]

        banner("Result")
        for label, report, elapsed in results:
            print("\n".join(summary_lines(label, report, elapsed)))
        print(f"\nPostgreSQL client: {pg_verdict.acknowledged} rows acknowledged, "
              f"{pg_verdict.lost} lost")
        for verdict in redis_verdicts:
            print(f"Redis client {verdict.name}: {verdict.acknowledged} writes acknowledged, "
                  f"{verdict.lost} lost")
        for store, item in sorted(app_losses.items()):
            print(f"Application writers -> {store} (through DNS, under supervisord): "
                  f"{item.acknowledged} writes acknowledged, {item.lost} lost")
        print(f"\nRun reports (open the .html in a browser): {REPORT_DIR}")
        for path in sorted(REPORT_DIR.glob("run-*.html"))[-2:]:
            print(f"  {path}")
        lost = pg_verdict.lost + sum(v.lost for v in redis_verdicts) \
            + sum(item.lost for item in app_losses.values())
        return 0 if lost == 0 else 1
    finally:
        banner("Stopping the lab")
        lab.down()
        print("lab stopped")


if __name__ == "__main__":
    sys.exit(main())
