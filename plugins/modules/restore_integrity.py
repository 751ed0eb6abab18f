#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: restore_integrity
short_description: Integrity checks of a restored PostgreSQL database
version_added: 0.3.0
description:
  - "The checks of runbook 002 \"Validation\" after a restore: connectivity, expected tables,
    row counts against the counts recorded at backup time (in the dump's own snapshot, so they
    must be equal), no NULL in critical columns, no orphaned references."
  - The expected counts are those the backup module recorded in the set manifest
    (RV(failsafe.datastores.backup_info#module:sets) lists them).
  - Only reads. Fails when a check fails unless O(fail_on_problem=false).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.attributes
  - failsafe.datastores.attributes.INFO_MODULE
attributes:
  idempotent:
    description: Only reads.
    support: full
options:
  target:
    description: The restored database (O(target.db)).
    type: dict
    required: true
    suboptions:
      host:
        description: Host name or address of the server.
        type: str
        required: true
      port:
        description: TCP port of the server.
        type: int
        default: 5432
      user:
        description: Role to connect as; it must be able to read every table checked.
        type: str
        default: postgres
      password:
        description: Password of O(target.user). Never returned or logged.
        type: str
      db:
        description: The restored database.
        type: str
        default: postgres
      connect_timeout:
        description: Seconds to wait for a connection.
        type: int
        default: 5
      ssl_mode:
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(target.ssl_mode=verify-ca) and O(target.ssl_mode=verify-full).
        type: path
      log_file:
        description: The server's log file (C(failsafe_pg_log_file)); not used here, accepted so that the C(pg_conn) dict passes unchanged.
        type: path
  expected_counts:
    description: Rows per table (C(schema.table)) that must be found; equal, or within O(count_tolerance).
    type: dict
    default: {}
  count_tolerance:
    description: Fraction by which a count may differ (0 for a logical dump restored as is).
    type: float
    default: 0
  expected_tables:
    description: Tables (C(schema.table)) that must exist.
    type: list
    elements: str
    default: []
  critical_columns:
    description: Columns (C(schema.table.column)) that must hold no NULL.
    type: list
    elements: str
    default: []
  orphan_checks:
    description:
      - References to check, each a dict with C(child) and C(parent) as C(schema.table.column).
        Rows whose non-NULL child value has no parent row are orphans.
    type: list
    elements: dict
    default: []
  fail_on_problem:
    description: Fail the task when a check fails.
    type: bool
    default: true
requirements:
  - psycopg >= 3.1
'''

EXAMPLES = r'''
- name: Check the restored database
  failsafe.datastores.restore_integrity:
    target:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"
      db: ai_platform
    expected_tables: [public.feedback]
    critical_columns: [public.feedback.user_id]
    orphan_checks:
      - child: public.feedback.user_id
        parent: public.users.id
'''

RETURN = r'''
passed:
  description: True when every check passed.
  returned: always
  type: bool
checks:
  description: Every check, with C(check), C(subject), C(ok) and C(detail).
  returned: always
  type: list
  elements: dict
failed:
  description: The checks that failed (same fields as RV(checks)).
  returned: always
  type: list
  elements: dict
counts:
  description: Rows per table found.
  returned: always
  type: dict
timings:
  description: Seconds for the checks (C(checks)) and C(total).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    connect,
    describe,
    ensure_driver,
    PEER_SPEC,
    PostgresError,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import scalar
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer


def split_name(name, parts):
    pieces = name.split(".")
    if len(pieces) == parts - 1:
        pieces = ["public"] + pieces
    if len(pieces) != parts or not all(pieces):
        kind = "schema.table" if parts == 2 else "schema.table.column"
        raise PostgresError("%r is not a %s name" % (name, kind))
    return pieces


def check(conn, params, expected):
    from psycopg import sql

    checks = []
    counts = {}

    def add(kind, subject, ok, detail):
        checks.append(dict(check=kind, subject=subject, ok=bool(ok), detail=detail))

    add("connectivity", describe(params["target"]), True, "connected to database %s (%s)" % (
        params["target"]["db"], scalar(conn, "SHOW server_version")))

    def table_exists(schema, table):
        return scalar(conn, "SELECT to_regclass(%s) IS NOT NULL",
                      (sql.Identifier(schema, table).as_string(conn),))

    for name in params["expected_tables"]:
        schema, table = split_name(name, 2)
        found = table_exists(schema, table)
        add("table", name, found, "exists" if found else "missing")
    tolerance = params["count_tolerance"]
    for name, want in sorted(expected.items()):
        schema, table = split_name(name, 2)
        if not table_exists(schema, table):
            add("count", name, False, "table missing (expected %s rows)" % want)
            continue
        got = scalar(conn, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table)))
        counts[name] = got
        ok = abs(got - int(want)) <= tolerance * int(want)
        add("count", name, ok, "%d rows, %s at backup time" % (got, want))
    for name in params["critical_columns"]:
        schema, table, column = split_name(name, 3)
        nulls = scalar(conn, sql.SQL("SELECT count(*) FROM {} WHERE {} IS NULL").format(
            sql.Identifier(schema, table), sql.Identifier(column)))
        add("no_nulls", name, nulls == 0, "%d NULL values" % nulls)
    for ref in params["orphan_checks"]:
        if not ref.get("child") or not ref.get("parent"):
            raise PostgresError("an orphan check needs child and parent: %r" % (ref,))
        cs, ct, cc = split_name(ref["child"], 3)
        ps, pt, pc = split_name(ref["parent"], 3)
        orphans = scalar(conn, sql.SQL(
            "SELECT count(*) FROM {child} c WHERE c.{ccol} IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM {parent} p WHERE p.{pcol} = c.{ccol})").format(
                child=sql.Identifier(cs, ct), ccol=sql.Identifier(cc),
                parent=sql.Identifier(ps, pt), pcol=sql.Identifier(pc)))
        add("no_orphans", "%s -> %s" % (ref["child"], ref["parent"]), orphans == 0,
            "%d orphaned rows" % orphans)
    return checks, counts


def main():
    module = AnsibleModule(
        argument_spec=dict(
            target=dict(type="dict", required=True, options=dict(PEER_SPEC)),
            expected_counts=dict(type="dict", default={}),
            count_tolerance=dict(type="float", default=0),
            expected_tables=dict(type="list", elements="str", default=[]),
            critical_columns=dict(type="list", elements="str", default=[]),
            orphan_checks=dict(type="list", elements="dict", default=[]),
            fail_on_problem=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    params = module.params
    timer = Timer()
    result = dict(changed=False, passed=False, checks=[], failed=[], counts={})
    try:
        expected = dict(params["expected_counts"])
        with connect(params["target"], application_name="failsafe.integrity") as conn:
            result["checks"], result["counts"] = check(conn, params, expected)
    except PostgresError as exc:
        result["checks"].append(dict(check="connectivity", subject=describe(params["target"]),
                                     ok=False, detail=str(exc)))
    timer.mark("checks")
    result["failed"] = [c for c in result["checks"] if not c["ok"]]
    result["passed"] = not result["failed"]
    result["timings"] = timer.report((("checks", None, "checks"),))
    if result["failed"] and params["fail_on_problem"]:
        module.fail_json(msg="integrity validation failed: %s" % "; ".join(
            "%s %s: %s" % (c["check"], c["subject"], c["detail"]) for c in result["failed"]),
            **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
