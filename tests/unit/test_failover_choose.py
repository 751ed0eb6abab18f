# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""postgresql_failover: which standby, what the situation is called, and the loss budget."""

from __future__ import annotations

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import PostgresError
from ansible_collections.failsafe.datastores.plugins.modules.postgresql_failover import (
    check_loss,
    choose,
)


def node(name, role="standby", reachable=True, read_only=False, received=None, replayed=None):
    return dict(name=name, reachable=reachable, role=role if reachable else None,
                read_only=read_only if reachable else None, received_lsn=received,
                replayed_lsn=replayed, unreachable_reason=None if reachable else "refused")


def run(summary, candidates=()):
    params = dict(candidates=list(candidates), nodes=[dict(name=n["name"]) for n in summary])
    facts = dict((n["name"], dict(system_identifier="7301")) for n in summary if n["reachable"])
    return choose(params, summary, facts)


def refusal(summary, candidates=()):
    with pytest.raises(PostgresError) as info:
        run(summary, candidates)
    return str(info.value)


# Ranking ------------------------------------------------------------------------------------------

def test_the_standby_with_the_most_wal_wins_among_three():
    summary = [node("east", reachable=False),
               node("west-1", received="0/5000000", replayed="0/4F00000"),
               node("west-2", received="0/5000100", replayed="0/5000000"),
               node("west-3", received="0/4000000", replayed="0/3000000")]
    assert run(summary) == ("promote", "west-2", None)


def test_received_below_replayed_after_a_restart_counts_the_replayed_position():
    # After a restart a standby reports the segment it streams again as received.
    summary = [node("east", reachable=False),
               node("a", received="0/5000000", replayed="0/5000000"),
               node("b", received="0/4000000", replayed="0/6000000"),
               node("c", received=None, replayed="0/5800000")]
    assert run(summary)[1] == "b"


def test_a_standby_that_never_received_is_ranked_by_what_it_replayed():
    summary = [node("east", reachable=False), node("a", received=None, replayed="0/3000000"),
               node("b", received=None, replayed="0/2000000"), node("c")]
    assert run(summary)[1] == "a"


def test_the_best_node_outside_the_candidates_is_not_chosen():
    summary = [node("east", reachable=False),
               node("west", received="0/5000000", replayed="0/5000000"),
               node("south", received="0/9000000", replayed="0/9000000")]
    assert run(summary, candidates=["west"])[1] == "west"


# What the situation is called ------------------------------------------------------------------

def test_a_healthy_cluster_is_not_called_already_failed_over():
    verdict, target, why = run([node("east"), node("west", role="primary")], ["west"])
    assert (verdict, target) == ("done", "west")
    assert why == "west is the writable primary and every other node is a standby: nothing needs failing over."
    assert "Already failed over" not in why


def test_an_unreachable_old_primary_is_already_failed_over():
    verdict, target, why = run([node("east", reachable=False), node("west", role="primary")],
                               ["west"])
    assert verdict == "done"
    assert why.startswith("Already failed over: west is the only writable primary")
    assert "unreachable: east" in why


def test_a_fenced_old_primary_is_already_failed_over():
    why = run([node("east", role="primary", read_only=True), node("west", role="primary")],
              ["west"])[2]
    assert "fenced primaries: east" in why


def test_two_writable_primaries_are_a_split_brain_now_naming_both():
    msg = refusal([node("east", role="primary"), node("west", role="primary")], ["west"])
    assert msg.startswith("split brain now: east and west are both writable primaries")
    assert "would give" not in msg and "Nothing was changed" in msg


def test_a_writable_primary_outside_the_candidates_would_give_two():
    msg = refusal([node("east", role="primary"), node("west")], ["west"])
    assert msg.startswith("east answers as a writable primary: an emergency failover now would "
                          "give two writable primaries")


def test_no_reachable_candidate():
    msg = refusal([node("east", reachable=False), node("west", reachable=False)])
    assert "no reachable standby to promote" in msg
    assert "unfence" not in msg


def test_a_fenced_primary_and_no_standby_names_the_unfence():
    """The incident of a failed switchover: the standby is gone, the old primary stays fenced.
    The refusal names what gives writes back, not only that no standby answers."""
    msg = refusal([node("east", role="primary", read_only=True), node("west", reachable=False)])
    assert "no reachable standby to promote among ['east', 'west'] (answering: ['east'])" in msg
    assert "east is a primary fenced read-only and no node takes writes" in msg
    assert "ansible-playbook playbooks/postgresql_unfence.yml" in msg
    assert "postgresql_unfence_node" not in msg


# The loss budget ------------------------------------------------------------------------------------

LOSS = dict(window_seconds_at_most=0.58, basis="connection closed",
            meaning="The primary closed the replication connection at ...")


def params(limit=None, accept=False):
    return dict(max_data_loss_seconds=limit, accept_data_loss=accept)


def test_without_a_budget_or_accept_data_loss_it_refuses_naming_both_ways():
    with pytest.raises(PostgresError) as info:
        check_loss(params(), "west", LOSS)
    msg = str(info.value)
    assert "no data-loss budget" in msg and "Nothing was changed" in msg
    assert "max_data_loss_seconds=SECONDS" in msg
    assert "postgresql_failover_max_data_loss_seconds=SECONDS" in msg
    assert "accept_data_loss=true" in msg and "postgresql_failover_accept_data_loss=true" in msg
    assert "0.58" in msg


def test_accept_data_loss_promotes_whatever_the_estimate():
    check_loss(params(accept=True), "west", dict(LOSS, window_seconds_at_most=None))
    check_loss(params(limit=1, accept=True), "west", dict(LOSS, window_seconds_at_most=90))


@pytest.mark.parametrize("window", [0.0, 0.58, 60.0])
def test_within_the_budget(window):
    check_loss(params(limit=60), "west", dict(LOSS, window_seconds_at_most=window))


@pytest.mark.parametrize("window", [60.001, None])
def test_beyond_the_budget_or_unknown(window):
    with pytest.raises(PostgresError) as info:
        check_loss(params(limit=60), "west", dict(LOSS, window_seconds_at_most=window))
    msg = str(info.value)
    assert "more than max_data_loss_seconds=60" in msg and "Nothing was changed" in msg
    assert LOSS["meaning"] in msg
