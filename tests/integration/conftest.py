"""Integration tests against the real lab: the generic lab fixture and how to run Ansible.

The tests run a lab of their OWN, never the default one (/var/tmp/failsafe-lab, 127.0.1.1 and
127.0.2.1), which may be running for a demo. Before any lab is built this file sets:

    FAILSAFE_LAB_DIR          /var/tmp/failsafe-test-lab-<pid of pytest>
    FAILSAFE_LAB_REGIONS      us-east=127.0.3.1,us-west=127.0.4.1 (non-region sites: 127.1.3.<n>)
    FAILSAFE_LAB_PORT_OFFSET  10000 + pid % 50, with FAILSAFE_LAB_PORT_SCAN=1 (free ports only)

(override with FAILSAFE_TEST_LAB_DIR, FAILSAFE_TEST_LAB_REGIONS, FAILSAFE_TEST_LAB_PORT_OFFSET; the
plain FAILSAFE_LAB_* variables of your shell are ignored on purpose, so that a test run can never
tear down a demo lab).

Engine plugins
--------------
Every module in engines/ is a pytest plugin of one engine (engines/postgresql.py: `pg_pair`,
`PgPair`, `PgNode`, ...); adding an engine's fixtures is adding a file there. A plugin may define
`LAB_ENGINE`, an object with
    kinds                  the lab kinds its fixtures use
    problems(env)          why those servers are not in their canonical state (empty: they are)
    helpers                {name: function(env, ...)}: extra `lab_env.<name>(...)` methods
Its fixtures call `lab_env.ensure_started(kinds)`: the session starts only what its tests use.

Fixtures
--------
lab_env (session)
    The session's lab; starts nothing by itself, always stops what runs and removes its data
    (finaliser; atexit safeguard; SIGTERM turned into KeyboardInterrupt so that it stops the lab
    too; labs left by a pytest killed with SIGKILL are reaped at the next start, from the
    addresses and ports they persisted). A `LabEnv`: `.lab`, `.config`, `.inventory`
    (lab.inventory rendered for the test lab: hosts pg-us-east, pg-us-west, pg-witness; groups
    us-east, us-west, aliases us_east, us_west, postgresql, witness), `.localhost_inventory`
    (localhost only, for ad-hoc module runs), `.envvars` (environment for ansible-runner:
    ANSIBLE_CONFIG, ANSIBLE_COLLECTIONS_PATH=<repo>/collections, ANSIBLE_ROLES_PATH, PATH with
    the venv), `.workdir`, `.ensure_started(kinds)` (starts those kinds and what they need
    unless they run; skips the test when their Debian packages are missing),
    `.canonical_problems()`, `.ensure_canonical()` (resets an engine's servers when its
    problems() is not empty), `.reset(kinds=None)`, and the engines' helpers (`.pair()`,
    `.node(region)` from engines/postgresql.py).
run_module (session)
    `run_module(name, args, check=False, diff=False, verbosity=0)` runs
    `failsafe.datastores.<name>` on localhost (connection local, the venv's Python) through
    ansible-runner, with args as JSON (nested dicts work), and returns a `ModuleResult`: the
    module's result dict (event_data['res'] of runner_on_ok/runner_on_failed) with `.failed`,
    `.msg`, `.changed`, `.events`, `.stdout`, `.status`, `.rc`. The runner's artifacts (they
    hold the command line, passwords included) are deleted after each run.
run_playbook (session)
    `run_playbook(path, inventory=None, extravars=None, limit=None, check=False, diff=False,
    verbosity=0)` runs a playbook (path relative to the repository) with ansible-runner against
    the test lab's inventory; returns the Runner (.status, .rc, .events, .stdout_text).
closed_port (session)
    `closed_port(host='127.0.0.1')` -> a TCP port where nothing listens.
lab_secrets (session)
    The lab's passwords (every component's `secrets`), which no output may contain.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
for _path in (str(HERE), str(REPO / "collections"), str(REPO)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

TEST_LAB_PREFIX = "/var/tmp/failsafe-test-lab-"
TEST_REGIONS = "us-east=127.0.3.1,us-west=127.0.4.1"
TEST_PORT_OFFSET = 10000
COLLECTION = "failsafe.datastores"
ENGINE_PLUGINS = sorted(f"engines.{path.stem}" for path in (HERE / "engines").glob("*.py")
                        if not path.name.startswith("_"))


def _worker_regions() -> str:
    """The test lab's regions: 127.0.3.1 and 127.0.4.1, or for pytest-xdist's worker gwN
    (tests/run-all.sh runs two) 127.0.(3+20N).1 and 127.0.(4+20N).1, so that each worker's lab
    has addresses of its own (and its other sites 127.1.(3+20N).n)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    number = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    if number == 0:
        return TEST_REGIONS
    return f"us-east=127.0.{3 + 20 * number}.1,us-west=127.0.{4 + 20 * number}.1"


def _configure_test_lab_env():
    """Point FAILSAFE_LAB_* at the test lab (before any LabConfig.from_env())."""
    state_dir = os.environ.get("FAILSAFE_TEST_LAB_DIR") or f"{TEST_LAB_PREFIX}{os.getpid()}"
    # Scan from a pid-dependent offset, so that two sessions started at the same moment
    # (neither lab bound yet) are unlikely to pick the same ports.
    offset = os.environ.get("FAILSAFE_TEST_LAB_PORT_OFFSET") or str(TEST_PORT_OFFSET + os.getpid() % 50)
    os.environ["FAILSAFE_LAB_DIR"] = state_dir
    os.environ["FAILSAFE_LAB_REGIONS"] = os.environ.get("FAILSAFE_TEST_LAB_REGIONS") or _worker_regions()
    os.environ["FAILSAFE_LAB_PORT_OFFSET"] = offset
    os.environ["FAILSAFE_LAB_PORT_SCAN"] = "1"


_configure_test_lab_env()

from lab import inventory as lab_inventory  # noqa: E402
from lab.core import DEFAULT_REGIONS, LabConfig, LabError, default_state_dir, pid_alive  # noqa: E402
from lab.topology import make_lab  # noqa: E402


def pytest_configure(config):
    """Load the engine plugins (import_plugin rather than pytest_plugins: pytest accepts
    pytest_plugins only in the rootdir's conftest, and this one is not when running `pytest tests`)."""
    for name in ENGINE_PLUGINS:
        config.pluginmanager.import_plugin(name)


def _closed_port(host="127.0.0.1"):
    """A TCP port on `host` where nothing listens (for 'unreachable server' tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def closed_port():
    """closed_port(host='127.0.0.1') -> a port where nothing listens."""
    return _closed_port


@pytest.fixture(scope="session")
def lab_secrets(lab_env):
    """The lab's passwords: no output of a test run may contain them."""
    return tuple(sorted(lab_env.lab.secrets()))


# The lab -----------------------------------------------------------------------------------

def _reap_stale_test_labs():
    """Stop test labs left by a pytest that died (SIGKILL): only ours, only if its owner is dead."""
    for marker in Path("/var/tmp").glob(f"{Path(TEST_LAB_PREFIX).name}*/pytest-owner.json"):
        try:
            owner = json.loads(marker.read_text())
        except (OSError, ValueError):
            continue
        if pid_alive(int(owner.get("pid", 0))):
            continue
        state_dir = marker.parent
        try:
            make_lab(LabConfig.from_state_dir(state_dir)).down()
        except (OSError, ValueError, KeyError, LabError):
            shutil.rmtree(state_dir, ignore_errors=True)


class LabEnv:
    """The test lab of this pytest session and how to run Ansible against it."""

    def __init__(self, workdir: Path, engines: list) -> None:
        self.engines = engines
        self.config = LabConfig.from_env()
        if str(self.config.state_dir) == default_state_dir() \
                or set(self.config.regions.values()) & set(DEFAULT_REGIONS.values()):
            raise RuntimeError("refusing to run integration tests on the default lab "
                               f"({self.config.state_dir}, {self.config.regions})")
        self.lab = make_lab(self.config)
        self.workdir = workdir
        self.inventory = lab_inventory.write(self.lab, workdir / "inventory")
        self.localhost_inventory = workdir / "localhost.yml"
        self.localhost_inventory.write_text(
            "all:\n  hosts:\n    localhost:\n"
            "      ansible_connection: local\n"
            f"      ansible_python_interpreter: {sys.executable}\n")
        self.envvars = {
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / "collections"),
            "ANSIBLE_ROLES_PATH": str(REPO / "roles"),
            "ANSIBLE_NOCOLOR": "1",
            "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
        }
        self.started: set[str] = set()  # kinds started in this session
        self.resets = 0
        self._lock = threading.RLock()

    def __getattr__(self, name):
        """The engines' helpers (lab_env.pair() from engines/postgresql.py, ...)."""
        for engine in self.__dict__.get("engines", ()):
            helper = getattr(engine, "helpers", {}).get(name)
            if helper is not None:
                return functools.partial(helper, self)
        raise AttributeError(f"LabEnv has no {name!r}, and no engine plugin provides it")

    # Life cycle
    def ensure_started(self, kinds) -> None:
        """Start these kinds (and the kinds they need) unless this session already did; skip
        the test when a Debian package they need is missing."""
        wanted = {comp.kind for comp in self.lab.select(kinds)}
        if wanted <= self.started:
            return
        missing = self.lab.missing_packages(kinds)
        if missing:
            pytest.skip(f"the lab's {', '.join(sorted(wanted))} need the Debian packages "
                        f"{' '.join(missing)} (lab/install-deps.sh installs them)")
        with self._lock:
            self._mark_owner()
            self.lab.up(sorted(wanted))
            self.started |= wanted

    def stop(self) -> None:
        """Stop every server of the lab and remove its data (also what a reset left)."""
        with self._lock:
            self.started.clear()
            self.lab.down()

    def reset(self, kinds=None) -> None:
        """Throw these kinds' servers away (default: all started) and start them fresh."""
        with self._lock:
            self.resets += 1
            try:
                self.lab.down(kinds=sorted(self.started if kinds is None else kinds))
            except LabError:
                pass
            self.lab.up(sorted(self.started))

    def _mark_owner(self) -> None:
        """Written before any server starts: the reaper's proof that this lab is ours."""
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        (self.config.state_dir / "pytest-owner.json").write_text(json.dumps({"pid": os.getpid()}))

    # Canonical state
    def _engines_in_use(self) -> list:
        return [engine for engine in self.engines if set(engine.kinds) <= self.started]

    def canonical_problems(self) -> list[str]:
        """Why the servers started so far are not canonical (empty when they are)."""
        return [problem for engine in self._engines_in_use() for problem in engine.problems(self)]

    def ensure_canonical(self) -> bool:
        """Reset each engine whose servers are not canonical; returns True if one was reset."""
        reset = False
        for engine in self._engines_in_use():
            if not engine.problems(self):
                continue
            self.reset(engine.kinds)
            reset = True
            problems = engine.problems(self)
            if problems:
                raise LabError(f"the test lab is not canonical after a reset: {problems}")
        return reset


_ACTIVE_LABS: list[LabEnv] = []


def _stop_active_labs() -> None:
    for env in list(_ACTIVE_LABS):
        try:
            env.stop()
        except Exception as exc:  # atexit: report, keep going
            print(f"failsafe test lab: stop failed: {exc}", file=sys.stderr)


atexit.register(_stop_active_labs)


def _install_sigterm_handler() -> None:
    """SIGTERM (CI timeouts, `kill`) would skip finalisers and atexit: make it a
    KeyboardInterrupt, which pytest turns into an orderly stop (the lab_env finaliser runs).
    SystemExit would not do: pytest reports it as one failed test and carries on."""
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return
    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


@pytest.fixture(scope="session")
def lab_env(request, tmp_path_factory):
    """The session's own lab: engine fixtures start what they use; always stopped at the end."""
    _reap_stale_test_labs()
    engines = [plugin.LAB_ENGINE for plugin in map(request.config.pluginmanager.get_plugin,
                                                   ENGINE_PLUGINS)
               if hasattr(plugin, "LAB_ENGINE")]
    env = LabEnv(tmp_path_factory.mktemp("failsafe-lab"), engines)
    _ACTIVE_LABS.append(env)
    _install_sigterm_handler()
    try:
        yield env
    finally:
        try:
            env.stop()
        finally:
            if env in _ACTIVE_LABS:
                _ACTIVE_LABS.remove(env)


# Ansible -----------------------------------------------------------------------------------

class ModuleResult(dict):
    """The module's result (event_data['res']) plus the run around it."""

    def __init__(self, res, failed, status, rc, events, stdout):
        super().__init__(res)
        self.failed = failed
        self.status = status
        self.rc = rc
        self.events = events
        self.stdout = stdout

    @property
    def msg(self) -> str:
        return self.get("msg") or ""

    @property
    def changed(self) -> bool:
        return bool(self.get("changed"))

    def __repr__(self) -> str:
        return f"ModuleResult(failed={self.failed}, {dict.__repr__(self)})"


def _never_cancel() -> bool:
    """Our cancel_callback for ansible_runner.run.

    Without one, ansible_runner.run() replaces the process's SIGINT and SIGTERM handlers for
    good with handlers that only cancel the current run: Ctrl-C or a CI timeout would then no
    longer stop pytest (nor, therefore, the lab). With it, the signals keep raising
    KeyboardInterrupt / SystemExit and the lab_env finaliser stops the lab.
    """
    return False


def _run_module(env: LabEnv, base_dir: Path, name, args, check=False, diff=False, verbosity=0,
                timeout=300):
    import ansible_runner

    module = name if "." in name else f"{COLLECTION}.{name}"
    private = Path(tempfile.mkdtemp(prefix="runner-", dir=base_dir))
    cmdline = " ".join(flag for flag, on in (("--check", check), ("--diff", diff)) if on)
    try:
        runner = ansible_runner.run(
            private_data_dir=str(private),
            module=module,
            module_args=json.dumps(args),
            host_pattern="localhost",
            inventory=str(env.localhost_inventory),
            envvars=dict(env.envvars),
            cmdline=cmdline or None,
            verbosity=verbosity or None,
            quiet=True,
            timeout=timeout,
            cancel_callback=_never_cancel,
        )
        events = list(runner.events)
    finally:
        # The artifacts hold the command line, module arguments included: do not keep them.
        shutil.rmtree(private, ignore_errors=True)
    stdout = "\n".join(e.get("stdout", "") for e in events)
    for event in events:
        if event.get("event") in ("runner_on_ok", "runner_on_failed"):
            res = event["event_data"]["res"]
            failed = event["event"] == "runner_on_failed" or bool(res.get("failed"))
            return ModuleResult(res, failed, runner.status, runner.rc, events, stdout)
    raise AssertionError(f"{module} did not run (status {runner.status}, rc {runner.rc}):\n"
                         f"{stdout}")


@pytest.fixture(scope="session")
def run_module(lab_env, tmp_path_factory):
    """run_module(name, args, check=False, diff=False, verbosity=0) -> ModuleResult."""
    base = tmp_path_factory.mktemp("runner")

    def run(name, args, check=False, diff=False, verbosity=0, timeout=300):
        return _run_module(lab_env, base, name, args, check=check, diff=diff,
                           verbosity=verbosity, timeout=timeout)

    return run


@pytest.fixture(scope="session")
def run_playbook(lab_env, tmp_path_factory):
    """run_playbook(playbook, inventory=None, extravars=None, limit=None, check=False,
    diff=False, verbosity=0) -> ansible_runner Runner (with .events, .status, .rc).

    The playbook path is relative to the repository unless absolute; the inventory defaults to
    the rendered inventory of the test lab.
    """
    import ansible_runner

    base = tmp_path_factory.mktemp("playbooks")

    def run(playbook, inventory=None, extravars=None, limit=None, check=False, diff=False,
            verbosity=0, timeout=900):
        path = Path(playbook)
        if not path.is_absolute():
            path = REPO / path
        private = Path(tempfile.mkdtemp(prefix="runner-", dir=base))
        cmdline = " ".join(flag for flag, on in (("--check", check), ("--diff", diff)) if on)
        runner = ansible_runner.run(
            private_data_dir=str(private),
            playbook=str(path),
            inventory=str(inventory or lab_env.inventory),
            extravars=extravars or None,
            limit=limit,
            envvars=dict(lab_env.envvars),
            cmdline=cmdline or None,
            verbosity=verbosity or None,
            quiet=True,
            timeout=timeout,
            cancel_callback=_never_cancel,
        )
        runner.stdout_text = "\n".join(e.get("stdout", "") for e in runner.events)
        return runner

    return run
