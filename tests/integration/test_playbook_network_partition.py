"""playbooks/network_partition.yml on the test lab, with partitions made by the lab's proxies.

The proxies cut real sockets (lab/partition.py): the control node's, the witness's and the
replication connections. Every check of the servers' state is an independent psycopg session
straight to the server (not through a proxy, not through the modules).
"""

from __future__ import annotations

import json

PLAYBOOK = "playbooks/network_partition.yml"
DECIDE_TASK = "Probe every node from the control node and decide"
FENCE_TASKS = ("Fence the writable primary that is cut off from the majority",
               "Fence the stale primary that still takes writes")
PROMOTE_TASK = "Promote the most advanced standby of the majority side"
BUDGET = {"network_partition_max_data_loss_seconds": 120}


def task_results(runner, task_name):
    return [e["event_data"]["res"] for e in runner.events
            if e.get("event") in ("runner_on_ok", "runner_on_failed")
            and e["event_data"].get("task") == task_name]


def decision(runner):
    results = task_results(runner, DECIDE_TASK)
    assert results, runner.stdout_text
    return results[0]


def record(runner):
    stats = next(e["event_data"] for e in runner.events if e.get("event") == "playbook_on_stats")
    return stats["artifact_data"]["failsafe_network_partition"]


def changed_tasks(runner):
    return [e["event_data"]["task"] for e in runner.events
            if e.get("event") in ("runner_on_ok", "runner_on_item_ok")
            and e["event_data"]["res"].get("changed")]


def run(partition_lab, run_playbook, **kwargs):
    return run_playbook(PLAYBOOK, inventory=partition_lab.inventory, **kwargs)


def assert_only_writable(pair, node, standby):
    assert not pair.in_recovery(node) and not pair.read_only(node)
    assert pair.in_recovery(standby)


def test_cut_off_primary_is_fenced_replaced_and_rejoined_after_the_heal(
        partition_lab, run_playbook, tmp_path):
    pair = partition_lab.pair
    # us-east loses the witness and us-west; the control node still reaches it.
    partition_lab.cut(between=("us-east", "witness"))
    states = partition_lab.cut(between=("us-east", "us-west"))
    assert states["us-west->us-east"]["state"] == "cut"

    checked = run(partition_lab, run_playbook, check=True, diff=True, extravars=BUDGET)
    assert checked.status == "successful", checked.stdout_text
    seen = decision(checked)
    assert seen["verdict"] == "fail_over"
    assert seen["fence"] == ["pg-us-east"] and seen["promote_candidates"] == ["pg-us-west"]
    assert seen["sides"]["control_only"] == ["pg-us-east"]
    assert_only_writable(pair, pair.east, pair.west)  # check mode changed nothing

    acted = run(partition_lab, run_playbook,
                extravars=dict(BUDGET, network_partition_report_dir=str(tmp_path)))
    assert acted.status == "successful", acted.stdout_text
    assert pair.read_only(pair.east) and not pair.in_recovery(pair.east)  # fenced, still primary
    assert not pair.in_recovery(pair.west) and not pair.read_only(pair.west)
    pair.insert(pair.west, "written on the new primary")
    report = record(acted)
    assert report["verdict"] == "fail_over" and report["promoted"] == "pg-us-west"
    assert report["fenced"] == ["pg-us-east"] and report["validated"]
    assert report["data_loss"]["basis"]  # the estimate is recorded, whatever its size
    written = json.loads(next(tmp_path.glob("network_partition-*.json")).read_text())
    assert written["promoted"] == "pg-us-west"

    again = run(partition_lab, run_playbook, extravars=BUDGET)
    assert again.status == "successful", again.stdout_text
    assert decision(again)["verdict"] == "keep_primary"
    assert decision(again)["primary"] == "pg-us-west"
    assert changed_tasks(again) == []

    partition_lab.heal()
    healed = run(partition_lab, run_playbook, extravars={"network_partition_phase": "heal"})
    assert healed.status == "successful", healed.stdout_text
    assert decision(healed)["verdict"] == "rejoin"
    assert decision(healed)["rejoin"] == ["pg-us-east"]
    assert_only_writable(pair, pair.west, pair.east)
    assert pair.receiver(pair.east)["status"] == "streaming"
    rejoined = record(healed)
    assert rejoined["rejoined"] == ["pg-us-east"] and rejoined["validated"]
    assert rejoined["discarded_wal"][0]["method"] == "rewind"


def test_primary_cut_off_from_everyone_loses_what_it_took_alone_and_that_is_counted(
        partition_lab, run_playbook):
    pair = partition_lab.pair
    partition_lab.cut(isolate="us-east")
    # us-east's own clients keep writing to it: nobody outside can fence it.
    alone = [pair.insert(pair.east, "accepted alone during the partition") for _row in range(3)]

    acted = run(partition_lab, run_playbook, extravars=BUDGET)
    assert acted.status == "successful", acted.stdout_text
    seen = decision(acted)
    assert seen["verdict"] == "fail_over" and seen["fence"] == []
    assert seen["sides"]["unreachable"] == ["pg-us-east"]
    assert not pair.in_recovery(pair.west)
    # Split brain while the partition lasts, as the runbook expects: us-east was not reachable.
    assert not pair.read_only(pair.east)
    assert record(acted)["data_loss"]["window_seconds_at_most"] is not None

    partition_lab.heal()
    healed = run(partition_lab, run_playbook, extravars={"network_partition_phase": "heal"})
    assert healed.status == "successful", healed.stdout_text
    assert decision(healed)["fence"] == ["pg-us-east"]
    assert_only_writable(pair, pair.west, pair.east)
    discarded = record(healed)["discarded_wal"][0]["discarded_wal"]
    assert discarded["committed_transactions"] >= len(alone)
    for row_id in alone:
        assert not pair.scalar(pair.west, "SELECT count(*) FROM failsafe_it WHERE id = %s",
                               (row_id,))


def test_no_majority_is_refused_and_nothing_changes(partition_lab, run_playbook):
    pair = partition_lab.pair
    # The control node reaches only us-east, the witness only us-west.
    partition_lab.cut(between=("control", "us-west"))
    partition_lab.cut(between=("witness", "us-east"))

    refused = run(partition_lab, run_playbook, extravars=BUDGET)
    assert refused.status == "failed"
    failed = [e["event_data"] for e in refused.events if e.get("event") == "runner_on_failed"]
    assert [event["task"] for event in failed] == [DECIDE_TASK]
    result = failed[0]["res"]
    assert "no side has the majority" in result["msg"]
    assert "Nothing was changed" in result["msg"]
    assert not task_results(refused, PROMOTE_TASK)
    assert not any(task_results(refused, task) for task in FENCE_TASKS)
    assert_only_writable(pair, pair.east, pair.west)
    # Replication between the regions was not cut: it still flows.
    row = pair.insert(pair.east, "after the refusal")
    assert pair.wait_row(pair.west, row)
