"""playbooks/postgresql_health.yml on the test lab: read-only, findings as facts (set_stats) and
as a Prometheus text file; a held-back standby and tight thresholds are reported as problems and
fail the run, and nothing on the servers changes."""

from __future__ import annotations

import time

PLAYBOOK = "playbooks/postgresql_health.yml"


def artifact(runner):
    for event in runner.events:
        if event.get("event") == "playbook_on_stats":
            return event["event_data"].get("artifact_data", {}).get("failsafe_postgresql_health")
    return None


def test_health_reports_disk_connections_and_lag_and_changes_nothing(
        pg_pair, run_playbook, tmp_path):
    east, west = pg_pair.east, pg_pair.west
    idle = pg_pair.connect(east, application_name="it_idle")
    pg_pair.hold_back_replay()
    time.sleep(2.5)
    starts = [pg_pair.scalar(n, "SELECT pg_postmaster_start_time()") for n in (east, west)]
    metrics = tmp_path / "health.prom"
    runner = run_playbook(PLAYBOOK, extravars={
        "postgresql_health_metrics_file": str(metrics),
        "postgresql_health_max_lag_seconds": 1,
        "postgresql_health_max_usage": 0.0001,  # any connection is too many: a problem
        "postgresql_health_min_free_ratio": 1.0})  # no disk is that empty: a problem
    assert runner.status == "failed"
    found = artifact(runner)
    assert found, runner.stdout_text
    findings = found["findings"]
    assert findings["pg-us-east"]["role"] == "primary"
    assert findings["pg-us-east"]["connections"] >= 2
    assert findings["pg-us-east"]["max_connections"] == int(pg_pair.scalar(east, "SHOW max_connections"))
    assert 0 < findings["pg-us-east"]["disk_free_ratio"] < 1
    assert findings["pg-us-west"]["lag_seconds"] > 1 and findings["pg-us-west"]["streaming"]
    problems = " | ".join(found["problems"])
    assert "postgresql_replication_lag.yml" in problems
    assert "postgresql_connection_exhaustion.yml" in problems
    assert "free on the data directory" in problems
    text = metrics.read_text()
    assert 'failsafe_postgresql_up{host="pg-us-east"} 1' in text
    assert 'failsafe_postgresql_replication_streaming{host="pg-us-west"} 1' in text
    assert "failsafe_postgresql_replication_lag_seconds{host=\"pg-us-west\"}" in text
    # Read-only: the idle session, the servers and the held-back replay are as they were.
    assert pg_pair.scalar(east, "SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                          (idle.info.backend_pid,)) == 1
    assert [pg_pair.scalar(n, "SELECT pg_postmaster_start_time()") for n in (east, west)] == starts
    assert pg_pair.scalar(west, "SHOW recovery_min_apply_delay") == "1h"
    pg_pair.release_replay()
