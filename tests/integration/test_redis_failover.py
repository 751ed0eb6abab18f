"""redis_failover: the four-step pattern with Sentinels, zero loss under two writers, refusals
that change nothing, emergency promotion. Every state is verified with independent clients."""

from __future__ import annotations

import pytest

# The Redis components need the generic lab (lab.core.Component with ports and packages) and
# its engine plugins (tests/integration/engines/redis.py); without them, skip with the reason.
pytest.importorskip("lab.sentinel", reason="the lab has no Redis components (generic lab needed)",
                    exc_type=ImportError)

import re
import time

import redis

from lab.redis_writer import RedisWriter, running


def assert_master(pair, new, old):
    """`new` is the master, `old` its replica with the link up, every Sentinel answers `new`,
    and stays so after a few Sentinel hello periods (none pushes the old address back)."""
    assert pair.role(new) == "master"
    pair.wait_synced(old)
    assert pair.master_link(old)[:2] == (new.host, new.port)
    pair.wait_sentinels(new)
    time.sleep(4.5)  # two hello periods: a Sentinel with another view would have spoken by now
    assert set(pair.sentinel_answers().values()) == {new.address}
    assert pair.role(new) == "master" and pair.role(old) == "slave"


def assert_unchanged(pair):
    assert pair.role(pair.east) == "master" and pair.role(pair.west) == "slave"
    assert pair.master_link(pair.west)[:2] == (pair.east.host, pair.east.port)


@pytest.mark.parametrize("method", ["remonitor", "failover"])
def test_planned_four_steps(redis_pair, run_module, method):
    pair = redis_pair
    pair.write(pair.east, "failsafe:before", "1")
    args = pair.failover_args(pair.east, pair.west, sentinel_method=method)
    res = run_module("redis_failover", args, check=True, diff=True)
    assert not res.failed and res.changed and res["switched"], res.msg
    assert res["diff"] == {"before": {"master": pair.east.address},
                           "after": {"master": pair.west.address}}
    assert any(step.startswith("FAILOVER TO") for step in res["steps"])
    assert res["timings"]["write_unavailable"] is None
    assert_unchanged(pair)
    assert set(pair.sentinel_answers().values()) == {pair.east.address}

    res = run_module("redis_failover", args)
    assert not res.failed and res.changed, res.msg
    assert res["sentinel"]["agreed"] is True and res["sentinel"]["method"] == method
    assert res["timings"]["write_unavailable"] is not None
    assert res["estimated_loss"] == {"acknowledged_writes_lost": 0}
    assert sorted(res["persisted"]) == sorted([pair.east.address, pair.west.address])
    assert_master(pair, pair.west, pair.east)
    assert pair.read(pair.west, "failsafe:before") == "1"
    with pytest.raises(redis.exceptions.ReadOnlyError):
        pair.write(pair.east, "failsafe:after", "1")

    for check in (True, False):
        res = run_module("redis_failover", args, check=check)
        assert not res.failed and not res.changed and res["already_switched"], res.msg
    assert_master(pair, pair.west, pair.east)


@pytest.mark.parametrize("method", ["remonitor", "failover"])
def test_zero_loss_with_a_pinned_and_a_sentinel_writer(redis_pair, run_module, lab_env, method):
    pair = redis_pair
    writers = RedisWriter.pair_for_lab(lab_env.lab, f"it-{method}-{time.time():.0f}",
                                       pinned_to=pair.east.component)
    with running(writers, linger=1.0):
        time.sleep(0.5)
        res = run_module("redis_failover", pair.failover_args(pair.east, pair.west,
                                                              sentinel_method=method))
        assert not res.failed, res.msg
        done = time.monotonic()
        # The Sentinel-aware writer must write to the new master before the writers stop.
        while time.monotonic() < done + 30 and not writers[1].acked_since(done):
            time.sleep(0.05)
    pair.wait_synced(pair.east)
    reports = [w.verify(pair.client(pair.west)) for w in writers]
    for report in reports:
        assert report.acknowledged > 0 and report.lost == 0, report
    assert reports[0].failed_attempts > 0  # the pinned writer was refused (READONLY) afterwards
    assert writers[1].acked_since(done)  # the Sentinel-aware writer found the new master


def test_failback(redis_pair, run_module):
    pair = redis_pair
    assert not run_module("redis_failover", pair.failover_args(pair.east, pair.west)).failed
    res = run_module("redis_failover", pair.failover_args(pair.west, pair.east))
    assert not res.failed and res.changed, res.msg
    assert_master(pair, pair.east, pair.west)


def test_a_lagging_replica_is_refused(redis_pair, run_module):
    pair = redis_pair
    lag = pair.lag_replica(200_000)
    try:
        res = run_module("redis_failover", pair.failover_args(pair.east, pair.west,
                                                              max_lag_bytes=10_000))
        assert res.failed and "bytes behind the master" in res.msg, res.msg
        # The lag the module saw (it grows while the replica is held back) is named.
        seen = int(re.search(r"is (\d+) bytes behind", res.msg).group(1))
        assert "Nothing was changed" in res.msg and seen >= lag > 10_000
        assert res["timings"]["write_unavailable"] is None
        assert_unchanged(pair)
        assert set(pair.sentinel_answers().values()) == {pair.east.address}
    finally:
        pair.release_replica()


def test_no_sentinel_quorum_is_refused(redis_pair, run_module):
    pair = redis_pair
    pair.stop_sentinels(["sentinel-us-east", "sentinel-witness"])
    for method in ("remonitor", "failover"):
        res = run_module("redis_failover", pair.failover_args(pair.east, pair.west,
                                                              sentinel_method=method))
        assert res.failed, res
        assert "Nothing was changed" in res.msg
        assert "no Sentinel quorum" in res.msg or "needs every Sentinel" in res.msg, res.msg
    assert_unchanged(pair)
    assert set(pair.sentinel_answers().values()) >= {pair.east.address}


def test_a_wrong_password_is_refused_as_such(redis_pair, run_module):
    pair = redis_pair
    res = run_module("redis_failover", dict(pair.failover_args(pair.east, pair.west),
                                            replica=pair.west.peer(password="wrong-pw")))
    assert res.failed and res.msg.startswith("authentication failed at Redis at %s"
                                             % pair.west.address), res.msg
    res = run_module("redis_failover", dict(pair.failover_args(pair.east, pair.west),
                                            mode="emergency",
                                            master=pair.east.peer(password="wrong-pw")))
    assert res.failed and res.msg.startswith("authentication failed"), res.msg
    assert_unchanged(pair)


def test_a_target_already_master_beside_the_master_is_refused(redis_pair, run_module):
    pair = redis_pair
    pair.stop_sentinels([s.name for s in pair.sentinels])
    pair.client(pair.west).execute_command("REPLICAOF", "NO", "ONE")
    res = run_module("redis_failover", {"master": pair.east.peer(), "replica": pair.west.peer()})
    assert res.failed and res.msg.startswith("split brain"), res.msg
    assert pair.role(pair.east) == "master" and pair.role(pair.west) == "master"


def test_emergency_with_a_live_master_is_refused(redis_pair, run_module):
    pair = redis_pair
    res = run_module("redis_failover", pair.failover_args(pair.east, pair.west, mode="emergency"))
    assert res.failed and "no emergency" in res.msg and "Nothing was changed" in res.msg
    assert_unchanged(pair)


def test_emergency_through_sentinel(redis_pair, run_module):
    pair = redis_pair
    pair.set_down_after(60_000)  # so that the module, not Sentinel's own detection, acts
    pair.write(pair.east, "failsafe:acked", "1")
    pair.wait_synced(pair.west)
    pair.crash(pair.east)
    args = pair.failover_args(pair.east, pair.west, mode="emergency")
    res = run_module("redis_failover", args, check=True)
    assert res.changed and pair.role(pair.west) == "slave"
    res = run_module("redis_failover", args)
    assert not res.failed and res.changed, res.msg
    assert res["old_master"]["reachable"] is False
    assert res["estimated_loss"]["window_seconds_at_most"] is not None
    assert pair.role(pair.west) == "master" and pair.read(pair.west, "failsafe:acked") == "1"
    pair.wait_sentinels(pair.west)
    res = run_module("redis_failover", args)
    assert not res.failed and not res.changed and res["already_switched"]


def test_emergency_without_sentinel_and_the_loss_budget(redis_pair, run_module):
    pair = redis_pair
    pair.stop_sentinels([s.name for s in pair.sentinels])
    pair.crash(pair.east)
    time.sleep(2.2)
    args = {"mode": "emergency", "master": pair.east.peer(), "replica": pair.west.peer(),
            "max_data_loss_seconds": 1}
    res = run_module("redis_failover", args)
    assert res.failed and "max_data_loss_seconds=1" in res.msg and "Nothing was changed" in res.msg
    assert pair.role(pair.west) == "slave"
    res = run_module("redis_failover", dict(args, accept_data_loss=True))
    assert not res.failed and res.changed and res["steps"][0].startswith("REPLICAOF NO ONE")
    assert res["estimated_loss"]["link_down_seconds"] >= 2
    assert pair.role(pair.west) == "master"


def test_secrets_are_never_shown(redis_pair, run_module, lab_secrets):
    pair = redis_pair
    res = run_module("redis_failover", pair.failover_args(pair.east, pair.west), check=True,
                     diff=True, verbosity=3)
    assert res.changed
    for secret in lab_secrets:
        assert secret not in res.stdout


def test_sentinel_step_completed_by_a_second_run(redis_pair, run_module):
    """An interrupted run (the hand-over done, the Sentinels not told): running the module
    again completes only the Sentinel step."""
    pair = redis_pair
    entry = pair.info(pair.east)["slave0"]
    pair.client(pair.east).execute_command("FAILOVER", "TO", entry["ip"], entry["port"])
    deadline = time.monotonic() + 10
    while pair.role(pair.west) != "master" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(pair.sentinel_answers().values()) == {pair.east.address}
    res = run_module("redis_failover", pair.failover_args(pair.east, pair.west))
    assert not res.failed and res.changed, res.msg
    assert not any(step.startswith("CLIENT PAUSE") for step in res["steps"])
    assert_master(pair, pair.west, pair.east)
