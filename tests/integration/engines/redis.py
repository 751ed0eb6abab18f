"""Redis and Sentinel in the integration tests: the replicated pair, its Sentinels, their checks.

A pytest plugin (loaded by conftest.py, like every module of engines/).

redis_pair (function)
    Guarantees the canonical topology before the test: redis-us-east master, redis-us-west its
    replica with the link up, the three Sentinels (us-east, us-west, witness) answering
    redis-us-east, quorum reachable, no failover in progress, the lab's down-after-milliseconds;
    otherwise it resets the Redis servers and Sentinels (~3 s). A `RedisPair`:
      .east / .west   `RedisNodeRef`: name, host, port, password, address, .peer(**over)
                      (module dict), .login(**over) (flat login_* options), .component
      .sentinels      [`RedisNodeRef`] of the Sentinels; .sentinel_peers() (module dicts)
      .master_name
      verification    (each with a NEW redis-py client, retries off, independent of the
                      modules) client(node), role(node), info(node), master_link(node),
                      sentinel_answers() ({sentinel name: "host:port" or None}),
                      write(node, key, value) (raises when read-only), read(node, key),
                      wait_synced(node), wait_sentinels(node)
      preconditions   (done with redis-py, not with the modules under test)
                      lag_replica(bytes, seconds) (CLIENT PAUSE WRITE on the replica holds back
                      its replication stream while its link stays up; returns the lag),
                      set_down_after(ms) (SENTINEL SET on every Sentinel), stop_sentinels(names),
                      crash(node) (kill -9)
    A test may leave the pair in any state: the next redis_pair resets it when needed.
lab_env helpers
    lab_env.redis_pair() (a RedisPair without the canonical guarantee).
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

import pytest
import redis

from lab import redis as lab_redis
from lab import sentinel as lab_sentinel
from lab.core import pid_alive

KINDS = (lab_redis.RedisNode.kind, lab_sentinel.SentinelNode.kind)


@dataclass
class RedisNodeRef:
    name: str
    host: str
    port: int
    password: str | None
    component: object

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def peer(self, **over) -> dict:
        peer = {"host": self.host, "port": self.port}
        if self.password is not None:
            peer["password"] = self.password
        peer.update(over)
        return peer

    def login(self, **over) -> dict:
        login = {"login_host": self.host, "login_port": self.port}
        if self.password is not None:
            login["login_password"] = self.password
        login.update(over)
        return login


class RedisPair:
    def __init__(self, env) -> None:
        lab = env.lab
        self.env = env
        self.east = self._node(lab.component("redis-us-east"))
        self.west = self._node(lab.component("redis-us-west"))
        self.sentinels = [RedisNodeRef(c.name, c.host, c.port, None, c)
                          for c in lab.of_kind(lab_sentinel.SentinelNode.kind)]
        self.master_name = lab_redis.MASTER_NAME
        self._clients: list = []

    @staticmethod
    def _node(component) -> RedisNodeRef:
        return RedisNodeRef(component.name, component.host, component.port, lab_redis.PASSWORD,
                            component)

    def sentinel_peers(self) -> list[dict]:
        return [s.peer() for s in self.sentinels]

    def failover_args(self, master, replica, **over) -> dict:
        args = {"master": master.peer(), "replica": replica.peer(),
                "sentinels": self.sentinel_peers(), "master_name": self.master_name}
        args.update(over)
        return args

    # Verification ---------------------------------------------------------------------------
    def client(self, node: RedisNodeRef):
        conn = lab_redis.client(node.host, node.port, node.password)
        self._clients.append(conn)
        return conn

    def role(self, node) -> str:
        return self.client(node).execute_command("ROLE")[0]

    def info(self, node) -> dict:
        return self.client(node).info("replication")

    def master_link(self, node) -> tuple:
        info = self.info(node)
        return info.get("master_host"), info.get("master_port"), info.get("master_link_status")

    def sentinel_answers(self) -> dict:
        answers = {}
        for sentinel in self.sentinels:
            try:
                address = self.client(sentinel).sentinel_get_master_addr_by_name(self.master_name)
                answers[sentinel.name] = f"{address[0]}:{address[1]}" if address else None
            except redis.RedisError as exc:
                answers[sentinel.name] = f"error: {exc}"
        return answers

    def write(self, node, key, value="x"):
        return self.client(node).set(key, value)

    def read(self, node, key):
        return self.client(node).get(key)

    def wait_synced(self, node, timeout=20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = self.info(node)
                if info.get("master_link_status") == "up" and not info.get("master_sync_in_progress"):
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{node.name} did not sync within {timeout}s: {self.info(node)}")

    def wait_sentinels(self, node, timeout=30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answers = self.sentinel_answers()
            if set(answers.values()) == {node.address}:
                return answers
            time.sleep(0.05)
        raise AssertionError(f"the Sentinels do not all answer {node.address}: {answers}")

    # Preconditions ----------------------------------------------------------------------------
    def lag_replica(self, nbytes=200_000, seconds=20) -> int:
        """Hold back the replica's replication stream (CLIENT PAUSE WRITE on it: its link stays
        up, it stops applying) and write `nbytes` on the master; returns the lag in bytes.
        Undone by CLIENT UNPAUSE (or after `seconds`)."""
        self.client(self.west).execute_command("CLIENT", "PAUSE", int(seconds * 1000), "WRITE")
        self.write(self.east, "failsafe:lag", "x" * nbytes)
        master = self.info(self.east)["master_repl_offset"]
        replica = self.info(self.west)["slave_repl_offset"]
        assert self.info(self.west)["master_link_status"] == "up"
        return master - replica

    def release_replica(self) -> None:
        self.client(self.west).execute_command("CLIENT", "UNPAUSE")
        self.wait_synced(self.west)

    def set_down_after(self, ms: int) -> None:
        for sentinel in self.sentinels:
            self.client(sentinel).execute_command("SENTINEL", "SET", self.master_name,
                                                  "down-after-milliseconds", ms)

    def stop_sentinels(self, names) -> None:
        for sentinel in self.sentinels:
            if sentinel.name in names:
                sentinel.component.down(immediate=True)

    def crash(self, node, timeout=10.0) -> None:
        pid = node.component.pid()
        assert pid, f"{node.name} is not running"
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def close_all(self) -> None:
        for conn in self._clients:
            try:
                conn.close()
            except redis.RedisError:
                pass
        self._clients.clear()


def canonical_problems(env) -> list[str]:
    pair = RedisPair(env)
    problems = []
    try:
        if pair.role(pair.east) != "master":
            problems.append("redis-us-east is not the master")
        host, port, link = pair.master_link(pair.west)
        if (host, port, link) != (pair.east.host, pair.east.port, "up"):
            problems.append(f"redis-us-west replicates from {host}:{port} (link {link})")
        if pair.info(pair.west).get("master_sync_in_progress"):
            problems.append("redis-us-west is syncing")
        for sentinel in pair.sentinels:
            conn = pair.client(sentinel)
            state = conn.sentinel_master(pair.master_name)
            address = conn.sentinel_get_master_addr_by_name(pair.master_name)
            if f"{address[0]}:{address[1]}" != pair.east.address:
                problems.append(f"{sentinel.name} answers {address}")
            if state.get("is_failover_in_progress") or not state.get("is_master"):
                problems.append(f"{sentinel.name} flags {state.get('flags')}")
            if state.get("down-after-milliseconds") != lab_sentinel.DOWN_AFTER_MS:
                problems.append(f"{sentinel.name} down-after {state.get('down-after-milliseconds')}")
            if state.get("num-other-sentinels", 0) < len(pair.sentinels) - 1:
                problems.append(f"{sentinel.name} sees {state.get('num-other-sentinels')} other Sentinels")
    except redis.RedisError as exc:
        problems.append(f"{exc.__class__.__name__}: {exc}")
    except Exception as exc:  # a server that does not run at all
        problems.append(repr(exc))
    finally:
        pair.close_all()
    return problems


@pytest.fixture
def redis_pair(lab_env):
    """The canonical Redis pair with its three Sentinels, reset only when a previous test left
    it otherwise."""
    # The playbooks take their run lock on the PostgreSQL witness (the lab's lock store).
    lab_env.ensure_started(KINDS + ("postgresql_witness",))
    lab_env.ensure_canonical()
    pair = RedisPair(lab_env)
    try:
        yield pair
    finally:
        pair.close_all()


class RedisEngine:
    """What conftest.py's LabEnv needs to know about Redis (see its docstring)."""

    kinds = KINDS
    problems = staticmethod(canonical_problems)
    helpers = {"redis_pair": RedisPair}


LAB_ENGINE = RedisEngine()
