"""postgresql_failover: refusals change nothing; the emergency path in four steps; the loss
estimate from the standby's own log; what a healthy or split cluster is called."""

from __future__ import annotations

import time

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
        assert again["msg"].startswith("Already failed over: pg-us-west is the only writable "
                                       "primary (unreachable: pg-us-east)")
        # Nothing was measured by this run: unknown, never 0.
        assert again["data_loss"]["window_seconds_at_most"] is None
        assert again["data_loss"]["bytes"] is None
        assert again["data_loss"]["basis"] == "not measured"


def test_the_estimate_comes_from_the_standbys_log_and_does_not_grow_while_waiting(pg_pair,
                                                                                  run_module):
    """The reported case: minutes after a crash, a budget smaller than the wait must still pass
    when the standby had received everything before it lost the primary."""
    pg_pair.insert(pg_pair.east, "just before the crash")
    pg_pair.wait_replayed()
    pg_pair.crash(pg_pair.east)
    time.sleep(3)
    result = run_module(MODULE, dict(nodes=nodes(pg_pair), candidates=["pg-us-west"],
                                     max_data_loss_seconds=2), check=True)
    assert not result.failed, result.msg
    loss = result["data_loss"]
    assert loss["basis"] == "connection closed", loss
    assert loss["connection_lost_at"] and loss["last_contact"] and loss["last_replayed_commit"]
    assert "could not receive data from WAL stream" in loss["connection_lost_line"]
    assert 0 <= loss["window_seconds_at_most"] < 2, loss
    assert loss["log_file"] == str(pg_pair.west.log_file) and loss["log_note"] is None
    assert "closed the replication connection" in loss["meaning"]
    assert loss["meaning"] in result["msg"]
    assert_still_standby(pg_pair)


def test_without_a_budget_or_accept_data_loss_nothing_is_promoted(pg_pair, run_module):
    pg_pair.crash(pg_pair.east)
    for check in (True, False):
        result = run_module(MODULE, dict(nodes=nodes(pg_pair), candidates=["pg-us-west"]),
                            check=check)
        assert result.failed
        assert "no data-loss budget" in result.msg and "Nothing was changed" in result.msg
        assert "max_data_loss_seconds" in result.msg and "accept_data_loss=true" in result.msg
        assert "postgresql_failover_max_data_loss_seconds" in result.msg
        assert result["promoted"] is False and result["data_loss"]["basis"] == "connection closed"
        assert_still_standby(pg_pair)
    accepted = run_module(MODULE, dict(nodes=nodes(pg_pair), candidates=["pg-us-west"],
                                       accept_data_loss=True))
    assert not accepted.failed, accepted.msg
    assert accepted["promoted"] is True and pg_pair.in_recovery(pg_pair.west) is False


def test_a_healthy_cluster_needs_no_failover(pg_pair, run_module):
    result = run_module(MODULE, dict(nodes=nodes(pg_pair), candidates=["pg-us-east"]))
    assert not result.failed, result.msg
    assert not result.changed and not result["promoted"]
    assert result["msg"] == ("pg-us-east is the writable primary and every other node is a "
                             "standby: nothing needs failing over.")
    assert "Already failed over" not in result["msg"]
    assert result["data_loss"]["window_seconds_at_most"] is None


def test_two_writable_primaries_are_called_a_split_brain_now(pg_pair, run_module):
    pg_pair.query(pg_pair.west, "SELECT pg_promote(wait => true)")
    result = run_module(MODULE, dict(nodes=nodes(pg_pair), candidates=["pg-us-west"],
                                     accept_data_loss=True))
    assert result.failed
    assert result.msg.startswith("split brain now: pg-us-east and pg-us-west are both writable "
                                 "primaries. Nothing was changed.")
    assert "would give" not in result.msg
