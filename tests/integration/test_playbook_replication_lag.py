"""playbooks/postgresql_replication_lag.yml through ansible-runner on the test lab: a standby held
back (recovery_min_apply_delay) is measured, the lab's read record moves to the primary, the
standby is cloned anew and the reads move back; check mode and a run below the threshold change
nothing. Every outcome is read back with the test's own psycopg sessions and DNS questions."""

from __future__ import annotations

import time

from test_playbook_postgresql import task_results

PLAYBOOK = "playbooks/postgresql_replication_lag.yml"
REBUILD_TASK = "Clone the standby anew from the primary"
READ = "postgresql-read"


def started_at(pair, node):
    return pair.scalar(node, "SELECT pg_postmaster_start_time()")


def test_lagging_replica_rebuilt_with_reads_on_the_primary(pg_pair, dns_zone, run_playbook):
    east, west = pg_pair.east, pg_pair.west
    dns_zone.set_records({READ: dns_zone.address("us-west")})  # reads on the replica
    extravars = {"postgresql_replication_lag_max_seconds": 2,
                 "postgresql_replication_lag_dns_providers": ["dns-primary"]}
    held = pg_pair.hold_back_replay()
    time.sleep(2.5)  # the replica is now more than 2 s behind
    west_start = started_at(pg_pair, west)

    # Check mode: measures, plans; the replica, its lag and the read record stay as they are.
    check = run_playbook(PLAYBOOK, extravars=extravars, check=True)
    assert check.status == "successful", check.stdout_text
    planned = task_results(check, REBUILD_TASK)
    assert planned and planned[0]["changed"] and planned[0]["method"] == "basebackup"
    assert started_at(pg_pair, west) == west_start
    assert pg_pair.scalar(west, "SHOW recovery_min_apply_delay") == "1h"
    assert dns_zone.wait_all(READ, [dns_zone.address("us-west")])

    # Real: reads to us-east, clone, caught up, reads back to us-west.
    real = run_playbook(PLAYBOOK, extravars=extravars)
    assert real.status == "successful", real.stdout_text
    rebuilt = task_results(real, REBUILD_TASK)
    assert rebuilt and rebuilt[0]["method"] == "basebackup" and rebuilt[0]["streaming"]
    moved = [r for r in task_results(real, "Switch the records of every DNS provider in one atomic update each")
             if r.get("changed")]
    assert len(moved) == 2, "the reads did not move to the primary and back"
    assert started_at(pg_pair, west) > west_start
    assert pg_pair.in_recovery(west)
    assert pg_pair.scalar(west, "SHOW recovery_min_apply_delay") == "0"
    assert pg_pair.wait_row(west, held), "the held-back row is still missing on the replica"
    assert pg_pair.receiver(west)["status"] == "streaming"
    assert dns_zone.wait_all(READ, [dns_zone.address("us-west")])
    row = pg_pair.insert(east, "after the rebuild")
    assert pg_pair.wait_row(west, row)

    # Again: below the threshold, nothing changes.
    again = run_playbook(PLAYBOOK, extravars=extravars)
    assert again.status == "successful", again.stdout_text
    assert not task_results(again, REBUILD_TASK)
    changed = [e["event_data"]["task"] for e in again.events if e.get("event") == "runner_on_ok"
               and e["event_data"]["res"].get("changed")]
    assert changed == [], changed
