"""redis_replica: the four-step pattern, verified with an independent client; refusals."""

from __future__ import annotations

import pytest

# The Redis components need the generic lab (lab.core.Component with ports and packages) and
# its engine plugins (tests/integration/engines/redis.py); without them, skip with the reason.
pytest.importorskip("lab.sentinel", reason="the lab has no Redis components (generic lab needed)",
                    exc_type=ImportError)


@pytest.fixture
def no_sentinels(redis_pair):
    """Sentinels would turn a promoted replica back: these tests run without them."""
    redis_pair.stop_sentinels([s.name for s in redis_pair.sentinels])
    return redis_pair


def test_promote_and_rejoin_four_steps(no_sentinels, run_module):
    pair = no_sentinels
    args = pair.west.login(role="master")
    res = run_module("redis_replica", args, check=True, diff=True)
    assert res.changed and res["commands"] == ["REPLICAOF NO ONE"]
    assert res["diff"]["before"]["role"] == "replica" and res["diff"]["after"]["role"] == "master"
    assert pair.role(pair.west) == "slave"  # check mode changed nothing

    res = run_module("redis_replica", args)
    assert res.changed and res["persisted"] is True
    assert pair.role(pair.west) == "master"
    assert "replicaof" not in pair.west.component.config_file.read_text()
    for check in (True, False):
        res = run_module("redis_replica", args, check=check)
        assert not res.failed and not res.changed, res

    pair.write(pair.west, "failsafe:west-only", "1")
    args = pair.west.login(replica_of=pair.east.peer(), master_auth=pair.east.password,
                           discard_data=True)
    res = run_module("redis_replica", args, check=True)
    assert res.changed and res["commands"] == ["REPLICAOF %s %s" % (pair.east.host, pair.east.port)]
    assert pair.role(pair.west) == "master"

    res = run_module("redis_replica", args)
    assert res.changed and res["link_status"] == "up", res
    assert pair.master_link(pair.west) == (pair.east.host, pair.east.port, "up")
    assert pair.read(pair.west, "failsafe:west-only") is None  # replaced by the master's data
    assert "replicaof %s %s" % (pair.east.host, pair.east.port) in \
        pair.west.component.config_file.read_text()
    for check in (True, False):
        res = run_module("redis_replica", args, check=check)
        assert not res.failed and not res.changed, res


def test_a_master_with_keys_is_not_discarded(no_sentinels, run_module):
    pair = no_sentinels
    pair.write(pair.east, "failsafe:keep", "1")
    res = run_module("redis_replica", pair.east.login(replica_of=pair.west.peer()))
    assert res.failed and "holding" in res.msg and "Nothing was changed" in res.msg
    assert pair.role(pair.east) == "master" and pair.read(pair.east, "failsafe:keep") == "1"


def test_replicating_from_itself_is_refused(no_sentinels, run_module):
    pair = no_sentinels
    res = run_module("redis_replica", pair.west.login(replica_of=pair.west.peer()))
    assert res.failed and "cannot replicate from itself" in res.msg
    assert pair.master_link(pair.west) == (pair.east.host, pair.east.port, "up")


def test_masterauth_is_never_shown(no_sentinels, run_module, lab_secrets):
    pair = no_sentinels
    res = run_module("redis_replica", pair.west.login(replica_of=pair.east.peer(),
                                                      master_auth="another-secret"),
                     check=True, diff=True, verbosity=3)
    assert res.changed and "CONFIG SET masterauth ********" in res["commands"]
    assert "another-secret" not in res.stdout
    for secret in lab_secrets:
        assert secret not in res.stdout
