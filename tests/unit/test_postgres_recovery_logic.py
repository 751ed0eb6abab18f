# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pure decisions of the crash recovery and the row copy: log markers, the verdict, table
names, reference order, and why a table cannot be copied."""

from __future__ import annotations

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils import _postgres_integrity as integrity
from ansible_collections.failsafe.datastores.plugins.module_utils import _postgres_rows as rows
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    PostgresError,
)

LOG = """\
2025-01-30 11:58:00.100 UTC [10] us-east app=x user=y LOG:  checkpoint complete
2025-01-30 11:58:01.200 UTC [11] us-east app=x user=y FATAL:  password authentication failed for user "bob"
2025-01-30 11:58:02.300 UTC [12] us-east app=x user=y ERROR:  index "orders_note_idx" contains unexpected zero page at block 1
2025-01-30 11:58:03.400 UTC [13] us-east app=x user=y LOG:  server process (PID 99) was terminated by signal 9: Killed
2025-01-30 11:58:04.500 UTC [14] us-east app=x user=y LOG:  database system was not properly shut down; automatic recovery in progress
2025-01-30 11:58:05.600 UTC [15] us-east app=x user=y ERROR:  invalid page in block 7 of relation base/16384/16400
WARNING:  a line without a time that says corrupted
"""


def test_scan_log_finds_corruption_and_crash_lines_but_not_refused_logins():
    found = integrity.scan_log(LOG)
    kinds = [(f["kind"], f["time"]) for f in found]
    assert kinds == [("corruption", None),
                     ("corruption", "2025-01-30 11:58:02.300 UTC"),
                     ("crash", "2025-01-30 11:58:03.400 UTC"),
                     ("crash", "2025-01-30 11:58:04.500 UTC"),
                     ("corruption", "2025-01-30 11:58:05.600 UTC")]
    assert not any("password authentication" in f["line"] for f in found)


def test_scan_log_keeps_the_newest_lines_of_each_kind():
    text = "\n".join("2025-01-30 12:00:%02d UTC ERROR:  invalid page in block %d" % (n, n)
                     for n in range(10))
    found = integrity.scan_log(text, limit=3)
    assert [f["line"][-1] for f in found] == ["7", "8", "9"]


def test_only_data_damage_sqlstates_are_corruption():
    assert integrity.is_corruption("XX002") and integrity.is_corruption("XX001")
    assert not integrity.is_corruption("55P03")  # lock_not_available: the check did not run
    assert not integrity.is_corruption(None)


def test_verdict_follows_amcheck_when_it_ran_and_the_log_otherwise():
    log = integrity.scan_log(LOG)
    checked = dict(indexes=3, tables=2)
    failure = dict(kind="index", relation="orders_note_idx", error="zero page")
    corruption, crash, findings = integrity.verdict(checked, [failure], [], log, True)
    assert corruption and crash
    assert findings[0] == "index orders_note_idx is damaged: zero page"
    # repaired: the log still has the lines, amcheck finds nothing
    corruption, crash, findings = integrity.verdict(checked, [], [], log, True)
    assert not corruption and crash
    assert findings[-1] == "amcheck found no damage in 3 index(es) and 2 table(s)"
    # amcheck could not run: the log decides, and the result says nothing was verified
    corruption, _crash, findings = integrity.verdict(dict(indexes=0, tables=0), [], [], log, False)
    assert corruption and findings[-1].startswith("amcheck did not run")
    assert not integrity.verdict(dict(indexes=0, tables=0), [], [], [], False)[0]


def test_a_check_that_could_not_run_is_reported_not_counted_as_damage():
    error = dict(kind="table", relation="public.orders", error="lock timeout")
    corruption, _crash, findings = integrity.verdict(dict(indexes=1, tables=1), [], [error], [], True)
    assert not corruption
    assert findings[0] == "could not check table public.orders: lock timeout"


@pytest.mark.parametrize("name, expected", [
    ("orders", ("public", "orders")),
    ("sales.orders", ("sales", "orders")),
])
def test_split_table(name, expected):
    assert rows.split_table(name) == expected


@pytest.mark.parametrize("name", ["", "a.b.c", ".orders", "sales."])
def test_split_table_refuses_what_is_not_a_table_name(name):
    with pytest.raises(PostgresError):
        rows.split_table(name)


def test_reference_order_puts_parents_first_and_keeps_the_given_order_otherwise():
    names = ["public.order_lines", "public.orders", "public.audit", "public.customers"]
    references = [("public.order_lines", "public.orders"), ("public.orders", "public.customers"),
                  ("public.orders", "public.elsewhere")]
    assert rows.reference_order(names, references) == [
        "public.audit", "public.customers", "public.orders", "public.order_lines"]
    # a cycle keeps the given order for its tables
    assert rows.reference_order(["a", "b"], [("a", "b"), ("b", "a")]) == ["a", "b"]
    # a self-reference is no obstacle
    assert rows.reference_order(["a"], [("a", "a")]) == ["a"]


def table(columns, key):
    return dict(regclass="x", columns=[dict(name=c, type="integer") for c in columns],
                primary_key=key)


def test_table_problems():
    where = "the restored copy"
    assert rows.table_problems("public.t", None, None, where) == [
        "public.t does not exist in the target database"]
    assert "has no primary key" in rows.table_problems("public.t", table(["a"], []),
                                                       table(["a"], []), where)[0]
    assert rows.table_problems("public.t", table(["a"], ["a"]), None, where) == [
        "public.t does not exist in the restored copy"]
    assert rows.table_problems("public.t", table(["a", "b"], ["a"]), table(["a"], ["a"]),
                               where) == ["public.t in the restored copy lacks column(s) b of "
                                          "the live table (added since the backup?)"]
    assert rows.table_problems("public.t", table(["a"], ["a"]), table(["a", "z"], ["a"]),
                               where) == []


def test_transpose():
    assert rows.transpose([("1", "a"), ("2", None)], 2) == [["1", "2"], ["a", None]]
    assert rows.transpose([], 2) == [[], []]
