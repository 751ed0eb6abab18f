# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_diagnosis names the state of the cluster and the runbook that fits it."""

from __future__ import annotations

from ansible_collections.failsafe.datastores.plugins.filter.pg_diagnosis import pg_diagnosis

HOSTVARS = {
    "pg-us-east": {"failsafe_region": "us-east", "failsafe_pg_host": "10.0.1.1",
                   "failsafe_pg_port": 5432},
    "pg-us-west": {"failsafe_region": "us-west", "failsafe_pg_host": "10.0.2.1",
                   "failsafe_pg_port": 5432},
}


def primary(read_only=False, **extra):
    facts = dict(reachable=True, role="primary", read_only=read_only, standbys=[])
    facts.update(extra)
    return facts


def standby(upstream="10.0.1.1", status="streaming", received="0/3000000",
            replayed="0/3000000"):
    return dict(reachable=True, role="standby", read_only=False, received_lsn=received,
                replayed_lsn=replayed,
                wal_receiver=dict(status=status, sender_host=upstream, sender_port=5432))


def down():
    return dict(reachable=False, unreachable_reason="connection refused")


def diagnose(east, west):
    return pg_diagnosis({"pg-us-east": east, "pg-us-west": west}, HOSTVARS)


def test_healthy():
    result = diagnose(primary(), standby())
    assert result["state"] == "healthy" and result["healthy"] and result["command"] is None


def test_fenced_primary_and_no_writable_names_the_unfence_playbook():
    result = diagnose(primary(read_only=True), standby())
    assert result["state"] == "fenced_no_writable"
    assert result["command"] == "ansible-playbook playbooks/postgresql_unfence.yml"


def test_primary_down_names_the_failover_with_a_loss_budget():
    result = diagnose(down(), standby(status=None))
    assert result["state"] == "no_primary"
    assert "postgresql_failover.yml -l us-west" in result["command"]
    assert "max_data_loss_seconds" in result["command"]


def test_standby_down_names_the_rejoin_not_the_failover():
    result = diagnose(primary(), down())
    assert result["state"] == "degraded"
    assert "postgresql_rejoin.yml" in result["command"]
    assert "postgresql_rejoin_node=pg-us-west" in result["command"]
    assert "failover" not in result["command"]


def test_interrupted_switchover_during_rejoin_names_the_rejoin():
    result = diagnose(primary(read_only=True), primary())
    assert result["state"] == "degraded"
    assert "postgresql_rejoin_node=pg-us-east -e postgresql_rejoin_primary=pg-us-west" \
        in result["command"]


def test_standby_following_another_server_is_degraded():
    result = diagnose(primary(), standby(upstream="10.9.9.9"))
    assert result["state"] == "degraded" and "does not stream" in result["problems"][0]


def test_split_brain_names_both_primaries_as_they_are():
    result = diagnose(primary(), primary())
    assert result["state"] == "split_brain"
    assert "pg-us-east (us-east) and pg-us-west (us-west)" in result["summary"]
    assert "postgresql_rejoin_force=true" in result["command"]


def test_missing_synchronous_standby_blocks_commits():
    result = diagnose(primary(synchronous_standby_names="ANY 1 (us_west)"), down())
    assert result["state"] == "degraded_sync_blocked"
    assert any("every commit blocks" in line for line in result["problems"])


def test_synchronous_standby_streaming_is_healthy():
    sync = primary(synchronous_standby_names="ANY 1 (us_west)",
                   standbys=[dict(state="streaming", sync_state="quorum")])
    assert diagnose(sync, standby())["state"] == "healthy"


def test_nothing_answers():
    assert diagnose(down(), down())["state"] == "down"


def test_failover_target_is_the_most_advanced_standby():
    hostvars = dict(HOSTVARS)
    hostvars["pg-eu"] = {"failsafe_region": "eu-central", "failsafe_pg_host": "10.0.3.1"}
    nodes = {"pg-us-east": down(),
             "pg-us-west": standby(status=None, received="0/1000000", replayed="0/1000000"),
             "pg-eu": standby(status=None, received="0/0", replayed="0/2000000")}
    assert "-l eu-central" in pg_diagnosis(nodes, hostvars)["command"]


def test_status_rows_say_what_each_node_is():
    from ansible_collections.failsafe.datastores.plugins.filter.pg_diagnosis import pg_status_rows
    from ansible_collections.failsafe.datastores.plugins.filter.status_table import status_table

    nodes = {"pg-us-east": primary(read_only=True), "pg-us-west": standby(status="stopping")}
    rows = pg_status_rows(nodes, HOSTVARS)
    assert [(r["host"], r["role"], r["health"]) for r in rows] == [
        ("pg-us-east", "fenced primary", "fenced"),
        ("pg-us-west", "standby", "not streaming")]
    lines = status_table({"engines": {"postgresql": {
        "rows": rows, "diagnosis": pg_diagnosis(nodes, HOSTVARS)}}})
    assert lines[0].startswith("engine") and "pg-us-east" in lines[1]
    assert any(line.startswith("postgresql: writes are unavailable") for line in lines)
    assert lines[-1] == "  run: ansible-playbook playbooks/postgresql_unfence.yml"


def test_sync_blocked_as_postgresql_replication_info_counts_it():
    """FIRST 2 (a, b) with only a streaming: a sync standby exists, yet commits block."""
    facts = primary(synchronous_standby_names="FIRST 2 (us_west, us_central)",
                    standbys=[dict(state="streaming", sync_state="sync",
                                   application_name="us_west")],
                    sync_blocked=True, sync_missing=["us_central"])
    result = diagnose(facts, standby())
    assert result["state"] == "sync_blocked"
    assert result["command"] is None


def test_asynchronous_primary_reported_by_replication_info_is_healthy():
    facts = primary(synchronous_standby_names="", sync_blocked=False, sync_missing=[])
    assert diagnose(facts, standby())["state"] == "healthy"


def test_status_row_names_the_synchronous_standbys_and_the_missing_ones():
    from ansible_collections.failsafe.datastores.plugins.filter.pg_diagnosis import (
        pg_status_rows,
    )
    facts = primary(synchronous_standby_names="ANY 1 (us_west)", sync_blocked=True,
                    sync_missing=["us_west"])
    rows = pg_status_rows({"pg-us-east": facts, "pg-us-west": down()}, HOSTVARS)
    east = next(r for r in rows if r["host"] == "pg-us-east")
    assert east["health"] == "commits blocked"
    assert east["detail"] == ("0 standby(s) streaming; synchronous: ANY 1 (us_west) "
                              "(missing: us_west)")
