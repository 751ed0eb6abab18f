"""postgresql_promote: refusals change nothing; the happy path in four steps; idempotence."""

from __future__ import annotations

import json

import pytest

MODULE = "postgresql_promote"


def assert_still_standby(pair):
    """Nothing changed: us-west is in recovery and still streams from us-east."""
    assert pair.in_recovery(pair.west) is True
    receiver = pair.receiver(pair.west)
    assert receiver and receiver["sender_host"] == pair.east.host


def test_refuses_while_primary_writable(pg_pair, run_module):
    for check in (True, False):
        result = run_module(MODULE, dict(node=pg_pair.west.peer(), primary=pg_pair.east.peer()),
                            check=check)
        assert result.failed
        assert "split brain" in result.msg and "Nothing was changed" in result.msg
        assert result["promoted"] is False and result["changed"] is False
        assert result["old_primary"]["reachable"] is True
        assert_still_standby(pg_pair)
    assert pg_pair.read_only(pg_pair.east) is False


def test_refuses_without_primary_option(pg_pair, run_module):
    result = run_module(MODULE, dict(node=pg_pair.west.peer()))
    assert result.failed
    assert "no primary connection was given" in result.msg
    assert_still_standby(pg_pair)


def test_refuses_lagging_standby(pg_pair, run_module):
    pg_pair.pause_replay()
    pg_pair.query(pg_pair.east, "INSERT INTO failsafe_it (note) "
                                "SELECT 'lag ' || g FROM generate_series(1, 200) AS g")
    pg_pair.fence(pg_pair.east)
    try:
        result = run_module(MODULE, dict(node=pg_pair.west.peer(), primary=pg_pair.east.peer(),
                                         max_lag_bytes=0, catchup_timeout=0.5))
        assert result.failed
        assert "paused" in result.msg
        assert "Nothing was changed" in result.msg
        assert "max_lag_bytes=0" in result.msg
        assert result["promoted"] is False and result["changed"] is False
        assert pg_pair.in_recovery(pg_pair.west) is True
        assert pg_pair.scalar(pg_pair.west, "SELECT pg_get_wal_replay_pause_state()") == "paused"
    finally:
        pg_pair.resume_replay()
        pg_pair.unfence(pg_pair.east)
    assert_still_standby(pg_pair)


def test_refuses_unreachable_primary_without_accept_data_loss(pg_pair, run_module, closed_port):
    port = closed_port(pg_pair.east.host)
    result = run_module(MODULE, dict(node=pg_pair.west.peer(),
                                     primary=pg_pair.east.peer(port=port)))
    assert result.failed
    assert "unreachable" in result.msg and "accept_data_loss=true" in result.msg
    assert "Nothing was changed" in result.msg
    assert result["old_primary"]["reachable"] is False
    assert result["promoted"] is False
    assert_still_standby(pg_pair)


def test_refuses_wrong_primary_password(pg_pair, run_module):
    wrong = "not-the-Pa55word"
    # Even with accept_data_loss: a wrong password is not an unreachable primary.
    result = run_module(MODULE, dict(node=pg_pair.west.peer(),
                                     primary=pg_pair.east.peer(password=wrong),
                                     accept_data_loss=True))
    assert result.failed
    assert "authentication failed" in result.msg
    assert wrong not in json.dumps(dict(result))
    assert result["promoted"] is False
    assert_still_standby(pg_pair)


def test_promote_four_steps(pg_pair, run_module):
    east, west = pg_pair.east, pg_pair.west
    marker = pg_pair.insert(east, "before promotion")
    pg_pair.fence(east)
    # A standby cloned from a fenced primary inherits the fence: the new primary must shed it.
    pg_pair.fence(west)
    args = dict(node=west.peer(), primary=east.peer())

    check = run_module(MODULE, args, check=True, diff=True)
    assert not check.failed, check.msg
    assert check["changed"] is True and check["promoted"] is True
    assert check["diff"] == {"before": {"role": "standby"}, "after": {"role": "primary"}}
    assert check["lag_bytes"] == 0
    assert pg_pair.in_recovery(west) is True, "check mode promoted"

    real = run_module(MODULE, args, diff=True)
    assert not real.failed, real.msg
    assert real["changed"] is True and real["promoted"] is True
    assert real["role"] == "primary"
    assert real["timeline"] == 2
    assert real["lag_bytes"] == 0 and real["data_loss"]["bytes"] == 0
    assert real["unfenced"] is True
    assert real["old_primary"]["read_only"] is True
    assert real["promoted_at_lsn"]
    timings = real["timings"]
    for key in ("catchup", "promote", "writable", "checkpoint", "total"):
        assert isinstance(timings[key], float) and timings[key] >= 0, timings
    assert 0 < timings["promote"] < 30

    check2 = run_module(MODULE, args, check=True)
    assert not check2.failed, check2.msg
    assert check2["changed"] is False and check2["promoted"] is False
    assert check2["role"] == "primary"
    real2 = run_module(MODULE, args)
    assert not real2.failed, real2.msg
    assert real2["changed"] is False and real2["promoted"] is False

    # Independent verification: out of recovery, not fenced, writable, nothing lost.
    assert pg_pair.in_recovery(west) is False
    assert pg_pair.read_only(west) is False
    assert pg_pair.insert(west, "written on the new primary") > 0
    assert pg_pair.scalar(west, "SELECT count(*) FROM failsafe_it WHERE id = %s", (marker,)) == 1
    # The old primary is untouched (still fenced, still a primary on timeline 1).
    assert pg_pair.in_recovery(east) is False and pg_pair.read_only(east) is True

    # Someone lifts the old primary's fence: two writable primaries. Promote must not report
    # success beside a live twin.
    pg_pair.unfence(east)
    twin = run_module(MODULE, args)
    assert twin.failed
    assert "split brain" in twin.msg and "already a primary" in twin.msg


def test_already_primary_is_unchanged(pg_pair, run_module):
    """Promoting the server that already is the primary: ok, changed=false, nothing touched."""
    result = run_module(MODULE, dict(node=pg_pair.east.peer(), primary=pg_pair.west.peer()),
                        diff=True)
    assert not result.failed, result.msg
    assert result["changed"] is False and result["promoted"] is False
    assert result["role"] == "primary"
    assert result["timeline"] == 1
    assert result["old_primary"]["role"] == "standby"
    assert result["diff"]["before"] == result["diff"]["after"]
    assert pg_pair.in_recovery(pg_pair.east) is False
    assert_still_standby(pg_pair)


def test_accept_data_loss_with_unreachable_primary(pg_pair, run_module, closed_port):
    port = closed_port(pg_pair.east.host)
    args = dict(node=pg_pair.west.peer(), primary=pg_pair.east.peer(port=port),
                accept_data_loss=True)
    check = run_module(MODULE, args, check=True)
    assert not check.failed, check.msg
    assert check["changed"] is True
    assert pg_pair.in_recovery(pg_pair.west) is True
    real = run_module(MODULE, args)
    assert not real.failed, real.msg
    assert real["changed"] is True and real["role"] == "primary"
    loss = real["data_loss"]
    assert loss["bytes"] is None and loss["primary_reachable"] is False
    assert loss["received_lsn"]
    assert isinstance(loss["seconds_since_last_contact"], float)
    assert pg_pair.in_recovery(pg_pair.west) is False
    assert pg_pair.insert(pg_pair.west, "after emergency promotion") > 0


@pytest.mark.parametrize("max_lag", [-1])
def test_negative_max_lag_is_rejected(pg_pair, run_module, max_lag):
    result = run_module(MODULE, dict(node=pg_pair.west.peer(), primary=pg_pair.east.peer(),
                                     max_lag_bytes=max_lag))
    assert result.failed and "max_lag_bytes must be 0 or more" in result.msg
    assert_still_standby(pg_pair)
