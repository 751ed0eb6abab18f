# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scheduled verification's findings: what makes backup_verify.yml fail."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.failsafe.datastores.plugins.filter.backup_metrics import (
    backup_findings,
    backup_prometheus,
)

NOW = "2025-01-30T12:00:00Z"


def info(newest_created="2025-01-30T02:00:00Z", status="ok", growth=0.1, latest_problems=None,
         latest_created="2025-01-30T02:00:00Z"):
    return {
        "freshness": {"postgresql": {"status": status, "message": None if status == "ok"
                                     else "no postgresql backup in 25 h"}},
        "newest": {"postgresql": {"backup_id": "postgresql_20250130_020000",
                                  "created": newest_created, "size_bytes": 100}},
        "size_changes": {"postgresql": {"growth": growth, "status": "ok", "message": None}},
        "backups": [{"backup_id": "postgresql_x", "engine": "postgresql",
                     "created": latest_created, "problems": latest_problems or []}],
    }


def test_all_well_has_no_problem():
    found = backup_findings(info(), {"checked": [{"engine": "postgresql", "ok": True,
                                                 "backup_id": "b"}]}, now=NOW)
    entry = found["postgresql"]
    assert entry["problems"] == [] and entry["verify_ok"] is True and entry["mismatches"] == 0
    assert entry["age_seconds"] == 36000.0 and entry["last_success_timestamp"] == 1738202400
    assert entry["failed"] is False


def test_mismatch_late_and_failed_are_problems():
    found = backup_findings(
        info(status="alert", latest_problems=["status is uploading, not success"],
             latest_created="2025-01-30T10:00:00Z"),
        {"checked": [{"engine": "postgresql", "ok": False, "backup_id": "b"}]}, now=NOW)
    problems = found["postgresql"]["problems"]
    assert "no postgresql backup in 25 h" in problems
    assert "b does not match its checksum" in problems
    assert any(p.startswith("the newest postgresql backup postgresql_x failed") for p in problems)
    text = backup_prometheus(found, now=NOW)
    assert 'failsafe_backup_verify_mismatches{engine="postgresql"} 1' in text
    assert 'failsafe_backup_failed{engine="postgresql"} 1' in text


def test_a_backup_still_running_is_not_failed():
    found = backup_findings(info(latest_problems=["status is uploading, not success"],
                                 latest_created="2025-01-30T11:30:00Z"), {}, now=NOW)
    assert found["postgresql"]["failed"] is False and found["postgresql"]["problems"] == []


def test_restore_figures_and_bad_input():
    found = backup_findings(info(), {}, {"postgresql": {"seconds": 4000, "validation_ok": False}},
                            now=NOW)
    assert "the postgresql restore failed its integrity validation" in found["postgresql"]["problems"]
    assert found["postgresql"]["restore_seconds"] == 4000
    with pytest.raises(AnsibleFilterError, match="backup_info result"):
        backup_findings({"nope": 1})
