# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""postgresql_promote.decide(): the split-brain and data-loss refusals, before anything changes."""

from __future__ import annotations

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import PostgresError
from ansible_collections.failsafe.datastores.plugins.modules.postgresql_promote import decide

PRIMARY = dict(host="10.0.1.10", port=5432)
ADDRESS = "10.0.1.10:5432"


def params(**overrides):
    value = dict(require_fenced_primary=True, primary=dict(PRIMARY), max_lag_bytes=0,
                 accept_data_loss=False)
    value.update(overrides)
    return value


def standby(**overrides):
    value = dict(role="standby", received_lsn="0/3000100", replayed_lsn="0/3000000",
                 replay_paused=False, seconds_since_last_replay=7.5,
                 wal_receiver=dict(status="streaming", seconds_since_last_message=2.25))
    value.update(overrides)
    return value


def reachable(**overrides):
    value = dict(given=True, reachable=True, address=ADDRESS, role="primary", read_only=True,
                 flush_lsn="0/3000000", system_identifier="7301", unreachable_reason=None)
    value.update(overrides)
    return value


def unreachable(**overrides):
    value = dict(given=True, reachable=False, address=ADDRESS, role=None, read_only=None,
                 flush_lsn=None,
                 unreachable_reason="cannot reach PostgreSQL at 10.0.1.10:5432 as user postgres: "
                                    "connection timeout expired")
    value.update(overrides)
    return value


# What estimate_loss() measured (it reads the standby's log through SQL).
ESTIMATE = dict(bytes=None, primary_reachable=False, received_lsn="0/3000100",
                replayed_lsn="0/3000000", window_seconds_at_most=2.25, basis="connection closed")


def refusal(*args):
    with pytest.raises(PostgresError) as info:
        decide(*args, estimate=ESTIMATE)
    return str(info.value)


# Refusals -------------------------------------------------------------------------------------------

def test_require_fenced_primary_without_primary():
    msg = refusal(params(primary=None), standby(),
                  dict(given=False, reachable=False, address=None, role=None, read_only=None,
                       flush_lsn=None, unreachable_reason="no primary connection given"))
    assert "require_fenced_primary is true but no primary connection was given" in msg
    assert "primary=" in msg and "require_fenced_primary=false" in msg


@pytest.mark.parametrize("accept", [False, True])
def test_reachable_writable_primary_is_split_brain(accept):
    # accept_data_loss does not override the split-brain guard.
    msg = refusal(params(accept_data_loss=accept, max_lag_bytes=1 << 40), standby(),
                  reachable(read_only=False))
    assert "split brain" in msg
    assert ADDRESS in msg
    assert "Nothing was changed" in msg
    assert "postgresql_read_only" in msg


def test_lag_above_budget_without_accept_data_loss():
    msg = refusal(params(max_lag_bytes=100), standby(replayed_lsn="0/3000000"),
                  reachable(flush_lsn="0/3001000"))
    assert "0/3000000" in msg and "0/3001000" in msg
    assert "4096 bytes" in msg
    assert "max_lag_bytes=100" in msg
    assert "accept_data_loss=true" in msg
    assert "replay is paused" not in msg


def test_lag_refusal_names_paused_replay():
    msg = refusal(params(), standby(replay_paused=True), reachable(flush_lsn="0/3000001"))
    assert "1 bytes" in msg and "(replay is paused)" in msg


def test_lag_across_the_high_word():
    msg = refusal(params(), standby(replayed_lsn="0/FFFFFFFF"), reachable(flush_lsn="1/0"))
    assert "1 bytes behind" in msg


def test_unreachable_primary_without_accept_data_loss():
    old = unreachable()
    msg = refusal(params(), standby(), old)
    assert "the old primary is unreachable" in msg
    assert old["unreachable_reason"] in msg
    assert "cannot be measured" in msg and "accept_data_loss=true" in msg
    assert "Nothing was changed" in msg


def test_no_primary_given_and_not_required_still_needs_accept_data_loss():
    msg = refusal(params(primary=None, require_fenced_primary=False), standby(),
                  dict(given=False, reachable=False, address=None, role=None, read_only=None,
                       flush_lsn=None, unreachable_reason="no primary connection given"))
    assert msg.startswith("no primary connection was given, so the data loss")


def test_reachable_old_primary_that_is_a_standby_is_refused():
    # No primary to measure against: the loss cannot be measured.
    msg = refusal(params(), standby(), reachable(role="standby", flush_lsn=None))
    assert "cannot be measured" in msg


def test_reachable_standby_old_primary_is_not_called_unreachable():
    msg = refusal(params(), standby(), reachable(role="standby", flush_lsn=None))
    assert "unreachable" not in msg and "None" not in msg


# Accepted ---------------------------------------------------------------------------------------------

def test_fenced_primary_fully_caught_up():
    assert decide(params(), standby(replayed_lsn="0/3000000"), reachable(flush_lsn="0/3000000"),
                  ) == (0, dict(bytes=0, primary_reachable=True))


def test_standby_ahead_of_reported_flush_is_zero_lag():
    lag, loss = decide(params(), standby(replayed_lsn="0/3000100"),
                       reachable(flush_lsn="0/3000000"))
    assert lag == 0 and loss["bytes"] == 0


@pytest.mark.parametrize("budget", [4096, 4097, 1 << 30])
def test_lag_within_budget(budget):
    lag, loss = decide(params(max_lag_bytes=budget), standby(replayed_lsn="0/3000000"),
                       reachable(flush_lsn="0/3001000"))
    assert lag == 4096
    assert loss == dict(bytes=4096, primary_reachable=True)


def test_lag_above_budget_with_accept_data_loss():
    lag, loss = decide(params(accept_data_loss=True), standby(replayed_lsn="0/3000000"),
                       reachable(flush_lsn="0/3001000"))
    assert lag == 4096 and loss["bytes"] == 4096


def test_writable_primary_with_guard_off_is_only_a_lag_question():
    # require_fenced_primary=false: the operator says it is fenced by other means.
    lag, loss = decide(params(require_fenced_primary=False), standby(replayed_lsn="0/3000000"),
                       reachable(read_only=False, flush_lsn="0/3000000"))
    assert lag == 0 and loss["primary_reachable"] is True


def test_unreachable_with_accept_data_loss_reports_the_estimate():
    lag, loss = decide(params(accept_data_loss=True), standby(), unreachable(), ESTIMATE)
    assert lag is None
    assert loss == ESTIMATE


def test_a_reachable_primary_measures_instead_of_the_estimate():
    lag, loss = decide(params(), standby(replayed_lsn="0/3000000"),
                       reachable(flush_lsn="0/3000000"), ESTIMATE)
    assert (lag, loss) == (0, dict(bytes=0, primary_reachable=True))


def test_no_primary_with_guard_off_and_accept_data_loss():
    lag, loss = decide(params(primary=None, require_fenced_primary=False, accept_data_loss=True),
                       standby(), dict(given=False, reachable=False, address=None, role=None,
                                       read_only=None, flush_lsn=None,
                                       unreachable_reason="no primary connection given"),
                       ESTIMATE)
    assert lag is None and loss["bytes"] is None and loss["primary_reachable"] is False
