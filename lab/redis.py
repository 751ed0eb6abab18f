"""Redis in the lab: a master in the first region, a replica of it in every other region.

Each server runs Debian's `redis-server` (7.x) in the foreground with a configuration file in its
state directory, so that `CONFIG REWRITE` (redis_replica, Sentinel's reconfiguration) persists
the role. `requirepass` and `masterauth` are the same lab-only password on every node, so that
any node can become the master and the others replicate from it.

Debian's own `redis-server` service never runs for the lab: lab/install-deps.sh installs the
package with services kept from starting, and the lab starts its servers itself.
"""

from __future__ import annotations

import time

from lab.core import Component, DebianPackage, InventoryHost, LabError

# Lab-only secret of servers bound to loopback; inventories/lab carries the same value (a unit
# test keeps them equal). Production uses vault.
PASSWORD = "lab-redis-secret"
# The name Sentinel monitors the replicated pair under.
MASTER_NAME = "failsafe"


def client(host: str, port: int, password: str | None = PASSWORD, timeout: float = 2.0):
    """A redis-py client with retries off (a retry would hide what the server answered)."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return redis.Redis(host=host, port=port, password=password, socket_timeout=timeout,
                       socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
                       decode_responses=True)


def info_section(text: str) -> dict:
    """`INFO replication` as returned by redis-cli-like raw text -> dict (used by describe)."""
    result = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            key, value = line.split(":", 1)
            result[key] = value.strip()
    return result


def replicated_pair(lab) -> list["RedisNode"]:
    """The lab's Redis: the master in the first region, a replica of it in every other."""
    master, *others = RedisNode.in_each_region(lab)
    for replica in others:
        replica.upstream = master
    return [master, *others]


class RedisNode(Component):
    """One redis-server; `upstream` makes it a replica of that node when its config is written."""

    kind = "redis"
    default_ports = {"redis": 16379}
    packages = (DebianPackage("redis-server", command="redis-server"),)
    secrets = (PASSWORD,)

    def __init__(self, lab, site: str, instance: int = 0,
                 upstream: "RedisNode | None" = None) -> None:
        super().__init__(lab, site, instance)
        self.upstream = upstream

    @property
    def config_file(self):
        return self.home / "redis.conf"

    @property
    def data_dir(self):
        return self.home / "data"

    def write_config(self) -> None:
        replicaof = f"replicaof {self.upstream.host} {self.upstream.port}\n" if self.upstream else ""
        text = f"""# Written by the failsafe lab for {self.name}; CONFIG REWRITE may change it.
bind {self.host}
port {self.port}
protected-mode yes
daemonize no
logfile ""
dir {self.data_dir}
requirepass {PASSWORD}
masterauth {PASSWORD}
# Replicas announce their own address (Sentinel and INFO would otherwise see 127.0.0.1).
replica-announce-ip {self.host}
bind-source-addr {self.host}
# No snapshots or AOF: the lab's data is disposable; replication sends the RDB over the socket
# without the default 5 s wait for more replicas.
save ""
appendonly no
repl-diskless-sync yes
repl-diskless-sync-delay 0
repl-diskless-load disabled
{replicaof}"""
        self.lab.runner.write_file(self.config_file, text)

    def up(self) -> None:
        runner = self.lab.runner
        for path in (self.home, self.data_dir, self.log_file.parent):
            runner.make_dir(path)
        # A fresh configuration at every start: the role comes from the topology, not from what
        # a previous run rewrote.
        self.write_config()
        self.spawn(["redis-server", str(self.config_file)])
        self.wait_listening()
        if self.upstream is not None:
            self.wait_synced()

    def wait_synced(self, timeout: float = 30.0) -> None:
        """Blocks until this replica's link to its master is up (used by lab up and tests)."""
        import redis

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                info = client(self.host, self.port).info("replication")
                if info.get("master_link_status") == "up" and not info.get("master_sync_in_progress"):
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)
        raise LabError(f"{self.name} did not sync from its master in {timeout}s; see {self.log_file}")

    def describe(self) -> dict:
        info = client(self.host, self.port).info("replication")
        if info.get("role") == "master":
            replicas = [f"{v['ip']}:{v['port']} lag {info['master_repl_offset'] - v['offset']} B"
                        for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
            return {"role": "master", "detail": "replicas: " + (", ".join(replicas) or "none")}
        return {"role": "replica",
                "detail": f"master {info.get('master_host')}:{info.get('master_port')} "
                          f"(link {info.get('master_link_status')}), "
                          f"offset {info.get('slave_repl_offset')}"}

    def inventory_host(self) -> InventoryHost:
        return InventoryHost(f"redis-{self.site}",
                             {"failsafe_redis_host": self.host, "failsafe_redis_port": self.port},
                             ("redis",))

    def inventory_vars(self) -> dict:
        # Lab-only secret of servers bound to loopback; production uses vault.
        return {"failsafe_redis_password": PASSWORD, "failsafe_redis_master_name": MASTER_NAME}
