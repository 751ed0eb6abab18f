"""Recovering deleted rows on the real lab (runbook 003 "Recover deleted data"): the
postgresql_copy_rows module between two real databases, and the playbook that restores a real
backup from the lab's S3 server into a temporary database and copies the missing rows back.

State is verified with psycopg, independently of the modules under test.
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

try:
    from lab.topology import make_lab as _generic_lab  # noqa: F401 pylint: disable=unused-import
except ImportError:
    pytest.skip("needs the generic lab (lab.topology.make_lab)", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("lab_env")


def execute(db, statement, dbname=None):
    with psycopg.connect(db.node.conninfo(dbname=dbname or db.name), autocommit=True) as conn:
        conn.execute(statement)


def rows(db, query, dbname=None):
    with psycopg.connect(db.node.conninfo(dbname=dbname or db.name)) as conn:
        return conn.execute(query).fetchall()


def snapshot(db, dbname=None):
    """Every row of both tables, as the live database holds them."""
    return (rows(db, "SELECT id, name FROM customers ORDER BY id", dbname),
            rows(db, "SELECT id, customer_id, amount, note FROM orders ORDER BY id", dbname))


def the_accident(db):
    """Delete customers 41-50 with their orders and some other orders; update others."""
    execute(db, "DELETE FROM orders WHERE customer_id > 40 OR id BETWEEN 100 AND 109")
    execute(db, "DELETE FROM customers WHERE id > 40")
    execute(db, "UPDATE orders SET amount = -1, note = 'changed after the backup' "
                "WHERE id BETWEEN 1 AND 5")
    execute(db, "UPDATE customers SET name = 'renamed' WHERE id = 1")
    execute(db, "INSERT INTO customers VALUES (60, 'new after the backup')")


def expected_after_recovery(before, now):
    """The backup's rows, except that rows still (or newly) live keep their live values."""
    merged = []
    for old, new in zip(before, now):
        live = dict((r[0], r) for r in new)
        merged.append(sorted(list(live.values()) + [r for r in old if r[0] not in live]))
    return tuple(merged)


def copy_args(db, source_db, **extra):
    args = dict(source=db.node.peer(db=source_db), target=db.peer(),
                tables=["orders", "public.customers"])
    args.update(extra)
    return args


def test_copy_rows_four_steps_keeps_newer_rows(run_module, backup_db):
    copy = backup_db.name + "_copy"
    execute(backup_db, sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(copy), sql.Identifier(backup_db.name)), dbname="postgres")
    before = snapshot(backup_db)
    the_accident(backup_db)
    damaged = snapshot(backup_db)
    expected = expected_after_recovery(before, damaged)
    args = copy_args(backup_db, copy, sample_size=3)
    # 1. check mode: the missing rows counted and sampled, nothing inserted
    checked = run_module("postgresql_copy_rows", args, check=True, diff=True)
    assert not checked.failed, checked.msg
    assert checked.changed and checked["copied"] == 0
    assert checked["order"] == ["public.customers", "public.orders"]  # referenced table first
    by_table = dict((t["table"], t) for t in checked["tables"])
    assert by_table["public.customers"]["missing"] == 10
    assert by_table["public.orders"]["missing"] == len(before[1]) - len(damaged[1]) == 50
    assert by_table["public.customers"]["sample_missing_keys"] == ["41", "42", "43"]
    assert checked["diff"]["before"]["public.orders"] == {"missing": 50}
    assert snapshot(backup_db) == damaged
    # 2. real
    done = run_module("postgresql_copy_rows", args)
    assert not done.failed, done.msg
    assert done.changed and done["copied"] == done["missing"] == 60
    assert snapshot(backup_db) == expected
    assert rows(backup_db, "SELECT amount, note FROM orders WHERE id = 1") == [
        (-1, "changed after the backup")]
    assert rows(backup_db, "SELECT name FROM customers WHERE id = 1") == [("renamed",)]
    # 3. check mode again, 4. real again: nothing missing, nothing copied
    again = run_module("postgresql_copy_rows", args, check=True)
    assert not again.changed and again["missing"] == 0
    last = run_module("postgresql_copy_rows", args)
    assert not last.changed and last["copied"] == 0
    assert snapshot(backup_db) == expected


def test_copy_rows_refuses_and_rolls_back(run_module, backup_db):
    copy = backup_db.name + "_copy"
    execute(backup_db, "CREATE TABLE audit (at timestamptz, what text)")
    execute(backup_db, "INSERT INTO audit VALUES (now(), 'x')")
    execute(backup_db, sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(copy), sql.Identifier(backup_db.name)), dbname="postgres")
    execute(backup_db, "DELETE FROM orders WHERE customer_id = 7")
    execute(backup_db, "DELETE FROM customers WHERE id = 7")
    damaged = snapshot(backup_db)
    # a table without a primary key: refused before any row is read
    refused = run_module("postgresql_copy_rows", copy_args(
        backup_db, copy, tables=["customers", "audit", "no_such_table"]))
    assert refused.failed
    assert "public.audit has no primary key" in refused.msg
    assert "public.no_such_table does not exist in the target database" in refused.msg
    assert "Nothing was copied" in refused.msg
    # the same database as source and target (outside check mode)
    same = run_module("postgresql_copy_rows", copy_args(backup_db, backup_db.name))
    assert same.failed and "the same database" in same.msg
    # a failure half-way rolls everything back: customer 7's name is taken by a new customer,
    # so customer 7 is skipped (another unique value exists) and its orders break the reference
    execute(backup_db, "ALTER TABLE customers ADD CONSTRAINT customers_name_key UNIQUE (name)")
    execute(backup_db, "INSERT INTO customers VALUES (70, 'customer 7')")
    damaged = snapshot(backup_db)
    failed = run_module("postgresql_copy_rows", copy_args(backup_db, copy))
    assert failed.failed
    assert "violates foreign key constraint" in failed.msg and "rolled back" in failed.msg
    assert failed["copied"] == 0
    assert snapshot(backup_db) == damaged


# The playbook ----------------------------------------------------------------------------------

def stats(runner, name):
    for event in runner.events:
        if event.get("event") == "playbook_on_stats":
            return (event["event_data"].get("artifact_data") or {}).get(name)
    return None


def test_recover_deleted_rows_playbook(run_module, run_playbook, s3_store, backup_db, tmp_path):
    backed_up = run_module("backup_postgresql", dict(
        source=backup_db.peer(), store=s3_store.store, source_region="us-east",
        source_name="pg-us-east"))
    assert not backed_up.failed, backed_up.msg
    before = snapshot(backup_db)
    the_accident(backup_db)
    damaged = snapshot(backup_db)
    expected = expected_after_recovery(before, damaged)
    temp = backup_db.name + "__recover"
    ev = dict(failsafe_s3_prefix=s3_store.prefix, failsafe_report_dir=str(tmp_path / "reports"),
              postgresql_recover_rows_database=backup_db.name,
              postgresql_recover_rows_tables=["customers", "orders"])

    def run(check=False, **more):
        runner = run_playbook("playbooks/postgresql_recover_deleted_rows.yml",
                              extravars=dict(ev, **more), check=check, diff=check)
        return runner, stats(runner, "failsafe_recover_rows")

    # 1. check mode: the backup chosen; nothing restored, nothing copied
    runner, report = run(check=True)
    assert runner.status == "successful", runner.stdout_text[-3000:]
    assert report["backup"]["backup_id"] == backed_up["backup"]["backup_id"]
    assert report["copied"] == 0 and report["check_mode"]
    assert snapshot(backup_db) == damaged and not backup_db.exists(temp)
    # 2. real: the deleted rows are back, the updated and new rows keep their live values
    runner, report = run()
    assert runner.status == "successful", runner.stdout_text[-3000:]
    assert report["copied"] == report["missing"] == 60
    assert dict((t["table"], t["copied"]) for t in report["tables"]) == {
        "public.customers": 10, "public.orders": 50}
    assert snapshot(backup_db) == expected
    assert not backup_db.exists(temp) and not backup_db.exists(temp + "__restoring")
    assert list((tmp_path / "reports").glob("postgresql_recover_rows-*.json"))
    # 3. check mode again: nothing changes
    runner, report = run(check=True)
    assert runner.status == "successful", runner.stdout_text[-3000:]
    assert snapshot(backup_db) == expected and not backup_db.exists(temp)
    # 4. real again: nothing is missing any more
    runner, report = run()
    assert runner.status == "successful", runner.stdout_text[-3000:]
    assert report["copied"] == 0 and report["missing"] == 0
    assert snapshot(backup_db) == expected and not backup_db.exists(temp)


def test_recover_deleted_rows_refusals_change_nothing(run_playbook, run_module, s3_store,
                                                      backup_db):
    execute(backup_db, "CREATE TABLE audit (at timestamptz, what text)")
    ev = dict(failsafe_s3_prefix=s3_store.prefix, postgresql_recover_rows_database=backup_db.name,
              postgresql_recover_rows_tables=["customers"])
    temp = backup_db.name + "__recover"
    backed_up = run_module("backup_postgresql", dict(source=backup_db.peer(),
                                                     store=s3_store.store))
    assert not backed_up.failed, backed_up.msg
    # a table without a primary key
    nopk = run_playbook("playbooks/postgresql_recover_deleted_rows.yml", extravars=dict(
        ev, postgresql_recover_rows_tables=["customers", "audit"]))
    assert nopk.status == "failed"
    assert "public.audit has no primary key" in nopk.stdout_text
    assert not backup_db.exists(temp)
    # a temporary database name that is a real database
    execute(backup_db, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(temp)),
            dbname="postgres")
    taken = run_playbook("playbooks/postgresql_recover_deleted_rows.yml", extravars=ev)
    assert taken.status == "failed"
    assert "was not made by a restore" in taken.stdout_text, taken.stdout_text[-2500:]
    assert backup_db.exists(temp) and rows(backup_db, "SELECT count(*) FROM pg_class "
                                                      "WHERE relname = 'customers'", temp) == [(0,)]
