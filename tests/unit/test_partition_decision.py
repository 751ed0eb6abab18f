# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The quorum rule of module_utils/_partition.py: who keeps the primary, who is fenced, when
nothing may change."""

from __future__ import annotations

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils._partition import (
    PartitionRefusal,
    decide,
)

DOWN = dict(reachable=False)


def view(role="primary", read_only=False, timeline=1):
    return dict(reachable=True, role=role, read_only=read_only, timeline=timeline,
                system_identifier="7001")


def node(name, control, witness, region=None):
    return dict(name=name, region=region or name, control=control, witness=witness)


PRIMARY, STANDBY = view(), view("standby")


def test_no_partition_changes_nothing():
    plan = decide([node("east", PRIMARY, PRIMARY), node("west", STANDBY, STANDBY)])
    assert plan["verdict"] == "no_partition"
    assert plan["primary"] == "east"
    assert plan["fence"] == [] and plan["promote_candidates"] == [] and plan["rejoin"] == []


def test_the_primary_reached_by_both_keeps_it_when_the_standby_is_cut_off():
    plan = decide([node("east", PRIMARY, PRIMARY), node("west", DOWN, STANDBY)])
    assert plan["verdict"] == "keep_primary"
    assert plan["primary"] == "east"
    assert plan["fence"] == [] and plan["promote_candidates"] == []


def test_a_primary_cut_off_from_both_is_replaced_by_the_majority_standby():
    plan = decide([node("east", DOWN, DOWN), node("west", STANDBY, STANDBY)])
    assert plan["verdict"] == "fail_over"
    assert plan["promote_candidates"] == ["west"]
    assert plan["fence"] == []  # nobody reaches it: it cannot be fenced now
    assert plan["sides"]["unreachable"] == ["east"]


def test_a_cut_off_primary_that_the_control_node_reaches_is_fenced():
    plan = decide([node("east", PRIMARY, DOWN), node("west", STANDBY, STANDBY)])
    assert plan["verdict"] == "fail_over"
    assert plan["fence"] == ["east"]
    assert plan["sides"]["control_only"] == ["east"]


def test_a_primary_only_the_witness_reaches_is_not_fenced_by_the_control_node():
    plan = decide([node("east", DOWN, PRIMARY), node("west", STANDBY, STANDBY)])
    assert plan["verdict"] == "fail_over"
    assert plan["fence"] == []


@pytest.mark.parametrize("east, west", [
    ((PRIMARY, DOWN), (DOWN, STANDBY)),  # control sees only us-east, the witness only us-west
    ((DOWN, DOWN), (DOWN, DOWN)),  # the control node is cut off from everything
    ((PRIMARY, DOWN), (STANDBY, DOWN)),  # the witness is lost
])
def test_no_majority_is_refused(east, west):
    with pytest.raises(PartitionRefusal, match="no side has the majority.*Nothing was changed"):
        decide([node("east", *east), node("west", *west)])


def test_a_fenced_primary_alone_on_the_majority_side_is_refused_with_the_unfence_hint():
    fenced = view(read_only=True)
    with pytest.raises(PartitionRefusal, match="postgresql_unfence"):
        decide([node("east", fenced, fenced), node("west", DOWN, DOWN)])


def test_two_writable_primaries_on_the_majority_side_are_refused():
    with pytest.raises(PartitionRefusal, match="split brain"):
        decide([node("a", PRIMARY, PRIMARY), node("b", PRIMARY, PRIMARY),
                node("c", DOWN, DOWN)])


def test_a_repeated_run_after_the_failover_keeps_the_new_primary():
    new = view(timeline=2)
    plan = decide([node("east", DOWN, DOWN), node("west", new, new)])
    assert plan["verdict"] == "keep_primary"
    assert plan["primary"] == "west"


def test_heal_rejoins_the_primary_on_the_older_timeline_and_fences_it_when_writable():
    old, new = view(timeline=1), view(timeline=2)
    plan = decide([node("east", old, old), node("west", new, new)], phase="heal")
    assert plan["verdict"] == "rejoin"
    assert plan["primary"] == "west"
    assert plan["fence"] == ["east"] and plan["rejoin"] == ["east"]


def test_heal_does_not_fence_again_what_is_fenced():
    old, new = view(read_only=True, timeline=1), view(timeline=2)
    plan = decide([node("east", old, old), node("west", new, new)], phase="heal")
    assert plan["fence"] == [] and plan["rejoin"] == ["east"]


def test_heal_with_nothing_to_rejoin_is_healthy():
    plan = decide([node("east", PRIMARY, PRIMARY), node("west", STANDBY, STANDBY)], phase="heal")
    assert plan["verdict"] == "healthy" and plan["rejoin"] == []


def test_heal_refuses_while_a_node_is_still_cut_off():
    with pytest.raises(PartitionRefusal, match="not healed"):
        decide([node("east", PRIMARY, DOWN), node("west", view(timeline=2), view(timeline=2))],
               phase="heal")


def test_heal_refuses_two_writable_primaries_on_one_timeline():
    with pytest.raises(PartitionRefusal, match="same timeline"):
        decide([node("east", PRIMARY, PRIMARY), node("west", PRIMARY, PRIMARY)], phase="heal")


def test_nodes_of_two_clusters_are_refused():
    other = dict(view("standby"), system_identifier="7002")
    with pytest.raises(PartitionRefusal, match="different clusters"):
        decide([node("east", PRIMARY, PRIMARY), node("west", other, other)])
