"""The lab's Redis and Sentinels in the inventory (pure: no server is started)."""

from __future__ import annotations

from pathlib import Path

import yaml

from lab import redis as lab_redis
from lab import sentinel as lab_sentinel
from lab.core import DEFAULT_REGIONS

COMMITTED = Path(__file__).resolve().parents[2] / "inventories" / "lab" / "hosts.yml"


def test_redis_hosts_and_variables():
    data = yaml.safe_load(COMMITTED.read_text())["all"]
    hosts = data["children"]["redis"]["hosts"]
    assert set(hosts) == {"redis-%s" % region for region in DEFAULT_REGIONS}
    for region, address in DEFAULT_REGIONS.items():
        assert hosts["redis-%s" % region] == {
            "failsafe_region": region, "failsafe_redis_host": address,
            "failsafe_redis_port": lab_redis.RedisNode.default_ports["redis"]}
    assert data["vars"]["failsafe_redis_password"] == lab_redis.PASSWORD
    assert data["vars"]["failsafe_redis_master_name"] == lab_redis.MASTER_NAME


def test_three_sentinels_one_outside_the_regions():
    hosts = yaml.safe_load(COMMITTED.read_text())["all"]["children"]["redis_sentinel"]["hosts"]
    assert set(hosts) == {"sentinel-us-east", "sentinel-us-west", "sentinel-witness"}
    assert hosts["sentinel-witness"]["failsafe_region"] is None
    assert {h["failsafe_redis_port"] for h in hosts.values()} == {
        lab_sentinel.SentinelNode.default_ports["sentinel"]}


def test_the_planned_pause_stays_below_the_lab_down_after(argument_spec):
    """A paused master must not look dead to the lab's Sentinels (docs/redis.md)."""
    assert lab_sentinel.QUORUM == 2
    assert argument_spec("redis_failover")["pause_timeout"]["default"] < lab_sentinel.DOWN_AFTER_MS
