# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Rows of PostgreSQL tables: names, primary keys, reference order, and the statements that
copy back the rows a database lacks (runbook 003 "Recover deleted data").

Rows travel as text (each column ``::text``, cast back with the column's own type on the
other side), the same representation ``COPY`` and ``pg_dump`` use, so every type round-trips.
Type names in casts come from the server's ``format_type()``, which quotes them itself;
identifiers go through ``psycopg.sql.Identifier``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    PostgresError,
)


def split_table(name):
    """'orders' -> ('public', 'orders'); 'sales.orders' -> ('sales', 'orders')."""
    pieces = (name or "").split(".")
    if len(pieces) == 1:
        pieces = ["public"] + pieces
    if len(pieces) != 2 or not all(p.strip() for p in pieces):
        raise PostgresError("%r is not a table name (table or schema.table)" % (name,))
    return pieces[0], pieces[1]


def qualified(schema, table):
    return "%s.%s" % (schema, table)


# The columns a row copy writes: stored, not generated (a generated column is computed again).
COLUMNS_SQL = (
    "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type "
    "FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 "
    "AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum")

PRIMARY_KEY_SQL = (
    "SELECT a.attname AS name FROM pg_index i "
    "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) "
    "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
    "WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY k.position")

REFERENCES_SQL = (
    "SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent "
    "FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY(%s::regclass[]) "
    "AND confrelid = ANY(%s::regclass[]) AND conrelid <> confrelid")


def regclass_text(conn, schema, table):
    """The table's name as the server prints a regclass, or None when it does not exist."""
    from psycopg import sql

    row = conn.execute("SELECT to_regclass(%s)::text AS name",
                       (sql.Identifier(schema, table).as_string(conn),)).fetchone()
    return row["name"] if row else None


def describe_table(conn, schema, table):
    """dict(regclass, columns [{name, type}], primary_key [names]) or None if it is missing."""
    name = regclass_text(conn, schema, table)
    if name is None:
        return None
    columns = [dict(r) for r in conn.execute(COLUMNS_SQL, (name,)).fetchall()]
    primary_key = [r["name"] for r in conn.execute(PRIMARY_KEY_SQL, (name,)).fetchall()]
    return dict(regclass=name, columns=columns, primary_key=primary_key)


def table_problems(label, target, source, source_label):
    """Why the rows of one table cannot be copied (empty list: they can)."""
    if target is None:
        return ["%s does not exist in the target database" % label]
    if not target["primary_key"]:
        return ["%s has no primary key: rows cannot be matched without overwriting or "
                "duplicating them; copy them by hand (runbook 003's COPY ... WHERE)" % label]
    if source is None:
        return ["%s does not exist in %s" % (label, source_label)]
    have = set(c["name"] for c in source["columns"])
    lacking = [c["name"] for c in target["columns"] if c["name"] not in have]
    if lacking:
        return ["%s in %s lacks column(s) %s of the live table (added since the backup?)"
                % (label, source_label, ", ".join(lacking))]
    return []


def reference_order(names, references):
    """The tables in an order where a referenced (parent) table comes before the tables that
    reference it, otherwise as given. `references` are (child, parent) pairs; cycles keep the
    given order for the tables in them."""
    remaining = list(names)
    parents = dict((name, set()) for name in names)
    for child, parent in references:
        if child in parents and parent in parents and child != parent:
            parents[child].add(parent)
    ordered = []
    while remaining:
        ready = [n for n in remaining if not (parents[n] & set(remaining))]
        if not ready:  # a cycle: take the first as given
            ready = remaining[:1]
        ordered.append(ready[0])
        remaining.remove(ready[0])
    return ordered


def transpose(rows, width):
    """Rows (tuples of text) -> one list per column, for unnest(%s::text[], ...)."""
    columns = [[] for _index in range(width)]
    for row in rows:
        for index in range(width):
            columns[index].append(row[index])
    return columns


def source_query(schema, table, columns, condition=None):
    """SELECT every copied column as text, optionally WHERE the operator's condition."""
    from psycopg import sql

    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c["name"]))
                           for c in columns),
        sql.Identifier(schema, table))
    if condition:
        query = sql.SQL("{} WHERE ({})").format(query, sql.SQL(condition))
    return query


def _unnest(columns):
    """unnest(%s::text[], ...) AS k("a", "b") over these columns."""
    from psycopg import sql

    return sql.SQL("unnest({}) AS k({})").format(
        sql.SQL(", ").join(sql.SQL("%s::text[]") for _c in columns),
        sql.SQL(", ").join(sql.Identifier(c["name"]) for c in columns))


def _key_match(schema, table, key_columns):
    """NOT EXISTS (a live row with this key), the key cast to the live column's type."""
    from psycopg import sql

    return sql.SQL("NOT EXISTS (SELECT 1 FROM {} t WHERE {})").format(
        sql.Identifier(schema, table),
        sql.SQL(" AND ").join(
            sql.SQL("t.{name} = k.{name}::{type}").format(
                name=sql.Identifier(c["name"]), type=sql.SQL(c["type"]))
            for c in key_columns))


def missing_keys_query(schema, table, key_columns):
    """The keys of a batch (as text) that no live row has."""
    from psycopg import sql

    return sql.SQL("SELECT {} FROM {} WHERE {}").format(
        sql.SQL(", ").join(sql.SQL("k.{}").format(sql.Identifier(c["name"]))
                           for c in key_columns),
        _unnest(key_columns), _key_match(schema, table, key_columns))


def insert_query(schema, table, columns):
    """INSERT the batch's rows, cast to the live types; a row whose key (or any other unique
    value) exists now is skipped, never overwritten."""
    from psycopg import sql

    return sql.SQL("INSERT INTO {table} ({names}) OVERRIDING SYSTEM VALUE SELECT {values} "
                   "FROM {rows} ON CONFLICT DO NOTHING").format(
        table=sql.Identifier(schema, table),
        names=sql.SQL(", ").join(sql.Identifier(c["name"]) for c in columns),
        values=sql.SQL(", ").join(
            sql.SQL("k.{}::{}").format(sql.Identifier(c["name"]), sql.SQL(c["type"]))
            for c in columns),
        rows=_unnest(columns))
