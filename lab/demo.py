"""make demo: a planned switchover us-east -> us-west and back, under a live writer.

lab up -> topology -> writer starts -> playbooks/postgresql_switchover.yml -l us-west (fence,
catch up, promote, rejoin) -> -l us-east (back) -> timings, write outage and rows lost -> lab down.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lab.__main__ import print_table
from lab.core import REPO_ROOT
from lab.topology import make_lab
from lab.writer import Writer


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 70 - len(text)), flush=True)


def run_switchover(limit: str, report_dir: Path) -> tuple[dict, float]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
               ANSIBLE_FORCE_COLOR="0")
    argv = [str(Path(sys.executable).parent / "ansible-playbook"),
            "playbooks/postgresql_switchover.yml", "-l", limit,
            "-e", f"postgresql_switchover_report_dir={report_dir}"]
    before = set(report_dir.glob("*.json"))
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"the switchover playbook failed (exit {proc.returncode})")
    new = sorted(set(report_dir.glob("*.json")) - before)
    return json.loads(new[-1].read_text()), elapsed


def main() -> int:
    lab = make_lab()
    results = []
    try:
        banner("Starting a fresh lab (real PostgreSQL on loopback, two regions)")
        lab.down()
        lab.up(["postgresql"])
        print_table(lab.status())
        writer = Writer.for_lab(lab, run_id=f"demo-{int(time.time())}")
        banner("A client writes one row per transaction, all along")
        with writer.running(linger=0.5), \
                tempfile.TemporaryDirectory(prefix="failsafe-demo-") as tmp:
            print(f"writer connected with target_session_attrs=read-write; "
                  f"{len(writer.acked)} rows so far")
            for limit, label in (("us-west", "us-east -> us-west"), ("us-east", "us-west -> us-east")):
                time.sleep(1.0)
                banner(f"Planned switchover {label}: ansible-playbook playbooks/postgresql_switchover.yml -l {limit}")
                t0 = time.monotonic()
                report, elapsed = run_switchover(limit, Path(tmp))
                t1 = time.monotonic()
                time.sleep(0.5)
                results.append((label, report, elapsed, writer.max_gap(t0, t1)))
                print_table(lab.status())
        verdict = writer.verify()

        banner("Result")
        print(f"{'switchover':<20} {'module write outage':>20} {'writer saw':>11} {'playbook':>9} {'terminated':>10}")
        for label, report, elapsed, gap in results:
            outage = report["timings"].get("write_unavailable")
            outage_text = f"{outage:.3f} s" if outage is not None else "no change"
            print(f"{label:<20} {outage_text:>20} {gap:>9.3f} s {elapsed:>7.1f} s "
                  f"{report['terminated_sessions']:>10}")
        print(f"\nrows acknowledged: {verdict.acknowledged}, failed attempts while switching: "
              f"{verdict.failed_attempts}, acknowledged rows lost: {verdict.lost}")
        return 0 if verdict.lost == 0 else 1
    finally:
        banner("Stopping the lab")
        lab.down()
        print("lab stopped")


if __name__ == "__main__":
    sys.exit(main())
