# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""postgresql_sessions' selection and summary, postgresql_setting's value checks (pure logic)."""

from __future__ import annotations

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    PostgresError,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_sessions import (
    reason,
    selection,
    summarise,
    thresholds_problem,
)
from ansible_collections.failsafe.datastores.plugins.modules.postgresql_setting import normalise

RUNBOOK = dict(idle=600, active=300, idle_in_transaction=None)


def test_runbook_selection_is_idle_or_active_and_nothing_else():
    condition, params = selection(RUNBOOK, {})
    assert "state = 'idle'" in condition and "state = 'active'" in condition
    assert "idle in transaction" not in condition
    assert params == [600.0, 300.0]


def test_filters_narrow_the_selection_in_order():
    condition, params = selection(dict(idle=60, active=None, idle_in_transaction=None),
                                  dict(databases=["app"], users=[], applications=["web"],
                                       exclude_users=["replicator"], exclude_applications=[]))
    assert "state = 'active'" not in condition
    assert "datname = ANY(%s)" in condition and "application_name = ANY(%s)" in condition
    assert "NOT (usename = ANY(%s))" in condition and "usename = ANY(%s)" not in \
        condition.replace("NOT (usename = ANY(%s))", "")
    assert params == [60.0, ["app"], ["web"], ["replicator"]]
    assert condition.count("%s") == len(params)


@pytest.mark.parametrize("thresholds, words", [
    (dict(idle=None, active=None, idle_in_transaction=None), "kinds is empty"),
    (dict(idle=-1, active=300, idle_in_transaction=None), "idle must be 0 or more"),
])
def test_unusable_thresholds_are_refused(thresholds, words):
    assert words in thresholds_problem(thresholds)


def test_usable_thresholds():
    assert thresholds_problem(RUNBOOK) is None
    assert thresholds_problem(dict(idle=0, active=None, idle_in_transaction=None)) is None


@pytest.mark.parametrize("state, expected", [
    ("idle", "idle"), ("active", "active"), ("idle in transaction", None),
])
def test_reason_follows_the_state(state, expected):
    assert reason({"state": state}, RUNBOOK) == expected


def test_reason_idle_in_transaction_when_asked():
    thresholds = dict(RUNBOOK, idle_in_transaction=30)
    assert reason({"state": "idle in transaction (aborted)"}, thresholds) == "idle_in_transaction"


def test_summary_counts_states_oldest_age_and_ranks_clients():
    sessions = [
        dict(state="idle", state_seconds=5.0, usename="app", application_name="web", client_addr="10.0.0.1"),
        dict(state="idle", state_seconds=700.5, usename="app", application_name="web", client_addr="10.0.0.1"),
        dict(state="active", state_seconds=1.0, usename="app", application_name="web", client_addr="10.0.0.1"),
        dict(state="idle", state_seconds=9.0, usename="batch", application_name="", client_addr=None),
    ]
    by_state, top = summarise(sessions, top=1)
    assert by_state == {"idle": {"count": 3, "oldest_seconds": 700.5},
                        "active": {"count": 1, "oldest_seconds": 1.0}}
    assert top == [dict(usename="app", application_name="web", client_addr="10.0.0.1", count=3,
                        states={"idle": 2, "active": 1})]


ROW = dict(name="max_connections", vartype="integer", unit=None, min_val="1",
           max_val="262143")


def test_integer_setting_is_normalised():
    assert normalise(" 0300 ", ROW) == "300"


@pytest.mark.parametrize("value, words", [("lots", "must be an integer"),
                                          ("0", "between 1 and 262143"),
                                          ("300.5", "must be an integer")])
def test_bad_integer_values_are_refused(value, words):
    with pytest.raises(PostgresError, match=words):
        normalise(value, ROW)


def test_settings_with_units_pass_as_text():
    assert normalise("1GB", dict(ROW, name="shared_buffers", unit="8kB")) == "1GB"
