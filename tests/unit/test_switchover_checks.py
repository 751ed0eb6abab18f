# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""postgresql_switchover.checks(): everything that must hold before the primary is fenced."""

from __future__ import annotations

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import PostgresError
from ansible_collections.failsafe.datastores.plugins.modules.postgresql_switchover import PLAN, checks

P_ADDR, S_ADDR = "10.0.1.10:5432", "10.0.2.10:5432"
PARAMS = dict(max_lag_bytes=64 * 1024 * 1024)


def primary(**overrides):
    value = dict(role="primary", in_recovery=False, read_only=False, system_identifier="7301",
                 timeline=3, current_lsn="0/5000000", flush_lsn="0/5000000", replayed_lsn=None,
                 replay_paused=False, wal_receiver=None)
    value.update(overrides)
    return value


def standby(**overrides):
    value = dict(role="standby", in_recovery=True, read_only=False, system_identifier="7301",
                 timeline=3, current_lsn=None, flush_lsn=None, replayed_lsn="0/5000000",
                 replay_paused=False,
                 wal_receiver=dict(status="streaming", sender_host="10.0.1.10", sender_port=5432))
    value.update(overrides)
    return value


def run(p, s, params=None):
    return checks(params or PARAMS, p, s, P_ADDR, S_ADDR)


def refusal(p, s, params=None):
    with pytest.raises(PostgresError) as info:
        run(p, s, params)
    return str(info.value)


def test_happy_path_switches():
    assert run(primary(), standby()) == "switch"


def test_a_fenced_primary_can_still_be_switched():
    # A fence left by an earlier attempt does not block the switchover.
    assert run(primary(read_only=True), standby()) == "switch"


def test_already_switched_old_primary_now_standby():
    assert run(standby(), primary()) == "done"


def test_already_switched_old_primary_fenced():
    assert run(primary(read_only=True), primary()) == "done"


def test_both_writable_primaries_is_split_brain():
    msg = refusal(primary(), primary())
    assert msg.startswith("split brain")
    assert P_ADDR in msg and S_ADDR in msg
    assert "postgresql_read_only" in msg


def test_already_switched_requires_the_same_cluster():
    msg = refusal(primary(read_only=True), primary(system_identifier="9999"))
    assert "different clusters" in msg


def test_two_standbys():
    msg = refusal(standby(), standby())
    assert msg.startswith("%s is not a primary" % P_ADDR)
    assert "check the primary option" in msg


def test_different_system_identifiers():
    msg = refusal(primary(system_identifier="7301"), standby(system_identifier="7302"))
    assert "different clusters" in msg
    assert "7301" in msg and "7302" in msg


@pytest.mark.parametrize("receiver, shown", [
    (None, "not running"),
    (dict(status="startup"), "startup"),
    (dict(status="stopping"), "stopping"),
])
def test_standby_not_streaming(receiver, shown):
    msg = refusal(primary(), standby(wal_receiver=receiver))
    assert msg.startswith("%s is not streaming" % S_ADDR)
    assert "(WAL receiver: %s)" % shown in msg


def test_a_receiver_the_role_may_not_see_is_a_privilege_problem():
    # PostgreSQL hides pg_stat_wal_receiver's columns from roles without pg_read_all_stats.
    hidden = dict(status=None, sender_host=None, sender_port=None)
    msg = refusal(primary(), standby(wal_receiver=hidden),
                  dict(PARAMS, standby=dict(user="app_ops")))
    assert msg.startswith("cannot tell whether %s streams" % S_ADDR)
    assert "the role app_ops may not read pg_stat_wal_receiver" in msg
    assert "pg_monitor" in msg and msg.endswith("Nothing was changed")


def test_timeline_mismatch():
    msg = refusal(primary(timeline=4), standby(timeline=3))
    assert "on timeline 3" in msg and "on timeline 4" in msg


def test_replay_paused():
    msg = refusal(primary(), standby(replay_paused=True))
    assert "paused" in msg and "pg_wal_replay_resume()" in msg
    assert "Nothing was changed" in msg


def test_lag_above_max():
    msg = refusal(primary(current_lsn="0/5000000"), standby(replayed_lsn="0/4000000"),
                  dict(max_lag_bytes=1024))
    assert "16777216 bytes behind" in msg
    assert "max_lag_bytes=1024" in msg
    assert "Nothing was changed" in msg


def test_lag_equal_to_max_is_allowed():
    assert run(primary(current_lsn="0/5000000"), standby(replayed_lsn="0/4000000"),
               dict(max_lag_bytes=16777216)) == "switch"


def test_zero_budget_needs_a_caught_up_standby():
    assert run(primary(), standby(), dict(max_lag_bytes=0)) == "switch"
    assert "1 bytes behind" in refusal(primary(current_lsn="0/5000001"), standby(),
                                       dict(max_lag_bytes=0))


def test_plan_fences_before_promoting():
    assert PLAN.index(next(s for s in PLAN if s.startswith("fence"))) < \
        PLAN.index(next(s for s in PLAN if s.startswith("promote")))
