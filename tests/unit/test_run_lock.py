# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run lock's decisions and its file store, also under real concurrent processes."""

from __future__ import annotations

import datetime
import multiprocessing
import os

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils import _lock

NOW = datetime.datetime(2026, 11, 22, 3, 0, tzinfo=datetime.timezone.utc)


def owner(pid, machine="machine-a", start=100):
    return dict(controller="ctl-a", machine_id=machine, user="oncall", pid=pid, pid_start=start,
                playbook="postgresql_switchover.yml")


def record(token="other:1:1", expires_in=600, **extra):
    rec = _lock.new_record("postgresql", token, owner(1, machine="machine-b"), expires_in, NOW)
    rec.update(extra)
    return rec


def test_free_lock_is_taken():
    assert _lock.decide(None, "me", NOW, False) == ("free", None)


def test_own_lock_is_reentrant():
    assert _lock.decide(record(token="me"), "me", NOW, False)[0] == "ours"


def test_live_lock_of_another_run_is_refused():
    assert _lock.decide(record(), "me", NOW, False) == ("held", None)


def test_expired_lock_is_taken_over():
    verdict, reason = _lock.decide(record(expires_in=-1), "me", NOW, False)
    assert verdict == "take_over" and "expired" in reason


def test_break_takes_over_a_live_lock():
    verdict, reason = _lock.decide(record(), "me", NOW, True)
    assert verdict == "take_over" and "break_lock" in reason


def test_dead_holder_on_this_machine_is_taken_over():
    dead_pid = _unused_pid()
    current = record(machine_id="this-machine", pid=dead_pid)
    verdict, reason = _lock.decide(current, "me", NOW, False, machine="this-machine")
    assert verdict == "take_over" and str(dead_pid) in reason


def test_live_holder_on_this_machine_is_not_taken_over():
    current = record(machine_id="this-machine", pid=os.getpid(),
                     pid_start=_lock.process_start(os.getpid()))
    assert _lock.decide(current, "me", NOW, False, machine="this-machine")[0] == "held"


def test_reused_pid_counts_as_dead():
    current = record(machine_id="this-machine", pid=os.getpid(), pid_start=1)
    assert _lock.decide(current, "me", NOW, False, machine="this-machine")[0] == "take_over"


def test_holder_on_another_machine_is_never_judged_by_pid():
    current = record(machine_id="elsewhere", pid=_unused_pid())
    assert _lock.decide(current, "me", NOW, False, machine="this-machine")[0] == "held"


def test_describe_holder_names_who_and_since_when():
    text = _lock.describe_holder(record())
    assert "oncall@ctl-a" in text and "postgresql_switchover.yml" in text
    assert "2026-11-22T03:00:00+00:00" in text


def _unused_pid():
    pid = 4_000_000
    while os.path.exists("/proc/%d" % pid):
        pid -= 1
    return pid


# The file store ----------------------------------------------------------------------------

def test_file_store_acquire_release_cycle(tmp_path):
    store = _lock.FileStore(str(tmp_path / "locks"))
    first = _lock.acquire(store, "postgresql", "run-1", owner(1), 60, now=NOW)
    assert first["verdict"] == "free" and store.read("postgresql")["token"] == "run-1"
    again = _lock.acquire(store, "postgresql", "run-1", owner(1), 60, now=NOW)
    assert again["verdict"] == "ours"
    refused = _lock.acquire(store, "postgresql", "run-2", owner(2), 60, now=NOW)
    assert refused["verdict"] == "held" and refused["record"]["token"] == "run-1"
    assert _lock.release(store, "postgresql", "run-2")["verdict"] == "held_by_other"
    assert store.read("postgresql")["token"] == "run-1"
    assert _lock.release(store, "postgresql", "run-1")["verdict"] == "released"
    assert store.read("postgresql") is None
    assert _lock.release(store, "postgresql", "run-1")["verdict"] == "not_held"


def test_check_mode_changes_nothing(tmp_path):
    store = _lock.FileStore(str(tmp_path))
    outcome = _lock.acquire(store, "redis", "run-1", owner(1), 60, check_mode=True, now=NOW)
    assert outcome["verdict"] == "free"
    assert store.read("redis") is None
    _lock.acquire(store, "redis", "run-1", owner(1), 60, now=NOW)
    assert _lock.release(store, "redis", "run-1", check_mode=True)["verdict"] == "released"
    assert store.read("redis")["token"] == "run-1"


def test_lock_names_are_kept_apart(tmp_path):
    store = _lock.FileStore(str(tmp_path))
    _lock.acquire(store, "postgresql", "run-1", owner(1), 60, now=NOW)
    assert _lock.acquire(store, "redis", "run-2", owner(2), 60, now=NOW)["verdict"] == "free"


def test_unwritable_directory_is_a_clear_error(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "ro"
    locked.mkdir(mode=0o500)
    with pytest.raises(_lock.LockError, match="not writable"):
        _lock.acquire(_lock.FileStore(str(locked)), "x", "t", owner(1), 60)


def _contend(directory, token, barrier, results):
    barrier.wait()
    outcome = _lock.acquire(_lock.FileStore(directory), "postgresql", token, owner(1), 60)
    results.put((token, outcome["verdict"]))


def test_only_one_of_many_concurrent_processes_gets_the_lock(tmp_path):
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(str(tmp_path), "run-%d" % i, barrier, results))
             for i in range(8)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
    verdicts = [results.get(timeout=5)[1] for _proc in procs]
    assert sorted(verdicts) == ["free"] + ["held"] * 7
