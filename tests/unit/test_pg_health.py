# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PostgreSQL health findings, their Prometheus text and the alert rules that read it."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pytest
import yaml

from ansible_collections.failsafe.datastores.plugins.filter.pg_health import (
    pg_health_findings,
    pg_health_prometheus,
    pg_lagging,
)
from test_backup_extras import promtool

RULES = Path(__file__).resolve().parents[2] / "extras" / "health" / "prometheus-rules.yml"
DF = ("Filesystem 1-blocks Used Available Capacity Mounted on\n"
      "/dev/sda1 1000 800 200 80% /var\n")
PRIMARY = dict(reachable=True, role="primary", wal_receiver=None, lag_seconds=None)
STANDBY = dict(reachable=True, role="standby", wal_receiver={"status": "streaming"},
               lag_seconds=0.0)
SESSIONS = dict(connections=45, max_connections=50, usage_ratio=0.9,
                by_state={"idle": {"count": 40, "oldest_seconds": 900.0},
                          "active": {"count": 4, "oldest_seconds": 1.0}})


def test_each_runbook_threshold_names_its_playbook():
    findings = pg_health_findings(
        {"pg-east": PRIMARY, "pg-west": dict(STANDBY, lag_seconds=12.5)},
        df={"pg-east": DF}, sessions={"pg-east": SESSIONS})
    east, west = findings["pg-east"], findings["pg-west"]
    assert east["disk_free_ratio"] == 0.2 and east["connections_usage_ratio"] == 0.9
    assert any("20.0 % free" in p for p in east["problems"])
    assert any("postgresql_connection_exhaustion.yml" in p for p in east["problems"])
    assert west["lag_seconds"] == 12.5 and west["streaming"] is True
    assert west["problems"] == ["pg-west: replays 12.5 s behind (above 5 s): "
                                "playbooks/postgresql_replication_lag.yml"]


def test_a_healthy_cluster_has_no_problems():
    findings = pg_health_findings({"pg-east": PRIMARY, "pg-west": STANDBY},
                                  df={"pg-east": DF}, sessions={"pg-east": dict(SESSIONS, usage_ratio=0.5)},
                                  min_free_ratio=0.1)
    assert all(not f["problems"] for f in findings.values())


def test_standby_that_does_not_stream_lags():
    down = dict(STANDBY, wal_receiver=None)
    assert pg_lagging([dict(down, item="a"), dict(STANDBY, item="b"),
                       dict(STANDBY, item="c", lag_seconds=6.0)], 5) == ["a", "c"]
    assert "does not stream" in pg_health_findings({"w": down})["w"]["problems"][0]


def test_rules_read_metrics_the_collection_writes():
    text = pg_health_prometheus(pg_health_findings(
        {"pg-east": PRIMARY, "pg-west": STANDBY}, df={"pg-east": DF},
        sessions={"pg-east": SESSIONS}), datetime.datetime.now(datetime.timezone.utc))
    assert 'failsafe_postgresql_connections_by_state{host="pg-east",state="idle"} 40' in text
    assert 'failsafe_postgresql_replication_lag_seconds{host="pg-west"} 0.0' in text
    assert 'failsafe_postgresql_up{host="pg-east"} 1' in text
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    for rule in rules:
        metrics = [m for m in rule["expr"].replace("(", " ").split() if m.startswith("failsafe_")]
        assert metrics and all("\n%s{" % m in text or "\n%s " % m in text for m in metrics), rule


@pytest.mark.skipif(promtool() is None, reason="promtool not installed (lab/install-promtool.sh)")
def test_promtool_accepts_the_health_rules():
    proc = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 5 rules found" in proc.stdout
