"""The PostgreSQL runbooks under operator mistakes (issue 10), through ansible-runner on the lab.

Each test reproduces one mistake an on-call engineer makes: a standby lost while the switchover
waits for it, a killed run that leaves the primary fenced, a typo in `-e`, a second run started
while one holds the lock, a rejoin onto a fenced primary. Assertions read the runner's events,
and the real state is checked with independent psycopg sessions (servers and the lock table).
"""

from __future__ import annotations

import datetime
import json
import subprocess
import threading
from pathlib import Path

import psycopg
import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils import _lock
from during_run import WhenThen, fast_shutdown
from test_playbook_postgresql import changed_tasks, failures, stats, task_results

SWITCHOVER = "playbooks/postgresql_switchover.yml"
FAILOVER = "playbooks/postgresql_failover.yml"
REJOIN = "playbooks/postgresql_rejoin.yml"
UNFENCE = "playbooks/postgresql_unfence.yml"
STATUS = "playbooks/status.yml"
SWITCH_TASK = "Fence, catch up and promote in one call"
REJOIN_TASK = "Make the node a streaming standby of the primary"
LIFT_TASK = "Lift the fence"
LOCK_TASK = "Take the run lock postgresql"
PREFLIGHT_TASK = "Check the run before anything changes"
LOCK_TABLE = _lock.PostgresStore.TABLE
REJOIN_EAST = {"postgresql_rejoin_node": "pg-us-east", "postgresql_rejoin_primary": "pg-us-west"}


def failed_results(runner, task_name):
    """Failed results of one task (runner_on_failed events do not always carry 'failed')."""
    return [e["event_data"]["res"] for e in runner.events if e.get("event") == "runner_on_failed"
            and e["event_data"].get("task") == task_name]


def messages(runner):
    return " ".join(f.get("msg", "") for f in failures(runner))


def warnings(runner):
    """Every warning of the run: those in task results and those printed."""
    found = [w for e in runner.events if e.get("event") in ("runner_on_ok", "runner_on_failed")
             for w in e["event_data"]["res"].get("warnings") or []]
    return " ".join(found) + " " + runner.stdout_text


def assert_east_writable_west_standby(pair):
    assert not pair.in_recovery(pair.east)
    assert not pair.read_only(pair.east)
    assert pair.in_recovery(pair.west)


# The lock table on the witness, read and written with psycopg ---------------------------------

def lock_record(witness, name="postgresql"):
    with psycopg.connect(witness.conninfo(), autocommit=True) as conn:
        if not conn.execute("SELECT to_regclass(%s) IS NOT NULL", (LOCK_TABLE,)).fetchone()[0]:
            return None
        row = conn.execute(f"SELECT record FROM {LOCK_TABLE} WHERE name = %s",
                           (name,)).fetchone()
    return row[0] if row else None


def hold_lock(witness, pid, pid_start, machine=None, controller="awx-node-2", user="oncall",
              ttl=3600, acquired_seconds_ago=0, name="postgresql"):
    """Write a holder's record as run_lock does (_lock.new_record), for a run we simulate."""
    machine = machine or _lock.machine_id()
    now = _lock.utcnow() - datetime.timedelta(seconds=acquired_seconds_ago)
    owner = dict(controller=controller, machine_id=machine, user=user, pid=pid,
                 pid_start=pid_start, playbook="postgresql_switchover.yml")
    record = _lock.new_record(name, _lock.run_token(machine, pid, pid_start), owner, ttl, now)
    with psycopg.connect(witness.conninfo(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {LOCK_TABLE} "
                     "(name text PRIMARY KEY, record jsonb NOT NULL)")
        conn.execute(f"INSERT INTO {LOCK_TABLE} (name, record) VALUES (%s, %s::jsonb) "
                     "ON CONFLICT (name) DO UPDATE SET record = EXCLUDED.record",
                     (name, json.dumps(record)))
    return record


@pytest.fixture
def live_process():
    """A process of this machine that runs for the test (the simulated holder's run)."""
    proc = subprocess.Popen(["sleep", "600"])
    try:
        yield proc.pid, _lock.process_start(proc.pid)
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def dead_process():
    """The pid and start time of a process of this machine that has exited."""
    proc = subprocess.Popen(["sleep", "600"])
    start = _lock.process_start(proc.pid)
    proc.kill()
    proc.wait()
    return proc.pid, start


@pytest.fixture
def clean_lock(pg_witness):
    """No postgresql lock before and after the test (a test's simulated holder never leaks)."""
    def clear():
        with psycopg.connect(pg_witness.conninfo(), autocommit=True) as conn:
            if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (LOCK_TABLE,)).fetchone()[0]:
                conn.execute(f"DELETE FROM {LOCK_TABLE} WHERE name = 'postgresql'")
    clear()
    yield pg_witness
    clear()


# 1. A failed switchover leaves a writable primary ------------------------------------------

def test_a_standby_lost_during_the_switchover_leaves_the_old_primary_writable(
        pg_pair, run_playbook, clean_lock):
    """The incident: the standby stopped while the fenced primary waited for it to catch up.
    The run fails, says that the fence was lifted, the old primary takes writes, and the run
    lock is given back."""
    east, west = pg_pair.east, pg_pair.west
    pg_pair.hold_back_replay()  # the standby cannot catch up: the window stays open
    stopper = WhenThen(lambda: pg_pair.read_only(east), lambda: fast_shutdown(west),
                       timeout=600)
    stopper.start()
    try:
        runner = run_playbook(SWITCHOVER, limit="us-west",
                              extravars={"postgresql_switchover_catchup_timeout": 120})
    finally:
        stopper.join(5)
    assert stopper.fired and stopper.error is None
    assert runner.status == "failed", runner.stdout_text
    failed = failed_results(runner, SWITCH_TASK)
    assert failed, runner.stdout_text
    msg = failed[0]["msg"]
    assert "on %s failed" % west.address in msg
    assert msg.endswith("The primary %s was unfenced and takes writes again; nothing was "
                        "promoted and nothing was lost." % east.address), msg
    assert "Traceback" not in runner.stdout_text
    assert not task_results(runner, REJOIN_TASK), "nothing to rejoin after a failed switchover"
    # Independent view: a new session on the old primary writes; nothing was promoted.
    assert pg_pair.read_only(east) is False
    assert pg_pair.insert(east, "after the failed switchover") > 0
    assert pg_pair.in_recovery(east) is False
    # The failure inside the locked block gave the lock back.
    assert lock_record(clean_lock) is None


# 2. A killed run leaves the fence: status names it, unfence lifts it ---------------------------

def test_status_names_a_fenced_primary_and_the_unfence_lifts_it_once(
        pg_pair, run_playbook, clean_lock):
    east = pg_pair.east
    pg_pair.fence(east)  # as a switchover killed between its fence and its promotion leaves it

    status = run_playbook(STATUS)
    assert status.status == "successful", status.stdout_text
    record = stats(status)["artifact_data"]["failsafe_status"]["engines"]["postgresql"]
    assert record["state"] == "fenced_no_writable" and record["healthy"] is False
    assert record["diagnosis"]["fenced_primaries"] == ["pg-us-east"]
    assert record["diagnosis"]["command"] == "ansible-playbook playbooks/postgresql_unfence.yml"
    assert "fenced_no_writable" in status.stdout_text
    assert "ansible-playbook playbooks/postgresql_unfence.yml" in status.stdout_text
    assert changed_tasks(status) == []

    check = run_playbook(UNFENCE, check=True, diff=True)
    assert check.status == "successful", check.stdout_text
    planned = task_results(check, LIFT_TASK)
    assert planned and planned[0]["changed"], "check mode must say it would lift the fence"
    assert pg_pair.read_only(east) is True, "check mode lifted the fence"
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        pg_pair.insert(east, "must fail: still fenced after check mode")

    real = run_playbook(UNFENCE)
    assert real.status == "successful", real.stdout_text
    assert task_results(real, LIFT_TASK)[0]["changed"]
    assert stats(real)["artifact_data"]["failsafe_postgresql_unfence"]["node"] == "pg-us-east"
    assert pg_pair.read_only(east) is False
    row = pg_pair.insert(east, "after the unfence")
    assert pg_pair.wait_row(pg_pair.west, row), "the standby follows the unfenced primary"
    assert lock_record(clean_lock) is None

    again = run_playbook(UNFENCE)
    assert again.status == "successful", again.stdout_text
    assert changed_tasks(again) == [], "a second run must change nothing"
    assert not [r for r in task_results(again, LIFT_TASK) if not r.get("skipped")]
    assert "Nothing to do: pg-us-east takes writes" in again.stdout_text
    record = stats(again)["artifact_data"]["failsafe_postgresql_unfence"]
    assert record["already_unfenced"] is True and record["node"] == "pg-us-east"
    assert_east_writable_west_standby(pg_pair)


def test_unfence_refuses_while_another_node_takes_writes(pg_pair, run_playbook, clean_lock):
    east, west = pg_pair.east, pg_pair.west
    pg_pair.manual_switchover()  # us-west promoted; us-east stays fenced, not yet a standby
    for check in (True, False):
        runner = run_playbook(UNFENCE, check=check)
        assert runner.status == "failed", runner.stdout_text
        msg = messages(runner)
        assert msg.startswith("Refusing to lift a fence: pg-us-west takes writes"), msg
        assert "postgresql_rejoin.yml -e postgresql_rejoin_node=pg-us-east " \
               "-e postgresql_rejoin_primary=pg-us-west" in msg
        assert "Nothing was changed" in msg
        assert not [r for r in task_results(runner, LIFT_TASK) if not r.get("skipped")]
        assert pg_pair.read_only(east) is True, "the old primary's fence was lifted: split brain"
        assert not pg_pair.in_recovery(west) and not pg_pair.read_only(west)
        assert lock_record(clean_lock) is None


def test_a_switchover_of_a_fenced_primary_reports_the_outage_before_it(
        pg_pair, run_playbook, clean_lock):
    east = pg_pair.east
    pg_pair.fence(east)
    fenced_at = pg_pair.scalar(east, "SELECT modification FROM "
                                     "pg_stat_file('postgresql.auto.conf')")
    runner = run_playbook(SWITCHOVER, limit="us-west")
    assert runner.status == "successful", runner.stdout_text
    record = stats(runner)["artifact_data"]["failsafe_postgresql_switchover"]
    old = record["old_primary"]
    assert old["fenced_at_start"] is True
    # The time the fence was written, as the server's own file says (both read in UTC+offset).
    assert datetime.datetime.fromisoformat(old["fenced_since"]) == fenced_at
    assert old["fenced_seconds_before_run"] >= 0
    shown = [r["msg"] for r in task_results(runner, "Show what was done and how long it took")]
    assert shown and "Writes were already unavailable when this run started: pg-us-east had " \
                     "been fenced since %s" % old["fenced_since"] in shown[0], shown
    assert not pg_pair.in_recovery(pg_pair.west) and pg_pair.in_recovery(east)


# 3. Typos and a missing target ---------------------------------------------------------------

def test_a_misspelt_target_variable_is_refused_before_any_change(
        pg_pair, run_playbook, clean_lock):
    runner = run_playbook(SWITCHOVER, extravars={"failsafe_target_regoin": "us-west"})
    assert runner.status == "failed", runner.stdout_text
    refused = failed_results(runner, PREFLIGHT_TASK)
    assert refused, runner.stdout_text
    msg = refused[0]["msg"]
    assert "failsafe_target_regoin (did you mean failsafe_target_region?)" in msg
    assert "Nothing was changed" in msg
    assert not task_results(runner, SWITCH_TASK) and not task_results(runner, LOCK_TASK)
    assert_east_writable_west_standby(pg_pair)
    assert lock_record(clean_lock) is None


def test_no_target_is_refused_with_the_ways_to_name_it(pg_pair, run_playbook, clean_lock):
    runner = run_playbook(SWITCHOVER)
    assert runner.status == "failed", runner.stdout_text
    msg = failed_results(runner, PREFLIGHT_TASK)[0]["msg"]
    assert msg.startswith("no target region named"), msg
    for way in ("-l REGION", "-e failsafe_target_region=REGION",
                "-e postgresql_switchover_target=HOST"):
        assert way in msg
    assert not task_results(runner, SWITCH_TASK)
    assert_east_writable_west_standby(pg_pair)
    assert lock_record(clean_lock) is None


def test_an_unknown_collection_variable_is_a_warning_and_the_run_goes_on(
        pg_pair, run_playbook, clean_lock):
    runner = run_playbook(SWITCHOVER, limit="us-west", check=True,
                          extravars={"failsafe_foo": 1})
    assert runner.status == "successful", runner.stdout_text
    assert task_results(runner, PREFLIGHT_TASK)[0]["unknown_variables"] == ["failsafe_foo"]
    assert "unknown variable given with -e, nothing reads it: failsafe_foo" in warnings(runner)
    planned = task_results(runner, SWITCH_TASK)
    assert planned and planned[0]["switched"], "the run went on to the switchover (check mode)"
    assert_east_writable_west_standby(pg_pair)


# 4. The run lock --------------------------------------------------------------------------------

def test_a_second_run_is_refused_naming_the_holder(
        pg_pair, run_playbook, clean_lock, live_process):
    pid, start = live_process
    held = hold_lock(clean_lock, pid, start, controller="awx-node-2", user="oncall")
    for playbook, extravars, limit in ((SWITCHOVER, None, "us-west"), (UNFENCE, None, None),
                                       (REJOIN, REJOIN_EAST, None),
                                       (FAILOVER, {"postgresql_failover_accept_data_loss": True},
                                        "us-west")):
        runner = run_playbook(playbook, extravars=extravars, limit=limit)
        assert runner.status == "failed", runner.stdout_text
        msg = failed_results(runner, LOCK_TASK)[0]["msg"]
        assert msg.startswith("another run holds the postgresql lock: held by oncall@awx-node-2 "
                              "(pid %d, playbook postgresql_switchover.yml) since %s"
                              % (pid, held["acquired_at"])), msg
        assert "Nothing was changed" in msg and "-e failsafe_lock_break=true" in msg
        assert changed_tasks(runner) == []
        assert lock_record(clean_lock)["token"] == held["token"], "the holder lost its lock"
    assert_east_writable_west_standby(pg_pair)


def test_a_lock_whose_run_died_on_this_controller_is_taken_over(
        pg_pair, run_playbook, clean_lock, dead_process):
    pid, start = dead_process
    hold_lock(clean_lock, pid, start)
    runner = run_playbook(SWITCHOVER, limit="us-west", check=True)
    assert runner.status == "successful", runner.stdout_text
    taken = task_results(runner, LOCK_TASK)[0]
    assert taken["took_over"]["pid"] == pid
    assert "no longer runs" in taken["took_over"]["reason"]
    assert "took over the postgresql lock" in warnings(runner)


def test_an_expired_lock_is_taken_over(pg_pair, run_playbook, clean_lock, live_process):
    pid, start = live_process
    # Another controller's run (its process cannot be checked from here), past its ttl.
    hold_lock(clean_lock, pid, start, machine="another-controller", ttl=60,
              acquired_seconds_ago=120)
    runner = run_playbook(SWITCHOVER, limit="us-west", check=True)
    assert runner.status == "successful", runner.stdout_text
    taken = task_results(runner, LOCK_TASK)[0]
    assert taken["took_over"]["machine_id"] == "another-controller"
    assert taken["took_over"]["reason"].startswith("expired at")
    assert "took over the postgresql lock" in warnings(runner)


def test_failsafe_lock_break_takes_a_live_lock(pg_pair, run_playbook, clean_lock, live_process):
    pid, start = live_process
    held = hold_lock(clean_lock, pid, start, machine="another-controller")
    refused = run_playbook(UNFENCE, check=True)
    assert refused.status == "successful", "check mode warns about a held lock, never fails"
    assert "another run holds the postgresql lock" in warnings(refused)
    assert lock_record(clean_lock)["token"] == held["token"]

    runner = run_playbook(UNFENCE, extravars={"failsafe_lock_break": True})
    assert runner.status == "successful", runner.stdout_text
    taken = task_results(runner, LOCK_TASK)[0]
    assert taken["took_over"]["token"] == held["token"]
    assert taken["took_over"]["reason"] == "broken on request (break_lock)"
    # The run released what it took: the broken holder's record is gone too.
    assert lock_record(clean_lock) is None
    assert_east_writable_west_standby(pg_pair)


def _discard_dirs(data_dir: Path):
    """(kept-WAL directories of rewinds, data directories moved aside for a base backup)."""
    siblings = list(data_dir.parent.glob(data_dir.name + ".failsafe-*"))
    kept = {p for p in siblings if ".failsafe-discarded-wal-" in p.name}
    return kept, set(siblings) - kept


def test_two_concurrent_rejoins_run_pg_rewind_once(pg_pair, run_playbook, clean_lock):
    east = pg_pair.east
    pg_pair.manual_switchover()  # us-east fenced, diverged by its shutdown checkpoint later
    kept_before, aside_before = _discard_dirs(Path(east.data_dir))
    go = threading.Barrier(2)
    runners = [None, None]

    def rejoin(index):
        go.wait()
        runners[index] = run_playbook(REJOIN, extravars=REJOIN_EAST)

    threads = [threading.Thread(target=rejoin, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert all(runners), "a rejoin did not finish"
    # Failed results count too: a rejoin that failed may have rewound.
    methods = [r.get("method") for runner in runners for r in task_results(runner, REJOIN_TASK)]
    assert methods.count("rewind") == 1, methods
    for runner in runners:
        if runner.status == "failed":
            assert "another run holds the postgresql lock" in messages(runner), \
                runner.stdout_text
            assert not task_results(runner, REJOIN_TASK)
        else:
            assert runner.status == "successful", runner.stdout_text
    # Independent evidence: one rewind kept one WAL directory; nothing was re-cloned.
    kept, aside = _discard_dirs(Path(east.data_dir))
    assert len(kept - kept_before) == 1 and aside == aside_before
    assert pg_pair.receiver(east)["status"] == "streaming"
    assert lock_record(clean_lock) is None


# 5. Refusals that say what to run ----------------------------------------------------------------

def test_a_rejoin_onto_a_fenced_primary_names_the_unfence(pg_pair, run_playbook, clean_lock):
    east, west = pg_pair.east, pg_pair.west
    pg_pair.fence(east)
    runner = run_playbook(REJOIN, extravars={"postgresql_rejoin_node": "pg-us-west",
                                             "postgresql_rejoin_primary": "pg-us-east"})
    assert runner.status == "failed", runner.stdout_text
    msg = messages(runner)
    assert "pg-us-east is a primary fenced read-only: a node can only rejoin a writable " \
           "primary. Nothing was changed." in msg
    assert "ansible-playbook playbooks/postgresql_unfence.yml " \
           "-e postgresql_unfence_node=pg-us-east" in msg
    assert not task_results(runner, REJOIN_TASK)
    assert pg_pair.read_only(east) and pg_pair.in_recovery(west)
    assert pg_pair.receiver(west)["status"] == "streaming"
    assert lock_record(clean_lock) is None


def test_a_failover_with_a_fenced_primary_and_no_standby_names_the_unfence(
        pg_pair, run_playbook, clean_lock):
    """After the failed switchover of the incident: the standby is gone, the primary fenced.
    Failover cannot help and says which runbook does."""
    east, west = pg_pair.east, pg_pair.west
    pg_pair.fence(east)
    fast_shutdown(west)
    runner = run_playbook(FAILOVER, limit="us-west",
                          extravars={"postgresql_failover_accept_data_loss": True})
    assert runner.status == "failed", runner.stdout_text
    msg = messages(runner)
    assert "no reachable standby to promote" in msg
    assert "pg-us-east is a primary fenced read-only and no node takes writes" in msg
    assert "ansible-playbook playbooks/postgresql_unfence.yml" in msg
    assert pg_pair.read_only(east) and not pg_pair.in_recovery(east)
    assert lock_record(clean_lock) is None
