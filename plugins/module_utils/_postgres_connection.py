# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL connections: the one connection shape, connecting, and every driver error in words.

Every module takes each server it talks to as a dict of `PEER_SPEC` (the node it acts on as
``node``, others as ``primary``, ``standby`` or the entries of ``nodes``), the shape the
``failsafe.datastores.pg_conn`` filter builds from the inventory.

Driver errors are mapped in ONE place, `explain_error`: what failed, on which server, and why
in the operator's words. Wrap each statement (or group of statements) in `doing(...)`, which
raises `PostgresError` with that message; `explain_error` is also the last resort of
`Report.run`, so that no traceback reaches the operator.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback
from contextlib import contextmanager

PSYCOPG_IMPORT_ERROR = None
try:
    import psycopg
    from psycopg.rows import dict_row

    HAS_PSYCOPG = True
    DRIVER_ERRORS = (psycopg.Error,)
except ImportError:  # pragma: no cover - exercised by missing_required_lib
    psycopg = None
    dict_row = None
    HAS_PSYCOPG = False
    DRIVER_ERRORS = ()
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.failsafe.datastores.plugins.module_utils._report import (
    describe_exception,
)

# One server: the `node` a module acts on, and its `primary`, `standby` or `nodes` peers.
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
    log_file=dict(type="path"),
)


def peer_option(required=False):
    """A dict option describing one server (node=, primary=, standby=)."""
    return dict(type="dict", required=required, options=dict(PEER_SPEC))


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
# Texts of a connection that was open and is gone (the server stopped or crashed, another
# session terminated ours, or the network failed).
_LOST_CONNECTION_MARKERS = (
    "server closed the connection unexpectedly",
    "consuming input failed",
    "the connection is lost",
    "the connection is closed",
    "connection is bad",
    "ssl syscall error",
    "eof detected",
    "connection reset by peer",
    "broken pipe",
)


def _error_text(exc):
    return str(exc).strip() or exc.__class__.__name__


def _first_line(exc):
    return _error_text(exc).splitlines()[0].strip()


def is_unreachable(exc):
    """True only when every attempt libpq reports failed for a network/no-server reason."""
    lowered = _error_text(exc).lower()
    if any(marker in lowered for marker in _LIVE_SERVER_MARKERS):
        return False
    return any(marker in lowered for marker in _UNREACHABLE_MARKERS)


def explain_connect_error(peer, exc):
    """Map a connection error to a message that says what was wrong and what to do."""
    lowered = _error_text(exc).lower()
    text = _first_line(exc)
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


def _sqlstate(exc):
    return getattr(exc, "sqlstate", None) or ""


def driver_reason(exc, peer=None):
    """Why a statement failed, in words, with what to do where there is something to do."""
    text = _first_line(exc)
    sqlstate = _sqlstate(exc)
    lowered = _error_text(exc).lower()
    user = (peer or {}).get("user") or "the role"
    if sqlstate == "42501":
        return ("%s: the role %s lacks this privilege; connect as a superuser (or grant the "
                "privilege)" % (text, user))
    if sqlstate == "57P01" or "terminating connection due to administrator command" in lowered:
        return ("%s: another session terminated ours (pg_terminate_backend) or the server is "
                "shutting down" % text)
    if sqlstate in ("57P02", "57P03"):
        return "%s: the server is restarting" % text
    if sqlstate == "57014":
        return ("%s: statement_timeout (or pg_cancel_backend) cancelled it; raise "
                "statement_timeout for this role" % text)
    if sqlstate == "25006":
        return "%s: the server only accepts read-only transactions (a standby, or fenced)" % text
    if sqlstate.startswith("08") or any(m in lowered for m in _LOST_CONNECTION_MARKERS):
        return ("lost the connection (%s): the server stopped or crashed, another session "
                "terminated ours, or the network failed" % text)
    if sqlstate:
        return "%s (SQLSTATE %s)" % (text, sqlstate)
    return text


def explain_error(exc, peer=None, action=None):
    """Any exception as one sentence: what failed, on which server, and why.

    PostgresError is already phrased; driver errors get `driver_reason`; anything else is
    named by its class (the last resort: never a traceback).
    """
    if isinstance(exc, PostgresError):
        return str(exc)
    where = " on %s" % describe(peer) if peer else ""
    action = action or "a statement"
    if isinstance(exc, DRIVER_ERRORS):
        return "%s%s failed: %s" % (action, where, driver_reason(exc, peer))
    return "%s%s failed: %s" % (action, where, describe_exception(exc))


@contextmanager
def doing(action, peer):
    """Turn a driver error inside the block into PostgresError naming `action` and `peer`."""
    try:
        yield
    except DRIVER_ERRORS as exc:
        raise PostgresError(explain_error(exc, peer, action))


def connect(peer, application_name, autocommit=True):
    """Open a connection to one server; raise PostgresError with a clear message.

    `application_name` starts with ``failsafe.`` (pg_stat_activity and the server log name our
    sessions by it).
    """
    try:
        return _connect(peer, application_name, autocommit)
    except DRIVER_ERRORS as exc:
        raise PostgresError(explain_connect_error(peer, exc))


def _connect(peer, application_name, autocommit=True):
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


def try_connect(peer, application_name):
    """(connection, None) or (None, reason) when no server answers there at all.

    A live server that refuses us (authentication, pg_hba.conf, no free slot) raises, so that
    it is never mistaken for a dead primary.
    """
    try:
        return _connect(peer, application_name), None
    except DRIVER_ERRORS as exc:
        if is_unreachable(exc):
            return None, explain_connect_error(peer, exc)
        raise PostgresError(explain_connect_error(peer, exc))
