"""The lab's machinery: sites and their addresses, ports, processes, the unprivileged user.

A component is one server of one kind on one site. Adding an engine to the lab is writing one
Component subclass in a file of its own (see postgresql.py) and registering it with one line in
topology.py. This module never imports topology.py: a Lab gets its registry from its caller
(lab.topology.make_lab() passes the default one).

Imports only the standard library: `python3 -m lab packages` runs before the virtualenv exists.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from lab.tls import LabCA

REPO_ROOT = Path(__file__).resolve().parent.parent

# Loopback addresses that make the lab look like two regions.
DEFAULT_REGIONS = {"us-east": "127.0.1.1", "us-west": "127.0.2.1"}

# PostgreSQL refuses to run as root: as root the lab runs servers as this system user.
LAB_SYSTEM_USER = "failsafe-lab"

# <state dir>/PORTS_FILE: the addresses and ports a lab was given (written by `up`).
PORTS_FILE = "ports.json"
# How far a port scan looks past a component's default port.
PORT_SCAN_LIMIT = 200

# Servers this process started with Runner.spawn: pid_alive reaps them once they exit.
_spawned: set[int] = set()


class LabError(RuntimeError):
    """A lab step failed; the message says which and where its log is."""


@dataclass
class LabConfig:
    """Where a lab lives, its regions' addresses and how its ports are chosen.

    Every component declares default ports; the lab uses default + port_offset, and with
    scan_ports the next port that is free on the component's address (test and bench labs that
    run beside others). The default lab (offset 0, no scan) is therefore deterministic.
    """

    state_dir: Path
    regions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_REGIONS))
    port_offset: int = 0
    scan_ports: bool = False

    @classmethod
    def from_env(cls) -> "LabConfig":
        """Defaults, overridable so that tests run a lab of their own beside a demo lab."""
        regions = dict(DEFAULT_REGIONS)
        spec = os.environ.get("FAILSAFE_LAB_REGIONS")
        if spec:
            regions = dict(item.split("=", 1) for item in spec.split(","))
        return cls(
            state_dir=Path(os.environ.get("FAILSAFE_LAB_DIR") or default_state_dir()),
            regions=regions,
            port_offset=int(os.environ.get("FAILSAFE_LAB_PORT_OFFSET") or 0),
            scan_ports=os.environ.get("FAILSAFE_LAB_PORT_SCAN", "") not in ("", "0"),
        )

    @classmethod
    def from_state_dir(cls, state_dir: Path) -> "LabConfig":
        """The config of the lab that wrote `state_dir` (to stop a lab whose owner died).

        Labs started before ports were persisted wrote their regions into config.json.
        """
        state_dir = Path(state_dir)
        path = state_dir / PORTS_FILE
        if not path.exists():
            path = state_dir / "config.json"
        return cls(state_dir=state_dir, regions=json.loads(path.read_text())["regions"])


def default_state_dir() -> str:
    """Where the lab's servers keep their files (FAILSAFE_LAB_DIR overrides).

    Not inside the checkout: a checkout under /root (mode 700) cannot be entered by the
    unprivileged server user. inventories/lab names the same directory.
    """
    return "/var/tmp/failsafe-lab"


def site_addresses(regions: dict[str, str], sites: Iterable[str],
                   known: dict[str, str] | None = None) -> dict[str, str]:
    """Addresses of the sites that are not regions: 127.1.<R>.<n>.

    R is the third octet of the lab's first region (each lab has its own first region address,
    so two labs never share a site address); n = 1, 2, ... in order of the sites' first
    appearance in the topology. `known` (persisted) addresses are kept.
    """
    first = next(iter(regions.values()), None)
    octets = (first or "").split(".")
    if len(octets) != 4 or octets[0] != "127":
        raise LabError(f"the first region's address must be a loopback IPv4 address, not {first!r}")
    addresses = dict(known or {})
    taken = set(addresses.values())
    number = 0
    for site in sites:
        if site in regions or site in addresses:
            continue
        number += 1
        while f"127.1.{octets[2]}.{number}" in taken:
            number += 1
        if number > 254:
            raise LabError("more than 254 non-region sites")
        addresses[site] = f"127.1.{octets[2]}.{number}"
        taken.add(addresses[site])
    return addresses


def port_free(address: str, port: int) -> bool:
    """Whether a server could listen there (SO_REUSEADDR, as servers do: a connection of a
    previous server in TIME_WAIT does not count, a listener does)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class DebianPackage:
    """A Debian package a component needs, and how to see that it is installed."""

    name: str
    command: str | None = None  # on PATH once installed
    path: str | None = None  # a glob matching a file it installs

    def installed(self) -> bool:
        if self.command and shutil.which(self.command):
            return True
        return bool(self.path and glob.glob(self.path))


# Needed by the lab itself when root: runuser.
BASE_PACKAGES = (DebianPackage("util-linux", command="runuser"),)


@dataclass
class InventoryHost:
    """A component's entry in the Ansible inventory: its host, its variables, its groups."""

    name: str
    vars: dict
    groups: tuple[str, ...]


class Runner:
    """Runs commands as the user that owns the lab's servers."""

    def __init__(self) -> None:
        self.as_root = os.geteuid() == 0
        self.user = LAB_SYSTEM_USER if self.as_root else pwd.getpwuid(os.getuid()).pw_name

    def ensure_user(self) -> None:
        if not self.as_root:
            return
        try:
            pwd.getpwnam(self.user)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                 "--shell", "/usr/sbin/nologin", self.user],
                check=True,
            )

    @property
    def uid(self) -> int:
        return pwd.getpwnam(self.user).pw_uid

    @property
    def gid(self) -> int:
        return pwd.getpwnam(self.user).pw_gid

    def argv(self, argv: list[str]) -> list[str]:
        if self.as_root:
            return ["runuser", "-u", self.user, "--", *argv]
        return list(argv)

    def run(self, argv: list[str], *, env: dict | None = None, check: bool = True,
            timeout: float = 120) -> subprocess.CompletedProcess:
        full_env = dict(os.environ, **(env or {}))
        proc = subprocess.run(
            self.argv(argv), env=full_env, capture_output=True, text=True, timeout=timeout,
            cwd="/", check=False,
        )
        if check and proc.returncode != 0:
            raise LabError(
                f"command failed ({proc.returncode}): {' '.join(argv)}\n{proc.stdout}{proc.stderr}"
            )
        return proc

    def spawn(self, argv: list[str], log_file: Path, env: dict | None = None) -> int:
        """Start a server in the background as the lab's user; returns its pid.

        The server itself is the child (no runuser in between), so that its pid is the one to
        signal; it leads a process group of its own, which down() signals as a whole.
        """
        user = dict(user=self.uid, group=self.gid, extra_groups=[]) if self.as_root else {}
        with open(log_file, "ab") as log:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd="/",
                env=dict(os.environ, **(env or {})), start_new_session=True, **user,
            )
        _spawned.add(proc.pid)
        return proc.pid

    def make_dir(self, path: Path, mode: int = 0o700) -> None:
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, mode)
        if self.as_root:
            os.chown(path, self.uid, self.gid)

    def write_file(self, path: Path, text: str, mode: int = 0o600) -> None:
        path.write_text(text)
        os.chmod(path, mode)
        if self.as_root:
            os.chown(path, self.uid, self.gid)


def pid_alive(pid: int) -> bool:
    """Whether the process runs (a zombie does not; a server this process spawned is reaped)."""
    if pid in _spawned:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                _spawned.discard(pid)
                return False
        except ChildProcessError:  # reaped elsewhere (subprocess cleans up dropped Popens)
            _spawned.discard(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    if stat.rsplit(")", 1)[1].split()[0] != "Z":
        return True
    # A zombie leader whose other threads still exit: the process still holds its files and
    # sockets (a killed server's port is not free yet).
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def stop_process(pid: int, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    """Send `sig` (to the process group the process leads, if any), SIGKILL after `grace`
    seconds, and return once the process is gone."""
    def send(signum: int) -> None:
        try:
            if os.getpgid(pid) == pid:
                os.killpg(pid, signum)
            else:
                os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum, wait in ((sig, grace), (signal.SIGKILL, 10.0)):
        if not pid_alive(pid):
            return
        send(signum)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.02)


def wait_listening(host: str, port: int, timeout: float = 10.0,
                   alive: Callable[[], bool] = lambda: True) -> bool:
    """Wait until a TCP connection to host:port succeeds; False on timeout or once `alive()`
    says the server has gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.02)
    return False


class Component:
    """One server of the lab: a kind, a site and an instance number on that site.

    A subclass sets the class attributes and implements up(); it overrides describe(),
    inventory_host() and inventory_vars() to show in `status` and in the inventory, and down()
    only when its server needs more than a signal. See docs/lab.md, "Adding an engine".
    """

    kind = ""  # the engine label; `python -m lab up --only KIND` selects by it
    needs: tuple[str, ...] = ()  # kinds started before this one (registered earlier)
    default_ports: dict[str, int] = {}  # port name -> default port (first: the main one)
    packages: tuple[DebianPackage, ...] = ()
    secrets: tuple[str, ...] = ()  # lab passwords no output may show (tests check)
    stop_signal = signal.SIGTERM
    stop_grace = 10.0  # seconds between stop_signal and SIGKILL
    # Optional components start only when named (`up --only KIND`), never with a plain `up`
    # (e.g. the partition proxy, which re-routes replication while it runs).
    optional = False

    def __init__(self, lab: "Lab", site: str, instance: int = 0) -> None:
        self.lab = lab
        self.site = site
        self.instance = instance

    @classmethod
    def in_each_region(cls, lab: "Lab") -> list["Component"]:
        """A registry factory: one component of this class per region."""
        return [cls(lab, region) for region in lab.config.regions]

    @classmethod
    def at(cls, site: str, instances: int = 1) -> Callable[["Lab"], list["Component"]]:
        """A registry factory: `instances` components of this class on one site."""
        def build(lab: "Lab") -> list["Component"]:
            return [cls(lab, site, number) for number in range(instances)]
        return build

    # Identity and places ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        suffix = f"-{self.instance}" if self.instance else ""
        return f"{self.kind}-{self.site}{suffix}"

    @property
    def region(self) -> str | None:
        return self.site if self.site in self.lab.config.regions else None

    @property
    def host(self) -> str:
        return self.lab.addresses[self.site]

    @property
    def ports(self) -> dict[str, int]:
        return self.lab.ports[self.name]

    @property
    def port(self) -> int | None:
        return next(iter(self.ports.values()), None)

    @property
    def home(self) -> Path:
        return self.lab.config.state_dir / self.name

    @property
    def log_file(self) -> Path:
        return self.home / "log" / f"{self.kind}.log"

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.kind}.pid"

    def data_dirs(self) -> list[Path]:
        """What `down` removes when the lab's data goes."""
        return [self.home]

    # Life cycle ------------------------------------------------------------------------------
    def pid(self) -> int | None:
        """The server's pid from the first word of its pid file, if it runs."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if pid_alive(pid) else None

    def running(self) -> bool:
        return self.pid() is not None

    def up(self) -> None:
        """Create and start the server; called only when it does not run."""
        raise NotImplementedError

    def spawn(self, argv: list[str], env: dict | None = None) -> int:
        """Start argv as this component's server (log in log_file, pid in pid_file)."""
        runner = self.lab.runner
        for path in (self.home, self.log_file.parent):
            runner.make_dir(path)
        pid = runner.spawn(argv, self.log_file, env)
        self.pid_file.write_text(f"{pid}\n")
        return pid

    def wait_ports_free(self, timeout: float = 10.0) -> None:
        """Before a start: wait until no other process listens on this component's ports (a
        server stopped a moment ago may still hold one), else say which one is taken."""
        deadline = time.monotonic() + timeout
        taken = [port for port in self.ports.values() if not port_free(self.host, port)]
        while taken and time.monotonic() < deadline:
            time.sleep(0.1)
            taken = [port for port in taken if not port_free(self.host, port)]
        if taken:
            raise LabError(f"{self.name}: something else listens on {self.host} port "
                           f"{', '.join(map(str, taken))}; stop it or start the lab with another "
                           "FAILSAFE_LAB_PORT_OFFSET")

    def wait_listening(self, port_name: str | None = None, timeout: float = 10.0) -> None:
        port = self.ports[port_name] if port_name else self.port
        if not wait_listening(self.host, port, timeout, alive=self.running):
            raise LabError(f"{self.name} does not listen on {self.host}:{port}; see {self.log_file}")

    def down(self, immediate: bool = False) -> None:
        """Stop the server: SIGKILL at once when `immediate` (its data is thrown away next),
        else stop_signal and SIGKILL after stop_grace seconds."""
        pid = self.pid()
        if pid is not None:
            stop_process(pid, signal.SIGKILL if immediate else self.stop_signal,
                         0 if immediate else self.stop_grace)
        self.pid_file.unlink(missing_ok=True)

    # What it shows ---------------------------------------------------------------------------
    def describe(self) -> dict:
        """Status of the running server: at least `role` and a one-line `detail`."""
        return {}

    def status(self) -> dict:
        info = {"site": self.site, "region": self.region, "component": self.name,
                "kind": self.kind, "instance": self.instance, "host": self.host,
                "port": self.port, "ports": dict(self.ports), "state": "stopped",
                "role": None, "detail": ""}
        if not self.running():
            return info
        info["state"] = "running"
        try:
            info.update(self.describe())
        except Exception as exc:  # status must always answer
            info["state"] = f"running, not answering: {exc.__class__.__name__}"
        return info

    def inventory_host(self) -> InventoryHost | None:
        """This server as an inventory host (None: not in the inventory)."""
        return None

    def inventory_vars(self) -> dict:
        """Variables for the inventory's `all` group (equal names must have equal values)."""
        return {}


Factory = Callable[["Lab"], Iterable[Component]]


class Registry:
    """The component factories of a lab, in start order (lab.topology.REGISTRY is the lab's)."""

    def __init__(self, factories: Iterable[Factory] = ()) -> None:
        self.factories: list[Factory] = list(factories)

    def add(self, factory: Factory) -> Factory:
        self.factories.append(factory)
        return factory

    def remove(self, factory: Factory) -> None:
        self.factories.remove(factory)

    @contextmanager
    def added(self, factory: Factory):
        """`with registry.added(factory):` - registered for the block only (tests)."""
        self.add(factory)
        try:
            yield factory
        finally:
            self.remove(factory)

    def build(self, lab: "Lab") -> list[Component]:
        components = [comp for factory in self.factories for comp in factory(lab)]
        seen: dict[str, Component] = {}
        for comp in components:
            if comp.name in seen:
                raise LabError(f"two components are named {comp.name}")
            missing = [kind for kind in comp.needs
                       if not any(other.kind == kind for other in seen.values())]
            if missing:
                raise LabError(f"{comp.name} needs {missing}: register them before it")
            seen[comp.name] = comp
        return components


def closure(kinds: Iterable[str], edges: Callable[[str], Iterable[str]]) -> set[str]:
    found: set[str] = set()
    todo = list(kinds)
    while todo:
        kind = todo.pop()
        if kind not in found:
            found.add(kind)
            todo.extend(edges(kind))
    return found


class Lab:
    """A lab: a state directory, its sites' addresses, and the components of a registry."""

    def __init__(self, config: LabConfig, registry: Registry) -> None:
        self.config = config
        self.runner = Runner()
        self.components: list[Component] = registry.build(self)
        saved = self._saved_state()
        if saved and saved["regions"] != config.regions:
            regions = ",".join(f"{k}={v}" for k, v in saved["regions"].items())
            raise LabError(f"{config.state_dir} holds a lab of regions {regions}: stop it with "
                           f"FAILSAFE_LAB_REGIONS={regions} python -m lab down, or use another "
                           "FAILSAFE_LAB_DIR")
        self.addresses = dict(config.regions)
        self.addresses.update(site_addresses(config.regions, (c.site for c in self.components),
                                             saved.get("sites")))
        self.ports = self._plan_ports(saved.get("ports", {}))

    # Components ------------------------------------------------------------------------------
    @property
    def kinds(self) -> list[str]:
        return list(dict.fromkeys(comp.kind for comp in self.components))

    def component(self, name: str) -> Component:
        for comp in self.components:
            if comp.name == name:
                return comp
        raise KeyError(name)

    def of_kind(self, kind: str) -> list[Component]:
        return [comp for comp in self.components if comp.kind == kind]

    def select(self, kinds: Iterable[str] | None = None) -> list[Component]:
        """The components of `kinds` and of every kind they need, in start order (None: all but
        the optional ones)."""
        if kinds is None:
            return [comp for comp in self.components if not comp.optional]
        unknown = sorted(set(kinds) - set(self.kinds))
        if unknown:
            raise LabError(f"unknown kind {', '.join(unknown)}; the lab has {', '.join(self.kinds)}")
        needs = {comp.kind: comp.needs for comp in self.components}
        wanted = closure(kinds, lambda kind: needs[kind])
        return [comp for comp in self.components if comp.kind in wanted]

    def dependents(self, kinds: Iterable[str] | None = None) -> list[Component]:
        """The components of `kinds` and of every kind that needs them, in start order."""
        if kinds is None:
            return list(self.components)
        needed_by: dict[str, set[str]] = {}
        for comp in self.components:
            for kind in comp.needs:
                needed_by.setdefault(kind, set()).add(comp.kind)
        wanted = closure(kinds, lambda kind: needed_by.get(kind, ()))
        return [comp for comp in self.components if comp.kind in wanted]

    @property
    def ca(self) -> LabCA:
        """The lab's certificate authority (<state dir>/tls/ca.crt), created on first use."""
        return LabCA(self.config.state_dir / "tls", self.runner)

    def secrets(self) -> set[str]:
        return {secret for comp in self.components for secret in comp.secrets}

    def missing_packages(self, kinds: Iterable[str] | None = None) -> list[str]:
        """Debian packages the selected components need and that are not installed."""
        packages = list(BASE_PACKAGES)
        for comp in self.select(kinds):
            packages.extend(comp.packages)
        return list(dict.fromkeys(p.name for p in packages if not p.installed()))

    # Addresses and ports ---------------------------------------------------------------------
    @property
    def ports_file(self) -> Path:
        return self.config.state_dir / PORTS_FILE

    def _saved_state(self) -> dict:
        try:
            return json.loads(self.ports_file.read_text())
        except (OSError, ValueError):
            return {}

    def _plan_ports(self, saved: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        """Saved ports stay; others are default + offset, moved up past ports already given on
        the same address (and, with scan_ports, past ports something else listens on)."""
        ports = {comp.name: dict(saved.get(comp.name, {})) for comp in self.components}
        used = {(comp.host, port) for comp in self.components
                for port in ports[comp.name].values()}
        for comp in self.components:
            for port_name, default in comp.default_ports.items():
                if port_name in ports[comp.name]:
                    continue
                port = default + self.config.port_offset
                for port in range(port, port + PORT_SCAN_LIMIT):
                    if (comp.host, port) not in used and (
                            not self.config.scan_ports or port_free(comp.host, port)):
                        break
                else:
                    raise LabError(f"no free port for {comp.name} {port_name} on {comp.host} "
                                   f"in {default + self.config.port_offset}-{port}")
                ports[comp.name][port_name] = port
                used.add((comp.host, port))
        return ports

    def save_state(self) -> None:
        """Persist the addresses and ports (before any server starts, for `down` and reaping)."""
        sites = {site: address for site, address in self.addresses.items()
                 if site not in self.config.regions}
        self.ports_file.write_text(json.dumps(
            {"regions": self.config.regions, "sites": sites, "ports": self.ports}, indent=2) + "\n")

    # Life cycle ------------------------------------------------------------------------------
    @contextmanager
    def exclusive(self):
        """One `up` or `down` of this lab at a time (another waits): two at once would each
        take the other's servers for their own. The lock file lies beside the state directory,
        which `down` removes."""
        path = self.config.state_dir.with_name(self.config.state_dir.name + ".lock")
        with open(path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "?"
                print(f"lab: waiting for another `python -m lab` on {self.config.state_dir} "
                      f"(pid {holder})", file=sys.stderr)
                fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def up(self, kinds: Iterable[str] | None = None) -> None:
        """Start the components of `kinds` (and what they need; all: None) that do not run."""
        with self.exclusive():
            self.start_unlocked(kinds)

    def start_unlocked(self, kinds: Iterable[str] | None) -> None:
        selected = self.select(kinds)
        self.runner.ensure_user()
        self.runner.make_dir(self.config.state_dir, 0o755)
        self.save_state()
        started: list[tuple[Component, list[Path]]] = []
        try:
            for comp in selected:
                if not comp.running():
                    # Directories this call creates; those that exist hold a server's data (a
                    # node that was killed and is started again) and stay.
                    started.append((comp, [p for p in comp.data_dirs() if not p.exists()]))
                    comp.wait_ports_free()
                    comp.up()
        except BaseException as exc:
            # Stop what this call started, never what ran before it, and keep every data
            # directory that existed before (a failed restart must not wipe a node).
            cleanup = self.undo_start(started)
            if isinstance(exc, LabError):
                raise LabError(f"{exc}\n{cleanup}") from exc
            exc.add_note(cleanup)  # Ctrl-C: `python -m lab` prints it
            raise

    @staticmethod
    def stop_each(components: list[Component], immediate: bool) -> list[str]:
        """Stop the components in reverse order, going on past a failure; returns
        "<name>: <error>" for each that failed."""
        errors = []
        for comp in reversed(components):
            try:
                comp.down(immediate=immediate)
            except Exception as exc:  # keep stopping the others
                errors.append(f"{comp.name}: {exc}")
        return errors

    def undo_start(self, started: list[tuple[Component, list[Path]]]) -> str:
        """Stop the components a failed `up` started and remove the directories it created;
        says what it stopped, what it kept and what still runs."""
        errors = self.stop_each([comp for comp, _created in started], immediate=True)
        for _comp, created in started:
            for path in created:
                shutil.rmtree(path, ignore_errors=True)
        stopped = [comp.name for comp, _created in reversed(started) if not comp.running()]
        kept = [comp.name for comp, created in reversed(started) if not created]
        running = [comp.name for comp in self.components if comp.running()]
        lines = [f"lab: stopped what this `up` started: {', '.join(stopped) or 'nothing'}"]
        if kept:
            lines.append(f"lab: data kept (it existed before): {', '.join(kept)}; "
                         f"`python -m lab up` again once the cause is fixed")
        if running:
            lines.append(f"lab: still running, untouched: {', '.join(running)}")
        if errors:
            lines.append(f"lab: could not stop: {'; '.join(errors)}")
        return "\n".join(lines)

    def down(self, keep_data: bool = False, kinds: Iterable[str] | None = None,
             immediate: bool | None = None) -> None:
        """Stop the components of `kinds` and of every kind that needs them (all: None).

        Unless `keep_data`, their data goes too (all of the state directory when all stop);
        `immediate` (default: not keep_data) skips the clean shutdown.
        """
        immediate = not keep_data if immediate is None else immediate
        with self.exclusive():
            self.stop_unlocked(keep_data, kinds, immediate)

    def stop_unlocked(self, keep_data: bool, kinds: Iterable[str] | None,
                      immediate: bool) -> None:
        selected = self.dependents(kinds)
        errors = self.stop_each(selected, immediate)
        if not keep_data:
            doomed = [self.config.state_dir] if kinds is None else \
                [path for comp in selected for path in comp.data_dirs()]
            for path in doomed:
                shutil.rmtree(path, ignore_errors=True)
        if errors:
            raise LabError("; ".join(errors))

    def status(self) -> list[dict]:
        return [comp.status() for comp in self.components]
