"""Clients that write to Redis continuously through a failover, as applications would.

Two kinds, both with redis-py retries off (a retry would hide the outage and could double-count):

- pinned: connected to one address (the old master) for good, as an application configured
  with a fixed address. After a correct failover its writes fail (READONLY); any write it saw
  acknowledged must still be on the new master.
- sentinel: asks the Sentinels for the master (redis-py `Sentinel.master_for`) and follows it.

Every write is `SADD <run key> <sequence number>`; the client records each number the server
acknowledged and when. `verify(conn)` counts the acknowledged numbers missing on the given
(new) master; `max_gap()` is the longest time without an acknowledged write.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field


def _no_retry():
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)


@dataclass
class RedisWriterReport:
    name: str
    acknowledged: int
    failed_attempts: int
    max_gap_seconds: float
    lost: int
    missing: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"client": self.name, "acknowledged_writes": self.acknowledged,
                "failed_attempts": self.failed_attempts,
                "write_outage_seconds": round(self.max_gap_seconds, 4),
                "acknowledged_writes_lost": self.lost, "missing_sample": self.missing[:20]}


class RedisWriter:
    """One writing client in a thread; `kind` is 'pinned' or 'sentinel'."""

    def __init__(self, name: str, kind: str, run_key: str, password: str | None, *,
                 address: tuple[str, int] | None = None,
                 sentinels: list[tuple[str, int]] | None = None, master_name: str | None = None,
                 pause: float = 0.001, timeout: float = 0.5) -> None:
        self.name, self.kind, self.run_key = name, kind, f"{run_key}:{name}"
        self.password, self.address = password, address
        self.sentinels, self.master_name = sentinels, master_name
        self.pause, self.timeout = pause, timeout
        self.acked: list[int] = []
        self.ack_times: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @classmethod
    def pair_for_lab(cls, lab, run_key: str, pinned_to) -> list["RedisWriter"]:
        """A pinned writer on `pinned_to` (a RedisNode) and a Sentinel-aware one."""
        from lab import redis as lab_redis
        from lab.sentinel import SentinelNode

        sentinels = [(s.host, s.port) for s in lab.of_kind(SentinelNode.kind)]
        return [cls("pinned", "pinned", run_key, lab_redis.PASSWORD,
                    address=(pinned_to.host, pinned_to.port)),
                cls("sentinel", "sentinel", run_key, lab_redis.PASSWORD, sentinels=sentinels,
                    master_name=lab_redis.MASTER_NAME)]

    def _client(self):
        import redis
        from redis.sentinel import Sentinel

        options = dict(password=self.password, socket_timeout=self.timeout,
                       socket_connect_timeout=self.timeout, retry=_no_retry())
        if self.kind == "pinned":
            return redis.Redis(host=self.address[0], port=self.address[1], **options)
        sentinel = Sentinel(self.sentinels, sentinel_kwargs=dict(
            socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
            retry=_no_retry()), **options)
        return sentinel.master_for(self.master_name, **options)

    def _run(self) -> None:
        import redis

        client = self._client()
        seq = 0
        while not self._stop.is_set():
            seq += 1
            try:
                client.sadd(self.run_key, seq)
            except redis.RedisError:
                self.failures += 1
                time.sleep(self.pause)
                continue
            now = time.monotonic()
            with self._lock:
                self.acked.append(seq)
                self.ack_times.append(now)
            if self.pause:
                time.sleep(self.pause)
        client.close()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"redis-writer-{self.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def snapshot(self) -> tuple[list[int], list[float]]:
        with self._lock:
            return list(self.acked), list(self.ack_times)

    def acked_since(self, moment: float) -> bool:
        """Whether a write was acknowledged after `moment` (monotonic)."""
        with self._lock:
            return bool(self.ack_times) and self.ack_times[-1] > moment

    def max_gap(self, start: float | None = None, end: float | None = None,
                exclude=()) -> float:
        """Longest time without an acknowledged write, between start and end (monotonic).

        `exclude`: sequence numbers not to count (acknowledged writes that were lost: the
        application had them acknowledged, but they are gone)."""
        ids, times = self.snapshot()
        if exclude:
            excluded = set(exclude)
            times = [t for i, t in zip(ids, times) if i not in excluded]
        points = [t for t in times if (start is None or t >= start) and (end is None or t <= end)]
        if start is not None:
            before = [t for t in times if t < start]
            points.insert(0, before[-1] if before else start)
        if end is not None:
            after = [t for t in times if t > end]
            # No write after the window: the outage lasts at least until its end.
            points.append(after[0] if after else end)
        return max((b - a for a, b in zip(points, points[1:])), default=0.0)

    def verify(self, conn) -> RedisWriterReport:
        """Count acknowledged writes missing on `conn` (a redis-py client of the new master)."""
        ids, _times = self.snapshot()
        missing = []
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            present = conn.smismember(self.run_key, chunk)
            missing.extend(i for i, ok in zip(chunk, present) if not ok)
        return RedisWriterReport(self.name, len(ids), self.failures, self.max_gap(exclude=missing),
                                 len(missing), missing)


@contextmanager
def running(writers: list[RedisWriter], linger: float = 0.0):
    """The writers write while the block runs, and `linger` seconds after it."""
    for writer in writers:
        writer.start()
    try:
        yield writers
    finally:
        time.sleep(linger)
        for writer in writers:
            writer.stop()
