# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared PostgreSQL helpers: connection options, error mapping, LSN arithmetic, node queries.

Private to the collection (leading underscore): modules import it, users do not.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time
import traceback

PSYCOPG_IMPORT_ERROR = None
try:
    import psycopg
    from psycopg.rows import dict_row

    HAS_PSYCOPG = True
except ImportError:  # pragma: no cover - exercised by missing_required_lib
    psycopg = None
    dict_row = None
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import missing_required_lib

# Options of one server, used flat (login_*) for the node a module acts on and as the
# sub-options of a peer dict (primary=, standby=).
PEER_SPEC = dict(
    host=dict(type="str", required=True),
    port=dict(type="int", default=5432),
    user=dict(type="str", default="postgres"),
    password=dict(type="str", no_log=True),
    db=dict(type="str", default="postgres"),
    connect_timeout=dict(type="int", default=5),
    ssl_mode=dict(
        type="str", default="prefer",
        choices=["allow", "disable", "prefer", "require", "verify-ca", "verify-full"],
    ),
    ca_cert=dict(type="path"),
)


# The flat names of the PEER_SPEC options that differ.
_LOGIN_NAMES = dict(host="login_host", port="login_port", user="login_user",
                    password="login_password", db="login_db")


def login_argument_spec():
    """The flat connection options of the node the module acts on (doc fragment `postgresql`)."""
    return dict((_LOGIN_NAMES.get(name, name), dict(spec)) for name, spec in PEER_SPEC.items())


def peer_option(required=False):
    """A dict option describing another server (primary=, standby=)."""
    return dict(type="dict", required=required, options=dict(PEER_SPEC))


def login_params(params):
    """The flat login_* options as a peer dict."""
    return dict((name, params[_LOGIN_NAMES.get(name, name)]) for name in PEER_SPEC)


def ensure_driver(module):
    if not HAS_PSYCOPG:
        module.fail_json(msg=missing_required_lib("psycopg (version 3)"),
                         exception=PSYCOPG_IMPORT_ERROR)


class PostgresError(Exception):
    """A failure already phrased for the operator: what was found and what to do."""


def describe(peer):
    return "%s:%s" % (peer["host"], peer["port"])


# libpq texts that mean "no server is serving there"; anything else (authentication, pg_hba,
# too many clients, ...) comes from a live server and must never pass for a dead one.
_UNREACHABLE_MARKERS = (
    "connection refused",
    "timeout expired",
    "no route to host",
    "network is unreachable",
    "server closed the connection unexpectedly",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "connection timed out",
)
_LIVE_SERVER_MARKERS = (
    "password authentication failed",
    "no password supplied",
    "pg_hba.conf",
    "too many clients",
    "remaining connection slots",
    "does not exist",
    "permission denied",
    "authentication failed",
    "certificate",
    "ssl",
)


def _error_text(exc):
    return str(exc).strip() or exc.__class__.__name__


def is_unreachable(exc):
    """True only when every attempt libpq reports failed for a network/no-server reason."""
    lowered = _error_text(exc).lower()
    if any(marker in lowered for marker in _LIVE_SERVER_MARKERS):
        return False
    return any(marker in lowered for marker in _UNREACHABLE_MARKERS)


def explain_connect_error(peer, exc):
    """Map a driver error to a message that says what was wrong and what to do."""
    full = _error_text(exc)
    lowered = full.lower()
    text = full.splitlines()[0].strip()
    where = "%s as user %s" % (describe(peer), peer["user"])
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return ("authentication failed at %s: check the user and password "
                "(the password was not shown)" % where)
    if "pg_hba.conf" in lowered:
        return ("the server at %s refused the connection by its pg_hba.conf: allow this host "
                "and user there, or check the user: %s" % (where, text))
    if "does not exist" in lowered and "database" in lowered:
        return "database %s does not exist at %s: set the db option" % (peer["db"], where)
    if "too many clients" in lowered or "remaining connection slots" in lowered:
        return ("the server at %s is up but has no free connection slot: %s (terminate idle "
                "sessions or raise max_connections)" % (where, text))
    if is_unreachable(exc):
        return "cannot reach PostgreSQL at %s: %s" % (where, text)
    return "cannot connect to PostgreSQL at %s: %s" % (where, text)


def connect(peer, autocommit=True, application_name="failsafe.datastores"):
    """Open a connection to one server; raise PostgresError with a clear message."""
    try:
        return _connect(peer, autocommit, application_name)
    except psycopg.Error as exc:
        raise PostgresError(explain_connect_error(peer, exc))


def _connect(peer, autocommit=True, application_name="failsafe.datastores"):
    kwargs = dict(
        host=peer["host"],
        port=peer["port"],
        user=peer["user"],
        dbname=peer.get("db") or "postgres",
        connect_timeout=peer.get("connect_timeout") or 5,
        sslmode=peer.get("ssl_mode") or "prefer",
        application_name=application_name,
        autocommit=autocommit,
        row_factory=dict_row,
    )
    if peer.get("password") is not None:
        kwargs["password"] = peer["password"]
    if peer.get("ca_cert"):
        kwargs["sslrootcert"] = peer["ca_cert"]
    return psycopg.connect(**kwargs)


def try_connect(peer, application_name="failsafe.datastores"):
    """(connection, None) or (None, reason) when no server answers there at all.

    A live server that refuses us (authentication, pg_hba.conf, no free slot) raises, so that
    it is never mistaken for a dead primary.
    """
    try:
        return _connect(peer, application_name=application_name), None
    except psycopg.Error as exc:
        if is_unreachable(exc):
            return None, explain_connect_error(peer, exc)
        raise PostgresError(explain_connect_error(peer, exc))


# LSN arithmetic -----------------------------------------------------------------------------

_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")


def lsn_to_int(lsn):
    """'16/B374D848' -> 0x16B374D848. None stays None."""
    if lsn is None:
        return None
    text = str(lsn)
    match = _LSN.match(text)
    if not match:
        raise ValueError("not a PostgreSQL LSN: %r" % (text,))
    return (int(match.group(1), 16) << 32) + int(match.group(2), 16)


def int_to_lsn(value):
    if value is None:
        return None
    return "%X/%X" % (value >> 32, value & 0xFFFFFFFF)


def lsn_diff(ahead, behind):
    """Bytes by which `ahead` is past `behind` (never negative); None if either is unknown."""
    a, b = lsn_to_int(ahead), lsn_to_int(behind)
    if a is None or b is None:
        return None
    return max(0, a - b)


def lsn_at_least(lsn, target):
    a, b = lsn_to_int(lsn), lsn_to_int(target)
    return a is not None and b is not None and a >= b


def seconds(interval):
    """An interval (datetime.timedelta) as float seconds; None stays None."""
    if interval is None:
        return None
    return round(interval.total_seconds(), 6)


# Node queries --------------------------------------------------------------------------------

def scalar(conn, query, params=None):
    row = conn.execute(query, params).fetchone()
    if row is None:
        return None
    return list(row.values())[0]


def in_recovery(conn):
    return bool(scalar(conn, "SELECT pg_is_in_recovery()"))


def read_only_setting(conn):
    """The server-wide default (as a session opened now sees it)."""
    return scalar(conn, "SELECT current_setting('default_transaction_read_only')") == "on"


def system_identifier(conn):
    return str(scalar(conn, "SELECT system_identifier FROM pg_control_system()"))


def timeline(conn, recovering):
    if not recovering:
        walfile = scalar(conn, "SELECT pg_walfile_name(pg_current_wal_lsn())")
        return int(walfile[:8], 16)
    tli = scalar(conn, "SELECT received_tli FROM pg_stat_wal_receiver")
    if tli:
        return int(tli)
    return int(scalar(conn, "SELECT timeline_id FROM pg_control_checkpoint()"))


def wal_receiver(conn):
    row = conn.execute(
        "SELECT status, sender_host, sender_port, slot_name, received_tli,"
        " latest_end_lsn::text AS latest_end_lsn,"
        " last_msg_receipt_time,"
        " extract(epoch FROM clock_timestamp() - last_msg_receipt_time)::float8"
        "   AS seconds_since_last_message,"
        " conninfo"
        " FROM pg_stat_wal_receiver"
    ).fetchone()
    if row is None:
        return None
    row = dict(row)
    row["last_msg_receipt_time"] = iso(row["last_msg_receipt_time"])
    row["conninfo"] = mask_conninfo(row.get("conninfo"))
    return row


def iso(value):
    return value.isoformat() if value is not None else None


_PASSWORD_IN_CONNINFO = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def mask_conninfo(conninfo):
    """Hide password=... in a connection string, quoted values included."""
    if not conninfo:
        return conninfo
    return _PASSWORD_IN_CONNINFO.sub(r"\1********", conninfo)


def replication_facts(conn):
    """The facts a failover decision needs, from one server (primary or standby)."""
    recovering = in_recovery(conn)
    facts = dict(
        role="standby" if recovering else "primary",
        in_recovery=recovering,
        server_version=scalar(conn, "SHOW server_version"),
        server_version_num=int(scalar(conn, "SHOW server_version_num")),
        system_identifier=system_identifier(conn),
        timeline=timeline(conn, recovering),
        read_only=read_only_setting(conn),
        cluster_name=scalar(conn, "SHOW cluster_name") or None,
    )
    if recovering:
        row = conn.execute(
            "SELECT pg_last_wal_receive_lsn()::text AS received_lsn,"
            " pg_last_wal_replay_lsn()::text AS replayed_lsn,"
            " pg_last_xact_replay_timestamp() AS last_replay_time,"
            " extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8"
            "   AS seconds_since_last_replay,"
            " pg_get_wal_replay_pause_state() AS replay_pause_state"
        ).fetchone()
        facts.update(
            current_lsn=None,
            flush_lsn=None,
            received_lsn=row["received_lsn"],
            replayed_lsn=row["replayed_lsn"],
            replay_lag_bytes=lsn_diff(row["received_lsn"], row["replayed_lsn"]),
            last_replay_time=iso(row["last_replay_time"]),
            seconds_since_last_replay=row["seconds_since_last_replay"],
            replay_paused=row["replay_pause_state"] != "not paused",
            wal_receiver=wal_receiver(conn),
            standbys=[],
        )
    else:
        row = conn.execute(
            "SELECT pg_current_wal_lsn()::text AS current_lsn,"
            " pg_current_wal_flush_lsn()::text AS flush_lsn"
        ).fetchone()
        facts.update(
            current_lsn=row["current_lsn"],
            flush_lsn=row["flush_lsn"],
            received_lsn=None,
            replayed_lsn=None,
            replay_lag_bytes=None,
            last_replay_time=None,
            seconds_since_last_replay=None,
            replay_paused=False,
            wal_receiver=None,
            standbys=standbys(conn, row["current_lsn"]),
        )
    facts["slots"] = slots(conn, facts["current_lsn"] or facts["replayed_lsn"])
    return facts


def standbys(conn, current_lsn):
    rows = conn.execute(
        "SELECT r.pid, r.application_name, host(r.client_addr) AS client_addr, r.state,"
        " r.sync_state, r.sync_priority,"
        " r.sent_lsn::text AS sent_lsn, r.write_lsn::text AS write_lsn,"
        " r.flush_lsn::text AS flush_lsn, r.replay_lsn::text AS replay_lsn,"
        " r.write_lag, r.flush_lag, r.replay_lag, r.reply_time, s.slot_name"
        " FROM pg_stat_replication r"
        " LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid"
        " ORDER BY r.application_name"
    ).fetchall()
    result = []
    for row in rows:
        result.append(dict(
            pid=row["pid"],
            application_name=row["application_name"],
            client_addr=row["client_addr"],
            state=row["state"],
            sync_state=row["sync_state"],
            sync_priority=row["sync_priority"],
            sent_lsn=row["sent_lsn"],
            write_lsn=row["write_lsn"],
            flush_lsn=row["flush_lsn"],
            replay_lsn=row["replay_lsn"],
            lag_bytes=lsn_diff(current_lsn, row["replay_lsn"] or row["flush_lsn"]),
            sent_lag_bytes=lsn_diff(current_lsn, row["sent_lsn"]),
            write_lag_seconds=seconds(row["write_lag"]),
            flush_lag_seconds=seconds(row["flush_lag"]),
            replay_lag_seconds=seconds(row["replay_lag"]),
            reply_time=iso(row["reply_time"]),
            slot_name=row["slot_name"],
        ))
    return result


def slots(conn, reference_lsn):
    rows = conn.execute(
        "SELECT slot_name, slot_type, active, restart_lsn::text AS restart_lsn, wal_status"
        " FROM pg_replication_slots ORDER BY slot_name"
    ).fetchall()
    result = []
    for row in rows:
        entry = dict(row)
        entry["retained_bytes"] = lsn_diff(reference_lsn, row["restart_lsn"])
        result.append(entry)
    return result


# Fencing -------------------------------------------------------------------------------------

def set_read_only(conn, on, timeout):
    """ALTER SYSTEM the default, reload, and wait until this session sees the new value.

    The postmaster re-reads the configuration before it signals the backends, so once this
    session sees the value every session opened from now on sees it too.
    """
    if on:
        conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
    else:
        conn.execute("ALTER SYSTEM RESET default_transaction_read_only")
    conn.execute("SELECT pg_reload_conf()")
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


# Sessions that may still hold the old setting: client backends that were opened before the
# configuration was last loaded (other sessions see the current default).
STALE_SESSIONS_QUERY = (
    "SELECT pid, usename, datname, application_name, host(client_addr) AS client_addr, state,"
    " backend_start"
    " FROM pg_stat_activity"
    " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    "{older}{exclude}"
    " ORDER BY pid"
)


def stale_sessions(conn, exclude_users, include_all=False):
    """Client sessions that may still write; include_all before a reload that is still to come."""
    older = "" if include_all else " AND backend_start < pg_conf_load_time()"
    exclude = ""
    params = None
    if exclude_users:
        exclude = " AND NOT (usename = ANY(%s))"
        params = (list(exclude_users),)
    rows = conn.execute(STALE_SESSIONS_QUERY.format(older=older, exclude=exclude), params).fetchall()
    result = []
    for row in rows:
        entry = dict(row)
        entry["backend_start"] = iso(entry["backend_start"])
        result.append(entry)
    return result


def terminate_sessions(conn, sessions, wait_ms=5000):
    """pg_terminate_backend with a timeout waits until each backend has exited (PG >= 14)."""
    terminated = []
    for session in sessions:
        done = scalar(conn, "SELECT pg_terminate_backend(%s, %s)", (session["pid"], wait_ms))
        if done:
            terminated.append(session)
    return terminated


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


class Timer:
    """Named monotonic marks, reported as seconds since the first."""

    def __init__(self):
        self.start = time.monotonic()
        self.marks = {}

    def mark(self, name):
        self.marks[name] = time.monotonic()
        return self.marks[name]

    def between(self, first, last):
        """Seconds from mark `first` (None: the start) to mark `last`; None if not reached."""
        begin = self.start if first is None else self.marks.get(first)
        if begin is None or last not in self.marks:
            return None
        return round(self.marks[last] - begin, 6)

    def report(self, steps):
        """{name: seconds} for steps given as (name, first_mark, last_mark), plus the total."""
        result = dict((name, self.between(first, last)) for name, first, last in steps)
        result["total"] = self.since_start()
        return result

    def since_start(self):
        return round(time.monotonic() - self.start, 6)


# Old primary and split brain -----------------------------------------------------------------

def probe_old_primary(peer):
    """What can be seen of the old primary: never raises for an unreachable server."""
    if peer is None:
        return dict(given=False, reachable=False, address=None, role=None, read_only=None,
                    flush_lsn=None, unreachable_reason="no primary connection given")
    conn, reason = try_connect(peer)
    if conn is None:
        return dict(given=True, reachable=False, address=describe(peer), role=None,
                    read_only=None, flush_lsn=None, unreachable_reason=reason)
    with conn:
        recovering = in_recovery(conn)
        flush = None if recovering else scalar(conn, "SELECT pg_current_wal_flush_lsn()::text")
        return dict(given=True, reachable=True, address=describe(peer),
                    role="standby" if recovering else "primary",
                    read_only=read_only_setting(conn), flush_lsn=flush,
                    system_identifier=system_identifier(conn), unreachable_reason=None)


def split_brain_message(old, already=False):
    if already:
        return ("split brain: this server is already a primary and the old primary at %s is "
                "also a writable primary. Fence one of them now (postgresql_read_only) and "
                "rejoin it as a standby (postgresql_standby)" % old["address"])
    return ("the old primary at %s is reachable and still writable: promoting now would give "
            "two writable primaries (split brain). Nothing was changed. Fence it first "
            "(postgresql_read_only read_only=true), use postgresql_switchover for a planned "
            "switch, or, if it is fenced by other means, set require_fenced_primary=false"
            % old["address"])


def ensure_writable(conn, timeout=10):
    """Reset an inherited read-only fence on a (new) primary. Returns True if it did."""
    if not read_only_setting(conn):
        return False
    set_read_only(conn, False, timeout)
    return True


def loss_estimate(facts, primary_reachable=False):
    """What a standby may miss when its primary cannot be asked.

    `window_seconds_at_most` is the smaller of "since the standby last heard from the
    primary" and "since it last replayed a commit": writes after that may be lost. It is an
    upper bound (loose on an idle database); None when neither is known.
    """
    receiver = facts.get("wal_receiver") or {}
    candidates = [v for v in (receiver.get("seconds_since_last_message"),
                              facts.get("seconds_since_last_replay")) if v is not None]
    return dict(
        bytes=None,
        primary_reachable=primary_reachable,
        received_lsn=facts.get("received_lsn"),
        replayed_lsn=facts.get("replayed_lsn"),
        seconds_since_last_contact=receiver.get("seconds_since_last_message"),
        seconds_since_last_replay=facts.get("seconds_since_last_replay"),
        window_seconds_at_most=round(min(candidates), 3) if candidates else None,
    )


def promote_until_writable(conn, timer, timeout, checkpoint=True):
    """Promote, reset an inherited fence, then CHECKPOINT once writes are accepted.

    Marks 'promoted', 'writable' and 'checkpoint' on `timer`; returns whether a fence was reset.
    """
    promote_and_wait(conn, timeout)
    timer.mark("promoted")
    unfenced = ensure_writable(conn)
    timer.mark("writable")
    if checkpoint:
        # After writes resume: pg_rewind of the old primary needs the new timeline's checkpoint.
        conn.execute("CHECKPOINT")
    timer.mark("checkpoint")
    return unfenced
