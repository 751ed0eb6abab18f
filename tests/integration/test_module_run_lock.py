# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_lock with several names in one call (a regional failover takes regional, postgresql and
redis at once): all or none, released together; its file store read independently."""

from __future__ import annotations

import subprocess

import pytest
from ansible_collections.failsafe.datastores.plugins.module_utils import _lock

NAMES = ["regional", "postgresql", "redis"]


@pytest.fixture
def live_run():
    """A process of this machine standing for a run that is still alive."""
    proc = subprocess.Popen(["sleep", "600"])
    try:
        yield dict(controller="awx-node-2", machine_id=_lock.machine_id(), user="alice",
                   pid=proc.pid, pid_start=_lock.process_start(proc.pid),
                   playbook="postgresql_switchover.yml")
    finally:
        proc.kill()
        proc.wait()


def holders(path):
    store = _lock.FileStore(str(path))
    return {name: (store.read(name) or {}).get("token") for name in NAMES}


def test_several_locks_are_taken_and_released_together(run_module, tmp_path, live_run):
    store = {"backend": "file", "path": str(tmp_path)}
    me = dict(live_run, user="oncall", controller="laptop")
    token = _lock.run_token(me["machine_id"], me["pid"], me["pid_start"])

    check = run_module("run_lock", {"names": NAMES, "store": store, "owner": me}, check=True)
    assert not check.failed, check.msg
    assert check["locked"] and set(check["locks"]) == set(NAMES)
    assert holders(tmp_path) == dict.fromkeys(NAMES)  # check mode took nothing

    taken = run_module("run_lock", {"names": NAMES, "store": store, "owner": me})
    assert not taken.failed, taken.msg
    assert taken.changed and taken["acquired"] and taken["locked"]
    assert all(taken["locks"][n]["acquired"] for n in NAMES)
    assert holders(tmp_path) == dict.fromkeys(NAMES, token)

    again = run_module("run_lock", {"names": NAMES, "store": store, "owner": me})
    assert not again.failed and not again.changed and again["locked"]
    assert not any(again["locks"][n]["acquired"] for n in NAMES)

    released = run_module("run_lock", {"names": NAMES, "store": store, "owner": me,
                                       "state": "absent"})
    assert released.changed and all(released["locks"][n]["released"] for n in NAMES)
    assert holders(tmp_path) == dict.fromkeys(NAMES)
    assert not run_module("run_lock", {"names": NAMES, "store": store, "owner": me,
                                       "state": "absent"}).changed


def test_one_held_lock_refuses_them_all_and_keeps_none(run_module, tmp_path, live_run):
    store = {"backend": "file", "path": str(tmp_path)}
    other = _lock.run_token(live_run["machine_id"], live_run["pid"], live_run["pid_start"])
    outcome = _lock.acquire(_lock.FileStore(str(tmp_path)), "postgresql", other, live_run, 3600,
                            False, False)
    assert outcome["verdict"] == "free"

    refused = run_module("run_lock", {"names": NAMES, "store": store})
    assert refused.failed
    assert "postgresql lock" in refused.msg and "alice" in refused.msg, refused.msg
    assert "Nothing was changed" in refused.msg
    # regional, taken first in the same call, was given back; redis never taken.
    assert holders(tmp_path) == {"regional": None, "postgresql": other, "redis": None}


@pytest.mark.parametrize("args, message", [
    ({"names": ["regional", "regional"]}, "distinct"),
    ({"names": ["regional", ""]}, "non-empty"),
    ({"name": "regional", "names": ["redis"]}, "mutually exclusive"),
])
def test_bad_names_are_refused(run_module, tmp_path, args, message):
    result = run_module("run_lock", dict(args, store={"backend": "file", "path": str(tmp_path)}))
    assert result.failed and message in result.msg, result.msg
    assert not list(tmp_path.iterdir())
