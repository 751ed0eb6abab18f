"""A stand-in `neo4j-admin` (no Neo4j can run here): NOT Neo4j, a script that accepts exactly the
`database dump DB --to-stdout` and `database load DB --from-path=DIR --overwrite-destination=true`
invocations of the backup modules, and `database info DB` and `database check
--report-path=DIR DB` of neo4j_store_info, for its one database `neo4j` (anything else exits 1),
keeps the "database" in a file, and logs every call, so the tests can check what ran and in
which order. The database is "in use" while the file `running` exists (the stop and start
commands remove and create it); the check finds it inconsistent when its content starts with
`damaged` (it then writes a report and exits 1, as `neo4j-admin database check` does).

neo4j_standin (function)
    A `Neo4jStandIn`: .admin (path of the script), .store (the database file), .log (calls, one
    per line), .calls() -> list of lines, .stop_command / .start_command (argv that log
    "stop" / "start" and mark the database stopped / in use), .content() -> the database's
    bytes, .running (the in-use marker file).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

SCRIPT = r'''
import os, sys
log = open(os.environ["STANDIN_LOG"], "a")
store = os.environ["STANDIN_STORE"]
args = sys.argv[1:]
log.write(" ".join(["neo4j-admin"] + args) + "\n")
log.flush()
database = args[-1] if args[:2] == ["database", "check"] else (args[2] if len(args) > 2 else "")
if database != "neo4j":
    sys.stderr.write("Database does not exist: " + database + "\n")
    sys.exit(1)
running = os.path.exists(os.path.join(os.path.dirname(store), "running"))
if args[:2] == ["database", "info"] and len(args) == 3:
    print("Database name:                neo4j")
    print("Database in use:              " + ("true" if running else "false"))
    print("Store format version:         block-block-1.1")
    print("Store format introduced in:   5.14.0")
    print("Last committed transaction id:%d" % os.path.getsize(store))
    print("Store needs recovery:         false")
    sys.exit(0)
if args[:2] == ["database", "check"] and len(args) == 4 and args[2].startswith("--report-path="):
    if running:
        sys.stderr.write("The database is in use. Stop database 'neo4j' and try again.\n")
        sys.exit(1)
    if open(store, "rb").read(7) == b"damaged":
        report = os.path.join(args[2].split("=", 1)[1], "inconsistencies-standin.report")
        with open(report, "w") as handle:
            handle.write("ERROR: The property record is not in use (stand-in)\n")
        print("1 inconsistencies found; report at " + report)
        sys.exit(1)
    print("Consistency check completed: no inconsistencies (stand-in)")
    sys.exit(0)
if args[:2] == ["database", "dump"] and len(args) == 4 and args[3] == "--to-stdout":
    with open(store, "rb") as handle:
        sys.stdout.buffer.write(b"NEO4J-STANDIN-DUMP " + args[2].encode() + b"\n" + handle.read())
    sys.exit(0)
if args[:2] == ["database", "load"] and len(args) == 5 and args[3].startswith("--from-path=") \
        and args[4] == "--overwrite-destination=true":
    path = os.path.join(args[3].split("=", 1)[1], args[2] + ".dump")
    data = open(path, "rb").read()
    header = b"NEO4J-STANDIN-DUMP " + args[2].encode() + b"\n"
    if not data.startswith(header):
        sys.stderr.write("not a dump of " + args[2] + "\n")
        sys.exit(1)
    with open(store, "wb") as handle:
        handle.write(data[len(header):])
    sys.exit(0)
sys.stderr.write("unexpected invocation: %r\n" % (args,))
sys.exit(1)
'''


class Neo4jStandIn:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True)
        self.store = directory / "graph.db"
        self.log = directory / "calls.log"
        self.admin = directory / "neo4j-admin"
        self.store.write_bytes(os.urandom(2 * 1024 * 1024 + 777))
        self.log.write_text("")
        self.admin.write_text("#!/bin/sh\nSTANDIN_LOG=%s STANDIN_STORE=%s exec %s -c '%s' \"$@\"\n"
                              % (self.log, self.store, sys.executable,
                                 SCRIPT.replace("'", "'\\''")))
        self.admin.chmod(0o755)
        self.running = directory / "running"
        self.running.write_text("")
        self.stop_command = ["/bin/sh", "-c", f"echo stop >> {self.log}; rm -f {self.running}"]
        self.start_command = ["/bin/sh", "-c", f"echo start >> {self.log}; touch {self.running}"]

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines()

    def content(self) -> bytes:
        return self.store.read_bytes()


@pytest.fixture
def neo4j_standin(tmp_path):
    standin = Neo4jStandIn(tmp_path / "neo4j")
    yield standin
    shutil.rmtree(standin.directory, ignore_errors=True)
