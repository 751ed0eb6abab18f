"""The lab's application: a writer service of one region (run by supervisord, program
`failsafe-writer`).

    python lab/app_service.py --config app.json

A plain Python process (no lab import, no web framework) that behaves like a small application
of a region:

- it resolves the datastore names (`postgresql.<zone>`, `redis.<zone>`) by asking the lab's DNS
  server directly (dnspython, no system resolver), caches the answer for the record's TTL, and
  resolves again when the TTL ran out and after every connection error; a new address drops the
  connection to the old one;
- it writes a sequence: one row per transaction (autocommit) into PostgreSQL over TLS
  (verify-full against the lab's CA, `target_session_attrs=read-write`) and one `SADD` per write
  into Redis (retries off), each store on its own, so that one store's outage does not stop
  the writes to the other;
- it journals every acknowledged write, one JSON line `{"store", "id", "time"}` flushed at once,
  so that losses can be counted afterwards (lab/app_journal.py);
- it answers `GET /health` with JSON: `writing` (`ok` when the last write of every store was
  acknowledged, else `failing`), per store the state, the last acknowledgement time, the last
  error and the address it writes to, and the resolved addresses. HTTP 200 when writing is ok,
  503 otherwise.

It stops on SIGTERM (supervisord's stop signal) after the write in progress.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Run as a script, its directory (lab/) comes first on sys.path, and lab/redis.py would shadow
# redis-py: the service imports nothing from there.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

STORES = ("postgresql", "redis")
TABLE = "failsafe_app_writes"
REDIS_KEY = "failsafe:app:writes"


def load_config(path: str) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def write_id(region: str, boot: int, seq: int) -> str:
    """Unique across regions and restarts: the region, the process's start (ns), the sequence."""
    return f"{region}-{boot:x}-{seq}"


def health_document(state: dict) -> tuple[int, dict]:
    """(HTTP status, body) of /health from the service's state (pure: unit-tested)."""
    stores = {name: dict(info) for name, info in state["stores"].items()}
    writing = "ok" if stores and all(s["state"] == "ok" for s in stores.values()) else "failing"
    body = {"region": state["region"], "program": state.get("program"), "pid": state.get("pid"),
            "started": state.get("started"), "writing": writing, "stores": stores,
            "resolved": dict(state.get("resolved", {}))}
    return (200 if writing == "ok" else 503), body


class Resolver:
    """A name -> address cache that asks one DNS server directly and honours the TTL."""

    def __init__(self, server: str, port: int, timeout: float = 1.0) -> None:
        import dns.resolver

        self.resolver = dns.resolver.Resolver(configure=False)
        self.resolver.nameservers = [server]
        self.resolver.port = port
        self.resolver.timeout = timeout
        self.resolver.lifetime = timeout * 2
        self.cache: dict[str, tuple[str, float]] = {}

    def resolve(self, name: str, force: bool = False) -> str:
        cached = self.cache.get(name)
        if cached and not force and time.monotonic() < cached[1]:
            return cached[0]
        answer = self.resolver.resolve(name, "A", tcp=False)
        address = answer[0].address
        self.cache[name] = (address, time.monotonic() + max(answer.rrset.ttl, 0))
        return address


class Store:
    """One datastore the service writes to: its connection, its address and its state."""

    name = ""

    def __init__(self, config: dict, resolver: Resolver) -> None:
        self.config = config
        self.resolver = resolver
        self.dns_name = config["dns_name"]
        self.address: str | None = None
        self.conn = None
        self.info = {"state": "starting", "address": None, "last_ack": None,
                     "last_error": None, "acknowledged": 0, "failed": 0}

    def port_for(self, address: str) -> int:
        return int(self.config.get("ports", {}).get(address, self.config["port"]))

    def ensure(self, force_resolve: bool = False) -> None:
        address = self.resolver.resolve(self.dns_name, force=force_resolve)
        if address != self.address:
            self.close()
            self.address = address
            self.info["address"] = f"{address}:{self.port_for(address)}"
        if self.conn is None:
            self.conn = self.connect(address, self.port_for(address))

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # closing a broken connection
                pass
        self.conn = None

    def attempt(self, ident: str) -> bool:
        """One write; True when the store acknowledged it."""
        try:
            self.ensure(force_resolve=self.info["state"] == "failing")
            self.write(ident)
        except Exception as exc:  # any failure: drop the connection, resolve again next time
            self.close()
            self.info.update(state="failing", last_error=f"{exc.__class__.__name__}: {exc}"[:300])
            self.info["failed"] += 1
            return False
        self.info.update(state="ok", last_ack=time.time(), last_error=None)
        self.info["acknowledged"] += 1
        return True


class PostgresStore(Store):
    name = "postgresql"

    def connect(self, address: str, port: int):
        import psycopg

        cfg = self.config
        conninfo = (f"host={address} port={port} user={cfg['user']} password={cfg['password']} "
                    f"dbname={cfg.get('dbname', 'postgres')} connect_timeout=2 "
                    "target_session_attrs=read-write application_name=failsafe_app")
        if cfg.get("ca_cert"):
            conninfo += f" sslmode=verify-full sslrootcert={cfg['ca_cert']}"
        conn = psycopg.connect(conninfo, autocommit=True)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id text PRIMARY KEY, region text, "
                     "at timestamptz DEFAULT now())")
        return conn

    def write(self, ident: str) -> None:
        self.conn.execute(f"INSERT INTO {TABLE} (id, region) VALUES (%s, %s)",
                          (ident, self.config["region"]))


class RedisStore(Store):
    name = "redis"

    def connect(self, address: str, port: int):
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        conn = redis.Redis(host=address, port=port, password=self.config.get("password"),
                           socket_timeout=2, socket_connect_timeout=2,
                           retry=Retry(NoBackoff(), 0), decode_responses=True)
        conn.ping()
        return conn

    def write(self, ident: str) -> None:
        self.conn.sadd(REDIS_KEY, ident)


class Service:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.region = config["region"]
        self.boot = time.time_ns()
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        resolver = Resolver(config["dns"]["server"], int(config["dns"]["port"]))
        common = {"region": self.region}
        self.stores = [PostgresStore({**common, **config["postgresql"]}, resolver),
                       RedisStore({**common, **config["redis"]}, resolver)]
        self.resolver = resolver
        self.journal = open(config["journal"], "a", encoding="utf-8", buffering=1)
        self.started = time.time()

    def state(self) -> dict:
        # Copies of small dicts the writing thread updates in place (atomic under the GIL).
        with self.lock:
            return {"region": self.region, "program": self.config.get("program"),
                    "pid": os.getpid(), "started": self.started,
                    "stores": {s.name: dict(s.info) for s in self.stores},
                    "resolved": {name: address for name, (address, _exp)
                                 in self.resolver.cache.items()}}

    def run(self) -> None:
        seq = 0
        interval = float(self.config.get("interval", 0.05))
        while not self.stop_event.is_set():
            seq += 1
            ident = write_id(self.region, self.boot, seq)
            for store in self.stores:
                if store.attempt(ident):
                    record = {"store": store.name, "id": ident, "time": time.time(),
                              "region": self.region, "address": store.info["address"]}
                    self.journal.write(json.dumps(record) + "\n")
            self.stop_event.wait(interval)
        for store in self.stores:
            store.close()
        self.journal.close()


def make_handler(service: Service):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            if self.path.split("?")[0] != "/health":
                self.send_error(404)
                return
            status, body = health_document(service.state())
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # quiet: supervisord keeps the log
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    args = parser.parse_args(argv)
    config = load_config(args.config)
    service = Service(config)
    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer((config["listen"]["host"], int(config["listen"]["port"])),
                                 make_handler(service))
    server.daemon_threads = True
    # shutdown() waits for serve_forever's next poll: 0.05 s, not the default 0.5 s, inside the
    # stop that a failover waits for.
    threading.Thread(target=server.serve_forever, kwargs=dict(poll_interval=0.05), name="health",
                     daemon=True).start()

    def stop(signum, frame):
        service.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"failsafe-writer {service.region} on {socket.gethostname()} pid {os.getpid()}",
          flush=True)
    try:
        service.run()
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
