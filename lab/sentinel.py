"""Redis Sentinel in the lab: one per region and one on the non-region site `witness`.

Three Sentinels with quorum 2 watch the lab's Redis master under the name MASTER_NAME. Sentinel
rewrites its configuration file (known replicas and Sentinels, epochs), so the lab writes a fresh
one at every start: a restarted Sentinel never brings back what an earlier run rewrote.

DOWN_AFTER_MS is short for tests: a master that does not answer for 2 s is subjectively down, and
with two Sentinels agreeing Sentinel fails over by itself. Production uses 5-30 s. The planned
failover's `FAILOVER ... TIMEOUT` (redis_failover's `pause_timeout`, 1000 ms) stays below it.
"""

from __future__ import annotations

import time

from lab.core import Component, DebianPackage, InventoryHost, LabError
from lab.redis import MASTER_NAME, PASSWORD, RedisNode, client

QUORUM = 2
DOWN_AFTER_MS = 2000
FAILOVER_TIMEOUT_MS = 10000
SENTINEL_SITE = "witness"


def sentinels(lab) -> list["SentinelNode"]:
    """One Sentinel per region and one on the witness site."""
    return [SentinelNode(lab, site) for site in (*lab.config.regions, SENTINEL_SITE)]


class SentinelNode(Component):
    kind = "redis_sentinel"
    needs = ("redis",)
    default_ports = {"sentinel": 26379}
    packages = (DebianPackage("redis-sentinel", command="redis-sentinel"),)
    secrets = (PASSWORD,)

    @property
    def name(self) -> str:
        return f"sentinel-{self.site}"

    @property
    def config_file(self):
        return self.home / "sentinel.conf"

    def master(self) -> RedisNode:
        """The lab's initial master (the first region's Redis)."""
        nodes = self.lab.of_kind(RedisNode.kind)
        return next(n for n in nodes if n.upstream is None)

    def up(self) -> None:
        runner = self.lab.runner
        for path in (self.home, self.log_file.parent):
            runner.make_dir(path)
        master = self.master()
        text = f"""# Written by the failsafe lab for {self.name} at every start; Sentinel rewrites it.
bind {self.host}
port {self.port}
daemonize no
logfile ""
dir {self.home}
sentinel announce-ip {self.host}
sentinel resolve-hostnames no
sentinel monitor {MASTER_NAME} {master.host} {master.port} {QUORUM}
sentinel auth-pass {MASTER_NAME} {PASSWORD}
sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}
sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}
sentinel parallel-syncs {MASTER_NAME} 1
"""
        runner.write_file(self.config_file, text)
        self.spawn(["redis-sentinel", str(self.config_file)])
        self.wait_listening()
        self.wait_known()
        # The last one started waits until the earlier ones have heard of it too: the lab is up
        # when every Sentinel knows every other (quorum and failover authorization reachable).
        everyone = self.lab.of_kind(self.kind)
        if self is everyone[-1]:
            for other in everyone[:-1]:
                if other.running():
                    other.wait_known()

    def wait_known(self, timeout: float = 30.0) -> None:
        """Blocks until this Sentinel sees the master's replicas and the Sentinels started
        before it (they find each other through hello messages every 2 s)."""
        import redis

        replicas = len(self.lab.of_kind(RedisNode.kind)) - 1
        others = sum(1 for comp in self.lab.of_kind(self.kind) if comp is not self and comp.running())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                conn = client(self.host, self.port, password=None)
                state = conn.sentinel_master(MASTER_NAME)
                if state.get("num-slaves", 0) >= replicas \
                        and state.get("num-other-sentinels", 0) >= others:
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise LabError(f"{self.name} does not see the master's replicas and {others} other "
                       f"Sentinels after {timeout}s; "
                       f"see {self.log_file}")

    def describe(self) -> dict:
        conn = client(self.host, self.port, password=None)
        host, port = conn.sentinel_get_master_addr_by_name(MASTER_NAME)
        state = conn.sentinel_master(MASTER_NAME)
        return {"role": "sentinel",
                "detail": f"master {host}:{port}, {state.get('num-other-sentinels')} other "
                          f"sentinels, {state.get('num-slaves')} replicas"}

    def inventory_host(self) -> InventoryHost:
        return InventoryHost(f"sentinel-{self.site}",
                             {"failsafe_redis_host": self.host, "failsafe_redis_port": self.port},
                             ("redis_sentinel",))
