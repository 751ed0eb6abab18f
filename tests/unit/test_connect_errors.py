# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection error mapping, try_connect's unreachable/authentication split, mask_conninfo.

The driver messages below are verbatim psycopg 3.3 / libpq 15 texts (captured from a real
server); psycopg.connect is replaced, nothing connects.
"""

from __future__ import annotations

import psycopg
import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils import _postgres_connection
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    PostgresError,
    connect,
    explain_connect_error,
    try_connect,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import (
    mask_conninfo,
    probe_old_primary,
)

APP = "failsafe.test"

PASSWORD = "S3cret-Pa55word"

PEER = dict(host="10.0.1.10", port=5433, user="failover", password=PASSWORD, db="appdb",
            connect_timeout=3, ssl_mode="prefer", ca_cert=None)

_AT = 'connection failed: connection to server at "10.0.1.10", port 5433 failed: '
PASSWORD_FAILED = _AT + 'FATAL:  password authentication failed for user "failover"'
NO_PASSWORD = _AT + "fe_sendauth: no password supplied"
DB_MISSING = _AT + 'FATAL:  database "appdb" does not exist'
ROLE_MISSING = _AT + 'FATAL:  role "failover" does not exist'
REFUSED = (_AT + "Connection refused\n"
           "\tIs the server running on that host and accepting TCP/IP connections?")
TIMEOUT = "connection timeout expired"
DNS = "failed to resolve host 'pg-east.invalid': [Errno -2] Name or service not known"
NO_HBA_ENTRY = (_AT + 'FATAL:  no pg_hba.conf entry for host "10.0.2.10", user "failover", '
                'database "appdb", no encryption')
HBA_REJECT = (_AT + 'FATAL:  pg_hba.conf rejects connection for host "10.0.2.10", user '
              '"failover", database "appdb", no encryption')
TOO_MANY = _AT + "FATAL:  sorry, too many clients already"
# psycopg >= 3.2 tries every address of a host name in turn and reports the *last* failure
# first, then all of them: here the first address answered "wrong password".
MULTI_ATTEMPT = (
    'connection failed: connection to server at "10.0.1.11", port 5433 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?\n"
    "Multiple connection attempts failed. All failures were:\n"
    "- host: 'pg-east', port: '5433', hostaddr: '10.0.1.10': " + PASSWORD_FAILED + "\n"
    "- host: 'pg-east', port: '5433', hostaddr: '10.0.1.11': connection failed: connection to "
    'server at "10.0.1.11", port 5433 failed: Connection refused\n'
    "\tIs the server running on that host and accepting TCP/IP connections?"
)


def raising(text, cls=psycopg.OperationalError):
    def fake_connect(**kwargs):
        raise cls(text)
    return fake_connect


# explain_connect_error --------------------------------------------------------------------------

@pytest.mark.parametrize("text", [PASSWORD_FAILED, NO_PASSWORD])
def test_authentication_failure_message(text):
    msg = explain_connect_error(PEER, psycopg.OperationalError(text))
    assert msg.startswith("authentication failed at 10.0.1.10:5433 as user failover")
    assert "check the user and password" in msg
    assert PASSWORD not in msg


def test_no_message_ever_contains_the_password():
    for text in (PASSWORD_FAILED, NO_PASSWORD, DB_MISSING, ROLE_MISSING, REFUSED, TIMEOUT, DNS,
                 NO_HBA_ENTRY, HBA_REJECT, TOO_MANY, MULTI_ATTEMPT, ""):
        assert PASSWORD not in explain_connect_error(PEER, psycopg.OperationalError(text))


@pytest.mark.parametrize("text", [REFUSED, TIMEOUT])
def test_unreachable_message(text):
    msg = explain_connect_error(PEER, psycopg.OperationalError(text))
    assert msg.startswith("cannot reach PostgreSQL at 10.0.1.10:5433 as user failover: ")
    # Only the first line of the driver's text: no hint lines, no tabs.
    assert "\n" not in msg and "Is the server running" not in msg


def test_refused_message_keeps_the_driver_reason():
    msg = explain_connect_error(PEER, psycopg.OperationalError(REFUSED))
    assert msg.endswith('port 5433 failed: Connection refused')


def test_missing_database_message():
    msg = explain_connect_error(PEER, psycopg.OperationalError(DB_MISSING))
    assert msg == "database appdb does not exist at 10.0.1.10:5433 as user failover: set the db option"


def test_other_errors_name_the_server_and_the_reason():
    msg = explain_connect_error(PEER, psycopg.OperationalError(DNS))
    assert msg.startswith("cannot connect to PostgreSQL at 10.0.1.10:5433 as user failover: ")
    assert "Name or service not known" in msg


def test_empty_driver_text_falls_back_to_the_class_name():
    msg = explain_connect_error(PEER, psycopg.OperationalError(""))
    assert msg == "cannot connect to PostgreSQL at 10.0.1.10:5433 as user failover: OperationalError"


# connect / try_connect ----------------------------------------------------------------------------

def test_connect_passes_the_options_to_the_driver(monkeypatch):
    seen = {}

    def fake_connect(**kwargs):
        seen.update(kwargs)
        return "conn"

    monkeypatch.setattr(psycopg, "connect", fake_connect)
    assert connect(dict(PEER, ca_cert="/etc/ca.pem", ssl_mode="verify-full"),
                   application_name="test.app") == "conn"
    assert seen["host"] == "10.0.1.10" and seen["port"] == 5433 and seen["user"] == "failover"
    assert seen["password"] == PASSWORD and seen["dbname"] == "appdb"
    assert seen["connect_timeout"] == 3 and seen["sslmode"] == "verify-full"
    assert seen["sslrootcert"] == "/etc/ca.pem" and seen["application_name"] == "test.app"
    assert seen["autocommit"] is True


def test_connect_without_password_lets_libpq_use_pgpass(monkeypatch):
    seen = {}
    monkeypatch.setattr(psycopg, "connect", lambda **kwargs: seen.update(kwargs))
    connect(dict(PEER, password=None, db=None), APP)
    assert "password" not in seen and "sslrootcert" not in seen
    assert seen["dbname"] == "postgres"


def test_connect_raises_postgres_error_with_the_mapped_message(monkeypatch):
    monkeypatch.setattr(psycopg, "connect", raising(PASSWORD_FAILED))
    with pytest.raises(PostgresError, match="^authentication failed at 10.0.1.10:5433"):
        connect(PEER, APP)


@pytest.mark.parametrize("text", [PASSWORD_FAILED, NO_PASSWORD, DB_MISSING, ROLE_MISSING])
def test_try_connect_raises_authentication_and_naming_errors(monkeypatch, text):
    """A wrong password must never be mistaken for a dead primary."""
    monkeypatch.setattr(psycopg, "connect", raising(text))
    with pytest.raises(PostgresError):
        try_connect(PEER, APP)


@pytest.mark.parametrize("text, cls", [
    (REFUSED, psycopg.OperationalError),
    (TIMEOUT, psycopg.errors.ConnectionTimeout),
])
def test_try_connect_reports_unreachable(monkeypatch, text, cls):
    monkeypatch.setattr(psycopg, "connect", raising(text, cls))
    conn, reason = try_connect(PEER, APP)
    assert conn is None
    assert "10.0.1.10:5433" in reason
    assert PASSWORD not in reason


def test_try_connect_returns_the_connection(monkeypatch):
    monkeypatch.setattr(psycopg, "connect", lambda **kwargs: "conn")
    assert try_connect(PEER, APP) == ("conn", None)


@pytest.mark.parametrize("text", [
    pytest.param(NO_HBA_ENTRY, id="no-pg_hba-entry"),
    pytest.param(HBA_REJECT, id="pg_hba-rejects"),
    pytest.param(TOO_MANY, id="too-many-clients"),
    pytest.param(MULTI_ATTEMPT, id="multi-address"),
    # A name that does not resolve is more often a typo than a dead region: refuse rather
    # than let promote skip the split-brain check.
    pytest.param(DNS, id="unresolvable-name"),
])
def test_try_connect_does_not_call_a_live_server_unreachable(monkeypatch, text):
    """The server answered (and refused us): that is not a dead primary."""
    monkeypatch.setattr(psycopg, "connect", raising(text))
    with pytest.raises(PostgresError):
        try_connect(PEER, APP)


# probe_old_primary (unreachable paths only) ---------------------------------------------------------

def test_probe_without_primary():
    old = probe_old_primary(None, APP)
    assert old["given"] is False and old["reachable"] is False and old["address"] is None


def test_probe_unreachable_primary(monkeypatch):
    monkeypatch.setattr(psycopg, "connect", raising(REFUSED))
    old = probe_old_primary(PEER, APP)
    assert old["given"] is True and old["reachable"] is False
    assert old["address"] == "10.0.1.10:5433"
    assert old["unreachable_reason"].startswith("cannot reach PostgreSQL at 10.0.1.10:5433")


def test_probe_with_wrong_password_fails_instead_of_reporting_unreachable(monkeypatch):
    monkeypatch.setattr(psycopg, "connect", raising(PASSWORD_FAILED))
    with pytest.raises(PostgresError, match="authentication failed"):
        probe_old_primary(PEER, APP)


def test_module_uses_psycopg_connect():
    # The monkeypatching above only works if the helper calls psycopg.connect at call time.
    assert _postgres_connection.psycopg is psycopg


# mask_conninfo ---------------------------------------------------------------------------------------

def test_mask_conninfo_hides_the_password():
    masked = mask_conninfo("host=10.0.1.10 port=5432 user=replicator password=%s "
                           "application_name=us_west" % PASSWORD)
    assert PASSWORD not in masked
    assert masked == ("host=10.0.1.10 port=5432 user=replicator password=******** "
                      "application_name=us_west")


def test_mask_conninfo_leaves_others_alone():
    assert mask_conninfo(None) is None
    assert mask_conninfo("") == ""
    text = "host=10.0.1.10 port=5432 user=replicator"
    assert mask_conninfo(text) == text
    # The server's own mask is kept as is.
    assert mask_conninfo("user=r password=********") == "user=r password=********"


def test_mask_conninfo_hides_a_quoted_password_with_spaces():
    masked = mask_conninfo("host=h password='correct horse battery' user=r")
    assert "horse" not in masked and "battery" not in masked
