# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis modules: arguments and secrets (real AnsibleModule, no server), and the pure decisions
of redis_failover, redis_replica and module_utils/_redis (facts parsing, loss arithmetic,
error mapping)."""

from __future__ import annotations

import json
import re

import pytest
import redis

from ansible_collections.failsafe.datastores.plugins.module_utils import _redis
from ansible_collections.failsafe.datastores.plugins.modules import redis_failover, redis_replica
from ansible_collections.failsafe.datastores.plugins.filter.redis_conn import redis_conn

MINIMAL = {
    "redis_failover": {"master": {"host": "r-east"}, "replica": {"host": "r-west"}},
    "redis_replica": {"login_host": "r-east", "replica_of": {"host": "r-west"}},
    "redis_replication_info": {"login_host": "r-east"},
    "redis_nodes_info": {"nodes": [{"name": "r-east", "host": "r-east"}]},
}
SECRETS = {
    "redis_failover": [("master", "password"), ("replica", "password"), ("sentinels", "password")],
    "redis_replica": [("login_password",), ("replica_of", "password"), ("master_auth",)],
    "redis_replication_info": [("login_password",), ("sentinels", "password")],
    "redis_nodes_info": [("nodes", "password"), ("sentinels", "password")],
}
SECRET_NAME = re.compile(r"pass(word|wd)?$|secret|token|auth$", re.IGNORECASE)
NAMES = sorted(MINIMAL)


def walk(spec, prefix=()):
    for option, definition in spec.items():
        yield prefix + (option,), definition
        if definition.get("options"):
            yield from walk(definition["options"], prefix + (option,))


def with_secrets(name):
    args = json.loads(json.dumps(MINIMAL[name]))
    values = []
    for number, path in enumerate(SECRETS[name]):
        value = "s3cr3t-%d" % number
        if path[0] == "sentinels":
            args["sentinels"] = [{"host": "s1", "password": value}]
            args["master_name"] = "cache"
        elif path[0] == "nodes":
            args["nodes"] = [{"name": "n1", "host": "x", path[1]: value}]
        elif len(path) == 2:
            args.setdefault(path[0], {"host": "x"})[path[1]] = value
        else:
            args[path[0]] = value
        values.append(value)
    return args, values


@pytest.mark.parametrize("name", NAMES)
def test_required_options(name, argument_spec):
    spec = argument_spec(name)
    required = {k for k, v in spec.items() if v.get("required")}
    assert required <= set(MINIMAL[name])


@pytest.mark.parametrize("name", NAMES)
def test_every_secret_looking_option_is_no_log(name, argument_spec):
    found = []
    for path, definition in walk(argument_spec(name)):
        if SECRET_NAME.search(path[-1]):
            found.append(path)
            assert definition.get("no_log") is True, "%s: %s" % (name, ".".join(path))
    assert sorted(found) == sorted(SECRETS[name])


@pytest.mark.parametrize("name", NAMES)
def test_secrets_never_reach_the_output(name, run_module):
    args, values = with_secrets(name)
    args["not_an_option"] = True
    code, result = run_module(name, args)
    assert code == 1 and "not_an_option" in result["msg"]
    text = json.dumps(result)
    for value in values:
        assert value not in text


@pytest.mark.parametrize("name", NAMES)
def test_minimal_arguments_are_valid(name, build_module):
    module = build_module(name, MINIMAL[name])
    assert module.check_mode is False


def test_planned_mode_needs_a_master(run_module):
    code, result = run_module("redis_failover", {"replica": {"host": "r-west"}})
    assert code == 1 and "master" in result["msg"]


def test_tls_is_off_by_default(build_module):
    module = build_module("redis_replication_info", {"login_host": "r"})
    assert module.params["tls"] is False and module.params["login_port"] == 6379


def test_sentinel_port_defaults_to_26379(build_module):
    module = build_module("redis_failover", dict(MINIMAL["redis_failover"],
                                                 sentinels=[{"host": "s"}], master_name="m"))
    assert module.params["sentinels"][0]["port"] == 26379


# Facts -------------------------------------------------------------------------------------------

MASTER_INFO = {"role": "master", "connected_slaves": 1, "master_failover_state": "no-failover",
               "master_replid": "abc", "master_repl_offset": 1000,
               "slave0": {"ip": "10.0.2.1", "port": 6379, "state": "online", "offset": 900,
                          "lag": 0}}
REPLICA_INFO = {"role": "slave", "master_host": "10.0.1.1", "master_port": 6379,
                "master_link_status": "up", "master_last_io_seconds_ago": 0,
                "master_sync_in_progress": 0, "slave_repl_offset": 900, "slave_read_only": 1,
                "slave_priority": 100, "master_repl_offset": 900, "connected_slaves": 0}


def facts(info, address):
    result = _redis.parse_replication(info)
    result.update(address=address, config_file="/etc/redis.conf")
    return result


def test_parse_master_lag_per_replica():
    m = facts(MASTER_INFO, "10.0.1.1:6379")
    assert m["role"] == "master"
    assert m["replicas"] == [dict(address="10.0.2.1:6379", ip="10.0.2.1", port=6379,
                                  state="online", offset=900, lag_bytes=100, lag_seconds=0)]


def test_parse_replica_link_down():
    info = dict(REPLICA_INFO, master_link_status="down", master_link_down_since_seconds=7)
    r = facts(info, "10.0.2.1:6379")
    assert r["role"] == "replica" and r["master_link_down_since_seconds"] == 7
    assert _redis.replica_lag_bytes(facts(MASTER_INFO, "m"), r) == 100


@pytest.mark.parametrize("link, down, last_seen_ms, window", [
    ("up", None, None, 0),
    ("down", 30, None, 30.0),
    ("down", 30, 29000, 1.0),
    ("down", 5, 9000, 0.0),
    ("down", None, None, None),
])
def test_loss_window(link, down, last_seen_ms, window):
    replica = dict(master_link_status=link, master_link_down_since_seconds=down,
                   replica_repl_offset=5)
    view = None
    if last_seen_ms is not None:
        view = {"sentinels": [{"reachable": True, "last_ok_ping_reply_ms": last_seen_ms}]}
    assert _redis.loss_estimate(replica, view)["window_seconds_at_most"] == window


# Error mapping ------------------------------------------------------------------------------------

PEER = {"host": "10.0.1.1", "port": 6379}


def test_wrong_password_is_never_unreachable():
    exc = redis.exceptions.AuthenticationError("invalid username-password pair or user is disabled.")
    assert not _redis.is_unreachable(exc)
    assert _redis.explain_error(PEER, exc).startswith("authentication failed at Redis at 10.0.1.1:6379")


def test_noauth_is_an_auth_error():
    exc = redis.exceptions.ResponseError("NOAUTH Authentication required.")
    assert _redis.is_auth_error(exc) and not _redis.is_unreachable(exc)


def test_the_state_is_said_once():
    assert _redis.with_state("x failed. Nothing was changed", _redis.NOTHING_CHANGED) == \
        "x failed. Nothing was changed"
    assert _redis.with_state("x failed", _redis.NOTHING_CHANGED) == "x failed. Nothing was changed."


@pytest.mark.parametrize("text", ["Error 111 connecting to 10.0.1.1:6379. Connection refused.",
                                  "Timeout connecting to server"])
def test_connection_refused_is_unreachable(text):
    assert _redis.is_unreachable(redis.exceptions.ConnectionError(text))


def test_connection_reset_is_not_unreachable():
    exc = redis.exceptions.ConnectionError("Connection closed by server.")
    assert not _redis.is_unreachable(exc)
    assert "tls" in _redis.explain_error(PEER, exc)


# redis_failover decisions -------------------------------------------------------------------------

M_PEER = {"host": "10.0.1.1", "port": 6379}
R_PEER = {"host": "10.0.2.1", "port": 6379}


def params(**over):
    base = dict(master=M_PEER, replica=R_PEER, max_lag_bytes=1024, sentinel_method="remonitor",
                pause_timeout=1000, master_name="cache", accept_data_loss=False,
                max_data_loss_seconds=10, mode="planned", sentinels=[])
    base.update(over)
    return base


def view(masters=("10.0.1.1:6379",), reachable=3, total=3, quorum=True, inprog=False,
         down_after=5000, others=2):
    sentinels = [dict(reachable=i < reachable, error=None if i < reachable else "down",
                      quorum_message="OK", quorum_ok=quorum, down_after_milliseconds=down_after,
                      other_sentinels=others, last_ok_ping_reply_ms=100)
                 for i in range(total)]
    agreed = masters[0] if len(masters) == 1 and reachable == total else None
    return dict(sentinels=sentinels, reachable=reachable, total=total, masters=list(masters),
                agreed_master=agreed, quorum_ok=quorum, failover_in_progress=inprog)


def pair(**replica_over):
    m = facts(MASTER_INFO, "10.0.1.1:6379")
    r = facts(dict(REPLICA_INFO, **replica_over), "10.0.2.1:6379")
    return m, r, _redis.replica_entry(m, R_PEER)


def test_a_healthy_pair_switches():
    m, r, entry = pair(slave_repl_offset=1000)
    assert entry["ip"] == "10.0.2.1"
    assert redis_failover.planned_checks(params(), m, r, entry, view()) == "switch"


def test_lag_over_the_limit_is_refused():
    m, r, entry = pair(slave_repl_offset=1)
    with pytest.raises(_redis.RedisModuleError, match="999 bytes behind.*Nothing was changed"):
        redis_failover.planned_checks(params(max_lag_bytes=100), m, r, entry, None)


def test_link_down_is_refused():
    m, r, entry = pair(master_link_status="down")
    with pytest.raises(_redis.RedisModuleError, match="link of 10.0.2.1:6379 is down"):
        redis_failover.planned_checks(params(), m, r, entry, None)


@pytest.mark.parametrize("sentinels, message", [
    (view(reachable=1, quorum=False), "no Sentinel quorum: 1 of 3"),
    (view(inprog=True), "failover of cache is in progress"),
    (view(masters=("10.0.9.9:6379",)), "answer 10.0.9.9:6379 for cache"),
    (view(down_after=1000), "pause_timeout=1000 ms is not below"),
    (view(reachable=2), "remonitor needs every Sentinel, and 2 of 3"),
    (view(others=3), "knows 3 other Sentinels, but only 3"),
])
def test_sentinel_refusals(sentinels, message):
    m, r, entry = pair(slave_repl_offset=1000)
    with pytest.raises(_redis.RedisModuleError, match=message):
        redis_failover.planned_checks(params(), m, r, entry, sentinels)


def test_failover_method_refuses_other_replicas():
    other = {"ip": "10.0.3.1", "port": 6379, "state": "online", "offset": 1000, "lag": 0}
    m = facts(dict(MASTER_INFO, slave1=other), "10.0.1.1:6379")
    r = facts(dict(REPLICA_INFO, slave_repl_offset=1000), "10.0.2.1:6379")
    entry = _redis.replica_entry(m, R_PEER)
    with pytest.raises(_redis.RedisModuleError, match="other replicas \\(10.0.3.1:6379\\)"):
        redis_failover.planned_checks(params(sentinel_method="failover"), m, r, entry, view())
    assert redis_failover.planned_checks(params(), m, r, entry, view()) == "switch"


def test_emergency_refuses_when_sentinel_would_choose():
    r = facts(dict(REPLICA_INFO, master_link_status="down", master_link_down_since_seconds=1),
              "10.0.2.1:6379")
    sentinels = view()
    for v in sentinels["sentinels"]:
        v["replicas"] = 2
    with pytest.raises(_redis.RedisModuleError, match="know 2 replicas"):
        redis_failover.emergency_checks(params(mode="emergency"), probe(False), r, sentinels)


def test_failover_method_tolerates_one_sentinel_down():
    m, r, entry = pair(slave_repl_offset=1000)
    assert redis_failover.planned_checks(params(sentinel_method="failover"), m, r, entry,
                                         view(reachable=2)) == "switch"


def test_the_same_server_twice_is_refused():
    m = dict(facts(MASTER_INFO, "10.0.1.1:6379"), run_id="abc")
    r = dict(facts(MASTER_INFO, "redis-east:6379"), run_id="abc")
    with pytest.raises(_redis.RedisModuleError, match="the same server"):
        redis_failover.planned_checks(params(), m, r, None, None)


def test_both_masters_is_split_brain():
    m = facts(MASTER_INFO, "10.0.1.1:6379")
    r = facts(dict(MASTER_INFO, slave0=None), "10.0.2.1:6379")
    with pytest.raises(_redis.RedisModuleError, match="split brain"):
        redis_failover.planned_checks(params(), m, r, None, None)


def test_done_and_sentinel_only():
    old = facts(dict(REPLICA_INFO, master_host="10.0.2.1"), "10.0.1.1:6379")
    new = facts(dict(MASTER_INFO, slave0=None), "10.0.2.1:6379")
    assert redis_failover.planned_checks(params(), old, new, None, None) == "done"
    assert redis_failover.planned_checks(params(), old, new, None,
                                         view(masters=("10.0.2.1:6379",))) == "done"
    assert redis_failover.planned_checks(params(), old, new, None, view()) == "sentinel"


def probe(reachable, role=None):
    return dict(address="10.0.1.1:6379", reachable=reachable, role=role, facts=None, reason=None)


def test_emergency_refuses_a_live_master():
    r = facts(dict(REPLICA_INFO, master_link_status="down", master_link_down_since_seconds=3),
              "10.0.2.1:6379")
    with pytest.raises(_redis.RedisModuleError, match="no emergency"):
        redis_failover.emergency_checks(params(mode="emergency"), probe(True, "master"), r, None)


def test_emergency_refuses_a_live_link():
    r = facts(REPLICA_INFO, "10.0.2.1:6379")
    with pytest.raises(_redis.RedisModuleError, match="live replication link"):
        redis_failover.emergency_checks(params(mode="emergency"), probe(False), r, None)


def test_emergency_lag_budget():
    r = facts(dict(REPLICA_INFO, master_link_status="down", master_link_down_since_seconds=30),
              "10.0.2.1:6379")
    p = params(mode="emergency")
    with pytest.raises(_redis.RedisModuleError, match="up to 30.0 s"):
        redis_failover.emergency_checks(p, probe(False), r, None)
    assert redis_failover.emergency_checks(dict(p, accept_data_loss=True), probe(False), r,
                                           None) == "promote"
    assert redis_failover.emergency_checks(dict(p, max_data_loss_seconds=60), probe(False), r,
                                           None) == "promote"


def test_emergency_without_quorum_is_refused():
    r = facts(dict(REPLICA_INFO, master_link_status="down", master_link_down_since_seconds=1),
              "10.0.2.1:6379")
    with pytest.raises(_redis.RedisModuleError, match="no Sentinel quorum"):
        redis_failover.emergency_checks(params(mode="emergency"), probe(False), r,
                                        view(reachable=1, quorum=False))


# redis_replica plan -------------------------------------------------------------------------------

def replica_params(**over):
    base = dict(role="replica", replica_of=dict(M_PEER), master_auth=None, master_user=None,
                discard_data=False)
    base.update(over)
    return base


def test_replica_already_following_changes_nothing():
    r = facts(REPLICA_INFO, "10.0.2.1:6379")
    assert redis_replica.plan(replica_params(master_auth="pw"), r, 0, "pw", None)[0] == []


def test_replica_masterauth_is_masked():
    r = facts(REPLICA_INFO, "10.0.2.1:6379")
    argvs, texts, changed = redis_replica.plan(replica_params(master_auth="new"), r, 0, "old", None)
    assert changed and argvs == [["CONFIG", "SET", "masterauth", "new"]]
    assert texts == ["CONFIG SET masterauth ********"]


def test_master_with_keys_is_not_discarded():
    m = facts(MASTER_INFO, "10.0.1.1:6379")
    p = replica_params(replica_of=dict(R_PEER))
    with pytest.raises(_redis.RedisModuleError, match="holding 5 keys"):
        redis_replica.plan(p, m, 5, None, None)
    argvs = redis_replica.plan(dict(p, discard_data=True), m, 5, None, None)[0]
    assert argvs == [["REPLICAOF", "10.0.2.1", "6379"]]


def test_master_role():
    r = facts(REPLICA_INFO, "10.0.2.1:6379")
    assert redis_replica.plan(replica_params(role="master"), r, 0, None, None)[0] == \
        [["REPLICAOF", "NO", "ONE"]]
    m = facts(MASTER_INFO, "10.0.1.1:6379")
    assert redis_replica.plan(replica_params(role="master"), m, 0, None, None)[0] == []


# redis_conn filter ---------------------------------------------------------------------------------

def test_redis_conn():
    host = {"inventory_hostname": "redis-us-west", "failsafe_redis_host": "127.0.2.1",
            "failsafe_redis_port": 16379, "failsafe_redis_password": "pw",
            "failsafe_redis_user": ""}
    assert redis_conn(host) == {"host": "127.0.2.1", "port": 16379, "password": "pw"}
    assert redis_conn(host, sentinel=True) == {"host": "127.0.2.1", "port": 16379}


def test_redis_conn_without_host():
    from ansible.errors import AnsibleFilterError

    with pytest.raises(AnsibleFilterError, match="redis-x has no failsafe_redis_host"):
        redis_conn({"inventory_hostname": "redis-x"})


def test_quorum_needs_a_majority_of_the_sentinels_to_answer():
    """One Sentinel that answers CKQUORUM OK (its peers not yet flagged down) is no quorum when
    two of three do not answer us."""
    from ansible_collections.failsafe.datastores.plugins.module_utils._redis import summarise_sentinels

    def view(reachable):
        return dict(reachable=reachable, master="127.0.1.1:16379" if reachable else None,
                    quorum_ok=True if reachable else None, failover_in_progress=False)

    assert summarise_sentinels([view(True), view(False), view(False)])["quorum_ok"] is False
    assert summarise_sentinels([view(True), view(True), view(False)])["quorum_ok"] is True
