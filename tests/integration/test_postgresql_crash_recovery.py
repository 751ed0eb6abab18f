"""PostgreSQL crash/corruption recovery on the real lab (runbook 001): a B-tree index of a test
database really damaged on disk (one page zeroed, as a torn write leaves it), diagnosed by
amcheck, the writers (the lab's application under supervisord) stopped, an emergency dump taken
to the lab's S3 server, the database restored and validated, the writers started again.

State is verified independently: psycopg (amcheck, rows), boto3 (the catalog), supervisord.
"""

from __future__ import annotations

import psycopg
import pytest

try:
    from lab.topology import make_lab as _generic_lab  # noqa: F401 pylint: disable=unused-import
except ImportError:
    pytest.skip("needs the generic lab (lab.topology.make_lab)", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("lab_env")

PLAYBOOK = "playbooks/postgresql_crash_recovery.yml"


def stats(runner, name):
    for event in runner.events:
        if event.get("event") == "playbook_on_stats":
            return (event["event_data"].get("artifact_data") or {}).get(name)
    return None


def connect(db):
    return psycopg.connect(db.node.conninfo(dbname=db.name), autocommit=True)


def damage_index(db) -> str:
    """An index on orders.note with its first leaf page zeroed on disk."""
    with connect(db) as conn:
        conn.execute("CREATE INDEX orders_note_idx ON orders (note)")
        conn.execute("CHECKPOINT")
        path = conn.execute("SELECT pg_relation_filepath('orders_note_idx')").fetchone()[0]
    with open(db.node.data_dir / path, "r+b") as handle:
        handle.seek(8192)
        handle.write(bytes(8192))
    return "orders_note_idx"


def index_error(db, index):
    """amcheck's verdict, read here (installs amcheck if missing): None when sound."""
    with connect(db) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        try:
            conn.execute("SELECT bt_index_check(%s::regclass)", (index,))
        except psycopg.Error as exc:
            return str(exc)
    return None


def amcheck_installed(db) -> bool:
    with connect(db) as conn:
        return conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'amcheck'"
                            ).fetchone()[0] == 1


def test_crash_recovery_restores_a_damaged_index(run_playbook, s3_store, backup_db, app_pair,
                                                 tmp_path):
    index = damage_index(backup_db)
    ev = dict(failsafe_s3_prefix=s3_store.prefix, failsafe_report_dir=str(tmp_path / "reports"),
              postgresql_crash_recovery_database=backup_db.name,
              postgresql_crash_recovery_tables=["customers", "orders"],
              postgresql_crash_recovery_wait_timeout=5)

    def run(check=False, **more):
        runner = run_playbook(PLAYBOOK, extravars=dict(ev, **more), check=check, diff=check)
        return runner, stats(runner, "failsafe_crash_recovery")

    # check mode: amcheck is not installed, so nothing is verified; nothing changes
    runner, report = run(check=True)
    assert runner.status == "successful", runner.stdout_text[-3000:]
    assert not amcheck_installed(backup_db) and s3_store.keys() == []
    assert app_pair.program_state(app_pair.east) == "RUNNING"
    # a restore asked for, but the catalog holds no backup from before: refused, nothing changed
    refused = run_playbook(PLAYBOOK, extravars=dict(
        ev, postgresql_crash_recovery_restore="always", postgresql_crash_recovery_confirm=True,
        postgresql_crash_recovery_backup_id="previous"))
    assert refused.status == "failed"
    assert "holds no successful backup of it. Nothing was changed" in refused.stdout_text
    assert not amcheck_installed(backup_db) and s3_store.keys() == []
    # real, not confirmed: amcheck installed and finds the damage; the restore is refused
    # before the writers stop or anything is dumped
    runner, report = run()
    assert runner.status == "failed"
    assert "Restore not confirmed. Nothing was changed except installing amcheck" \
        in runner.stdout_text, runner.stdout_text[-3000:]
    assert amcheck_installed(backup_db) and s3_store.keys() == []
    assert app_pair.program_state(app_pair.east) == "RUNNING"
    assert "unexpected zero page" in index_error(backup_db, index)
    # real, confirmed: writers stopped, emergency dump, restore of that dump (only an index
    # was damaged, every row verified), validation, writers started again
    counts = {"public.customers": backup_db.count("customers"),
              "public.orders": backup_db.count("orders")}
    runner, report = run(postgresql_crash_recovery_confirm=True)
    assert runner.status == "successful", runner.stdout_text[-3000:]
    assert report["diagnosis"]["corruption_found"]
    assert [f["relation"] for f in report["diagnosis"]["failures"]] == [index]
    assert report["writers"]["stopped_and_started"]
    dump = report["emergency_dump"]
    assert dump and report["restored"] and report["restored_backup"] == dump
    assert [k for k in s3_store.keys("postgresql") if dump in k]
    assert {i["item"]: i["ok"] for i in report["checklist"]} == {
        "Connection successful": True, "Record counts match expectations": True,
        "Recent data visible": True, "Indexes functional": True,
        "Replication working (if applicable)": True, "Performance normal": True}
    # independently: the index is sound again, every row is there, the writer writes
    assert index_error(backup_db, index) is None
    assert {"public.customers": backup_db.count("customers"),
            "public.orders": backup_db.count("orders")} == counts
    assert app_pair.program_state(app_pair.east) == "RUNNING"
    assert list((tmp_path / "reports").glob("postgresql_crash_recovery-*.json"))
    # again: nothing damaged, so a dump and the validation, no restore
    runner, report = run(postgresql_crash_recovery_confirm=True,
                         postgresql_crash_recovery_stop_writers=False)
    assert runner.status == "successful", runner.stdout_text[-3000:]
    assert not report["diagnosis"]["corruption_found"] and not report["restored"]
    assert report["emergency_dump"] and report["emergency_dump"] != dump
    assert all(i["ok"] for i in report["checklist"])
