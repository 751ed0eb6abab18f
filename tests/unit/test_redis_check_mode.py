# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check mode sends no mutating command: the Redis modules run against scripted servers that
answer the read commands they need and fail the test on anything else."""

from __future__ import annotations

import importlib
import json

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils import _redis

EAST, WEST = ("10.0.1.1", 6379), ("10.0.2.1", 6379)
SENTINELS = [("10.0.1.1", 26379), ("10.0.2.1", 26379), ("10.0.3.1", 26379)]
SERVER = {"redis_version": "7.0.15", "run_id": "r", "config_file": "/etc/redis/redis.conf"}
REPLICATION = {
    EAST: {"role": "master", "connected_slaves": 1, "master_failover_state": "no-failover",
           "master_replid": "x", "master_repl_offset": 500,
           "slave0": {"ip": "10.0.2.1", "port": 6379, "state": "online", "offset": 500, "lag": 0}},
    WEST: {"role": "slave", "master_host": "10.0.1.1", "master_port": 6379,
           "master_link_status": "up", "master_last_io_seconds_ago": 0,
           "master_sync_in_progress": 0, "slave_repl_offset": 500, "slave_read_only": 1,
           "slave_priority": 100, "master_repl_offset": 500, "connected_slaves": 0},
}
SENTINEL_MASTER = {"flags": "master", "config-epoch": "0", "num-other-sentinels": "2",
                   "num-slaves": "1", "quorum": "2", "down-after-milliseconds": "5000",
                   "failover-timeout": "10000", "parallel-syncs": "1",
                   "last-ok-ping-reply": "100"}
READS = {"ROLE", "DBSIZE", "CONFIG GET", "SENTINEL GET-MASTER-ADDR-BY-NAME", "SENTINEL MASTER",
         "SENTINEL CKQUORUM"}


class ScriptedRedis:
    """Stands in for redis.Redis: reads answer from the script, anything else is recorded."""

    sent: list = []

    def __init__(self, host, port, **_kwargs):
        self.address = (host, port)

    def ping(self):
        return True

    def close(self):
        pass

    def info(self, section):
        if section == "server":
            return dict(SERVER, run_id="run-%s-%s" % self.address)
        return dict(REPLICATION[self.address])

    @staticmethod
    def name(args):
        if args[0] in ("SENTINEL", "CONFIG"):
            return " ".join(str(a).upper() for a in args[:2])
        return str(args[0]).upper()

    def execute_command(self, *args):
        name = self.name(args)
        self.sent.append((self.address, args))
        if name not in READS:
            raise AssertionError("check mode sent %s to %s" % (args, self.address))
        if name == "ROLE":
            return ["master" if REPLICATION[self.address]["role"] == "master" else "slave"]
        if name == "DBSIZE":
            return 3
        if name == "CONFIG GET":
            return {args[2]: ""}
        if name == "SENTINEL GET-MASTER-ADDR-BY-NAME":
            return ["10.0.1.1", "6379"]
        if name == "SENTINEL MASTER":
            return dict(SENTINEL_MASTER)
        return "OK 3 usable Sentinels. Quorum and failover authorization can be reached"


@pytest.fixture
def scripted(monkeypatch):
    ScriptedRedis.sent = []
    monkeypatch.setattr(_redis.redis, "Redis", ScriptedRedis)
    return ScriptedRedis


def run_checked(name, args, capsys):
    from ansible.module_utils.testing import patch_module_args

    mod = importlib.import_module("ansible_collections.failsafe.datastores.plugins.modules." + name)
    with patch_module_args(dict(args, _ansible_check_mode=True, _ansible_diff=True)):
        with pytest.raises(SystemExit):
            mod.main()
    result = json.loads(capsys.readouterr().out)
    # The modules turn any exception into a failed result: a mutating command shows up here.
    assert not result.get("failed"), result["msg"]
    assert all(ScriptedRedis.name(args) in READS for _address, args in ScriptedRedis.sent)
    return result


def peer(address, **over):
    return dict({"host": address[0], "port": address[1], "password": "pw"}, **over)


@pytest.mark.parametrize("method", ["remonitor", "failover"])
def test_planned_failover_in_check_mode_only_reads(scripted, capsys, method):
    result = run_checked("redis_failover", {
        "master": peer(EAST), "replica": peer(WEST), "master_name": "cache",
        "sentinel_method": method,
        "sentinels": [{"host": h, "port": p} for h, p in SENTINELS]}, capsys)
    assert result["changed"] is True and result["switched"] is True, result
    assert result["diff"]["after"] == {"master": "10.0.2.1:6379"}
    assert result["steps"][0] == "CLIENT PAUSE 1000 WRITE on 10.0.1.1:6379"
    assert {a for a, _args in scripted.sent} >= set(SENTINELS)
    assert result["timings"]["write_unavailable"] is None


def test_emergency_in_check_mode_only_reads(scripted, capsys):
    REPLICATION[WEST].update(master_link_status="down", master_link_down_since_seconds=2)
    try:
        result = run_checked("redis_failover", {
            "mode": "emergency", "replica": peer(WEST)}, capsys)
    finally:
        REPLICATION[WEST].update(master_link_status="up")
        del REPLICATION[WEST]["master_link_down_since_seconds"]
    assert result["changed"] is True and result["steps"][0] == "REPLICAOF NO ONE on 10.0.2.1:6379"
    assert result["estimated_loss"]["window_seconds_at_most"] == 2.0


def test_replica_in_check_mode_only_reads(scripted, capsys):
    result = run_checked("redis_replica", {
        "login_host": WEST[0], "role": "master"}, capsys)
    assert result["changed"] is True and result["commands"] == ["REPLICAOF NO ONE"]
    result = run_checked("redis_replica", {
        "login_host": EAST[0], "replica_of": peer(WEST), "master_auth": "pw2",
        "discard_data": True}, capsys)
    assert result["changed"] is True
    assert result["commands"] == ["CONFIG SET masterauth ********", "REPLICAOF 10.0.2.1 6379"]
    assert "pw2" not in json.dumps(result)
