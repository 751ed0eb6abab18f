# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shipped schedules and alert rules: promtool accepts the rules, and every schedule runs the
playbook that exists, with the metrics file the rules read."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXTRAS = REPO / "extras" / "backup"
METRICS = ("failsafe_backup_failed", "failsafe_backup_last_success_timestamp_seconds",
           "failsafe_backup_size_growth_ratio", "failsafe_backup_verify_mismatches",
           "failsafe_restore_duration_seconds", "failsafe_restore_validation_ok",
           "failsafe_backup_verify_timestamp_seconds")


def promtool():
    return shutil.which("promtool", path=str(Path(sys.executable).parent)) or shutil.which("promtool")


@pytest.mark.skipif(promtool() is None, reason="promtool not installed (lab/install-promtool.sh)")
def test_promtool_accepts_the_alert_rules():
    proc = subprocess.run([promtool(), "check", "rules", str(EXTRAS / "prometheus-rules.yml")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 7 rules found" in proc.stdout


def test_rules_cover_the_runbook_alerts_with_metrics_the_collection_writes():
    from ansible_collections.failsafe.datastores.plugins.module_utils._backup import prometheus_text
    import datetime

    rules = yaml.safe_load((EXTRAS / "prometheus-rules.yml").read_text())["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    assert {"FailsafeBackupFailed", "FailsafeBackupMissing", "FailsafeBackupSizeGrowth",
            "FailsafeRestoreTooSlow", "FailsafeRestoreValidationFailed"} <= names
    written = prometheus_text({"postgresql": dict(
        last_success_timestamp=1, age_seconds=1, size_bytes=1, growth=0.0, failed=False,
        verify_ok=True, mismatches=0, restore_seconds=1.0, validation_ok=True)},
        datetime.datetime.now(datetime.timezone.utc))
    for metric in METRICS:
        assert metric in written
        assert any(metric in rule["expr"] for rule in rules), metric
    for rule in rules:
        assert any(m in rule["expr"] for m in METRICS), rule["alert"]


@pytest.mark.parametrize("name", ["failsafe-backup-verify.service", "failsafe-backup.cron",
                                  "kubernetes-cronjob.yml"])
def test_schedules_run_the_verification_playbook(name):
    text = (EXTRAS / name).read_text()
    assert "playbooks/backup_verify.yml" in text
    assert (REPO / "playbooks" / "backup_verify.yml").exists()
    assert "backup_verify_metrics_file=" in text


def test_kubernetes_cronjob_is_a_cronjob():
    doc = yaml.safe_load((EXTRAS / "kubernetes-cronjob.yml").read_text())
    assert doc["kind"] == "CronJob" and doc["spec"]["concurrencyPolicy"] == "Forbid"
    assert doc["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 0


def test_timer_is_daily():
    assert "OnCalendar=*-*-* 06:00:00 UTC" in (EXTRAS / "failsafe-backup-verify.timer").read_text()
