"""postgresql_failover: refusals change nothing; the emergency path in four steps."""

from __future__ import annotations

MODULE = "postgresql_failover"


def nodes(pair, **east_overrides):
    """Both nodes, each with its log file (the loss estimate reads the standby's)."""
    east = dict(pair.east.peer(log_file=str(pair.east.log_file)), name="pg-us-east")
    east.update(east_overrides)
    return [east, dict(pair.west.peer(log_file=str(pair.west.log_file)), name="pg-us-west")]


def assert_still_standby(pair):
    assert pair.in_recovery(pair.west) is True


def test_refuses_while_a_primary_is_writable(pg_pair, run_module):
    for check in (True, False):
        result = run_module(MODULE, dict(nodes=nodes(pg_pair), candidates=["pg-us-west"]),
                            check=check)
        assert result.failed
        assert "pg-us-east answers as a writable primary" in result.msg
        assert "Nothing was changed" in result.msg
        assert result["promoted"] is False
        assert_still_standby(pg_pair)
    pg_pair.insert(pg_pair.east, "still the primary")


def test_a_live_server_refusing_us_is_not_taken_for_a_dead_one(pg_pair, run_module):
    pg_pair.crash(pg_pair.east)
    wrong = nodes(pg_pair)
    wrong[1]["password"] = "not-the-password"
    result = run_module(MODULE, dict(nodes=wrong, candidates=["pg-us-west"]))
    assert result.failed
    assert "authentication failed" in result.msg and "not-the-password" not in result.stdout
    assert_still_standby(pg_pair)


def test_refuses_beyond_the_recovery_point_objective(pg_pair, run_module):
    pg_pair.crash(pg_pair.east)
    result = run_module(MODULE, dict(nodes=nodes(pg_pair), candidates=["pg-us-west"],
                                     max_data_loss_seconds=0.000001))
    assert result.failed
    assert "max_data_loss_seconds" in result.msg and "Nothing was changed" in result.msg
    assert result["data_loss"]["window_seconds_at_most"] is not None
    assert_still_standby(pg_pair)


def test_unknown_candidate_is_an_input_error(pg_pair, run_module):
    result = run_module(MODULE, dict(nodes=nodes(pg_pair), candidates=["pg-nowhere"]))
    assert result.failed and "pg-nowhere" in result.msg
    assert_still_standby(pg_pair)


def test_check_real_check_real(pg_pair, run_module):
    row = pg_pair.insert(pg_pair.east, "before the crash")
    pg_pair.wait_replayed()
    pg_pair.crash(pg_pair.east)
    args = dict(nodes=nodes(pg_pair), candidates=["pg-us-west"], max_data_loss_seconds=3600)

    planned = run_module(MODULE, args, check=True, diff=True)
    assert not planned.failed, planned.msg
    assert planned.changed and planned["promoted"] and planned["target"] == "pg-us-west"
    assert planned["diff"]["after"]["writable_primary"] == "pg-us-west"
    assert_still_standby(pg_pair)

    done = run_module(MODULE, args)
    assert not done.failed, done.msg
    assert done.changed and done["promoted"] and done["timeline"] == 2
    assert done["old_primaries"] == ["pg-us-east"]
    assert done["data_loss"]["bytes"] is None and done["data_loss"]["received_lsn"]
    assert done["timings"]["writable"] is not None
    # Independent view: us-west takes writes and kept the row written before the crash.
    assert pg_pair.in_recovery(pg_pair.west) is False
    pg_pair.insert(pg_pair.west, "after failover")
    assert pg_pair.scalar(pg_pair.west, "SELECT count(*) FROM failsafe_it WHERE id = %s",
                          (row,)) == 1

    for check in (True, False):
        again = run_module(MODULE, args, check=check)
        assert not again.failed, again.msg
        assert not again.changed and again["already_failed_over"]
        assert again["target"] == "pg-us-west"
