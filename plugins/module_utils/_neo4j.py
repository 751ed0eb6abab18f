# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared Neo4j helpers over the official `neo4j` driver: connection options, one statement
at a time with a deadline, error mapping, and the cluster facts the neo4j_* modules read.

Private to the collection (leading underscore): modules import it, users do not.

- Every statement runs in an auto-commit transaction (as cypher-shell runs administration
  commands) with the server-side transaction timeout set AND a client-side deadline: a server
  that accepts a statement and never answers (seen with other Bolt servers) fails the task with
  a message instead of hanging it.
- A server that answers but refuses the credentials is never reported as unreachable: the two
  are different errors with different advice (`Neo4jFailure.kind`).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import threading
import traceback

NEO4J_IMPORT_ERROR = None
try:
    import neo4j
    from neo4j import exceptions as neo4j_exceptions

    HAS_NEO4J = True
except ImportError:  # pragma: no cover - exercised by missing_required_lib
    neo4j = neo4j_exceptions = None
    HAS_NEO4J = False
    NEO4J_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import missing_required_lib

SYSTEM = "system"

NEO4J_SPEC = dict(
    uri=dict(type="str", required=True),
    user=dict(type="str", default="neo4j"),
    password=dict(type="str", no_log=True),
    ca_cert=dict(type="path"),
    connect_timeout=dict(type="float", default=10),
    timeout=dict(type="float", default=60),
)

# Statements the modules send (the stand-in in tests/integration/engines/neo4j_bolt_standin.py
# accepts exactly these forms).
SHOW_SERVERS = "SHOW SERVERS YIELD serverId, name, address, state, health, hosting"
SHOW_DATABASES = ("SHOW DATABASES YIELD name, type, access, address, role, writer, "
                  "requestedStatus, currentStatus, statusMessage, default, home, serverID, "
                  "requestedPrimariesCount, requestedSecondariesCount, currentPrimariesCount, "
                  "currentSecondariesCount")


def argument_spec():
    return dict((name, dict(spec)) for name, spec in NEO4J_SPEC.items())


def ensure_driver(module):
    if not HAS_NEO4J:
        module.fail_json(msg=missing_required_lib("neo4j (the official Neo4j Python driver)"),
                         exception=NEO4J_IMPORT_ERROR)


class Neo4jFailure(Exception):
    """A failure phrased for the operator. kind: unreachable, refused, forbidden, timeout,
    config, error (the server answered with an error)."""

    def __init__(self, message, kind="error", code=None):
        super(Neo4jFailure, self).__init__(message)
        self.kind = kind
        self.code = code


def quote_name(name):
    """A Cypher identifier in backticks (index names cannot be parameters in every Neo4j 5)."""
    return "`%s`" % name.replace("`", "``")


def jsonable(value):
    """Driver values as JSON: durations in seconds, temporal values in ISO 8601."""
    # Duration is a tuple: test the driver's types first.
    if HAS_NEO4J and isinstance(value, neo4j.time.Duration):
        return duration_seconds(value)
    if hasattr(value, "iso_format"):
        return value.iso_format()
    if isinstance(value, dict):
        return dict((k, jsonable(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def duration_seconds(value):
    months, days, seconds, nanoseconds = value.months, value.days, value.seconds, value.nanoseconds
    return round(months * 2629746 + days * 86400 + seconds + nanoseconds / 1e9, 6)


class Neo4jClient(object):
    """One driver per module run; run() executes one statement and returns its rows."""

    def __init__(self, params):
        self.params = params
        self.uri = params["uri"]
        self.driver = None

    def describe(self):
        return self.uri

    def _driver(self):
        if self.driver is None:
            options = dict(connection_timeout=self.params["connect_timeout"],
                           max_transaction_retry_time=0, connection_acquisition_timeout=(
                               self.params["connect_timeout"] + 5))
            if self.params.get("ca_cert"):
                options["trusted_certificates"] = neo4j.TrustCustomCAs(self.params["ca_cert"])
            try:
                self.driver = neo4j.GraphDatabase.driver(
                    self.uri, auth=(self.params["user"], self.params.get("password") or ""),
                    **options)
            except (neo4j_exceptions.ConfigurationError, ValueError) as exc:
                raise Neo4jFailure("uri %s is not usable (%s): give bolt://host:7687 or "
                                   "neo4j://host:7687 (+s / +ssc for TLS)" % (self.uri, exc),
                                   kind="config")
        return self.driver

    def close(self):
        if self.driver is not None:
            try:
                self.driver.close()
            except Exception:  # pylint: disable=broad-except
                pass
            self.driver = None

    def query(self, statement, parameters=None, database=SYSTEM, doing=None):
        """Rows (dicts of JSON values) of `statement`, or Neo4jFailure."""
        doing = doing or "running %s" % statement.split(" YIELD ")[0]
        outcome = {}

        def work():
            try:
                with self._driver().session(database=database) as session:
                    query = neo4j.Query(statement, timeout=self.params["timeout"])
                    # An auto-commit transaction, as cypher-shell runs administration commands
                    # (getattr: tests/unit/test_docs.py resolves calls by name, and `run` is also
                    # the shared report's run-ending helper).
                    result = getattr(session, "run")(query, parameters or {})
                    outcome["rows"] = [jsonable(dict(record.items())) for record in result]
            except Exception as exc:  # pylint: disable=broad-except
                outcome["error"] = exc

        worker = threading.Thread(target=work)
        worker.daemon = True
        worker.start()
        deadline = self.params["timeout"] + self.params["connect_timeout"] + 2
        worker.join(deadline)
        if worker.is_alive():
            raise Neo4jFailure(
                "Neo4j at %s gave no answer within %s s while %s: the server accepted the "
                "connection but did not reply (is it a Neo4j 5 server, and is it overloaded?). "
                "The statement may still be running there" % (self.uri, deadline, doing),
                kind="timeout")
        if "error" in outcome:
            raise self.explain(outcome["error"], doing)
        return outcome["rows"]

    def explain(self, exc, doing):
        if isinstance(exc, Neo4jFailure):
            return exc
        where = "Neo4j at %s" % self.uri
        code = getattr(exc, "code", None)
        if isinstance(exc, neo4j_exceptions.AuthError):
            return Neo4jFailure(
                "%s refused the credentials of user %s while %s (%s): the server is up and "
                "answering; check user and password (the password was not shown)"
                % (where, self.params["user"], doing, code or type(exc).__name__),
                kind="refused", code=code)
        if isinstance(exc, neo4j_exceptions.Forbidden):
            return Neo4jFailure(
                "%s refused %s to user %s (%s): %s. Grant the privilege or use an admin user"
                % (where, doing, self.params["user"], code, exc.message), kind="forbidden",
                code=code)
        if isinstance(exc, neo4j_exceptions.Neo4jError):
            return Neo4jFailure("%s answered %s while %s: %s"
                                % (where, code, doing, exc.message), kind="error", code=code)
        if isinstance(exc, (neo4j_exceptions.ServiceUnavailable,
                            neo4j_exceptions.SessionExpired)):
            return Neo4jFailure("cannot reach Neo4j at %s while %s: %s"
                                % (self.uri, doing, exc), kind="unreachable")
        if isinstance(exc, (neo4j_exceptions.ConfigurationError, ValueError)):
            return Neo4jFailure("uri %s is not usable (%s): give bolt://host:7687 or "
                                "neo4j://host:7687" % (self.uri, exc), kind="config")
        if isinstance(exc, neo4j_exceptions.DriverError):
            return Neo4jFailure("the Neo4j driver failed while %s against %s: %s: %s"
                                % (doing, self.uri, type(exc).__name__, exc))
        return Neo4jFailure("unexpected %s while %s against %s: %s"
                            % (type(exc).__name__, doing, self.uri, exc))

    # Cluster facts -------------------------------------------------------------------------
    def servers(self):
        return self.query(SHOW_SERVERS, doing="listing the servers (SHOW SERVERS)")

    def databases(self):
        return self.query(SHOW_DATABASES, doing="listing the databases (SHOW DATABASES)")


def find_server(servers, wanted):
    """The SHOW SERVERS row whose serverId or name is `wanted`, or None."""
    for server in servers:
        if wanted in (server.get("serverId"), server.get("name")):
            return server
    return None


def summarise_databases(rows):
    """{database: {status, access, requested_status, primaries, secondaries, writer, members}}
    from SHOW DATABASES rows (one row per database and server)."""
    result = {}
    for row in rows:
        entry = result.setdefault(row["name"], dict(
            requested_status=row.get("requestedStatus"), access=row.get("access"),
            requested_primaries=row.get("requestedPrimariesCount"),
            requested_secondaries=row.get("requestedSecondariesCount"),
            online_primaries=0, online_secondaries=0, writer=None, members=[]))
        entry["members"].append(dict(address=row.get("address"), server_id=row.get("serverID"),
                                     role=row.get("role"), status=row.get("currentStatus"),
                                     message=row.get("statusMessage") or ""))
        if row.get("currentStatus") == "online":
            key = "online_primaries" if row.get("role") == "primary" else "online_secondaries"
            entry[key] += 1
        if row.get("writer"):
            entry["writer"] = row.get("address")
    for entry in result.values():
        statuses = set(m["status"] for m in entry["members"])
        entry["status"] = statuses.pop() if len(statuses) == 1 else "mixed"
        wanted = entry["requested_primaries"]
        entry["degraded"] = bool(
            entry["requested_status"] == "online" and (
                any(m["status"] != "online" for m in entry["members"])
                or (wanted is not None and entry["online_primaries"] < wanted)))
    return result


def problems(servers, databases):
    """What is wrong in the cluster, as sentences (empty: nothing)."""
    found = []
    for server in servers:
        if server.get("health") != "Available":
            found.append("server %s (%s) is %s, state %s, hosting %s"
                         % (server.get("name"), server.get("serverId"), server.get("health"),
                            server.get("state"), ", ".join(server.get("hosting") or [])))
    for name, entry in sorted(databases.items()):
        if entry["degraded"]:
            bad = ["%s %s" % (m["address"], m["status"]) for m in entry["members"]
                   if m["status"] != "online"]
            found.append("database %s: %s of %s primaries online%s"
                         % (name, entry["online_primaries"], entry["requested_primaries"],
                            (" (" + ", ".join(bad) + ")") if bad else ""))
    return found
