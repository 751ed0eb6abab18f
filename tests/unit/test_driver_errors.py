# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Driver errors after the connection (module_utils/_postgres_connection.explain_error, doing):
what failed, on which server, and why, in words. Texts are those of psycopg 3.3 / PostgreSQL 15."""

from __future__ import annotations

import psycopg
import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    PostgresError,
    doing,
    explain_error,
)

PEER = dict(host="10.0.1.10", port=5432, user="failsafe_limited", password="S3cret")


@pytest.mark.parametrize("exc, words", [
    (psycopg.errors.InsufficientPrivilege(
        'permission denied to set parameter "default_transaction_read_only"'),
     'permission denied to set parameter "default_transaction_read_only": the role '
     "failsafe_limited lacks this privilege; connect as a superuser"),
    (psycopg.errors.InsufficientPrivilege("permission denied for function pg_promote"),
     "the role failsafe_limited lacks this privilege"),
    (psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
     "another session terminated ours (pg_terminate_backend) or the server is shutting down"),
    (psycopg.OperationalError("consuming input failed: terminating connection due to "
                              "administrator command\nserver closed the connection unexpectedly"),
     "another session terminated ours"),
    (psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
     "statement_timeout (or pg_cancel_backend) cancelled it"),
    (psycopg.OperationalError("consuming input failed: server closed the connection "
                              "unexpectedly\n\tThis probably means the server terminated "
                              "abnormally"),
     "lost the connection (consuming input failed: server closed the connection unexpectedly): "
     "the server stopped or crashed, another session terminated ours, or the network failed"),
    (psycopg.OperationalError("the connection is lost"), "lost the connection"),
    (psycopg.errors.ReadOnlySqlTransaction("cannot execute CHECKPOINT during recovery"),
     "only accepts read-only transactions"),
    (psycopg.errors.CannotConnectNow("the database system is shutting down"),
     "the server is restarting"),
    (psycopg.errors.UndefinedFunction("function pg_promote() does not exist"),
     "function pg_promote() does not exist (SQLSTATE 42883)"),
])
def test_driver_errors_say_what_where_and_why(exc, words):
    msg = explain_error(exc, PEER, "fencing the primary")
    assert msg.startswith("fencing the primary on 10.0.1.10:5432 failed: ")
    assert words in msg
    assert "\n" not in msg and "Traceback" not in msg and "S3cret" not in msg


def test_a_phrased_error_is_kept_as_is():
    assert explain_error(PostgresError("already phrased")) == "already phrased"


def test_anything_else_is_named_by_its_class_without_a_traceback():
    msg = explain_error(KeyError("received_lsn"))
    assert msg == "a statement failed: unexpected KeyError: 'received_lsn'"


def test_doing_turns_driver_errors_into_postgres_errors():
    with pytest.raises(PostgresError, match="^promoting on 10.0.1.10:5432 failed: permission"):
        with doing("promoting", PEER):
            raise psycopg.errors.InsufficientPrivilege("permission denied for function pg_promote")


def test_doing_leaves_other_exceptions_to_the_last_resort():
    with pytest.raises(ValueError):
        with doing("promoting", PEER):
            raise ValueError("a bug")
