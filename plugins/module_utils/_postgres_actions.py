# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What changes a PostgreSQL cluster: fence, terminate sessions, promote, wait for replay.

Never called in check mode (the modules plan instead).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    PostgresError,
    connect,
    describe,
    doing,
    try_connect,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import (
    in_recovery,
    iso,
    lsn_at_least,
    read_only_setting,
    scalar,
    timeline,
)

# The statements, as the modules report them.
FENCE = "ALTER SYSTEM SET default_transaction_read_only = on"
UNFENCE = "ALTER SYSTEM RESET default_transaction_read_only"
RELOAD = "SELECT pg_reload_conf()"
TERMINATE = "SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid"
# The same, for sessions that still meet a condition when it runs (MATERIALIZED: the condition
# is evaluated before any pg_terminate_backend call, whatever the planner's order).
TERMINATE_STILL = (
    "WITH still AS MATERIALIZED ("
    "SELECT pid FROM pg_stat_activity WHERE pid = ANY(%s)"
    " AND backend_type = 'client backend' AND pid <> pg_backend_pid() AND ({condition}))"
    " SELECT pid, pg_terminate_backend(pid) AS terminated FROM still"
)


def set_read_only(conn, on, timeout):
    """ALTER SYSTEM the default, reload, and wait until this session sees the new value.

    The postmaster re-reads the configuration before it signals the backends, so once this
    session sees the value every session opened from now on sees it too.
    """
    conn.execute(FENCE if on else UNFENCE)
    conn.execute(RELOAD)
    wanted = "on" if on else "off"
    deadline = time.monotonic() + timeout
    while True:
        if scalar(conn, "SHOW default_transaction_read_only") == wanted:
            return
        if time.monotonic() > deadline:
            raise PostgresError(
                "default_transaction_read_only is still not %s %.1fs after the reload"
                % (wanted, timeout))
        time.sleep(0.001)


def lift_fence(peer, application_name, timeout=10, attempts=3):
    """Unfence a primary through a NEW session (ours may be the one that failed).

    Tried `attempts` times: whatever ended our session may end the next one too.
    """
    for attempt in range(1, attempts + 1):
        try:
            with doing("lifting the fence", peer):
                with connect(peer, application_name) as conn:
                    set_read_only(conn, False, timeout)
            return
        except PostgresError:
            if attempt == attempts:
                raise
            time.sleep(0.2)


# Client sessions, as every module that ends sessions selects them: client backends only (never
# a walsender, autovacuum or another background process) and never the caller's own session.
SESSIONS_QUERY = (
    "SELECT pid, usename, datname, application_name, host(client_addr) AS client_addr, state,"
    " backend_start,"
    " extract(epoch FROM clock_timestamp() - backend_start)::float8 AS backend_seconds,"
    " extract(epoch FROM clock_timestamp() - state_change)::float8 AS state_seconds,"
    " extract(epoch FROM clock_timestamp() - query_start)::float8 AS query_seconds"
    " FROM pg_stat_activity"
    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    "{conditions}"
    " ORDER BY pid"
)


def client_sessions(conn, conditions=(), params=()):
    """The client sessions other than ours, narrowed by SQL `conditions` (with `params`).

    Each: pid, usename, datname, application_name, client_addr, state, backend_start (ISO)
    and the ages in seconds of the session (backend_seconds), of its state (state_seconds) and
    of its current or last query (query_seconds).
    """
    where = "".join(" AND (%s)" % condition for condition in conditions)
    rows = conn.execute(SESSIONS_QUERY.format(conditions=where), tuple(params) or None).fetchall()
    result = []
    for row in rows:
        entry = dict(row)
        entry["backend_start"] = iso(entry["backend_start"])
        for key in ("backend_seconds", "state_seconds", "query_seconds"):
            if entry[key] is not None:
                entry[key] = round(entry[key], 3)
        result.append(entry)
    return result


def stale_sessions(conn, exclude_users, include_all=False):
    """Client sessions that may still write (those opened before the configuration was last
    loaded: other sessions see the current default); include_all before a reload that is still
    to come."""
    conditions, params = [], []
    if not include_all:
        conditions.append("backend_start < pg_conf_load_time()")
    if exclude_users:
        conditions.append("NOT (usename = ANY(%s))")
        params.append(list(exclude_users))
    keys = ("pid", "usename", "datname", "application_name", "client_addr", "state",
            "backend_start")
    return [dict((k, s[k]) for k in keys) for s in client_sessions(conn, conditions, params)]


def terminate_sessions(conn, sessions, timeout=5.0, still=None, still_params=()):
    """Terminate every session at once, then wait until all have exited; returns them.

    `still`: an SQL condition on pg_stat_activity that each session must STILL meet when the
    statement runs (with `still_params`): a session that changed meanwhile (an idle one that
    started a query, a pid reused by a new backend) is then left alone and not returned.
    """
    if not sessions:
        return []
    pids = [s["pid"] for s in sessions]
    if still is None:
        conn.execute(TERMINATE, (pids,))
        ended = pids
    else:
        rows = conn.execute(TERMINATE_STILL.format(condition=still),
                            (pids,) + tuple(still_params)).fetchall()
        ended = [row["pid"] for row in rows if row["terminated"]]
    deadline = time.monotonic() + timeout
    while scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (ended,)):
        if time.monotonic() > deadline:
            raise PostgresError("sessions %s did not exit within %ss of pg_terminate_backend"
                                % (ended, timeout))
        time.sleep(0.001)
    return [s for s in sessions if s["pid"] in ended]


def promote_and_wait(conn, timeout, poll=0.002):
    """pg_promote(wait => false) and poll: pg_promote(wait => true) is quantised to 100 ms."""
    conn.execute("SELECT pg_promote(wait => false)")
    deadline = time.monotonic() + timeout
    while in_recovery(conn):
        if time.monotonic() > deadline:
            raise PostgresError(
                "the standby did not leave recovery within %ss of pg_promote(); check its log"
                % timeout)
        time.sleep(poll)


def wait_replayed(conn, target_lsn, timeout, poll=0.002):
    """Wait until a standby has replayed `target_lsn`; returns (ok, last_replayed_lsn)."""
    deadline = time.monotonic() + timeout
    while True:
        replayed = scalar(conn, "SELECT pg_last_wal_replay_lsn()::text")
        if lsn_at_least(replayed, target_lsn):
            return True, replayed
        if time.monotonic() > deadline:
            return False, replayed
        time.sleep(poll)


def ensure_writable(conn, timeout=10):
    """Reset an inherited read-only fence on a (new) primary. Returns True if it did."""
    if not read_only_setting(conn):
        return False
    set_read_only(conn, False, timeout)
    return True


def promotion_plan(name, checkpoint=True):
    """Check mode: the steps of `promote_until_writable`."""
    steps = ["promote %s (pg_promote) and wait until it accepts writes" % name,
             "reset a read-only fence it inherited, if any"]
    if checkpoint:
        steps.append("CHECKPOINT on the new primary")
    return steps


def promote_until_writable(conn, peer, report, timeout, checkpoint=True):
    """Promote, reset an inherited fence, then CHECKPOINT once writes are accepted.

    Marks 'promoted', 'writable' and 'checkpoint' on `report`; returns whether a fence was
    reset. From the first statement on, the server may be a primary: callers re-read it on
    failure instead of assuming.
    """
    with doing("promoting", peer):
        promote_and_wait(conn, timeout)
    report.mark("promoted")
    report.done("promoted %s (pg_promote)" % describe(peer))
    with doing("resetting the fence inherited by the new primary", peer):
        unfenced = ensure_writable(conn)
    report.mark("writable")
    if unfenced:
        report.done("reset the read-only fence %s inherited" % describe(peer))
    if checkpoint:
        # After writes resume: pg_rewind of the old primary needs the new timeline's checkpoint.
        with doing("CHECKPOINT on the new primary", peer):
            conn.execute("CHECKPOINT")
        report.done("CHECKPOINT on %s" % describe(peer))
    report.mark("checkpoint")
    return unfenced


def promote_standby(conn, peer, report, timeout, checkpoint, application_name):
    """`promote_until_writable`, then the new timeline: (unfenced, timeline).

    On failure the report leaves what the server is now (read through a new session): the
    promotion may have taken effect.
    """
    try:
        unfenced = promote_until_writable(conn, peer, report, timeout, checkpoint)
        with doing("reading the new timeline", peer):
            return unfenced, timeline(conn, False)
    except Exception:
        report.leaves("The promotion may have taken effect; now: %s."
                      % server_state(peer, application_name)[1])
        raise


def server_state(peer, application_name):
    """What a server is now, read through a new session; never raises.

    (kind, sentence): kind is 'standby', 'fenced', 'writable', or None when it cannot be read.
    """
    address = describe(peer)
    try:
        with connect(peer, application_name) as conn:
            if in_recovery(conn):
                return "standby", "%s is a standby (in recovery)" % address
            if read_only_setting(conn):
                return "fenced", "%s is a primary fenced read-only" % address
            return "writable", "%s is a writable primary" % address
    except Exception as exc:  # pylint: disable=broad-except  # a report, not a decision
        return None, "%s cannot be read now (%s)" % (address, (str(exc).splitlines() or ["?"])[0])


def wait_streaming(peer, timeout, application_name="failsafe.standby"):
    """Wait until a (re)started standby streams: (True, status) or (False, last status seen)."""
    deadline = time.monotonic() + timeout
    last = "not started"
    while time.monotonic() < deadline:
        conn, reason = try_connect(peer, application_name)
        if conn is None:
            last = reason
        else:
            with conn:
                with doing("waiting for the node to stream", peer):
                    status = scalar(conn, "SELECT status FROM pg_stat_wal_receiver")
                    if status == "streaming" and in_recovery(conn):
                        return True, status
                last = status or "no WAL receiver"
        time.sleep(0.1)
    return False, last
