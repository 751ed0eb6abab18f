"""Helpers for tests that act on the lab while a module runs (a thread), and check its failure."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import psycopg


class WhenThen(threading.Thread):
    """Poll `condition()` every 10 ms and run `action()` once it holds (at most `timeout` s)."""

    def __init__(self, condition, action, timeout=60.0):
        super().__init__(daemon=True)
        self.condition, self.action, self.timeout = condition, action, timeout
        self.fired = False
        self.error = None

    def holds(self) -> bool:
        """The condition; a polling session that the run under test ends (a fence terminates
        client backends) means "not yet", not a failure of the test."""
        try:
            return bool(self.condition())
        except psycopg.OperationalError:
            return False

    def run(self):
        deadline = time.monotonic() + self.timeout
        try:
            while time.monotonic() < deadline:
                if self.holds():
                    self.action()
                    self.fired = True
                    return
                time.sleep(0.01)
        except Exception as exc:  # reported by the test
            self.error = exc


def assert_no_traceback(result):
    assert "Traceback" not in result.stdout
    # ansible-core 2.19 adds its own `exception` summary to every failure: no traceback in it.
    assert "Traceback" not in json.dumps(dict(result))


def backends(pair, node, application_name):
    return pair.scalar(node, "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                       (application_name,))


def terminate(pair, node, application_name):
    pair.query(node, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE application_name = %s", (application_name,))


def fast_shutdown(node):
    """SIGINT to the postmaster: PostgreSQL's fast shutdown (what `pg_ctl stop -m fast` sends)."""
    os.kill(node.postmaster_pid(), signal.SIGINT)
