# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a PostgreSQL failover decision rests on, read without changing anything.

LSN arithmetic, the replication facts of one server, probes of an old primary, the fence's
age, timeline histories (does a node need a rewind?) and the data-loss window of a standby
whose primary is gone.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    DRIVER_ERRORS,
    describe,
    try_connect,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_sync import (
    SyncNamesError,
    commit_wait,
)

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


def furthest_lsn(*lsns):
    """The furthest of the known positions (None when none is known).

    A standby's received position can be below its replayed one (after a restart it counts
    from the segment it streams again): take the furthest of both as its WAL.
    """
    known = [lsn for lsn in lsns if lsn is not None]
    return max(known, key=lsn_to_int) if known else None


def seconds(interval):
    """An interval (datetime.timedelta) as float seconds; None stays None."""
    if interval is None:
        return None
    return round(interval.total_seconds(), 6)


def iso(value):
    return value.isoformat() if value is not None else None


_PASSWORD_IN_CONNINFO = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def mask_conninfo(conninfo):
    """Hide password=... in a connection string, quoted values included."""
    if not conninfo:
        return conninfo
    return _PASSWORD_IN_CONNINFO.sub(r"\1********", conninfo)


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
    facts["lag_seconds"] = replay_delay(facts)
    facts["slots"] = slots(conn, facts["current_lsn"] or facts["replayed_lsn"])
    facts.update(sync_facts(conn, facts["standbys"], recovering))
    return facts


def replay_delay(facts):
    """How far a standby's replay is behind in seconds: 0 when it has replayed all it received,
    else the time since the last transaction it replayed (None on a primary, or when it has
    replayed none). Its primary's lag_bytes tells what it has not received yet."""
    if not facts["in_recovery"]:
        return None
    if facts["replay_lag_bytes"] == 0:
        return 0.0
    seconds_behind = facts["seconds_since_last_replay"]
    return None if seconds_behind is None else round(max(0.0, seconds_behind), 3)


def sync_facts(conn, standbys_found, recovering):
    """synchronous_standby_names, synchronous_commit and whether commits block now."""
    row = conn.execute(
        "SELECT current_setting('synchronous_standby_names') AS names,"
        " current_setting('synchronous_commit') AS sync_commit").fetchone()
    try:
        wait = commit_wait(row["names"], standbys_found, recovering)
    except SyncNamesError:
        wait = dict(blocked=None, missing=None)
    return dict(synchronous_standby_names=row["names"], synchronous_commit=row["sync_commit"],
                sync_blocked=wait["blocked"], sync_missing=wait["missing"])


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


def probe_old_primary(peer, application_name):
    """What can be seen of the old primary: never raises for an unreachable server."""
    if peer is None:
        return dict(given=False, reachable=False, address=None, role=None, read_only=None,
                    flush_lsn=None, unreachable_reason="no primary connection given")
    conn, reason = try_connect(peer, application_name)
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


def fence_age(conn):
    """Since when a server's fence has been in its postgresql.auto.conf, if that is where it is.

    dict(since=ISO time or None, seconds=float or None, source=where the setting comes from);
    pg_stat_file needs a superuser (or pg_read_server_files): otherwise `since` is None.
    """
    row = conn.execute(
        "SELECT source, sourcefile FROM pg_settings WHERE name = 'default_transaction_read_only'"
    ).fetchone()
    source = row["sourcefile"] or row["source"]
    age = dict(since=None, seconds=None, source=source)
    if not (row["sourcefile"] or "").endswith("postgresql.auto.conf"):
        return age
    try:
        stat = conn.execute(
            "SELECT modification,"
            " extract(epoch FROM clock_timestamp() - modification)::float8 AS seconds"
            " FROM pg_stat_file('postgresql.auto.conf', true)").fetchone()
    except DRIVER_ERRORS:
        return age
    if stat and stat["modification"] is not None:
        age.update(since=iso(stat["modification"]), seconds=round(stat["seconds"], 3))
    return age


# Timelines: does a node need a rewind? -------------------------------------------------------

def parse_timeline_history(text):
    """[(parent timeline, switch point LSN)] of a timeline history file, oldest first."""
    history = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0].startswith("#"):
            continue
        history.append((int(fields[0]), fields[1]))
    return history


def timeline_history(conn, tli):
    """The server's history of timeline `tli` ([] for timeline 1); None when it cannot be read
    (pg_read_file needs a superuser or pg_read_server_files)."""
    if tli <= 1:
        return []
    try:
        text = scalar(conn, "SELECT pg_read_file(%s)", ("pg_wal/%08X.history" % tli,))
    except DRIVER_ERRORS:
        return None
    return parse_timeline_history(text)


def rewind_needed(node_timeline, node_end_lsn, primary_timeline, primary_history):
    """Whether a node's WAL went past the point where the primary's history left it.

    True: pg_rewind must rewind it; False: it can follow the primary as it is; None: unknown
    (pg_rewind decides). `node_end_lsn` is where the node's WAL ends (its received or replayed
    position, whichever is further), `primary_history` the primary's timeline history.
    """
    if node_timeline is None or node_end_lsn is None:
        return None
    if node_timeline == primary_timeline:
        return False
    if primary_history is None:
        return None
    for tli, switchpoint in primary_history:
        if tli == node_timeline:
            return not lsn_at_least(switchpoint, node_end_lsn)
    return True  # the node's timeline is not an ancestor of the primary's


# Data loss of a standby whose primary is gone --------------------------------------------------

# A log line's timestamp: log_line_prefix %m or %t ("2024-05-01 12:00:00.123 UTC").
_LOG_TIMESTAMP = re.compile(
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: [A-Za-z][A-Za-z0-9+:/_-]*|[+-]\d\d(?::?\d\d)?)?)")

# What the WAL receiver logs when it starts streaming and when its connection ends.
_RECEIVER_EVENTS = (
    ("started streaming WAL from primary", "streaming"),
    ("restarted WAL streaming", "streaming"),
    ("could not receive data from WAL stream", "closed"),
    ("replication terminated by primary server", "closed"),
    ("terminating walreceiver due to timeout", "timeout"),
    ("terminating walreceiver process due to administrator command", "stopped"),
)


def receiver_events(log_text):
    """[(timestamp text or None, kind, line)] of the WAL receiver's lines, oldest first."""
    events = []
    for line in (log_text or "").splitlines():
        for marker, kind in _RECEIVER_EVENTS:
            if marker in line:
                match = _LOG_TIMESTAMP.search(line.split(marker, 1)[0])
                events.append((match.group(1) if match else None, kind, line.strip()))
                break
    return events


def connection_loss(events):
    """The event that ended the last streaming session, or None (still streaming, or unknown)."""
    start = 0
    for index, event in enumerate(events):
        if event[1] == "streaming":
            start = index + 1
    for event in events[start:]:
        if event[1] != "streaming":
            return event
    return None


def _latest(*moments):
    known = [m for m in moments if m is not None]
    return max(known) if known else None


def _at(moment):
    return moment.isoformat() if moment is not None else "an unknown time"


def loss_window(now, last_commit, last_message, lost_at, lost_how, receiver_timeout):
    """How many seconds of writes a standby may miss, on the best basis available.

    All moments are aware datetimes or None: `now` (the standby's clock), `last_commit` (commit
    time of its last replayed transaction), `last_message` (its WAL receiver's last message,
    while one still runs), `lost_at` (when its log says the connection ended). `lost_how`:
    'closed' (the primary ended the connection: it stopped or crashed then), 'timeout' (the
    standby heard nothing for `receiver_timeout` seconds) or None.

    The window never grows with the time the operator takes to react, except where the primary
    may still be accepting writes unseen (connected, timed out, or nothing known): then it runs
    until now and says so.
    """
    timeout = datetime.timedelta(seconds=receiver_timeout or 0)
    if last_message is not None:
        basis = "connected"
        last_contact, end = _latest(last_commit, last_message), now
        meaning = ("The standby's WAL receiver is still connected and last heard from the "
                   "primary at %s: writes after that may be missing, until now."
                   % _at(last_contact))
    elif lost_how == "closed" and lost_at is not None:
        basis = "connection closed"
        heard_by_timeout = lost_at - timeout if receiver_timeout else None
        last_contact, end = _latest(last_commit, heard_by_timeout), lost_at
        meaning = ("The primary closed the replication connection at %s (it stopped or crashed "
                   "then); the standby had heard from it at %s or later (its last replayed "
                   "commit, or wal_receiver_timeout before the end): only writes in between "
                   "may be missing." % (_at(lost_at), _at(last_contact)))
    elif lost_how == "timeout" and lost_at is not None:
        basis = "connection timed out"
        last_contact, end = (lost_at - timeout if receiver_timeout else last_commit), now
        meaning = ("The standby heard nothing from the primary after %s and dropped the "
                   "connection at %s: the primary may have gone on taking writes it never saw "
                   "(a network partition), so the window runs until now."
                   % (_at(last_contact), _at(lost_at)))
    else:
        basis = "since now"
        last_contact, end = last_commit, now
        meaning = ("When the standby lost the primary is not known (no WAL receiver, no log "
                   "line): the window runs from its last replayed commit (%s) until now and "
                   "grows while you wait. Give the standby's log_file for a better bound."
                   % _at(last_contact))
    window = None
    if last_contact is not None and end is not None:
        window = round(max(0.0, (end - last_contact).total_seconds()), 3)
    return dict(last_contact=last_contact, window_seconds_at_most=window, basis=basis,
                meaning=meaning)


# At most this much of the end of the standby's log is read.
LOG_TAIL_BYTES = 4 * 1024 * 1024


def read_log_tail(conn, log_file):
    """(text, path, None) of the end of the server's log, or (None, path, why not)."""
    path = log_file
    try:
        if not path:
            path = scalar(conn, "SELECT pg_current_logfile()")
        if not path:
            return None, None, ("no log file: give the node's log_file (inventory "
                                "failsafe_pg_log_file) or turn logging_collector on")
        size = scalar(conn, "SELECT size FROM pg_stat_file(%s)", (path,))
        offset = max(0, size - LOG_TAIL_BYTES)
        data = scalar(conn, "SELECT pg_read_binary_file(%s, %s, %s)",
                      (path, offset, size - offset))
    except DRIVER_ERRORS as exc:
        reason = (str(exc).strip().splitlines() or ["?"])[0]
        return None, path, "cannot read the log %s through SQL: %s" % (path, reason)
    return bytes(data).decode("utf-8", "replace"), path, None


def _log_time(conn, text):
    """A log timestamp as the server reads it (it knows its own zone abbreviations)."""
    if not text:
        return None
    try:
        return scalar(conn, "SELECT %s::timestamptz", (text,))
    except DRIVER_ERRORS:
        return None


def estimate_loss(conn, facts, log_file=None, primary_reachable=False):
    """What a standby may miss when its primary cannot be asked (see `loss_window`)."""
    row = conn.execute(
        "SELECT clock_timestamp() AS now,"
        " pg_last_xact_replay_timestamp() AS last_commit,"
        " (SELECT last_msg_receipt_time FROM pg_stat_wal_receiver"
        "   WHERE status = 'streaming') AS last_message,"
        " (SELECT setting::float8 / 1000 FROM pg_settings"
        "   WHERE name = 'wal_receiver_timeout') AS receiver_timeout"
    ).fetchone()
    lost = None
    log_text, log_path, log_note = read_log_tail(conn, log_file)
    if row["last_message"] is None and log_text is not None:
        lost = connection_loss(receiver_events(log_text))
    lost_at = _log_time(conn, lost[0]) if lost else None
    lost_how = lost[1] if lost else None
    window = loss_window(row["now"], row["last_commit"], row["last_message"], lost_at,
                         lost_how, row["receiver_timeout"])
    contact = window["last_contact"]
    return dict(
        bytes=None,
        primary_reachable=primary_reachable,
        received_lsn=facts.get("received_lsn"),
        replayed_lsn=facts.get("replayed_lsn"),
        last_replayed_commit=iso(row["last_commit"]),
        last_contact=iso(contact),
        connection_lost_at=iso(lost_at),
        connection_lost_line=lost[2] if lost else None,
        basis=window["basis"],
        meaning=window["meaning"],
        window_seconds_at_most=window["window_seconds_at_most"],
        seconds_since_last_contact=(round((row["now"] - contact).total_seconds(), 3)
                                    if contact is not None else None),
        seconds_since_last_replay=facts.get("seconds_since_last_replay"),
        log_file=log_path,
        log_note=log_note,
    )
