"""The application in the integration tests: one writer per region under supervisord.

A pytest plugin (loaded by conftest.py, like every module of engines/).

app_pair (function)
    Guarantees the canonical state before the test: supervisord runs in both regions, the
    us-east writer RUNNING, the us-west writer STOPPED (the active region writes); otherwise it
    resets the application (~3 s; the datastores and DNS are their engines' business). An
    `AppPair`:
      .east / .west         the AppWriter components (lab/app.py)
      verification          (independent of the role: supervisord's XML-RPC interface and a
                            plain HTTP GET) program_state(comp), health(comp),
                            wait_writing(comp), wait_acknowledged(comp, store, more_than),
                            losses() ({store: StoreLosses} of every journal, lab/app_journal.py)
      preconditions         start(comp) / stop(comp) through XML-RPC
lab_env helpers
    lab_env.app_pair() (an AppPair without the canonical guarantee).
"""

from __future__ import annotations

import time

import pytest

from lab import app as lab_app
from lab import app_journal

KINDS = (lab_app.AppWriter.kind,)


class AppPair:
    def __init__(self, env) -> None:
        self.env = env
        self.east = env.lab.component("app-us-east")
        self.west = env.lab.component("app-us-west")

    def program_state(self, comp) -> str:
        return comp.program_state()

    def health(self, comp) -> dict | None:
        return comp.health()

    def wait_writing(self, comp, timeout: float = 60.0) -> dict:
        return comp.wait_writing(timeout)

    def acknowledged(self, comp, store: str) -> int:
        health = comp.health() or {}
        return health.get("stores", {}).get(store, {}).get("acknowledged", 0)

    def wait_acknowledged(self, comp, store: str, more_than: int, timeout: float = 60.0) -> int:
        """Until the writer has more than `more_than` acknowledged writes to `store`."""
        deadline = time.monotonic() + timeout
        count = self.acknowledged(comp, store)
        while count <= more_than and time.monotonic() < deadline:
            time.sleep(0.1)
            count = self.acknowledged(comp, store)
        assert count > more_than, f"{comp.name}: no new write to {store}: {comp.health()}"
        return count

    def wait_health(self, comp, predicate, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        health = comp.health()
        while not (health and predicate(health)) and time.monotonic() < deadline:
            time.sleep(0.1)
            health = comp.health()
        assert health and predicate(health), f"{comp.name}: {health}"
        return health

    def losses(self) -> dict:
        return app_journal.check_lab(self.env.lab)

    def start(self, comp) -> None:
        comp.rpc().supervisor.startProcess(lab_app.PROGRAM, True)

    def stop(self, comp) -> None:
        comp.rpc().supervisor.stopProcess(lab_app.PROGRAM, True)


def settled_state(comp, timeout: float = 15.0) -> str:
    """supervisord's state of the writer once it is not STARTING or STOPPING any more."""
    deadline = time.monotonic() + timeout
    state = comp.program_state()
    while state in ("STARTING", "STOPPING", "BACKOFF") and time.monotonic() < deadline:
        time.sleep(0.1)
        state = comp.program_state()
    return state


def canonical_problems(env) -> list[str]:
    pair = AppPair(env)
    problems = []
    for comp, wanted in ((pair.east, "RUNNING"), (pair.west, "STOPPED")):
        try:
            state = settled_state(comp)
        except Exception as exc:  # supervisord not running or not answering
            problems.append(f"{comp.name}: {exc!r}")
            continue
        if state != wanted:
            problems.append(f"{comp.name}: {lab_app.PROGRAM} {state}, not {wanted}")
    return problems


@pytest.fixture
def app_pair(lab_env):
    """Both regions' supervisord; the us-east writer running, the us-west writer stopped."""
    lab_env.ensure_started(KINDS)
    lab_env.ensure_canonical()
    return AppPair(lab_env)


class AppEngine:
    """What conftest.py's LabEnv needs to know about the application (see its docstring)."""

    kinds = KINDS
    problems = staticmethod(canonical_problems)
    helpers = {"app_pair": AppPair}


LAB_ENGINE = AppEngine()
