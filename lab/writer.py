"""A client that writes continuously through a switchover, as an application would.

It connects with a multi-host connection string and target_session_attrs=read-write (libpq
then picks whichever server accepts writes), over TLS verifying each server against the lab's
CA when given one (`for_lab` does), inserts one row per transaction in autocommit, and
remembers every row the server acknowledged. Afterwards `verify()` counts the acknowledged rows
the current primary lacks, and `max_gap()` gives the longest time without a successful commit.
Used by the demo, the bench and the zero-loss integration test.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg

TABLE = "failsafe_writer"


@dataclass
class WriterReport:
    acknowledged: int
    failed_attempts: int
    max_gap_seconds: float
    lost: int
    missing_ids: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "acknowledged_rows": self.acknowledged,
            "failed_attempts": self.failed_attempts,
            "write_outage_seconds": round(self.max_gap_seconds, 4),
            "rows_lost": self.lost,
            "missing_ids": self.missing_ids[:20],
        }


class Writer:
    def __init__(self, hosts: list[tuple[str, int]], user: str, password: str,
                 dbname: str = "postgres", run_id: str = "run", ca_cert: str | None = None) -> None:
        host_list = ",".join(host for host, _port in hosts)
        port_list = ",".join(str(port) for _host, port in hosts)
        self.conninfo = (f"host={host_list} port={port_list} user={user} password={password} "
                         f"dbname={dbname} target_session_attrs=read-write connect_timeout=2 "
                         "application_name=failsafe_writer")
        if ca_cert:
            # Verify each server's certificate against the CA (its name is its address).
            self.conninfo += f" sslmode=verify-full sslrootcert={ca_cert}"
        self.run_id = run_id
        self.acked: list[int] = []
        self.ack_times: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_lab(cls, lab, run_id: str) -> "Writer":
        """A writer to every server of the lab's replicated PostgreSQL cluster, as its admin user."""
        from lab import postgresql

        nodes = lab.of_kind(postgresql.PostgresNode.kind)
        return cls([(n.host, n.port) for n in nodes], postgresql.ADMIN_USER,
                   postgresql.ADMIN_PASSWORD, run_id=run_id, ca_cert=str(lab.ca.cert_path))

    @contextmanager
    def running(self, linger: float = 0.0):
        """Writes while the block runs, and `linger` seconds after it (to see writes resume)."""
        self.start()
        try:
            yield self
        finally:
            time.sleep(linger)
            self.stop()

    def prepare(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id bigint PRIMARY KEY, "
                         "run_id text NOT NULL, written_at timestamptz DEFAULT clock_timestamp())")

    def start(self) -> None:
        self.prepare()
        self._thread = threading.Thread(target=self._loop, name="failsafe-writer", daemon=True)
        self._thread.start()
        # Let it write a little before anything happens.
        deadline = time.monotonic() + 5
        while not self.acked and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        next_id = int(time.time() * 1000) * 1000
        conn = None
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(self.conninfo, autocommit=True)
                next_id += 1
                conn.execute(f"INSERT INTO {TABLE} (id, run_id) VALUES (%s, %s)",
                             (next_id, self.run_id))
                now = time.monotonic()
                with self._lock:
                    self.acked.append(next_id)
                    self.ack_times.append(now)
                time.sleep(0.001)
            except psycopg.Error:
                self.failures += 1
                if conn is not None:
                    try:
                        conn.close()
                    except psycopg.Error:
                        pass
                conn = None
                # Each retry is a new authenticated connection: 5 ms keeps the CPU for the
                # switchover while bounding what the pause adds to the measured outage.
                time.sleep(0.005)
        if conn is not None:
            conn.close()

    def snapshot(self) -> tuple[list[int], list[float]]:
        """(ids, monotonic times) of the commits acknowledged so far, of equal length."""
        with self._lock:
            return list(self.acked), list(self.ack_times)

    def max_gap(self, start: float | None = None, end: float | None = None) -> float:
        """Longest time between two acknowledged commits, optionally only gaps that overlap
        the window [start, end] (monotonic clock)."""
        with self._lock:
            times = list(self.ack_times)
        gaps = [b - a for a, b in zip(times, times[1:])
                if (start is None or b >= start) and (end is None or a <= end)]
        return max(gaps) if gaps else 0.0

    def verify(self) -> WriterReport:
        """Which acknowledged rows the current primary holds (those acknowledged so far)."""
        with self._lock:
            acked = list(self.acked)
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            present = {row[0] for row in conn.execute(
                f"SELECT id FROM {TABLE} WHERE run_id = %s", (self.run_id,))}
        missing = [i for i in acked if i not in present]
        return WriterReport(acknowledged=len(acked), failed_attempts=self.failures,
                            max_gap_seconds=self.max_gap(), lost=len(missing),
                            missing_ids=missing)
