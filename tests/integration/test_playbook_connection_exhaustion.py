"""playbooks/postgresql_connection_exhaustion.yml through ansible-runner on the test lab: real
idle and active sessions, check -> real, max_connections raised standby first, refusals; every
outcome read back with the test's own psycopg sessions."""

from __future__ import annotations

import time

from lab import postgresql as lab_pg
from test_module_sessions import ActiveQuery, alive
from test_playbook_postgresql import failures, task_results

PLAYBOOK = "playbooks/postgresql_connection_exhaustion.yml"
MITIGATE_TASK = "End idle sessions and long-running queries past the thresholds"
RESTART_TASK = "Set max_connections and restart each standby, then the primary"
VALIDATE_TASK = "Assert the validation checklist"
THRESHOLDS = {"postgresql_connection_exhaustion_idle_seconds": 2,
              "postgresql_connection_exhaustion_active_seconds": 2,
              "postgresql_connection_exhaustion_exclude_applications": ["it_keep"]}


def started_at(pair, node):
    return pair.scalar(node, "SELECT pg_postmaster_start_time()")


def max_connections(pair, node) -> int:
    return int(pair.scalar(node, "SHOW max_connections"))


def stats(runner):
    for event in runner.events:
        if event.get("event") == "playbook_on_stats":
            return event["event_data"].get("artifact_data", {})
    return {}


def test_refuses_bad_max_connections_before_any_change(pg_pair, run_playbook):
    east = pg_pair.east
    old = pg_pair.connect(east, application_name="it_idle")
    old_pid = old.info.backend_pid
    start = started_at(pg_pair, east)
    time.sleep(2.5)
    for value, words in ((lab_pg.MAX_CONNECTIONS - 10, "below the primary"),
                         ("lots", "must be a whole number")):
        runner = run_playbook(PLAYBOOK, extravars=dict(
            THRESHOLDS, postgresql_max_connections=value))
        assert runner.status == "failed"
        messages = " ".join(f.get("msg", "") for f in failures(runner))
        assert words in messages and "Nothing was changed" in messages, messages
        assert not task_results(runner, MITIGATE_TASK)
    assert alive(pg_pair, {old_pid}) == {old_pid}, "a refused run ended a session"
    assert started_at(pg_pair, east) == start
    assert max_connections(pg_pair, east) == lab_pg.MAX_CONNECTIONS


def test_check_then_mitigate_and_raise_standby_first(pg_pair, run_playbook):
    east, west = pg_pair.east, pg_pair.west
    idle = [pg_pair.connect(east, application_name="it_idle") for _number in range(2)]
    kept = pg_pair.connect(east, application_name="it_keep")
    active = ActiveQuery(east)
    idle_pids = {c.info.backend_pid for c in idle}
    kept_pid = kept.info.backend_pid
    starts = {n.region: started_at(pg_pair, n) for n in (east, west)}
    wanted = lab_pg.MAX_CONNECTIONS + 10
    extravars = dict(THRESHOLDS, postgresql_max_connections=wanted)
    time.sleep(2.5)
    try:
        # Check mode: lists who would go and the restarts; ends nothing, restarts nothing.
        check = run_playbook(PLAYBOOK, extravars=extravars, check=True)
        assert check.status == "successful", check.stdout_text
        would = {s["pid"] for r in task_results(check, MITIGATE_TASK)
                 for item in r["results"] for s in item.get("terminated", [])}
        assert idle_pids | {active.pid} <= would and kept_pid not in would
        planned = [item for r in task_results(check, RESTART_TASK) for item in r["results"]]
        assert [item["item"] for item in planned] == ["pg-us-west", "pg-us-east"]
        assert all(item["restarted"] for item in planned)
        assert alive(pg_pair, idle_pids | {active.pid}) == idle_pids | {active.pid}
        assert {n.region: started_at(pg_pair, n) for n in (east, west)} == starts
        assert max_connections(pg_pair, east) == lab_pg.MAX_CONNECTIONS

        # Real: the sessions are ended, max_connections raised on us-west, then us-east.
        real = run_playbook(PLAYBOOK, extravars=extravars)
        assert real.status == "successful", real.stdout_text
        assert alive(pg_pair, idle_pids | {active.pid}) == set()
        ended = {s["pid"] for r in task_results(real, MITIGATE_TASK)
                 for item in r["results"] for s in item.get("terminated", [])}
        assert idle_pids | {active.pid} <= ended and kept_pid not in ended
        # (the restart of the primary then ends every session, kept_pid too: the runbook's cost)
        assert max_connections(pg_pair, east) == wanted == max_connections(pg_pair, west)
        west_start, east_start = started_at(pg_pair, west), started_at(pg_pair, east)
        assert west_start > starts["us-west"] and east_start > starts["us-east"]
        assert west_start < east_start, "the primary was restarted before its standby"
        assert pg_pair.scalar(east, "SELECT pid FROM pg_stat_replication") is not None
        row = pg_pair.insert(east, "after the connection exhaustion runbook")
        assert pg_pair.wait_row(west, row, timeout=30)
        validated = task_results(real, VALIDATE_TASK)
        assert validated and not validated[0].get("failed")
        report = stats(real)["failsafe_postgresql_connection_exhaustion"]
        assert set(report["terminated"]) >= idle_pids | {active.pid}
        assert report["restarted"] == ["pg-us-west", "pg-us-east"]

    finally:
        active.close()
