"""make demo, second part: backup -> delete and damage data -> restore -> validate, with timings.

lab up (PostgreSQL pair, the lock witness, SeaweedFS) -> a database `shop` with customers and orders ->
playbooks/backup.yml -> DELETE most orders, NULL some customer names -> playbooks/restore.yml
(latest, replacing `shop` once the restore into a staging database succeeded) -> integrity checks
against the counts recorded at backup time -> playbooks/backup_verify.yml -> lab down.
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

DATABASE = "shop"


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 70 - len(text)), flush=True)


def playbook(name: str, report_dir: Path, *extra: str) -> tuple[dict, float]:
    """Run a playbook; returns (its run report, seconds)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    argv = [str(Path(sys.executable).parent / "ansible-playbook"), f"playbooks/{name}.yml",
            "-e", f"failsafe_report_dir={report_dir}", "-e",
            f"failsafe_lock_path={report_dir / 'locks'}", *extra]
    before = set(report_dir.glob(f"{name}-*.json"))
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit(f"playbooks/{name}.yml failed (exit {proc.returncode})")
    new = sorted(set(report_dir.glob(f"{name}-*.json")) - before)
    return (json.loads(new[-1].read_text()) if new else {}), elapsed


def counts(conn) -> dict:
    return {"customers": conn.execute("SELECT count(*) FROM customers").fetchone()[0],
            "orders": conn.execute("SELECT count(*) FROM orders").fetchone()[0],
            "customers without a name": conn.execute(
                "SELECT count(*) FROM customers WHERE name IS NULL").fetchone()[0]}


def main() -> int:
    import psycopg

    lab = make_lab()
    rows = []
    try:
        banner("Starting a fresh lab: PostgreSQL pair and an S3 server (SeaweedFS)")
        lab.down()
        lab.up(["postgresql", "postgresql_witness", "seaweedfs"])  # the witness keeps the run lock
        print_table(lab.status())
        primary = lab.component("postgresql-us-east")
        with psycopg.connect(primary.conninfo(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        shop = primary.conninfo(dbname=DATABASE)
        with psycopg.connect(shop, autocommit=True) as conn:
            conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
            conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, customer_id int REFERENCES "
                         "customers(id), amount numeric NOT NULL)")
            conn.execute("INSERT INTO customers SELECT i, 'customer ' || i "
                         "FROM generate_series(1, 1000) i")
            conn.execute("INSERT INTO orders (customer_id, amount) SELECT 1 + i % 1000, i "
                         "FROM generate_series(1, 200000) i")
            original = counts(conn)
        print(f"database {DATABASE}: {original}")
        with tempfile.TemporaryDirectory(prefix="failsafe-demo-backup-") as tmp:
            reports = Path(tmp)
            common = ("-e", json.dumps({"backup_postgresql_databases": [DATABASE]}))
            banner("Backup: ansible-playbook playbooks/backup.yml")
            _report, seconds = playbook("backup", reports, *common)
            rows.append(("backup (dump | zstd | S3, SHA-256)", seconds))

            banner("Accident: most orders deleted, customer names overwritten with NULL")
            with psycopg.connect(shop, autocommit=True) as conn:
                conn.execute("DELETE FROM orders WHERE id % 10 <> 0")
                conn.execute("UPDATE customers SET name = NULL WHERE id <= 300")
                print(f"database {DATABASE}: {counts(conn)}")

            banner("Restore: ansible-playbook playbooks/restore.yml (latest, replace)")
            _report, seconds = playbook(
                "restore", reports, *common, "-e", "restore_confirm=true",
                "-e", "restore_postgresql_existing=replace",
                "-e", json.dumps({"restore_postgresql_source_database": DATABASE,
                                  "restore_expected_tables": ["public.customers",
                                                              "public.orders"],
                                  "restore_critical_columns": ["public.customers.name"],
                                  "restore_orphan_checks": [{
                                      "child": "public.orders.customer_id",
                                      "parent": "public.customers.id"}]}))
            rows.append(("restore (verify, pg_restore -j 2, swap, validate)", seconds))
            with psycopg.connect(shop, autocommit=True) as conn:
                restored = counts(conn)
            print(f"database {DATABASE}: {restored}")

            banner("The daily check: ansible-playbook playbooks/backup_verify.yml")
            _report, seconds = playbook("backup_verify", reports)
            rows.append(("verification (freshness, SHA-256, size)", seconds))

        banner("Result")
        for label, seconds in rows:
            print(f"{label:<55} {seconds:>6.1f} s (whole playbook)")
        same = restored == original
        print(f"\nbefore the accident {original}\nafter the restore   {restored}\n"
              f"{'all rows back' if same else 'MISMATCH'}")
        return 0 if same else 1
    finally:
        banner("Stopping the lab")
        lab.down()
        print("lab stopped")


if __name__ == "__main__":
    sys.exit(main())
