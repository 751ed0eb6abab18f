# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""postgresql_standby.plan(): the method and steps from what was found, before anything changes;
and the timeline arithmetic behind it (module_utils/_postgres_facts.py)."""

from __future__ import annotations

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import PostgresError
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import (
    parse_timeline_history,
    rewind_needed,
)
from ansible_collections.failsafe.datastores.plugins.modules.postgresql_standby import plan

PRIMARY = dict(address="10.0.2.10:5432", system_identifier="7301", timeline=2,
               history=[(1, "0/3018038")], checkpointed=True)
OPTIONS = dict(force=False, basebackup_fallback=True, slot_name="us_east", address="10.0.1.10:5432")


def running(**overrides):
    """A running node, as node_state() reports it."""
    value = dict(data_dir_present=True, process_running=True, running=True, role="standby",
                 read_only=False, system_identifier="7301", timeline=2, upstream="10.0.2.10:5432",
                 receiver_status="streaming", slot="us_east", end_lsn="0/5000000",
                 clean_shutdown=None)
    value.update(overrides)
    return value


def stopped(**overrides):
    value = dict(data_dir_present=True, process_running=False, running=False, role=None,
                 read_only=None, system_identifier="7301", timeline=1, upstream=None,
                 receiver_status=None, slot=None, end_lsn="0/4000028", clean_shutdown=True,
                 cluster_state="shut down")
    value.update(overrides)
    return value


def dry_run(needed=True, rc=0, diverged_at="0/3018038", output=("pg_rewind: Done!",)):
    return dict(needed=needed, rc=rc, diverged_at=diverged_at if needed else None,
                diverged_timeline=1 if needed else None, output=list(output))


def decide(node, primary=None, **options):
    return plan(node, primary or PRIMARY, dict(OPTIONS, **options))


def refusal(node, primary=None, **options):
    with pytest.raises(PostgresError) as info:
        decide(node, primary, **options)
    return str(info.value)


# Nothing to do -------------------------------------------------------------------------------------

def test_a_node_streaming_from_the_primary_through_its_slot_is_left_alone():
    assert decide(running()) == dict(method="none", steps=[],
                                     why="it already streams from 10.0.2.10:5432")


def test_another_slot_or_upstream_is_not_following():
    assert decide(running(slot="other"))["method"] != "none"
    assert decide(running(upstream="10.0.3.10:5432"))["method"] != "none"
    assert decide(running(slot="other"), slot_name=None)["method"] == "none"


# Refusals ---------------------------------------------------------------------------------------------

def test_a_writable_primary_is_refused_naming_the_option_and_the_playbook_variable():
    msg = refusal(running(role="primary", timeline=1, upstream=None, receiver_status=None))
    assert msg.startswith("10.0.1.10:5432 is running as a writable primary")
    assert "Nothing was changed" in msg
    assert "force=true" in msg and "postgresql_rejoin_force=true" in msg


def test_force_converts_a_writable_primary_by_rewinding_it():
    result = decide(running(role="primary", timeline=1), force=True)
    assert result["method"] == "rewind"


def test_another_cluster_without_fallback_is_refused():
    msg = refusal(stopped(system_identifier="9999"), basebackup_fallback=False)
    assert "another cluster" in msg and "basebackup_fallback is false" in msg
    assert "Nothing was changed" in msg


# Methods -------------------------------------------------------------------------------------------

def test_a_fenced_old_primary_is_rewound():
    result = decide(running(role="primary", read_only=True, timeline=1, upstream=None))
    assert result["method"] == "rewind"
    assert "shutdown checkpoint" in result["why"]
    assert result["steps"][0] == "stop the node"
    assert "CHECKPOINT on the primary" in result["steps"]
    assert any(s.startswith("keep the node's WAL past the divergence point") for s in result["steps"])
    assert "pg_rewind from the primary (pg_basebackup if it fails)" in result["steps"]
    assert result["steps"][-3:] == ["write standby.signal and primary_conninfo", "start the node",
                                    "wait until it streams from 10.0.2.10:5432"]


def test_another_cluster_is_cloned_not_rewound():
    """Check mode used to say 'rewind' here."""
    result = decide(running(system_identifier="9999", upstream=None, receiver_status=None))
    assert result["method"] == "basebackup"
    assert "another cluster (system identifier 9999, the primary's is 7301)" in result["why"]
    assert "move the data directory aside to DATA_DIR.failsafe-TIMESTAMP (unless empty)" \
        in result["steps"]
    assert not any("pg_rewind" in s for s in result["steps"])


def test_an_empty_data_directory_is_cloned():
    result = decide(stopped(data_dir_present=False, system_identifier=None, timeline=None,
                            end_lsn=None, clean_shutdown=None))
    assert result["method"] == "basebackup"
    assert "stop the node" not in result["steps"]


def test_a_standby_of_another_upstream_on_the_primarys_timeline_is_reconfigured():
    result = decide(running(upstream="10.0.3.10:5432"))
    assert result["method"] == "reconfigure"
    assert not any("pg_rewind" in s or "pg_basebackup" in s for s in result["steps"])


def test_a_standby_left_behind_on_the_old_timeline_before_the_fork_is_reconfigured():
    result = decide(running(timeline=1, end_lsn="0/3018038", upstream="10.0.1.10:5432"))
    assert result["method"] == "reconfigure"


def test_a_standby_past_the_fork_on_the_old_timeline_is_rewound():
    result = decide(running(timeline=1, end_lsn="0/3018039", upstream="10.0.1.10:5432"))
    assert result["method"] == "rewind"


def test_an_unreadable_history_leaves_it_to_pg_rewind():
    result = decide(running(timeline=1, upstream=None), dict(PRIMARY, history=None))
    assert result["method"] == "rewind" and "pg_rewind decides" in result["why"]


def test_a_crashed_node_is_recovered_then_rewound():
    result = decide(stopped(clean_shutdown=False, cluster_state="in production"))
    assert result["method"] == "rewind"
    assert result["steps"][0] == "finish crash recovery in single-user mode (no network)"


# What pg_rewind --dry-run said about a stopped node -------------------------------------------------

def test_dry_run_no_rewind_required_means_reconfigure():
    result = decide(stopped(rewind_check=dry_run(needed=False)))
    assert result["method"] == "reconfigure"
    assert result["why"] == "pg_rewind --dry-run found no rewind required"


def test_dry_run_divergence_means_rewind():
    result = decide(stopped(rewind_check=dry_run()))
    assert result["method"] == "rewind"
    assert "diverged at 0/3018038 on timeline 1" in result["why"]


def test_dry_run_failure_means_basebackup_or_refusal():
    failed = dry_run(needed=None, rc=1, output=["pg_rewind: error: could not find common ancestor"])
    assert decide(stopped(rewind_check=failed))["method"] == "basebackup"
    msg = refusal(stopped(rewind_check=failed), basebackup_fallback=False)
    assert "could not find common ancestor" in msg


def test_a_stopped_node_is_not_said_to_fail_in_check_mode():
    """The steps say what would happen; nothing reads like 'streaming False'."""
    steps = decide(stopped(rewind_check=dry_run()))["steps"]
    assert steps[-1] == "wait until it streams from 10.0.2.10:5432"
    assert "stop the node" not in steps


# Timelines -----------------------------------------------------------------------------------------

def test_parse_timeline_history():
    text = "1\t0/3018038\tno recovery target specified\n\n2\t0/5000000\tbefore 2024-01-01\n"
    assert parse_timeline_history(text) == [(1, "0/3018038"), (2, "0/5000000")]
    assert parse_timeline_history("") == []
    assert parse_timeline_history(None) == []


@pytest.mark.parametrize("node_tli, end, expected", [
    (2, "0/9000000", False),   # on the primary's timeline
    (1, "0/3018038", False),   # ends exactly where timeline 2 forked off
    (1, "0/3000000", False),   # behind the fork
    (1, "0/3018039", True),    # one byte past it
    (3, "0/1000000", True),    # a timeline the primary never had
    (1, None, None),           # where its WAL ends is unknown
])
def test_rewind_needed(node_tli, end, expected):
    assert rewind_needed(node_tli, end, 2, [(1, "0/3018038")]) is expected


def test_rewind_needed_unknown_without_history():
    assert rewind_needed(1, "0/3000000", 2, None) is None
    assert rewind_needed(2, "0/3000000", 2, None) is False
