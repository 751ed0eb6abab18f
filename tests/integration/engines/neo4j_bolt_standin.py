"""A scripted Bolt v5 stand-in of a Neo4j 5 cluster (no Neo4j can run here).

NOT Neo4j: a small TCP server on loopback that speaks the Bolt protocol version 5.4 as the
official `neo4j` driver expects it (handshake, HELLO/LOGON, RUN/PULL/DISCARD, BEGIN/COMMIT/
ROLLBACK, ROUTE, RESET, GOODBYE; PackStream values, chunked messages, Duration and DateTime
structures) and answers a FIXED CATALOGUE of Cypher statements, the ones the neo4j_* modules
send, from an in-memory model of a cluster:

- servers (SHOW SERVERS; ENABLE, CORDON, [DRYRUN] DEALLOCATE DATABASES FROM, DROP SERVER);
- databases allocated to servers as primaries or secondaries (SHOW DATABASES; START, STOP,
  ALTER DATABASE ... SET ACCESS READ ONLY|READ WRITE, ... SET TOPOLOGY n PRIMARIES m SECONDARIES);
- indexes per database (SHOW INDEXES; DROP INDEX; the CREATE statement SHOW INDEXES gave);
- transactions (SHOW TRANSACTIONS, TERMINATE TRANSACTIONS).

Every statement is checked: against the catalogue (anything else is a syntax error AND a test
failure, in .errors), against the database it must run on (administration commands on `system`,
index commands on a user database), and for a transaction timeout. Rules a real cluster applies
are applied where the modules depend on them: a server can only be enabled when free or
cordoned, deallocation needs enabled servers to take over, a server is dropped only when
deallocated, a started database and a new index pass through `starting` / POPULATING for a few
reads. What it does not model (Raft, store copies, real timing, privileges, every error text)
is not tested by it: see docs/neo4j.md.

neo4j_bolt (function)
    A running `Neo4jBoltStandIn` with a cluster of three enabled servers and database `neo4j`
    (three primaries): .uri, .user, .password, .servers, .databases, .indexes, .transactions,
    .statements [(database, statement, parameters)], .writes() (statements that change state),
    .connection() (the modules' connection options), .add_server(), .fail_server().
"""

from __future__ import annotations

import re
import socket
import socketserver
import struct
import threading
import time
import uuid

import pytest

# PackStream --------------------------------------------------------------------------------


class Structure:
    def __init__(self, tag: int, fields: list) -> None:
        self.tag, self.fields = tag, fields

    def __repr__(self) -> str:
        return f"Structure({self.tag:#x}, {self.fields!r})"


def duration(seconds: float) -> Structure:
    """A Cypher Duration (months, days, seconds, nanoseconds)."""
    whole = int(seconds)
    return Structure(0x45, [0, 0, whole, int(round((seconds - whole) * 1e9))])


def datetime_utc(epoch: float) -> Structure:
    """A Bolt 5 DateTime with offset 0 (seconds, nanoseconds, offset)."""
    whole = int(epoch)
    return Structure(0x49, [whole, int((epoch - whole) * 1e9), 0])


def pack(value) -> bytes:
    if value is None:
        return b"\xc0"
    if value is True:
        return b"\xc3"
    if value is False:
        return b"\xc2"
    if isinstance(value, int):
        if -16 <= value < 128:
            return struct.pack(">b", value)
        for marker, fmt, low, high in ((0xC8, ">b", -128, 127), (0xC9, ">h", -2**15, 2**15 - 1),
                                       (0xCA, ">i", -2**31, 2**31 - 1)):
            if low <= value <= high:
                return bytes([marker]) + struct.pack(fmt, value)
        return b"\xcb" + struct.pack(">q", value)
    if isinstance(value, float):
        return b"\xc1" + struct.pack(">d", value)
    if isinstance(value, str):
        data = value.encode("utf-8")
        return _header(len(data), 0x80, 0xD0) + data
    if isinstance(value, (list, tuple)):
        return _header(len(value), 0x90, 0xD4) + b"".join(pack(v) for v in value)
    if isinstance(value, dict):
        return _header(len(value), 0xA0, 0xD8) + b"".join(
            pack(str(k)) + pack(v) for k, v in value.items())
    if isinstance(value, Structure):
        return bytes([0xB0 + len(value.fields), value.tag]) + b"".join(
            pack(v) for v in value.fields)
    raise TypeError(f"cannot pack {value!r}")


def _header(size: int, tiny: int, sized: int) -> bytes:
    if size < 16:
        return bytes([tiny + size])
    if size < 256:
        return bytes([sized, size])
    if size < 65536:
        return bytes([sized + 1]) + struct.pack(">H", size)
    return bytes([sized + 2]) + struct.pack(">I", size)


class Unpacker:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, count: int) -> bytes:
        chunk = self.data[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def size(self, marker: int, base: int) -> int:
        return {0: lambda: self.take(1)[0], 1: lambda: struct.unpack(">H", self.take(2))[0],
                2: lambda: struct.unpack(">I", self.take(4))[0]}[marker - base]()

    def value(self):  # pylint: disable=too-many-return-statements
        marker = self.take(1)[0]
        if marker < 0x80:
            return marker
        if marker >= 0xF0:
            return marker - 0x100
        high = marker & 0xF0
        if high == 0x80:
            return self.take(marker & 0x0F).decode("utf-8")
        if high == 0x90:
            return [self.value() for _item in range(marker & 0x0F)]
        if high == 0xA0:
            return {self.value(): self.value() for _item in range(marker & 0x0F)}
        if high == 0xB0:
            tag = self.take(1)[0]
            return Structure(tag, [self.value() for _item in range(marker & 0x0F)])
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if marker in simple:
            return simple[marker]
        if marker == 0xC1:
            return struct.unpack(">d", self.take(8))[0]
        ints = {0xC8: (">b", 1), 0xC9: (">h", 2), 0xCA: (">i", 4), 0xCB: (">q", 8)}
        if marker in ints:
            fmt, count = ints[marker]
            return struct.unpack(fmt, self.take(count))[0]
        if 0xD0 <= marker <= 0xD2:
            return self.take(self.size(marker, 0xD0)).decode("utf-8")
        if 0xD4 <= marker <= 0xD6:
            return [self.value() for _item in range(self.size(marker, 0xD4))]
        if 0xD8 <= marker <= 0xDA:
            return {self.value(): self.value() for _item in range(self.size(marker, 0xD8))}
        if 0xCC <= marker <= 0xCE:
            return self.take(self.size(marker, 0xCC))
        raise ValueError(f"unknown PackStream marker {marker:#x}")


# Bolt messages
HELLO, GOODBYE, RESET, RUN, BEGIN, COMMIT, ROLLBACK = 0x01, 0x02, 0x0F, 0x10, 0x11, 0x12, 0x13
DISCARD, PULL, TELEMETRY, ROUTE, LOGON, LOGOFF = 0x2F, 0x3F, 0x54, 0x66, 0x6A, 0x6B
SUCCESS, RECORD, IGNORED, FAILURE = 0x70, 0x71, 0x7E, 0x7F


class CypherFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def syntax(message: str) -> CypherFailure:
    return CypherFailure("Neo.ClientError.Statement.SyntaxError", message)


def invalid(message: str) -> CypherFailure:
    return CypherFailure("Neo.ClientError.Statement.ArgumentError", message)


def normalise(statement: str) -> str:
    return re.sub(r"\s+", " ", statement).strip()


# The cluster model -------------------------------------------------------------------------

ADMIN = "system"
STATE_CHANGING = re.compile(r"^(START|STOP|ALTER|ENABLE|CORDON|DEALLOCATE|DROP|CREATE|TERMINATE)\b")


class Neo4jBoltStandIn:  # pylint: disable=too-many-instance-attributes,too-many-public-methods
    """The model and the server. The test may change the model directly (it plays the parts a
    real cluster does by itself: a server failing, a new pod joining as a free server)."""

    START_READS = 2       # SHOW DATABASES reads that see a started database as `starting`
    POPULATION_STEPS = (0.0, 40.0, 80.0)  # populationPercent of a new index, one per read

    def __init__(self) -> None:
        self.user, self.password = "neo4j", "standin-neo4j-password"
        self.servers: dict[str, dict] = {}
        self.databases: dict[str, dict] = {}
        self.indexes: dict[tuple[str, str], dict] = {}
        self.dropped_indexes: dict[tuple[str, str], dict] = {}
        self.transactions: dict[str, dict] = {}
        self.statements: list[tuple[str, str, dict]] = []
        self.errors: list[str] = []
        self.timeouts: list = []
        self.hang: dict[str, float] = {}   # statement prefix -> seconds to wait before answering
        self.lock = threading.RLock()
        self.connections = 0
        self.current_query = ""
        standin = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                try:
                    BoltConnection(standin, self.request).serve()
                except (ConnectionError, OSError):
                    pass

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.tcp = Server(("127.0.0.1", 0), Handler)
        self.port = self.tcp.server_address[1]
        self.uri = f"bolt://127.0.0.1:{self.port}"
        threading.Thread(target=self.tcp.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.tcp.shutdown()
        self.tcp.server_close()

    def connection(self, **overrides) -> dict:
        return dict(dict(uri=self.uri, user=self.user, password=self.password, timeout=10),
                    **overrides)

    # Model helpers
    def add_server(self, name: str, state: str = "Free") -> str:
        """A server joins (a new pod started with an empty store): free until enabled."""
        with self.lock:
            server_id = str(uuid.uuid4())
            number = len(self.servers)
            self.servers[server_id] = dict(name=name, address=f"{name}.neo4j.svc:7687",
                                           state=state, health="Available",
                                           number=number)
            return server_id

    def fail_server(self, name: str) -> str:
        with self.lock:
            server_id = self.server_id(name)
            self.servers[server_id]["health"] = "Unavailable"
            return server_id

    def server_id(self, name: str) -> str:
        for server_id, server in self.servers.items():
            if name in (server_id, server["name"]):
                return server_id
        raise KeyError(name)

    def add_database(self, name: str, primaries: int = 3, secondaries: int = 0) -> None:
        with self.lock:
            self.databases[name] = dict(requested="online", access="read-write",
                                        primaries=primaries, secondaries=secondaries,
                                        allocations={}, starting=0)
            self.allocate(name)

    def allocate(self, name: str) -> None:
        database = self.databases[name]
        for role, wanted in (("primary", database["primaries"]),
                             ("secondary", database["secondaries"])):
            have = [s for s, r in database["allocations"].items() if r == role]
            for server_id in self.candidates(name)[:max(0, wanted - len(have))]:
                database["allocations"][server_id] = role

    def candidates(self, name: str) -> list[str]:
        database = self.databases[name]
        return sorted((s for s, server in self.servers.items()
                       if server["state"] == "Enabled" and server["health"] == "Available"
                       and s not in database["allocations"]),
                      key=lambda s: self.servers[s]["number"])

    def add_index(self, database: str, name: str, label: str, prop: str,
                  state: str = "ONLINE", kind: str = "RANGE", constraint: str | None = None):
        with self.lock:
            create = (f"CREATE {kind} INDEX `{name}` FOR (n:`{label}`) ON (n.`{prop}`)")
            self.indexes[(database, name)] = dict(
                name=name, type=kind, entityType="NODE", labelsOrTypes=[label],
                properties=[prop], state=state, populationPercent=100.0 if state == "ONLINE"
                else 0.0, owningConstraint=constraint, createStatement=create, reads=0)

    def add_transaction(self, database: str, query: str, seconds: float,
                        user: str = "app") -> str:
        with self.lock:
            tx_id = f"{database}-transaction-{len(self.transactions) + 100}"
            self.transactions[tx_id] = dict(
                transactionId=tx_id, database=database, currentQuery=query, username=user,
                elapsed=seconds, status="Running", connectionId=f"bolt-app-{len(self.transactions)}",
                clientAddress="10.0.0.7:51000", startTime=time.time() - seconds)
            return tx_id

    def writes(self) -> list[str]:
        return [s for _db, s, _p in self.statements if STATE_CHANGING.match(s)]

    # Cypher --------------------------------------------------------------------------------
    def execute(self, database: str, statement: str, params: dict, extra: dict,
                connection_id: str):
        """-> (fields, rows, kind) or raises CypherFailure."""
        raw = normalise(statement)
        # Cypher ignores comments; the transaction's currentQuery keeps them.
        text = normalise(re.sub(r"/\*.*?\*/", " ", raw))
        with self.lock:
            self.current_query = raw
            self.statements.append((database, raw, dict(params)))
            self.timeouts.append(extra.get("tx_timeout"))
        for prefix, seconds in list(self.hang.items()):
            if text.startswith(prefix):
                time.sleep(seconds)
        with self.lock:
            for pattern, handler, where in self.CATALOGUE:
                match = re.fullmatch(pattern, text)
                if match is None:
                    continue
                if where == ADMIN and database != ADMIN:
                    raise CypherFailure(
                        "Neo.ClientError.Statement.UnsupportedAdministrationCommand",
                        "This is an administration command and it should be executed against "
                        f"the system database: {text.split(' ')[0]}")
                if where == "user" and database in (ADMIN, None):
                    raise invalid(f"index commands need a user database, not {database}")
                return handler(self, match, params, database, connection_id, text)
        self.errors.append(f"statement not in the stand-in's catalogue: {text!r} on {database}")
        raise syntax(f"Invalid input (not in the stand-in's catalogue): {text}")

    def param(self, params: dict, name: str):
        if name not in params:
            self.errors.append(f"parameter ${name} missing")
            raise CypherFailure("Neo.ClientError.Statement.ParameterMissing",
                                f"Expected parameter(s): {name}")
        return params[name]

    def server_param(self, params: dict) -> str:
        wanted = self.param(params, "server")
        try:
            return self.server_id(wanted)
        except KeyError:
            raise invalid(f"Server '{wanted}' does not exist.") from None

    def database_param(self, params: dict) -> dict:
        name = self.param(params, "name")
        if name not in self.databases:
            raise CypherFailure("Neo.ClientError.Database.DatabaseNotFound",
                                f"Database does not exist. Database name: '{name}'.")
        return self.databases[name]

    @staticmethod
    def project(text: str, rows: list[dict]) -> tuple[list, list]:
        yielded = re.search(r" YIELD (.+?)(?: WHERE .*)?$", text)
        fields = [f.strip() for f in yielded.group(1).split(",")] if yielded else (
            list(rows[0]) if rows else [])
        for field in fields:
            if rows and field not in rows[0]:
                raise syntax(f"Variable `{field}` not defined")
        return fields, [[row.get(f) for f in fields] for row in rows]

    def show_servers(self, match, params, database, connection_id, text):
        rows = []
        for server_id, server in sorted(self.servers.items(), key=lambda i: i[1]["number"]):
            if server["state"] == "Deallocating":
                server["state"] = "Deallocated"
            hosting = [name for name, db in self.databases.items()
                       if server_id in db["allocations"]]
            if server["state"] != "Free":
                hosting = [ADMIN] + hosting
            rows.append(dict(serverId=server_id, name=server["name"], address=server["address"],
                             state=server["state"], health=server["health"], hosting=hosting,
                             requestedHosting=hosting, tags=[], allowedDatabases=[],
                             deniedDatabases=[], modeConstraint="NONE", version="5.26.0"))
        return self.project(text, rows) + ("r",)

    def show_databases(self, match, params, database, connection_id, text):
        rows = []
        for name, db in self.databases.items():
            starting = db["starting"] > 0
            if starting:
                db["starting"] -= 1
            writer = next((s for s, r in sorted(db["allocations"].items())
                           if r == "primary" and self.servers[s]["health"] == "Available"), None)
            current = {"primary": 0, "secondary": 0}
            for server_id, role in sorted(db["allocations"].items()):
                server = self.servers[server_id]
                if server["health"] != "Available":
                    status, message = "unknown", "Server is unavailable"
                elif db["requested"] == "offline":
                    status, message = "offline", ""
                else:
                    status, message = ("starting", "") if starting else ("online", "")
                    if not starting:
                        current[role] += 1
                rows.append(dict(name=name, type="standard", aliases=[], access=db["access"],
                                 address=server["address"], role=role,
                                 writer=server_id == writer and status == "online",
                                 requestedStatus=db["requested"], currentStatus=status,
                                 statusMessage=message, default=name == "neo4j",
                                 home=name == "neo4j", serverID=server_id,
                                 requestedPrimariesCount=db["primaries"],
                                 requestedSecondariesCount=db["secondaries"],
                                 currentPrimariesCount=current["primary"],
                                 currentSecondariesCount=current["secondary"]))
        return self.project(text, rows) + ("r",)

    def start_stop(self, match, params, database, connection_id, text):
        db = self.database_param(params)
        if match.group(1) == "START":
            if db["requested"] != "online":
                db["starting"] = self.START_READS
            db["requested"] = "online"
        else:
            db["requested"] = "offline"
        return [], [], "s"

    def access(self, match, params, database, connection_id, text):
        db = self.database_param(params)
        db["access"] = "read-only" if match.group(1) == "ONLY" else "read-write"
        return [], [], "s"

    def topology(self, match, params, database, connection_id, text):
        db = self.database_param(params)
        primaries, secondaries = int(match.group(1)), int(match.group(3) or 0)
        enabled = [s for s, server in self.servers.items() if server["state"] == "Enabled"]
        if primaries + secondaries > len(enabled):
            raise invalid(f"Not enough servers: the topology needs {primaries + secondaries}, "
                          f"{len(enabled)} are enabled")
        db.update(primaries=primaries, secondaries=secondaries)
        self.allocate(self.param(params, "name"))
        return [], [], "s"

    def enable(self, match, params, database, connection_id, text):
        server_id = self.server_param(params)
        server = self.servers[server_id]
        if server["state"] not in ("Free", "Cordoned"):
            raise invalid(f"Server '{server['name']}' is already enabled or cannot be "
                          f"enabled in state {server['state']}")
        server["state"] = "Enabled"
        return [], [], "s"

    def cordon(self, match, params, database, connection_id, text):
        server_id = self.server_param(params)
        server = self.servers[server_id]
        if server["state"] != "Enabled":
            raise invalid(f"Server '{server['name']}' cannot be cordoned in state "
                          f"{server['state']}")
        server["state"] = "Cordoned"
        return [], [], "s"

    def deallocate(self, match, params, database, connection_id, text):
        dry_run = bool(match.group(1))
        server_id = self.server_param(params)
        server = self.servers[server_id]
        if server["state"] in ("Free", "Deallocated", "Deallocating"):
            raise invalid(f"Server '{server['name']}' has nothing to deallocate "
                          f"(state {server['state']})")
        moves = []
        taken: dict[str, list] = {}
        for name, db in sorted(self.databases.items()):
            if server_id not in db["allocations"]:
                continue
            free = [s for s in self.candidates(name) if s not in taken.get(name, [])]
            if not free:
                raise invalid(
                    f"Could not deallocate server(s) '{server['name']}': unable to reallocate "
                    f"database '{name}' (topology {db['primaries']} primaries, "
                    f"{db['secondaries']} secondaries): not enough enabled servers")
            taken.setdefault(name, []).append(free[0])
            moves.append(dict(database=name, fromServerName=server["name"],
                              fromServerId=server_id, toServerName=self.servers[free[0]]["name"],
                              toServerId=free[0], mode=db["allocations"][server_id]))
        if dry_run:
            if not moves:
                return ["database", "fromServerName", "fromServerId", "toServerName",
                        "toServerId", "mode"], [], "r"
            return self.project(text, moves) + ("r",)
        for move in moves:
            allocations = self.databases[move["database"]]["allocations"]
            allocations[move["toServerId"]] = allocations.pop(server_id)
        server["state"] = "Deallocating"
        return [], [], "s"

    def drop_server(self, match, params, database, connection_id, text):
        server_id = self.server_param(params)
        server = self.servers[server_id]
        if server["state"] != "Deallocated":
            raise invalid(f"Cannot drop server '{server['name']}': it must be deallocated "
                          f"first (state {server['state']})")
        del self.servers[server_id]
        return [], [], "s"

    def show_indexes(self, match, params, database, connection_id, text):
        rows = []
        wanted = params.get("name") if " WHERE name = $name" in text else None
        for (db, name), index in sorted(self.indexes.items()):
            if db != database or (wanted is not None and name != wanted):
                continue
            if index["state"] == "POPULATING":
                steps = self.POPULATION_STEPS
                if index["reads"] >= len(steps):
                    index.update(state="ONLINE", populationPercent=100.0)
                else:
                    index["populationPercent"] = steps[index["reads"]]
                index["reads"] += 1
            rows.append({k: v for k, v in index.items() if k != "reads"})
        fields, projected = self.project(text, rows)
        return fields, projected, "r"

    def drop_index(self, match, params, database, connection_id, text):
        name = match.group(1).replace("``", "`")
        index = self.indexes.get((database, name))
        if index is None:
            raise CypherFailure("Neo.DatabaseError.Schema.IndexDropFailed",
                                f"Unable to drop index called `{name}`. There is no such index.")
        if index["owningConstraint"]:
            raise CypherFailure("Neo.ClientError.Schema.ForbiddenOnConstraintIndex",
                                f"Unable to drop index: Index belongs to constraint: "
                                f"`{index['owningConstraint']}`")
        self.dropped_indexes[(database, name)] = self.indexes.pop((database, name))
        return [], [], "s"

    def create_index(self, match, params, database, connection_id, text):
        name = match.group(1).replace("``", "`")
        known = self.dropped_indexes.get((database, name)) or self.indexes.get((database, name))
        if known is None or normalise(known["createStatement"]) != text:
            self.errors.append(f"CREATE statement not the one SHOW INDEXES gave: {text!r}")
            raise syntax(f"unexpected index definition: {text}")
        if (database, name) in self.indexes:
            raise CypherFailure("Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists",
                                f"An equivalent index already exists, '{name}'")
        index = dict(self.dropped_indexes.pop((database, name)), state="POPULATING",
                     populationPercent=0.0, reads=0)
        self.indexes[(database, name)] = index
        return [], [], "s"

    def show_transactions(self, match, params, database, connection_id, text):
        now = time.time()
        rows = [dict(transactionId=t["transactionId"], database=t["database"],
                     currentQuery=t["currentQuery"], username=t["username"],
                     elapsedTime=duration(now - t["startTime"]), status=t["status"],
                     connectionId=t["connectionId"], clientAddress=t["clientAddress"],
                     startTime=datetime_utc(t["startTime"]))
                for t in self.transactions.values()]
        # ... and the transaction that runs this very statement, as Neo4j lists it too.
        rows.append(dict(transactionId=f"{database}-transaction-own", database=database,
                         currentQuery=self.current_query, username=self.user,
                         elapsedTime=duration(0.002),
                         status="Running", connectionId=connection_id,
                         clientAddress="127.0.0.1:50000", startTime=datetime_utc(now)))
        return self.project(text, rows) + ("r",)

    def terminate(self, match, params, database, connection_id, text):
        rows = []
        for tx_id in self.param(params, "ids"):
            if tx_id.endswith("-transaction-own"):
                self.errors.append("the module terminated its own transaction")
            found = self.transactions.pop(tx_id, None)
            rows.append(dict(transactionId=tx_id, username=found["username"] if found else None,
                             message="Transaction terminated." if found
                             else "Transaction not found."))
        return self.project(text, rows) + ("w",)

    def ping(self, match, params, database, connection_id, text):
        return ["ok"], [[1]], "r"

    CATALOGUE = (
        (r"SHOW SERVERS YIELD [\w, ]+", show_servers, ADMIN),
        (r"SHOW DATABASES YIELD [\w, ]+", show_databases, ADMIN),
        (r"(START|STOP) DATABASE \$name", start_stop, ADMIN),
        (r"ALTER DATABASE \$name SET ACCESS READ (ONLY|WRITE)", access, ADMIN),
        (r"ALTER DATABASE \$name SET TOPOLOGY (\d+) PRIMAR(Y|IES)(?: (\d+) SECONDAR(?:Y|IES))?",
         topology, ADMIN),
        (r"ENABLE SERVER \$server", enable, ADMIN),
        (r"CORDON SERVER \$server", cordon, ADMIN),
        (r"(DRYRUN )?DEALLOCATE DATABASES FROM SERVER \$server(?: YIELD [\w, ]+)?",
         deallocate, ADMIN),
        (r"DROP SERVER \$server", drop_server, ADMIN),
        (r"SHOW INDEXES YIELD [\w, ]+(?: WHERE name = \$name)?", show_indexes, "user"),
        (r"DROP INDEX `((?:[^`]|``)+)`", drop_index, "user"),
        (r"CREATE (?:RANGE |TEXT |POINT |FULLTEXT |VECTOR |LOOKUP )?INDEX `((?:[^`]|``)+)` .+",
         create_index, "user"),
        (r"SHOW TRANSACTIONS YIELD [\w, ]+", show_transactions, None),
        (r"TERMINATE TRANSACTIONS \$ids YIELD [\w, ]+", terminate, None),
        (r"RETURN 1 AS ok", ping, None),
    )


# The Bolt server side ----------------------------------------------------------------------

class BoltConnection:
    VERSION = (5, 4)

    def __init__(self, standin: Neo4jBoltStandIn, sock: socket.socket) -> None:
        self.standin, self.sock = standin, sock
        with standin.lock:
            standin.connections += 1
            self.connection_id = f"bolt-{standin.connections}"
        self.failed = False
        self.authenticated = False
        self.pending: list[tuple] = []   # (fields, rows, kind) of RUNs not pulled yet
        self.tx_database = None
        self.in_tx = False
        self.database = None

    def read_exact(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def read_message(self):
        data = b""
        while True:
            size = struct.unpack(">H", self.read_exact(2))[0]
            if size == 0:
                if data:
                    break
                continue  # NOOP chunk
            data += self.read_exact(size)
        value = Unpacker(data).value()
        return value.tag, value.fields

    def send(self, tag: int, *fields) -> None:
        data = pack(Structure(tag, list(fields)))
        out = b""
        for start in range(0, len(data), 65535):
            chunk = data[start:start + 65535]
            out += struct.pack(">H", len(chunk)) + chunk
        self.sock.sendall(out + b"\x00\x00")

    def handshake(self) -> bool:
        if self.read_exact(4) != b"\x60\x60\xb0\x17":
            self.standin.errors.append("a client sent no Bolt preamble")
            return False
        offers = self.read_exact(16)
        major, minor = self.VERSION
        for start in range(0, 16, 4):
            spread, off_minor, off_major = offers[start + 1:start + 4]
            if off_major == major and off_minor - spread <= minor <= off_minor:
                self.sock.sendall(bytes([0, 0, minor, major]))
                return True
        self.sock.sendall(b"\x00\x00\x00\x00")
        return False

    def serve(self) -> None:
        if not self.handshake():
            return
        while True:
            tag, fields = self.read_message()
            if tag == GOODBYE:
                return
            if tag == RESET:
                self.failed, self.pending, self.in_tx = False, [], False
                self.send(SUCCESS, {})
                continue
            if self.failed:
                self.send(IGNORED)
                continue
            if not self.dispatch(tag, fields):
                return

    def fail(self, code: str, message: str) -> None:
        self.failed = True
        self.pending = []
        self.send(FAILURE, {"code": code, "message": message})

    def dispatch(self, tag: int, fields: list) -> bool:  # pylint: disable=too-many-return-statements,too-many-branches
        if tag == HELLO:
            self.send(SUCCESS, {"server": "Neo4j/5.26.0", "connection_id": self.connection_id,
                                "hints": {}})
            return True
        if tag == LOGON:
            auth = fields[0]
            if auth.get("scheme") != "basic" or auth.get("principal") != self.standin.user \
                    or auth.get("credentials") != self.standin.password:
                self.fail("Neo.ClientError.Security.Unauthorized",
                          "The client is unauthorized due to authentication failure.")
                return False
            self.authenticated = True
            self.send(SUCCESS, {})
            return True
        if tag in (LOGOFF, TELEMETRY):
            self.send(SUCCESS, {})
            return True
        if not self.authenticated:
            self.standin.errors.append(f"message {tag:#x} before LOGON")
            self.fail("Neo.ClientError.Security.Unauthorized", "not authenticated")
            return False
        if tag == ROUTE:
            address = f"127.0.0.1:{self.standin.port}"
            database = (fields[2] or {}).get("db") or "neo4j"
            self.send(SUCCESS, {"rt": {"ttl": 300, "db": database, "servers": [
                {"addresses": [address], "role": role} for role in ("ROUTE", "WRITE", "READ")]}})
            return True
        if tag == BEGIN:
            self.in_tx, self.tx_database = True, (fields[0] or {}).get("db")
            self.tx_extra = fields[0] or {}
            self.send(SUCCESS, {})
            return True
        if tag in (COMMIT, ROLLBACK):
            self.in_tx = False
            self.send(SUCCESS, {"bookmark": "standin:1"} if tag == COMMIT else {})
            return True
        if tag == RUN:
            statement, params, extra = fields[0], fields[1] or {}, fields[2] or {}
            if self.in_tx:
                database, extra = self.tx_database, self.tx_extra
            else:
                database = extra.get("db")
            self.database = database
            try:
                result = self.standin.execute(database, statement, params, extra,
                                              self.connection_id)
            except CypherFailure as exc:
                self.fail(exc.code, exc.message)
                return True
            self.pending.append(result)
            meta = {"fields": result[0], "t_first": 0}
            if self.in_tx:
                meta["qid"] = len(self.pending) - 1
            self.send(SUCCESS, meta)
            return True
        if tag in (PULL, DISCARD):
            if not self.pending:
                self.standin.errors.append("PULL or DISCARD without a result")
                self.fail("Neo.ClientError.Request.Invalid", "nothing to pull")
                return True
            fields_, rows, kind = self.pending.pop(0)
            if tag == PULL:
                for row in rows:
                    self.send(RECORD, row)
            meta = {"has_more": False, "t_last": 0, "type": kind, "db": self.database or "neo4j"}
            if not self.in_tx:
                meta["bookmark"] = "standin:1"
            self.send(SUCCESS, meta)
            return True
        self.standin.errors.append(f"unexpected Bolt message {tag:#x}")
        self.fail("Neo.ClientError.Request.Invalid", f"message {tag:#x} not supported")
        return True


def three_core_cluster() -> Neo4jBoltStandIn:
    standin = Neo4jBoltStandIn()
    for number in range(3):
        standin.add_server(f"neo4j-core-{number}", state="Enabled")
    standin.add_database("neo4j", primaries=3)
    return standin


@pytest.fixture
def neo4j_bolt():
    standin = three_core_cluster()
    yield standin
    standin.stop()
    assert not standin.errors, standin.errors
