"""playbooks/redis_failover.yml through ansible-runner against the test lab."""

from __future__ import annotations

import pytest

# The Redis components need the generic lab (lab.core.Component with ports and packages) and
# its engine plugins (tests/integration/engines/redis.py); without them, skip with the reason.
pytest.importorskip("lab.sentinel", reason="the lab has no Redis components (generic lab needed)",
                    exc_type=ImportError)

import json


def stats(runner) -> dict:
    for event in runner.events:
        if event.get("event") == "playbook_on_stats":
            return event["event_data"].get("artifact_data") or {}
    return {}


def extravars(tmp_path, **more) -> dict:
    # The test's own lock directory: never the lock store a demo run uses.
    return dict({"failsafe_lock_backend": "file", "failsafe_lock_path": str(tmp_path / "locks")}, **more)


def test_planned_failover_and_back(redis_pair, run_playbook, tmp_path, lab_secrets):
    pair = redis_pair
    runner = run_playbook("playbooks/redis_failover.yml", limit="us-west", check=True, diff=True,
                          extravars=extravars(tmp_path))
    assert runner.status == "successful", runner.stdout_text
    assert pair.role(pair.east) == "master" and pair.role(pair.west) == "slave"

    reports = tmp_path / "reports"
    runner = run_playbook("playbooks/redis_failover.yml", limit="us-west",
                          extravars=extravars(tmp_path, redis_failover_report_dir=str(reports)))
    assert runner.status == "successful", runner.stdout_text
    record = stats(runner)["failsafe_redis_failover"]
    assert record["source"] == "redis-us-east" and record["target"] == "redis-us-west"
    assert record["changed"] is True and record["sentinels_agree"] is True
    assert record["timings"]["write_unavailable"] is not None
    assert record["estimated_loss"] == {"acknowledged_writes_lost": 0}
    assert pair.role(pair.west) == "master"
    pair.wait_sentinels(pair.west)
    written = [json.loads(p.read_text()) for p in reports.glob("redis_failover-*.json")]
    assert any(r.get("target") == "redis-us-west" for r in written)
    for secret in lab_secrets:
        assert secret not in runner.stdout_text
        assert all(secret not in p.read_text() for p in reports.iterdir())

    runner = run_playbook("playbooks/redis_failover.yml", limit="us-west",
                          extravars=extravars(tmp_path))
    assert runner.status == "successful"
    assert stats(runner)["failsafe_redis_failover"]["already_switched"] is True

    runner = run_playbook("playbooks/redis_failover.yml", limit="us-east",
                          extravars=extravars(tmp_path))
    assert runner.status == "successful", runner.stdout_text
    assert pair.role(pair.east) == "master"
    pair.wait_sentinels(pair.east)


def test_no_target_region_is_refused(redis_pair, run_playbook, tmp_path):
    runner = run_playbook("playbooks/redis_failover.yml", extravars=extravars(tmp_path))
    assert runner.status == "failed"
    assert "Nothing was changed" in runner.stdout_text
    assert redis_pair.role(redis_pair.east) == "master"


def test_the_lock_is_released_when_the_failover_fails(redis_pair, run_playbook, tmp_path):
    """A replica held back (within max_lag_bytes, so the preflight passes) that cannot catch up
    within pause_timeout: the failover fails inside the locked block, the master is unpaused,
    and the lock is released by the role's `always`."""
    pair = redis_pair
    lag = pair.lag_replica(100_000)
    try:
        runner = run_playbook("playbooks/redis_failover.yml", limit="us-west",
                              extravars=extravars(tmp_path, redis_failover_pause_timeout=50))
        assert runner.status == "failed" and lag > 0
        assert "writes were resumed on the master" in runner.stdout_text, runner.stdout_text
    finally:
        pair.release_replica()
    assert (tmp_path / "locks").is_dir() and not list((tmp_path / "locks").glob("redis*"))
    assert pair.role(pair.east) == "master" and pair.write(pair.east, "failsafe:after", "1")
    runner = run_playbook("playbooks/redis_failover.yml", limit="us-west",
                          extravars=extravars(tmp_path))
    assert runner.status == "successful", runner.stdout_text


def test_emergency_by_playbook(redis_pair, run_playbook, tmp_path):
    pair = redis_pair
    pair.set_down_after(60_000)  # the playbook acts, not Sentinel's own detection
    pair.crash(pair.east)
    runner = run_playbook("playbooks/redis_failover.yml", limit="us-west",
                          extravars=extravars(tmp_path, redis_failover_mode="emergency"))
    assert runner.status == "successful", runner.stdout_text
    record = stats(runner)["failsafe_redis_failover"]
    assert record["mode"] == "emergency" and record["changed"] is True
    assert record["old_master"]["reachable"] is False
    assert record["estimated_loss"]["window_seconds_at_most"] is not None
    assert pair.role(pair.west) == "master"
    pair.wait_sentinels(pair.west)
