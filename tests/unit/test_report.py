# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report every module returns (module_utils/_report.py), with a stand-in AnsibleModule."""

from __future__ import annotations

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils._report import (
    NOTHING_CHANGED,
    Report,
    with_state,
)


class Ended(Exception):
    def __init__(self, how, result):
        super().__init__(how)
        self.how, self.result = how, result


class FakeModule:
    def __init__(self, diff=False):
        self._diff = diff

    def exit_json(self, **result):
        raise Ended("exit", result)

    def fail_json(self, **result):
        raise Ended("fail", dict(result, failed=True))


def end(report, work, result):
    with pytest.raises(Ended) as info:
        report.run(work, result)
    return info.value


STEPS = (("fence", None, "fenced"), ("promote", "fenced", "promoted"))


def test_a_run_returns_steps_timings_with_total_and_the_result():
    report = Report(FakeModule(), STEPS)

    def work():
        report.done("fenced")
        report.mark("fenced")

    ended = end(report, work, dict(changed=True))
    assert ended.how == "exit"
    assert ended.result["changed"] is True and ended.result["steps"] == ["fenced"]
    timings = ended.result["timings"]
    assert set(timings) == {"fence", "promote", "total"}
    assert timings["fence"] >= 0 and timings["promote"] is None
    assert "diff" not in ended.result


def test_diff_only_in_diff_mode_and_when_declared():
    for diff, declared, expected in ((True, True, True), (True, False, False),
                                     (False, True, False)):
        report = Report(FakeModule(diff=diff))
        work = (lambda r=report: r.changes({"a": 1}, {"a": 2})) if declared else (lambda: None)
        result = end(report, work, {}).result
        assert ("diff" in result) is expected
        if expected:
            assert result["diff"] == {"before": {"a": 1}, "after": {"a": 2}}


def test_check_mode_plans_steps():
    report = Report(FakeModule())
    ended = end(report, lambda: report.plan(["a", "b"]), {})
    assert ended.result["steps"] == ["a", "b"]


def test_any_exception_fails_with_words_and_the_state_left_behind():
    report = Report(FakeModule(), STEPS)

    def work():
        report.done("fenced")
        report.leaves("The primary is fenced.")
        raise KeyError("received_lsn")

    ended = end(report, work, dict(changed=False, msg="set before the failure"))
    assert ended.how == "fail"
    assert ended.result["msg"] == "unexpected KeyError: 'received_lsn'. The primary is fenced."
    assert ended.result["steps"] == ["fenced"] and "total" in ended.result["timings"]


def test_a_failure_before_any_change_says_nothing_was_changed():
    report = Report(FakeModule())

    def work():
        raise RuntimeError("boom")

    assert end(report, work, {}).result["msg"] == "unexpected RuntimeError: boom. " + NOTHING_CHANGED


def test_explain_is_used_for_the_message():
    report = Report(FakeModule())

    def work():
        raise RuntimeError("boom")

    with pytest.raises(Ended) as info:
        report.run(work, {}, explain=lambda exc: "explained: %s" % exc)
    assert info.value.result["msg"].startswith("explained: boom.")


def test_with_state_does_not_repeat_what_the_message_says():
    assert with_state("refused. Nothing was changed. Fence it first", NOTHING_CHANGED) == \
        "refused. Nothing was changed. Fence it first"
    assert with_state("refused", NOTHING_CHANGED) == "refused. Nothing was changed."
    # A message ending in the state without its full stop: not 'Nothing was changed' twice.
    assert with_state("no standby to promote. Nothing was changed", NOTHING_CHANGED) == \
        "no standby to promote. Nothing was changed."
    assert with_state("refused.", "X.") == "refused. X."
    assert with_state("refused", "") == "refused"
