"""The lab's machinery: regions, components, processes, the unprivileged user.

A component is one server on one loopback address. Adding an engine to the lab is writing one
Component subclass (see postgresql.py) and naming it in topology.py.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Loopback addresses that make the lab look like two sites.
DEFAULT_REGIONS = {"us-east": "127.0.1.1", "us-west": "127.0.2.1"}

# PostgreSQL refuses to run as root: as root the lab runs servers as this system user.
LAB_SYSTEM_USER = "failsafe-lab"


class LabError(RuntimeError):
    """A lab step failed; the message says which and where its log is."""


@dataclass
class LabConfig:
    """Where the lab lives and which addresses its regions use."""

    state_dir: Path
    regions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_REGIONS))
    pg_port: int = 15432

    @classmethod
    def from_env(cls) -> "LabConfig":
        """Defaults, overridable so that tests run a lab of their own beside a demo lab."""
        regions = dict(DEFAULT_REGIONS)
        spec = os.environ.get("FAILSAFE_LAB_REGIONS")
        if spec:
            regions = dict(item.split("=", 1) for item in spec.split(","))
        state_dir = os.environ.get("FAILSAFE_LAB_DIR") or default_state_dir()
        return cls(
            state_dir=Path(state_dir),
            regions=regions,
            pg_port=int(os.environ.get("FAILSAFE_LAB_PG_PORT", "15432")),
        )


def default_state_dir() -> str:
    """Where the lab's servers keep their files (FAILSAFE_LAB_DIR overrides).

    Not inside the checkout: a checkout under /root (mode 700) cannot be entered by the
    unprivileged server user. inventories/lab names the same directory.
    """
    return "/var/tmp/failsafe-lab"


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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_pid(pid: int, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after the grace period."""
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


class Component:
    """One server of the lab. Subclasses implement up, down and status."""

    kind = "component"

    def __init__(self, lab: "Lab", region: str) -> None:
        self.lab = lab
        self.region = region

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.region}"

    @property
    def host(self) -> str:
        return self.lab.config.regions[self.region]

    @property
    def port(self) -> int:
        raise NotImplementedError

    @property
    def home(self) -> Path:
        return self.lab.config.state_dir / self.name

    def up(self) -> None:
        raise NotImplementedError

    def down(self, purge: bool = False) -> None:
        """Stop the server; `purge` says its data is thrown away next (no clean shutdown needed)."""
        raise NotImplementedError

    def status(self) -> dict:
        raise NotImplementedError

    def base_status(self) -> dict:
        return {
            "region": self.region,
            "component": self.name,
            "kind": self.kind,
            "host": self.host,
            "port": self.port,
        }


class Lab:
    """The lab: a state directory and the components of topology.py, in start order."""

    def __init__(self, config: LabConfig | None = None) -> None:
        from lab.topology import build_components

        self.config = config or LabConfig.from_env()
        self.runner = Runner()
        self.components: list[Component] = build_components(self)

    def component(self, name: str) -> Component:
        for comp in self.components:
            if comp.name == name:
                return comp
        raise KeyError(name)

    def up(self) -> None:
        self.runner.ensure_user()
        self.runner.make_dir(self.config.state_dir, 0o755)
        (self.config.state_dir / "config.json").write_text(
            json.dumps({"regions": self.config.regions, "pg_port": self.config.pg_port})
        )
        try:
            for comp in self.components:
                comp.up()
        except BaseException:
            # Never leave half a lab running.
            self.down()
            raise

    def down(self, keep_data: bool = False) -> None:
        errors = []
        for comp in reversed(self.components):
            try:
                comp.down(purge=not keep_data)
            except Exception as exc:  # keep stopping the others
                errors.append(f"{comp.name}: {exc}")
        if not keep_data and self.config.state_dir.exists():
            shutil.rmtree(self.config.state_dir, ignore_errors=True)
        if errors:
            raise LabError("; ".join(errors))

    def status(self) -> list[dict]:
        return [comp.status() for comp in self.components]
