# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run report's model and page (the page in a real browser: tests/integration)."""

from __future__ import annotations

from ansible_collections.failsafe.datastores.plugins.plugin_utils.run_report import (
    RunRecorder,
    build_report,
    render_html,
    store_figures,
)

T0 = 1_800_000_000.0


def recorder_with_a_switchover(failed=False):
    rec = RunRecorder("postgresql_switchover.yml", T0, limit="us-west", controller="ctl",
                      user="oncall")
    rec.play("Switch over", T0)
    rec.task_start("1", "Check the run", "postgresql_switchover", ["preflight"], T0 + 0.1)
    rec.task_result("1", "pg-us-east", "ok", {"changed": False, "report_dir": {
        "path": "/var/log/failsafe", "created": False}}, T0 + 0.5)
    rec.task_start("2", "Fence, catch up and promote in one call", "postgresql_switchover",
                   ["change"], T0 + 1.0)
    rec.task_result("2", "pg-us-east", "failed" if failed else "changed", {
        "changed": not failed, "msg": "boom <b>" if failed else "",
        "timings": {"checks": 0.02, "write_unavailable": 0.06, "total": 0.2},
        "invocation": {"module_args": {"primary": {"password": "secret"}}}}, T0 + 1.5)
    rec.task_start("3", "Rejoin", "postgresql_rejoin", ["rejoin"], T0 + 2.0)
    rec.task_result("3", "pg-us-east", "changed", {"changed": True}, T0 + 4.0)
    return rec


STATS = {"failsafe_postgresql_switchover": {"changed": True, "timings": {
    "write_unavailable": 0.06, "total": 0.2}}}


def test_report_has_phases_in_order_with_their_times():
    rec = recorder_with_a_switchover()
    rec.finish(T0 + 4.5, STATS)
    report = build_report(rec)
    assert [p["name"] for p in report["phases"]] == ["preflight", "change", "rejoin"]
    change = report["phases"][1]
    assert change["start_offset_seconds"] == 1.0 and change["duration_seconds"] == 0.5
    assert change["status"] == "changed"
    assert report["run"]["duration_seconds"] == 4.5 and report["summary"]["status"] == "ok"
    assert report["run"]["limit"] == "us-west"
    assert rec.report_dir == "/var/log/failsafe"


def test_store_figures_come_from_the_role_records():
    rec = recorder_with_a_switchover()
    rec.finish(T0 + 4.5, STATS)
    stores = build_report(rec)["summary"]["stores"]
    assert stores["postgresql"]["write_outage_seconds"] == 0.06
    assert stores["postgresql"]["data_loss"] == {"rows": 0}


def test_unknown_failover_loss_stays_unknown():
    stores = store_figures({"failsafe_postgresql_failover": {"data_loss": None}})
    assert stores["postgresql"]["data_loss"] is None


def test_outage_is_placed_inside_its_task():
    rec = recorder_with_a_switchover()
    rec.finish(T0 + 4.5, STATS)
    task = build_report(rec)["tasks"][1]
    # Result at +1.5, module total 0.2 -> module started at +1.3; checks 0.02 -> fence at +1.32.
    assert task["write_outage"] == {"start_offset_seconds": 1.32, "duration_seconds": 0.06}


def test_arguments_never_reach_the_report():
    rec = recorder_with_a_switchover()
    rec.finish(T0 + 4.5, STATS)
    assert "secret" not in repr(build_report(rec))


def test_failed_and_interrupted_runs_say_so():
    rec = recorder_with_a_switchover(failed=True)
    rec.finish(T0 + 4.5, STATS)
    report = build_report(rec)
    assert report["summary"]["status"] == "failed"
    assert report["phases"][1]["status"] == "failed" and report["tasks"][1]["msg"] == "boom <b>"
    rec = recorder_with_a_switchover()
    rec.finish(T0 + 3, {}, interrupted=True)
    assert build_report(rec)["summary"]["status"] == "interrupted"


def test_rto_against_the_target():
    rec = recorder_with_a_switchover()
    rec.finish(T0 + 4.5, {"failsafe_run": {"targets": {"rto_seconds": 4},
                                           "checklist": ["Notify", "Plan the failback"]}})
    report = build_report(rec)
    assert report["summary"]["rto_met"] is False and report["summary"]["rto_target_seconds"] == 4
    assert report["checklist"] == ["Notify", "Plan the failback"]


def test_figures_given_as_text_are_numbers():
    """-e failsafe_rto_seconds=300 arrives as a string; the report must still be written."""
    rec = recorder_with_a_switchover()
    rec.finish(T0 + 4.5, {"failsafe_run": {"targets": {"rto_seconds": "300"},
                                           "application_downtime_seconds": "1.5"}})
    summary = build_report(rec)["summary"]
    assert summary["rto_target_seconds"] == 300.0 and summary["rto_met"] is True
    assert summary["application_downtime_seconds"] == 1.5


def test_page_is_self_contained_escaped_and_ends_with_the_checklist():
    rec = recorder_with_a_switchover(failed=True)
    rec.finish(T0 + 4.5, {"failsafe_run": {"checklist": ["Notify <everyone>"]}})
    page = render_html(build_report(rec))
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "boom &lt;b&gt;" in page and "boom <b>" not in page
    assert page.index("Post-incident checklist") > page.index("Records")
    assert "Notify &lt;everyone&gt;" in page
    assert page.count('class="phase"') == 3
