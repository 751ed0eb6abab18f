"""Network partitions in the lab: a TCP proxy at each region's edge that a test can cut and heal.

While kind `partition` runs, traffic between sites that reaches a region's PostgreSQL goes
through that region's proxy (lab/tcp_proxy.py), one link per side it comes from:

    control -> us-east    the control node's view (the partition inventory's failsafe_pg_port)
    witness -> us-east    the witness's view (failsafe_pg_witness_route)
    us-west -> us-east    replication: the standby's primary_conninfo, re-pointed at start

Cutting the links between two sides (`python -m lab partition cut --between us-east,witness`)
closes their listeners (new connections are refused, like a firewall REJECT rule) and closes
every connection they carry, on both sides; `heal` opens them again. The links between the
control node and the witness (the witness PostgreSQL, the run lock) are never proxied.

The component is optional: a plain `python -m lab up` leaves it (and the direct replication)
alone; `python -m lab up --only partition` starts it; stopping it points the standbys straight
at their primary again, which also heals everything.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from lab.core import Component, Lab, LabError, wait_listening
from lab.tcp_proxy import request

KIND = "partition"
CONTROL = "control"  # the node that runs Ansible (AWX, the operator's laptop)
WITNESS = "witness"  # the witness site (pg-witness): the third vantage point
PROXY_SCRIPT = Path(__file__).resolve().parent / "tcp_proxy.py"
FIRST_PORT = 15440  # admin; the links follow


def link_name(origin: str, destination: str) -> str:
    return f"{origin}->{destination}"


class PartitionProxy(Component):
    """The edge of one region: one link per side that reaches its PostgreSQL server."""

    kind = KIND
    needs = ("postgresql",)
    optional = True
    stop_grace = 3.0

    @property
    def default_ports(self) -> dict[str, int]:  # per instance: one link per other side
        ports = {"admin": FIRST_PORT}
        for number, origin in enumerate(self.origins, start=1):
            ports[origin] = FIRST_PORT + number
        return ports

    @property
    def origins(self) -> list[str]:
        """The sides whose traffic into this region goes through this proxy."""
        return [CONTROL, WITNESS] + [r for r in self.lab.config.regions if r != self.site]

    @property
    def target(self):
        """The region's PostgreSQL server (the lab's PostgresNode)."""
        return self.lab.component(f"postgresql-{self.site}")

    def route(self, origin: str) -> tuple[str, int]:
        """Where `origin` reaches this region's PostgreSQL while the proxy runs."""
        return self.host, self.ports[origin]

    @property
    def config_file(self) -> Path:
        return self.home / "proxy.json"

    def config(self) -> dict:
        target = [self.target.host, self.target.port]
        return {"admin": [self.host, self.ports["admin"]],
                "links": [{"name": link_name(origin, self.site),
                           "listen": list(self.route(origin)), "target": target}
                          for origin in self.origins]}

    # Life cycle ------------------------------------------------------------------------------
    def up(self) -> None:
        import subprocess

        for path in (self.home, self.log_file.parent):
            path.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(json.dumps(self.config(), indent=2) + "\n")
        # Standard library only, run as the invoking user like the other helpers of the lab
        # (it owns no files of the servers).
        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen([sys.executable, str(PROXY_SCRIPT), str(self.config_file)],
                                    stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=str(self.home),
                                    start_new_session=True)
        self.pid_file.write_text(f"{proc.pid}\n")
        for port_name in self.ports:
            self.wait_listening(port_name)
        for standby in self.lab.of_kind("postgresql"):
            if standby.site != self.site and standby.site in self.ports:
                reroute(standby, [(self.target.host, self.target.port)],
                        self.route(standby.site))

    def down(self, immediate: bool = False) -> None:
        """Point the standbys that stream through this proxy at their primary again, then stop."""
        if not immediate and self.running():
            ours = [self.route(origin) for origin in self.origins]
            for standby in self.lab.of_kind("postgresql"):
                if standby.site != self.site and standby.running():
                    try:
                        reroute(standby, ours, (self.target.host, self.target.port))
                    except LabError:
                        pass  # a standby that cannot stream directly now is the caller's business
        super().down(immediate)

    # Cut and heal ----------------------------------------------------------------------------
    def admin(self, op: str, links: list[str] | None = None) -> dict:
        try:
            return request(self.host, self.ports["admin"], op, links)["links"]
        except OSError as exc:
            raise LabError(f"{self.name} does not answer on {self.host}:{self.ports['admin']} "
                           f"({exc}): start it with python -m lab up --only {KIND}") from exc
        except ValueError as exc:
            raise LabError(f"{self.name}: {exc}") from exc

    def describe(self) -> dict:
        links = self.admin("status")
        cut = sorted(name for name, link in links.items() if link["state"] == "cut")
        return {"role": "proxy", "links": links,
                "detail": f"to {self.target.host}:{self.target.port}; "
                          + (f"cut: {', '.join(cut)}" if cut else "every link open")}


def proxies(lab: Lab) -> list[PartitionProxy]:
    """A registry factory: the edge proxy of every region."""
    return PartitionProxy.in_each_region(lab)


# Re-pointing replication -----------------------------------------------------------------------

def reroute(standby, old: list[tuple[str, int]], new: tuple[str, int], timeout: float = 30) -> bool:
    """If `standby` streams (primary_conninfo) from one of `old`, point it at `new` and wait
    until it streams from there. Returns whether it changed anything."""
    import psycopg
    from psycopg import conninfo as pg_conninfo, sql

    if not standby.running():
        return False
    with psycopg.connect(standby.conninfo(), autocommit=True) as conn:
        if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            return False
        fields = pg_conninfo.conninfo_to_dict(conn.execute("SHOW primary_conninfo").fetchone()[0])
        if (fields.get("host"), int(fields.get("port") or 5432)) not in [tuple(o) for o in old]:
            return False
        fields.update(host=new[0], port=str(new[1]))
        conn.execute(sql.SQL("ALTER SYSTEM SET primary_conninfo = {}").format(
            sql.Literal(pg_conninfo.make_conninfo(**fields))))
        conn.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + timeout
    row = None
    while time.monotonic() < deadline:
        with psycopg.connect(standby.conninfo(), autocommit=True) as conn:
            row = conn.execute("SELECT status, sender_host, sender_port "
                               "FROM pg_stat_wal_receiver").fetchone()
        if row and row[0] == "streaming" and (row[1], row[2]) == tuple(new):
            return True
        time.sleep(0.05)
    raise LabError(f"{standby.name} does not stream from {new[0]}:{new[1]} after {timeout}s "
                   f"(WAL receiver: {row}); see {standby.log_file}")


# The partition as a whole -----------------------------------------------------------------------

def sides(lab: Lab) -> list[str]:
    return [CONTROL, WITNESS, *lab.config.regions]


def links_between(lab: Lab, a: str, b: str) -> dict[PartitionProxy, list[str]]:
    """The links that carry traffic between sides a and b, by the proxy that serves them."""
    known = sides(lab)
    for side in (a, b):
        if side not in known:
            raise LabError(f"unknown side {side!r}: the lab's sides are {', '.join(known)}")
    if a == b:
        raise LabError(f"--between needs two different sides, not {a} twice")
    found: dict[PartitionProxy, list[str]] = {}
    for proxy in lab.of_kind(KIND):
        for origin, destination in ((a, b), (b, a)):
            if proxy.site == destination and origin in proxy.origins:
                found.setdefault(proxy, []).append(link_name(origin, destination))
    if not found:
        raise LabError(f"no proxied link between {a} and {b}: the lab routes through its "
                       f"proxies only the traffic into a region ({', '.join(lab.config.regions)})")
    return found


def links_of(lab: Lab, between: tuple[str, str] | None = None,
             isolate: str | None = None) -> dict[PartitionProxy, list[str]]:
    """The links named by --between A,B or --isolate SIDE (neither: every link)."""
    if between and isolate:
        raise LabError("give --between or --isolate, not both")
    if between:
        return links_between(lab, *between)
    found: dict[PartitionProxy, list[str]] = {}
    if isolate:
        for other in sides(lab):
            if other != isolate and not {other, isolate} <= {CONTROL, WITNESS}:
                for proxy, names in links_between(lab, isolate, other).items():
                    found.setdefault(proxy, []).extend(names)
        return found
    return {proxy: [link_name(o, proxy.site) for o in proxy.origins] for proxy in lab.of_kind(KIND)}


def _apply(lab: Lab, op: str, selected: dict[PartitionProxy, list[str]]) -> dict[str, dict]:
    for proxy in selected:
        if not proxy.running():
            raise LabError(f"{proxy.name} does not run: start it with python -m lab up --only {KIND}")
    states: dict[str, dict] = {}
    for proxy, names in selected.items():
        proxy.admin(op, names)
    for proxy in lab.of_kind(KIND):
        if proxy.running():
            states.update(proxy.admin("status"))
    return states


def cut(lab: Lab, between: tuple[str, str] | None = None, isolate: str | None = None) -> dict:
    """Cut the links between two sides (or every link of one side); returns every link's state."""
    if not between and not isolate:
        raise LabError("say what to cut: --between A,B or --isolate SIDE")
    return _apply(lab, "cut", links_of(lab, between, isolate))


def heal(lab: Lab, between: tuple[str, str] | None = None, isolate: str | None = None) -> dict:
    """Open the links again (default: every link)."""
    return _apply(lab, "heal", links_of(lab, between, isolate))


def status(lab: Lab) -> dict[str, dict]:
    """Every link's state: open or cut, its addresses and connections (stopped proxies: none)."""
    states: dict[str, dict] = {}
    for proxy in lab.of_kind(KIND):
        if proxy.running():
            states.update(proxy.admin("status"))
    return states


def wait_open(lab: Lab, timeout: float = 10.0) -> None:
    """Until every link of every running proxy accepts connections again."""
    for proxy in lab.of_kind(KIND):
        if proxy.running():
            for origin in proxy.origins:
                host, port = proxy.route(origin)
                if not wait_listening(host, port, timeout):
                    raise LabError(f"{proxy.name}: link {link_name(origin, proxy.site)} does "
                                   f"not accept connections on {host}:{port}")


# The inventory while the proxies run -----------------------------------------------------------

def inventory_overlay(lab: Lab) -> dict:
    """Host variables that route the control node and the witness through the proxies.

    Give it to Ansible after the lab's inventory (`-i inventories/lab -i overlay.yml`, or both
    files in one directory, the overlay sorting after hosts.yml): failsafe_pg_host/port become
    the control node's link, failsafe_pg_witness_route the witness's.
    """
    hosts = {}
    for proxy in lab.of_kind(KIND):
        host = proxy.target.inventory_host()
        control = proxy.route(CONTROL)
        witness = proxy.route(WITNESS)
        hosts[host.name] = {
            "failsafe_pg_host": control[0], "failsafe_pg_port": control[1],
            "failsafe_pg_witness_route": {"host": witness[0], "port": witness[1]},
        }
    return {"all": {"children": {"postgresql": {"hosts": hosts}}}}


def print_links(states: dict[str, dict]) -> None:
    if not states:
        print(f"no proxy runs: python -m lab up --only {KIND}")
        return
    print(f"{'link':<22} {'state':<6} {'listen':<22} {'target':<22} connections")
    for name, link in sorted(states.items()):
        print(f"{name:<22} {link['state']:<6} {link['listen']:<22} {link['target']:<22} "
              f"{link['connections']} (dropped {link['dropped']})")
