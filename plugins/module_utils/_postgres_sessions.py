# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection use of a PostgreSQL server and which sessions a connection-exhaustion runbook ends.

The selection is one SQL condition (`selection`), used twice: to list the sessions, and again
inside the terminating statement (`_postgres_actions.terminate_sessions(still=...)`), so that
a session that changed between the two (an idle one that started a query) is left alone.
Reading and terminating go through `_postgres_actions` (the one session-termination helper).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_actions import (
    client_sessions,
)

# The runbook's thresholds (001, "Connection Pool Exhaustion"), in seconds.
IDLE_SECONDS = 600
ACTIVE_SECONDS = 300

# (reason, SQL condition on pg_stat_activity, age column in client_sessions' rows)
_KINDS = (
    ("idle", "state = 'idle' AND clock_timestamp() - state_change > make_interval(secs => %s)",
     "state_seconds"),
    ("active", "state = 'active' AND clock_timestamp() - query_start > make_interval(secs => %s)",
     "query_seconds"),
    ("idle_in_transaction",
     "state IN ('idle in transaction', 'idle in transaction (aborted)')"
     " AND clock_timestamp() - state_change > make_interval(secs => %s)",
     "state_seconds"),
)

_FILTERS = (
    ("databases", "datname = ANY(%s)"),
    ("users", "usename = ANY(%s)"),
    ("applications", "application_name = ANY(%s)"),
    ("exclude_users", "NOT (usename = ANY(%s))"),
    ("exclude_applications", "NOT (application_name = ANY(%s))"),
)


def thresholds_problem(thresholds):
    """Why the thresholds cannot be used (None when they can).

    thresholds: {'idle': s, 'active': s, 'idle_in_transaction': s}, None = that kind is kept.
    """
    given = dict((k, v) for k, v in thresholds.items() if v is not None)
    negative = sorted(k for k, v in given.items() if v < 0)
    if negative:
        return ("%s must be 0 or more seconds (got %s)"
                % (", ".join(negative), ", ".join(str(given[k]) for k in negative)))
    if not given:
        return ("kinds is empty: name the sessions to end (idle, active, "
                "idle_in_transaction)")
    return None


def selection(thresholds, filters):
    """(SQL condition, params) of the sessions to end: older than a kind's threshold, within
    the filters. filters: {databases, users, applications, exclude_users,
    exclude_applications}; an empty list filters nothing."""
    kinds, params = [], []
    for reason, condition, _column in _KINDS:
        limit = thresholds.get(reason)
        if limit is not None:
            kinds.append("(%s)" % condition)
            params.append(float(limit))
    parts = ["(%s)" % " OR ".join(kinds)]
    for name, condition in _FILTERS:
        values = filters.get(name) or []
        if values:
            parts.append(condition)
            params.append(list(values))
    return " AND ".join(parts), params


def reason(session, thresholds):
    """Why a selected session goes: 'idle', 'active' or 'idle_in_transaction'."""
    for kind, _condition, column in _KINDS:
        limit = thresholds.get(kind)
        if limit is None:
            continue
        state = session.get("state") or ""
        if kind == "idle" and state != "idle":
            continue
        if kind == "active" and state != "active":
            continue
        if kind == "idle_in_transaction" and not state.startswith("idle in transaction"):
            continue
        return kind
    return None


def summarise(sessions, top=10):
    """Connection counts by state (with the oldest age in that state) and the top clients."""
    by_state = {}
    for session in sessions:
        state = session.get("state") or "unknown"
        entry = by_state.setdefault(state, dict(count=0, oldest_seconds=None))
        entry["count"] += 1
        age = session.get("state_seconds")
        if age is not None and (entry["oldest_seconds"] is None or age > entry["oldest_seconds"]):
            entry["oldest_seconds"] = age
    clients = {}
    for session in sessions:
        key = (session.get("usename"), session.get("application_name") or "",
               session.get("client_addr"))
        entry = clients.setdefault(key, dict(usename=key[0], application_name=key[1],
                                             client_addr=key[2], count=0, states={}))
        entry["count"] += 1
        state = session.get("state") or "unknown"
        entry["states"][state] = entry["states"].get(state, 0) + 1
    ranked = sorted(clients.values(), key=lambda c: (
        -c["count"], str(c["usename"]), c["application_name"], str(c["client_addr"])))
    return by_state, ranked[:top]


def usage(conn):
    """max_connections, the reserved slots, client connections and the other backends."""
    row = conn.execute(
        "SELECT current_setting('max_connections')::int AS max_connections,"
        " current_setting('superuser_reserved_connections')::int AS reserved_connections"
    ).fetchone()
    others = conn.execute(
        "SELECT backend_type, count(*)::int AS n FROM pg_stat_activity"
        " WHERE backend_type <> 'client backend' GROUP BY backend_type ORDER BY backend_type"
    ).fetchall()
    return dict(row), dict((r["backend_type"], r["n"]) for r in others)


def read_usage(conn, top=10):
    """Connection use against max_connections, by state, and the top clients."""
    limits, other_backends = usage(conn)
    everyone = client_sessions(conn)
    # The caller's session is a client backend too: it counts against max_connections.
    connections = len(everyone) + 1
    by_state, top_clients = summarise(everyone, top)
    return dict(
        max_connections=limits["max_connections"],
        reserved_connections=limits["reserved_connections"],
        connections=connections,
        usage_ratio=round(float(connections) / limits["max_connections"], 4),
        available=max(0, limits["max_connections"] - limits["reserved_connections"]
                      - connections),
        by_state=by_state,
        top_clients=top_clients,
        other_backends=other_backends,
    )


def select_sessions(conn, thresholds, filters):
    """(sessions past a threshold within the filters, condition, params): the condition and
    params are those to give terminate_sessions(still=..., still_params=...)."""
    condition, params = selection(thresholds, filters)
    selected = client_sessions(conn, [condition], params)
    for session in selected:
        session["reason"] = reason(session, thresholds)
    return selected, condition, params


def label(session):
    """One line per session, for steps and diff: 'pid 123 app@db (idle 700s, alice)'."""
    age = session.get("query_seconds") if session.get("reason") == "active" \
        else session.get("state_seconds")
    return "pid %s %s@%s (%s %ss, user %s)" % (
        session["pid"], session.get("application_name") or "-", session.get("datname") or "-",
        session.get("state"), int(age) if age is not None else "?", session.get("usename"))
