"""The application in the lab: one writer service per region, run by supervisord.

Each region site gets a supervisord of its own (PyPI `supervisor`, a real process manager that
community.general.supervisorctl drives): its configuration, log and journal live in the
component's state directory, its XML-RPC/HTTP interface listens on the region's address (port
`supervisor`, basic auth with a lab-only password). It runs one program, `failsafe-writer`
(lab/app_service.py): it resolves `postgresql.<zone>` and `redis.<zone>` through the lab's BIND
primary, writes a sequence to both stores, answers GET /health on port `http`, and journals
every acknowledged write to `journal.jsonl`.

The active region writes: the writer of the first region (us-east) starts with supervisord
(`autostart=true`), the others' are configured but stopped (`autostart=false`) until the
app_traffic role (or supervisorctl) starts them. Stopping the component stops supervisord,
which stops its program (they share a process group, which `down` signals as a whole).

supervisord and the writer run as the user who starts the lab, not as the lab's user: they are
the virtualenv's Python, which the lab's user may not be able to execute (a virtualenv under
/root), as for the Route 53 emulator.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab.core import Component, InventoryHost, LabError, stop_process, wait_listening

PROGRAM = "failsafe-writer"
SUPERVISOR_USER = "failsafe"
# Lab-only secret of a server bound to loopback; production uses vault.
SUPERVISOR_PASSWORD = "lab-supervisor-secret"
SERVICE = Path(__file__).resolve().parent / "app_service.py"
# Seconds between two writes of a writer (each write goes to both stores).
WRITE_INTERVAL = 0.05


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


class AppWriter(Component):
    """supervisord with the program failsafe-writer, on one region site."""

    kind = "app"
    needs = ("postgresql", "redis", "bind")
    default_ports = {"http": 18080, "supervisor": 19001}
    secrets = (SUPERVISOR_PASSWORD,)
    stop_grace = 15.0

    # Paths -----------------------------------------------------------------------------------
    @property
    def supervisor_config(self) -> Path:
        return self.home / "supervisord.conf"

    @property
    def app_config(self) -> Path:
        return self.home / "app.json"

    @property
    def journal(self) -> Path:
        return self.home / "journal.jsonl"

    @property
    def log_file(self) -> Path:
        return self.home / "log" / "supervisord.log"

    @property
    def health_url(self) -> str:
        return f"http://{self.host}:{self.ports['http']}/health"

    @property
    def supervisor_url(self) -> str:
        return f"http://{self.host}:{self.ports['supervisor']}"

    @property
    def active(self) -> bool:
        """Whether this region's writer starts with supervisord (the first region writes)."""
        return self.site == next(iter(self.lab.config.regions))

    # Configuration ---------------------------------------------------------------------------
    def service_config(self) -> dict:
        """lab/app_service.py's configuration: where to listen, resolve, write and journal."""
        from lab import postgresql, redis
        from lab.bind import ZONE, BindServer

        dns = next(c for c in self.lab.of_kind(BindServer.kind) if c.primary is None)
        pg_nodes = self.lab.of_kind(postgresql.PostgresNode.kind)
        redis_nodes = self.lab.of_kind(redis.RedisNode.kind)
        return {
            "region": self.site, "program": PROGRAM, "interval": WRITE_INTERVAL,
            "listen": {"host": self.host, "port": self.ports["http"]},
            "dns": {"server": dns.host, "port": dns.port},
            "journal": str(self.journal),
            "postgresql": {
                "dns_name": f"postgresql.{ZONE}",
                "port": pg_nodes[0].port, "ports": {n.host: n.port for n in pg_nodes},
                "user": postgresql.ADMIN_USER, "password": postgresql.ADMIN_PASSWORD,
                "dbname": "postgres", "ca_cert": str(self.lab.ca.cert_path)},
            "redis": {
                "dns_name": f"redis.{ZONE}",
                "port": redis_nodes[0].port, "ports": {n.host: n.port for n in redis_nodes},
                "password": redis.PASSWORD},
        }

    def supervisord_conf(self) -> str:
        log_dir = self.log_file.parent
        return f"""; Written by the failsafe lab for {self.name}.
[inet_http_server]
port = {self.host}:{self.ports['supervisor']}
username = {SUPERVISOR_USER}
password = {SUPERVISOR_PASSWORD}

[supervisord]
nodaemon = true
logfile = {self.log_file}
pidfile = {self.home / 'supervisord.pid'}
childlogdir = {log_dir}
directory = {self.home}
identifier = failsafe-app-{self.site}

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl = {self.supervisor_url}
username = {SUPERVISOR_USER}
password = {SUPERVISOR_PASSWORD}

[program:{PROGRAM}]
command = {sys.executable} {SERVICE} --config {self.app_config}
directory = {self.home}
autostart = {'true' if self.active else 'false'}
autorestart = true
# The role app_traffic waits for /health itself: supervisorctl start need not wait a second.
startsecs = 0
startretries = 100
stopsignal = TERM
stopwaitsecs = 10
redirect_stderr = true
stdout_logfile = {log_dir / (PROGRAM + '.log')}
"""

    # Life cycle ------------------------------------------------------------------------------
    def up(self) -> None:
        try:
            import supervisor  # noqa: F401  (only to say what is missing)
        except ImportError:
            raise LabError(f"{self.name} needs supervisord: pip install supervisor "
                           "(requirements-dev.txt)")
        for path in (self.home, self.log_file.parent):
            path.mkdir(parents=True, exist_ok=True)
        for path, text in ((self.app_config, json.dumps(self.service_config(), indent=2)),
                           (self.supervisor_config, self.supervisord_conf())):
            path.write_text(text + "\n")
            os.chmod(path, 0o600)
        with open(self.log_file.parent / "supervisord.out", "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "supervisor.supervisord", "-n", "-c",
                 str(self.supervisor_config)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=str(self.home), start_new_session=True)
        self.pid_file.write_text(f"{proc.pid}\n")
        self.wait_listening("supervisor", timeout=30)
        if self.active:
            self.wait_program("RUNNING")
            self.wait_listening("http", timeout=30)

    def wait_program(self, wanted: str, timeout: float = 30.0) -> None:
        """Until supervisord reports the writer in state `wanted` (RUNNING: past startsecs)."""
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline and self.running():
            try:
                state = self.program_state()
            except OSError:
                state = None
            if state == wanted:
                return
            time.sleep(0.1)
        raise LabError(f"{self.name}: {PROGRAM} is {state}, not {wanted}, after {timeout}s; "
                       f"see {self.log_file.parent}")

    def down(self, immediate: bool = False) -> None:
        """Stop supervisord, which stops its program; the program is in a process group of its
        own (supervisord's doing), so a SIGKILL of supervisord would leave it running: it is
        stopped here too."""
        pid = self.pid()
        children = child_pids(pid) if pid else []
        super().down(immediate)
        for child in children:
            stop_process(child, signal.SIGKILL if immediate else signal.SIGTERM,
                         0 if immediate else self.stop_grace)

    def rpc(self):
        """An XML-RPC proxy of this supervisord (basic auth)."""
        import xmlrpc.client

        url = (f"http://{SUPERVISOR_USER}:{SUPERVISOR_PASSWORD}@{self.host}:"
               f"{self.ports['supervisor']}/RPC2")
        return xmlrpc.client.ServerProxy(url)

    def program_state(self) -> str:
        """supervisord's state name of the writer: RUNNING, STOPPED, STARTING, ..."""
        return self.rpc().supervisor.getProcessInfo(PROGRAM)["statename"]

    def health(self, timeout: float = 2.0) -> dict | None:
        """The writer's /health document (None: it does not answer)."""
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(self.health_url, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 503: failing, still a document
            return json.loads(exc.read())
        except (OSError, ValueError):
            return None

    def wait_writing(self, timeout: float = 30.0) -> dict:
        """Until /health says writing ok (lab start, tests)."""
        deadline = time.monotonic() + timeout
        health = None
        while time.monotonic() < deadline:
            health = self.health()
            if health and health.get("writing") == "ok":
                return health
            time.sleep(0.1)
        raise LabError(f"{self.name}: the writer is not writing after {timeout}s: {health}")

    # What it shows ---------------------------------------------------------------------------
    def describe(self) -> dict:
        state = self.program_state()
        detail = f"{PROGRAM} {state}"
        info: dict = {"role": "writing" if state == "RUNNING" else "idle", "program": state}
        if state == "RUNNING" and wait_listening(self.host, self.ports["http"], 0.5):
            health = self.health()
            if health:
                info["health"] = health
                detail += f", writing {health.get('writing')}"
        return {**info, "detail": detail}

    def inventory_host(self) -> InventoryHost:
        return InventoryHost(f"app-{self.site}", {
            "failsafe_app_platform": "supervisor",
            "failsafe_app_program": PROGRAM,
            "failsafe_app_health_url": self.health_url,
            "failsafe_app_supervisor_url": self.supervisor_url,
            "failsafe_app_supervisor_config": str(self.supervisor_config),
            "failsafe_app_journal": str(self.journal),
        }, ("app",))

    def inventory_vars(self) -> dict:
        return {
            "failsafe_app_supervisor_username": SUPERVISOR_USER,
            # Lab-only secret of a server bound to loopback; production uses vault.
            "failsafe_app_supervisor_password": SUPERVISOR_PASSWORD,
            # supervisorctl beside the Python that runs ansible-playbook (the venv's).
            "failsafe_app_supervisorctl_path":
                "{{ ansible_playbook_python | dirname }}/supervisorctl",
        }
