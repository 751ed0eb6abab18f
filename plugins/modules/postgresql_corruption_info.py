#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postgresql_corruption_info
short_description: Diagnose a PostgreSQL database after a crash, for corruption, without changing anything
version_added: 0.4.0
description:
  - "The diagnosis of runbook 001 \"Database Crash/Corruption\", read-only: does the server
    answer (waiting up to O(wait_timeout) for one still in crash recovery), is it in recovery,
    does it keep data checksums and have checksum failures, is C(amcheck) available and
    installed in the database, then with C(amcheck) C(bt_index_check) of every B-tree index and
    C(verify_heapam) of every table of O(tables) (each in its own statement, with a lock
    timeout), and the server log's corruption and crash lines of the last
    O(log_since_minutes) (runbook: C(grep -i \"corrupt|panic|fatal\"))."
  - C(amcheck) must be installed in the database (C(CREATE EXTENSION amcheck), a change this
    module never makes; the crash recovery role does it in its action phase). Without it the
    result says so, and the log's corruption lines decide RV(corruption_found).
  - With C(amcheck), its verdict decides RV(corruption_found), because the log keeps lines of damage
    that a restore already repaired.
  - Also reads the row counts of O(tables), the newest value of O(recent_column) and the
    streaming standbys, for the runbook's validation checklist.
  - A server that does not answer is reported (RV(answers=false)); a live server that refuses
    (password, pg_hba.conf, missing database) fails the task.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.postgresql
  - failsafe.datastores.postgresql.NODE
  - failsafe.datastores.attributes
  - failsafe.datastores.attributes.INFO_MODULE
options:
  tables:
    description:
      - Tables (C(table) or C(schema.table)) to verify and count. Empty verifies every table
        of the database outside the system schemas (and counts none).
    type: list
    elements: str
    default: []
  heap:
    description: Verify the tables themselves with C(verify_heapam), not only their indexes.
    type: bool
    default: true
  heapallindexed:
    description: C(bt_index_check(index, heapallindexed => true)) also checks that every table row is in the index (slower).
    type: bool
    default: false
  log_since_minutes:
    description: Log lines older than this are ignored (0 reads the whole tail, the last 4 MiB).
    type: int
    default: 1440
  recent_column:
    description: A timestamp column (C(schema.table.column)) whose newest value is returned, for "recent data visible".
    type: str
  wait_timeout:
    description: Seconds to keep trying a server that does not answer (still in crash recovery, starting up).
    type: int
    default: 0
  lock_timeout:
    description: Milliseconds each check waits for a lock before it is reported as not run.
    type: int
    default: 10000
'''

EXAMPLES = r'''
- name: Diagnose the application database
  failsafe.datastores.postgresql_corruption_info:
    node: "{{ hostvars['pg-us-east'] | failsafe.datastores.pg_conn | combine({'db': 'intelgraph'}) }}"
    tables: [entities, relationships, investigations]
    wait_timeout: 60
  register: diagnosis

- name: Stop when damage was found
  ansible.builtin.assert:
    that: not diagnosis.corruption_found
    fail_msg: "{{ diagnosis.findings | join('; ') }}"
'''

RETURN = r'''
answers:
  description: Whether the server accepted a connection.
  returned: always
  type: bool
unreachable_reason:
  description: Why it did not answer (null when it did).
  returned: always
  type: str
in_recovery:
  description: Whether the server is in recovery (a standby); null when it did not answer.
  returned: always
  type: bool
server_version:
  description: The server's version (C(SHOW server_version)).
  returned: always
  type: str
data_checksums:
  description: Whether the cluster keeps data checksums.
  returned: always
  type: bool
checksum_failures:
  description: Checksum failures the server counted in this database (null without data checksums).
  returned: always
  type: int
amcheck:
  description: C(available) (the server has the extension), C(installed) (in this database), C(version), C(schema).
  returned: always
  type: dict
checked:
  description: How many C(indexes) and C(tables) amcheck verified.
  returned: always
  type: dict
failures:
  description: Damage amcheck found, each with C(kind) (index or table), C(relation), C(error).
  returned: always
  type: list
  elements: dict
errors:
  description: Checks that could not run (lock timeout, privilege), with C(kind), C(relation), C(error).
  returned: always
  type: list
  elements: dict
log:
  description: C(path) of the log read, C(read) (whether it could be), C(error), and C(findings) (C(kind) corruption or crash, C(time), C(line)).
  returned: always
  type: dict
corruption_found:
  description: amcheck found damage (or, when amcheck did not run, the log has corruption lines).
  returned: always
  type: bool
crash_found:
  description: The log has crash lines (PANIC, a process terminated by a signal, crash recovery).
  returned: always
  type: bool
counts:
  description: Rows per table of O(tables) (C(schema.table)).
  returned: always
  type: dict
newest:
  description: The newest value of O(recent_column), as text (null without it or when the table is empty).
  returned: always
  type: str
standbys_streaming:
  description: Standbys streaming from this server (C(pg_stat_replication) in state streaming).
  returned: always
  type: int
findings:
  description: What was found, in sentences.
  returned: always
  type: list
  elements: str
timings:
  description: Seconds per step (C(connect), C(amcheck), C(log), C(counts)) and C(total).
  returned: always
  type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _postgres_integrity as integrity
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    describe,
    DRIVER_ERRORS,
    driver_reason,
    ensure_driver,
    explain_error,
    is_unreachable,
    peer_option,
    PostgresError,
    try_connect,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import (
    in_recovery,
    read_log_tail,
    scalar,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_rows import (
    split_table,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

APP = "failsafe.corruption_info"
STEPS = (("connect", None, "connected"), ("amcheck", "connected", "checked"),
         ("log", "checked", "log"), ("counts", "log", "counted"))
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")

INDEXES_SQL = (
    "SELECT c.oid::regclass::text AS relation FROM pg_index i "
    "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
    "WHERE am.amname = 'btree' AND i.indisvalid AND i.indisready AND c.relpersistence <> 't' "
    "AND i.indrelid = ANY(%s::oid[]) ORDER BY 1")
TABLES_SQL = (
    "SELECT c.oid, c.oid::regclass::text AS relation FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'm') "
    "AND c.relpersistence <> 't' AND n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg_temp%%' "
    "ORDER BY 2")


def wait_connect(node, timeout):
    """(connection, None) or (None, why): keeps trying an unreachable server until timeout; a
    live server that refuses raises PostgresError at once."""
    deadline = time.monotonic() + max(timeout, 0)
    while True:
        conn, reason = try_connect(node, APP)
        if conn is not None or time.monotonic() >= deadline:
            return conn, reason
        time.sleep(1)


def tables_to_check(conn, names):
    from psycopg import sql

    if not names:
        return [(r["oid"], r["relation"]) for r in
                conn.execute(TABLES_SQL, (list(SYSTEM_SCHEMAS),)).fetchall()]
    found, missing = [], []
    for name in names:
        schema, table = split_table(name)
        row = conn.execute("SELECT to_regclass(%s)::oid AS oid",
                           (sql.Identifier(schema, table).as_string(conn),)).fetchone()
        if row["oid"] is None:
            missing.append("%s.%s" % (schema, table))
        else:
            found.append((row["oid"], "%s.%s" % (schema, table)))
    if missing:
        raise PostgresError("table(s) %s do not exist in database %s: correct tables"
                            % (", ".join(missing), conn.info.dbname))
    return found


def run_check(conn, kind, relation, statement, args, result):
    """One amcheck call in its own statement; damage goes to failures, a check that could not
    run to errors; a lost connection raises."""
    try:
        rows = conn.execute(statement, args).fetchall()
    except DRIVER_ERRORS as exc:
        sqlstate = getattr(exc, "sqlstate", None) or ""
        if sqlstate.startswith("08") or conn.closed or is_unreachable(exc):
            raise PostgresError(explain_error(exc, None, "checking %s %s" % (kind, relation)))
        target = "failures" if integrity.is_corruption(sqlstate) else "errors"
        result[target].append(dict(kind=kind, relation=relation, error=driver_reason(exc)))
        return
    if kind == "table" and rows:  # verify_heapam: one row per damaged tuple
        first = rows[0]
        result["failures"].append(dict(kind=kind, relation=relation, error="%d problem(s), "
                                       "first at block %s offset %s: %s" % (
                                           len(rows), first["blkno"], first["offnum"],
                                           first["msg"])))


def amcheck(conn, params, result):
    from psycopg import sql

    row = conn.execute(
        "SELECT a.default_version, e.extversion, n.nspname FROM pg_available_extensions a "
        "LEFT JOIN pg_extension e ON e.extname = a.name "
        "LEFT JOIN pg_namespace n ON n.oid = e.extnamespace WHERE a.name = 'amcheck'").fetchone()
    result["amcheck"] = dict(available=row is not None, installed=bool(row and row["extversion"]),
                             version=row["extversion"] if row else None,
                             schema=row["nspname"] if row else None)
    tables = tables_to_check(conn, params["tables"])
    if not result["amcheck"]["installed"]:
        return tables
    schema = sql.Identifier(result["amcheck"]["schema"])
    conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(params["lock_timeout"])))
    indexes = [r["relation"] for r in conn.execute(
        INDEXES_SQL, ([oid for oid, _name in tables],)).fetchall()]
    for index in indexes:
        run_check(conn, "index", index,
                  sql.SQL("SELECT {}.bt_index_check(%s::regclass, %s)").format(schema),
                  (index, params["heapallindexed"]), result)
    result["checked"]["indexes"] = len(indexes)
    if params["heap"]:
        for _oid, relation in tables:
            run_check(conn, "table", relation,
                      sql.SQL("SELECT blkno, offnum, msg FROM {}.verify_heapam(%s::regclass) "
                              "LIMIT 100").format(schema), (relation,), result)
        result["checked"]["tables"] = len(tables)
    return tables


def recent_log(conn, findings, minutes):
    """The findings no older than `minutes`, by the server's own reading of the log times."""
    if not minutes or not findings:
        return findings
    try:
        keep = [r["keep"] for r in conn.execute(
            "SELECT coalesce(t::timestamptz >= now() - make_interval(mins => %s), true) AS keep "
            "FROM unnest(%s::text[]) WITH ORDINALITY AS u(t, n) ORDER BY n",
            (minutes, [f["time"] for f in findings])).fetchall()]
    except DRIVER_ERRORS:  # a time the server cannot read: keep every line
        return findings
    return [f for f, ok in zip(findings, keep) if ok]


def facts(conn, params, result, timer):
    from psycopg import sql

    result["in_recovery"] = in_recovery(conn)
    result["server_version"] = scalar(conn, "SHOW server_version")
    result["data_checksums"] = scalar(conn, "SHOW data_checksums") == "on"
    result["checksum_failures"] = scalar(
        conn, "SELECT checksum_failures FROM pg_stat_database WHERE datname = current_database()")
    if not result["in_recovery"]:
        result["standbys_streaming"] = scalar(
            conn, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
    tables = amcheck(conn, params, result)
    timer.mark("checked")
    text, path, error = read_log_tail(conn, params["node"].get("log_file"))
    found = recent_log(conn, integrity.scan_log(text), params["log_since_minutes"])
    result["log"] = dict(path=path, read=text is not None, error=error, findings=found)
    timer.mark("log")
    if params["tables"]:
        for _oid, name in tables:
            schema, table = split_table(name)
            result["counts"][name] = scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(schema, table)))
    if params["recent_column"]:
        pieces = params["recent_column"].split(".")
        if len(pieces) == 2:
            pieces = ["public"] + pieces
        if len(pieces) != 3 or not all(pieces):
            raise PostgresError("recent_column %r is not schema.table.column"
                                % params["recent_column"])
        result["newest"] = scalar(conn, sql.SQL("SELECT max({})::text FROM {}").format(
            sql.Identifier(pieces[2]), sql.Identifier(pieces[0], pieces[1])))
    timer.mark("counted")


def main():
    module = AnsibleModule(
        argument_spec=dict(
            node=peer_option(required=True),
            tables=dict(type="list", elements="str", default=[]),
            heap=dict(type="bool", default=True),
            heapallindexed=dict(type="bool", default=False),
            log_since_minutes=dict(type="int", default=1440),
            recent_column=dict(type="str"),
            wait_timeout=dict(type="int", default=0),
            lock_timeout=dict(type="int", default=10000),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    params = module.params
    node = params["node"]
    timer = Timer()
    result = dict(changed=False, answers=False, unreachable_reason=None, in_recovery=None,
                  server_version=None, data_checksums=None, checksum_failures=None,
                  amcheck=dict(available=None, installed=None, version=None, schema=None),
                  checked=dict(indexes=0, tables=0), failures=[], errors=[],
                  log=dict(path=node.get("log_file"), read=False, error=None, findings=[]),
                  corruption_found=False, crash_found=False, counts={}, newest=None,
                  standbys_streaming=0, findings=[])
    try:
        conn, reason = wait_connect(node, params["wait_timeout"])
        timer.mark("connected")
        if conn is None:
            result["unreachable_reason"] = reason
            result["findings"] = ["%s does not answer: %s" % (describe(node), reason)]
        else:
            result["answers"] = True
            with conn:
                facts(conn, params, result, timer)
            corruption, crash, findings = integrity.verdict(
                result["checked"], result["failures"], result["errors"],
                result["log"]["findings"], bool(result["amcheck"]["installed"]))
            result.update(corruption_found=corruption, crash_found=crash, findings=findings)
            if result["checksum_failures"]:
                result["corruption_found"] = True
                result["findings"].append("%s data checksum failure(s) in database %s"
                                          % (result["checksum_failures"], node["db"]))
    except PostgresError as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    except DRIVER_ERRORS as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=explain_error(exc, node, "diagnosing database %s" % node["db"]),
                         **result)
    result["timings"] = timer.report(STEPS)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
