#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postgresql_copy_rows
short_description: Copy back the rows a PostgreSQL database lacks, by primary key, never overwriting
version_added: 0.4.0
description:
  - Runbook 003 "Recover deleted data" after a restore into a temporary database. For each named
    table, the rows of O(source) (the restored copy) whose primary key no row of O(target) (the
    live database) has are inserted into O(target); rows that exist in both are left as they are
    in O(target), whatever their values (newer rows are never overwritten).
  - "Order: read both tables' columns and primary keys and refuse, naming every problem, before
    any row is read (a table without a primary key, missing in either database, or whose live
    columns the copy lacks); then, in ONE transaction on O(target), per table in reference order
    (a referenced table before the tables that reference it): stream the source rows in batches,
    find the keys the live table lacks, insert those rows with C(ON CONFLICT DO NOTHING); commit
    once at the end. Any failure rolls the whole copy back."
  - Rows travel as text and are cast to the live column types (the representation of C(COPY)
    and C(pg_dump)); generated columns are computed again, identity columns keep their values
    (C(OVERRIDING SYSTEM VALUE)). Sequences are not moved. Triggers of the live table fire.
  - Written here because community.postgresql has no row copy between databases; C(dblink) or
    C(postgres_fdw) would need an extension in the live database.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.attributes
  - failsafe.datastores.postgresql.SOURCE
  - failsafe.datastores.postgresql.TARGET
attributes:
  check_mode:
    support: full
    details:
      - Reads both databases (the live one in a read-only transaction) and reports per table the
        rows that would be copied and a sample of their keys; inserts nothing.
      - O(source) may be O(target) itself in check mode; then only the tables are checked (they
        exist and have a primary key), which the roles do before anything changes.
  diff_mode:
    support: full
  idempotent:
    description: A second run finds no missing key and copies nothing.
    support: full
options:
  tables:
    description: Tables (C(table) for C(public.table), or C(schema.table)) whose missing rows are copied back.
    type: list
    elements: str
    required: true
  filters:
    description:
      - Per table (as named in O(tables)), an SQL condition that limits the source rows
        considered (runbook 003 copies C(WHERE id IN (1,2,3))), such as C(id BETWEEN 100 AND 200).
      - Evaluated in O(source) only, in a read-only transaction.
    type: dict
    default: {}
  batch_size:
    description: Source rows compared (and copied) per statement.
    type: int
    default: 5000
  sample_size:
    description: Missing keys listed per table in the result.
    type: int
    default: 20
requirements:
  - psycopg >= 3.1
'''

EXAMPLES = r'''
- name: Copy back the deleted customers and orders from the restored copy
  failsafe.datastores.postgresql_copy_rows:
    source:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"
      db: ai_platform__recover
    target:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"
      db: ai_platform
    tables: [customers, public.orders]
    filters:
      public.orders: "created_at >= '2025-01-30'"
'''

RETURN = r'''
tables:
  description:
    - Per table, in the order copied, C(table), C(primary_key) (its columns), C(source_rows)
      (rows read from O(source)), C(missing) (rows whose key the live table lacks), C(copied)
      (rows inserted; 0 in check mode), C(conflicts) (missing rows skipped because another
      unique value exists now) and C(sample_missing_keys) (up to O(sample_size) keys, as text).
  returned: always
  type: list
  elements: dict
missing:
  description: Rows missing in the live tables, all tables together.
  returned: always
  type: int
copied:
  description: Rows inserted, all tables together (0 in check mode).
  returned: always
  type: int
order:
  description: The tables in the order they are copied (referenced tables first).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds per step (C(checks), C(copy), C(commit)) and C(total).
  returned: always
  type: dict
diff:
  description: Rows missing per table before and after.
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _postgres_rows as rows
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    connect,
    describe,
    DRIVER_ERRORS,
    ensure_driver,
    explain_error,
    PEER_SPEC,
    PostgresError,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

STEPS = (("checks", None, "checked"), ("copy", "checked", "copied"), ("commit", "copied", "committed"))
APP = "failsafe.copy_rows"


def plan(params, source_conn, target_conn):
    """The tables in copy order with their descriptions; refuses before any row is read."""
    where = "%s database %s" % (describe(params["source"]), params["source"]["db"])
    names, described, problems = [], {}, []
    for name in params["tables"]:
        schema, table = rows.split_table(name)
        label = rows.qualified(schema, table)
        if label in described:
            continue
        target = rows.describe_table(target_conn, schema, table)
        source = rows.describe_table(source_conn, schema, table)
        problems += rows.table_problems(label, target, source, where)
        names.append(label)
        described[label] = dict(name=name, schema=schema, table=table, target=target)
    unknown = [f for f in params["filters"] if f not in params["tables"]
               and f not in described]
    if unknown:
        problems.append("filters name tables not in tables: %s" % ", ".join(sorted(unknown)))
    if problems:
        raise PostgresError("cannot copy rows into %s database %s: %s. Nothing was copied" % (
            describe(params["target"]), params["target"]["db"], "; ".join(problems)))
    regclasses = [described[n]["target"]["regclass"] for n in names]
    by_regclass = dict((described[n]["target"]["regclass"], n) for n in names)
    references = [(by_regclass.get(r["child"]), by_regclass.get(r["parent"])) for r in
                  target_conn.execute(rows.REFERENCES_SQL, (regclasses, regclasses)).fetchall()]
    return [described[n] for n in rows.reference_order(names, references)]


def copy_table(params, item, source_conn, target_conn, check_mode):
    """Compare (and copy) one table in batches; returns its line of the result."""
    schema, table = item["schema"], item["table"]
    columns = item["target"]["columns"]
    key_names = item["target"]["primary_key"]
    key_at = [next(i for i, c in enumerate(columns) if c["name"] == k) for k in key_names]
    key_columns = [columns[i] for i in key_at]
    condition = params["filters"].get(item["name"]) or params["filters"].get(
        rows.qualified(schema, table))
    line = dict(table=rows.qualified(schema, table), primary_key=key_names, source_rows=0,
                missing=0, copied=0, conflicts=0, sample_missing_keys=[])
    find = rows.missing_keys_query(schema, table, key_columns)
    insert = rows.insert_query(schema, table, columns)
    from psycopg.rows import tuple_row

    live = target_conn.cursor(row_factory=tuple_row)
    with source_conn.cursor(name="failsafe_copy_rows", row_factory=tuple_row) as cursor:
        cursor.execute(rows.source_query(schema, table, columns, condition))
        while True:
            batch = cursor.fetchmany(params["batch_size"])
            if not batch:
                break
            line["source_rows"] += len(batch)
            keys = [tuple(r[i] for i in key_at) for r in batch]
            missing = live.execute(find, rows.transpose(keys, len(key_at))).fetchall()
            if not missing:
                continue
            line["missing"] += len(missing)
            room = params["sample_size"] - len(line["sample_missing_keys"])
            line["sample_missing_keys"] += [
                k[0] if len(k) == 1 else list(k) for k in missing[:max(room, 0)]]
            if check_mode:
                continue
            wanted = set(missing)
            chosen = [r for r, k in zip(batch, keys) if k in wanted]
            line["copied"] += live.execute(insert, rows.transpose(chosen, len(columns))).rowcount
    line["conflicts"] = 0 if check_mode else line["missing"] - line["copied"]
    return line


def main():
    module = AnsibleModule(
        argument_spec=dict(
            source=dict(type="dict", required=True, options=dict(PEER_SPEC)),
            target=dict(type="dict", required=True, options=dict(PEER_SPEC)),
            tables=dict(type="list", elements="str", required=True),
            filters=dict(type="dict", default={}),
            batch_size=dict(type="int", default=5000),
            sample_size=dict(type="int", default=20),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    params = module.params
    timer = Timer()
    result = dict(changed=False, tables=[], missing=0, copied=0, order=[])
    if not params["tables"]:
        module.fail_json(msg="tables is empty: name the tables whose rows to copy back",
                         **result)
    if params["batch_size"] < 1 or params["sample_size"] < 0:
        module.fail_json(msg="batch_size must be at least 1 and sample_size at least 0 "
                             "(got %d and %d)" % (params["batch_size"], params["sample_size"]),
                         **result)
    from psycopg import IsolationLevel

    same = all(params["source"].get(k) == params["target"].get(k) for k in ("host", "port", "db"))
    try:
        if same and not module.check_mode:
            raise PostgresError("source and target are the same database (%s database %s): "
                                "give the restored copy as source" % (
                                    describe(params["target"]), params["target"]["db"]))
        with connect(params["source"], APP, autocommit=False) as source_conn, \
                connect(params["target"], APP, autocommit=False) as target_conn:
            source_conn.read_only = True
            source_conn.isolation_level = IsolationLevel.REPEATABLE_READ  # one snapshot
            target_conn.read_only = module.check_mode
            try:
                items = plan(params, source_conn, target_conn)
                result["order"] = [rows.qualified(i["schema"], i["table"]) for i in items]
                timer.mark("checked")
                for item in items:
                    result["tables"].append(copy_table(params, item, source_conn, target_conn,
                                                       module.check_mode))
                timer.mark("copied")
            except DRIVER_ERRORS as exc:
                target_conn.rollback()
                raise PostgresError("%s. The copy was rolled back: nothing was copied" % explain_error(
                    exc, params["target"], "copying rows into database %s" % params["target"]["db"]))
            except PostgresError:
                target_conn.rollback()
                raise
            if module.check_mode:
                target_conn.rollback()
            else:
                target_conn.commit()
            timer.mark("committed")
            source_conn.rollback()
    except PostgresError as exc:
        for line in result["tables"]:  # rolled back: nothing stayed
            line["copied"] = line["conflicts"] = 0
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    result["missing"] = sum(t["missing"] for t in result["tables"])
    result["copied"] = sum(t["copied"] for t in result["tables"])
    result["changed"] = bool(result["missing"] if module.check_mode else result["copied"])
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(
            before=dict((t["table"], dict(missing=t["missing"])) for t in result["tables"]),
            after=dict((t["table"], dict(missing=t["conflicts"])) for t in result["tables"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
