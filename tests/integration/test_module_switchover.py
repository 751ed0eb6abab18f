"""postgresql_switchover: four steps, refusals that change nothing, zero loss under load."""

from __future__ import annotations

import json
import time

import pytest
from during_run import WhenThen, assert_no_traceback, fast_shutdown

from lab.postgresql import ADMIN_PASSWORD, ADMIN_USER
from lab.writer import Writer

MODULE = "postgresql_switchover"


def switch_args(pair, **extra):
    args = dict(primary=pair.east.peer(), standby=pair.west.peer())
    args.update(extra)
    return args


def assert_untouched(pair):
    """Nothing changed: us-east writable primary, us-west standby streaming from it."""
    assert pair.in_recovery(pair.east) is False
    assert pair.read_only(pair.east) is False
    assert pair.insert(pair.east, "still writable") > 0
    assert pair.in_recovery(pair.west) is True


def test_switchover_four_steps(pg_pair, run_module):
    east, west = pg_pair.east, pg_pair.west
    marker = pg_pair.insert(east, "before switchover")
    # A standby cloned from a fenced primary inherits the fence: the switchover must shed it.
    pg_pair.fence(west)
    args = switch_args(pg_pair)

    check = run_module(MODULE, args, check=True, diff=True)
    assert not check.failed, check.msg
    assert check["changed"] is True and check["switched"] is True
    assert check["already_switched"] is False
    assert len(check["steps"]) >= 4 and any("promote" in s for s in check["steps"])
    assert check["diff"] == {"before": {"primary": east.address},
                             "after": {"primary": west.address}}
    assert isinstance(check["lag_bytes_before"], int)
    assert check["timings"]["write_unavailable"] is None
    assert pg_pair.in_recovery(west) is True, "check mode promoted"
    assert pg_pair.read_only(east) is False, "check mode fenced"

    real = run_module(MODULE, args, diff=True)
    assert not real.failed, real.msg
    assert real["changed"] is True and real["switched"] is True
    assert real["old_primary"]["read_only"] is True and real["old_primary"]["final_lsn"]
    assert real["new_primary"]["timeline"] == 2
    assert real["new_primary"]["promoted_at_lsn"]
    assert real["unfenced"] is True
    outage = real["timings"]["write_unavailable"]
    assert isinstance(outage, float) and 0 < outage < 30, real["timings"]
    for key in ("fence", "terminate", "catchup", "promote", "writable", "checkpoint", "total"):
        assert isinstance(real["timings"][key], float), real["timings"]

    check2 = run_module(MODULE, args, check=True, diff=True)
    assert not check2.failed, check2.msg
    assert check2["changed"] is False and check2["already_switched"] is True
    assert check2["switched"] is False
    assert check2["diff"]["before"] == check2["diff"]["after"] == {"primary": west.address}
    real2 = run_module(MODULE, args)
    assert not real2.failed, real2.msg
    assert real2["changed"] is False and real2["already_switched"] is True

    # Independent verification.
    assert pg_pair.in_recovery(west) is False
    assert pg_pair.read_only(west) is False
    assert pg_pair.insert(west, "on the new primary") > 0
    assert pg_pair.scalar(west, "SELECT count(*) FROM failsafe_it WHERE id = %s", (marker,)) == 1
    assert pg_pair.read_only(east) is True
    assert pg_pair.scalar(east, "SHOW default_transaction_read_only") == "on"


def test_refuses_paused_replay_before_fencing(pg_pair, run_module):
    """Also stands for the catch-up timeout being unreachable with paused replay: the paused
    check refuses first (see test_catchup_timeout_unfences_primary for the timeout itself)."""
    pg_pair.pause_replay()
    try:
        result = run_module(MODULE, switch_args(pg_pair, catchup_timeout=0.2))
        assert result.failed
        assert "paused" in result.msg and "Nothing was changed" in result.msg
        assert result["switched"] is False and result["changed"] is False
        assert result["old_primary"].get("final_lsn") is None
        assert_untouched(pg_pair)
    finally:
        pg_pair.resume_replay()


def test_refuses_lag_above_max_lag_bytes(pg_pair, run_module):
    pg_pair.hold_back_replay()
    try:
        result = run_module(MODULE, switch_args(pg_pair, max_lag_bytes=0))
        assert result.failed
        assert "max_lag_bytes=0" in result.msg and "Nothing was changed" in result.msg
        assert result["old_primary"].get("final_lsn") is None
        assert_untouched(pg_pair)
    finally:
        pg_pair.release_replay()


def test_refuses_standby_not_streaming(pg_pair, run_module):
    west = pg_pair.west
    conninfo = pg_pair.scalar(west, "SHOW primary_conninfo")
    pg_pair.set_setting(west, "primary_conninfo", "")
    deadline = time.monotonic() + 15
    while pg_pair.receiver(west) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pg_pair.receiver(west) is None, "the WAL receiver did not stop"
    try:
        result = run_module(MODULE, switch_args(pg_pair))
        assert result.failed
        assert "not streaming" in result.msg
        assert result["switched"] is False
        assert_untouched(pg_pair)
    finally:
        pg_pair.set_setting(west, "primary_conninfo", conninfo)
    west.component.wait_streaming()


@pytest.mark.parametrize("side", ["primary", "standby"])
def test_refuses_wrong_password(pg_pair, run_module, side):
    wrong = "wrong-Pa55-" + side
    args = switch_args(pg_pair)
    args[side]["password"] = wrong
    result = run_module(MODULE, args)
    assert result.failed
    assert "authentication failed" in result.msg
    node = pg_pair.east if side == "primary" else pg_pair.west
    assert node.address in result.msg
    assert wrong not in json.dumps(dict(result))
    assert ADMIN_PASSWORD not in json.dumps(dict(result))
    assert result["switched"] is False
    assert_untouched(pg_pair)


def test_swapped_roles_count_as_already_switched(pg_pair, run_module):
    """primary= names the standby and standby= the primary: the end state of that switchover
    already holds (no split brain), so it is an idempotent no-op that touches nothing."""
    result = run_module(MODULE, dict(primary=pg_pair.west.peer(), standby=pg_pair.east.peer()),
                        diff=True)
    assert not result.failed, result.msg
    assert result["changed"] is False and result["already_switched"] is True
    assert result["switched"] is False
    assert_untouched(pg_pair)


def test_catchup_timeout_unfences_primary(pg_pair, run_module):
    """The standby passes every check but cannot replay the final commit in time.

    recovery_min_apply_delay holds back commit records only, so the lag check passes (a few
    hundred bytes) and replay is not paused; the fenced primary's final flush LSN lies past a
    delayed commit, so catch-up times out and the module must unfence the primary."""
    east, west = pg_pair.east, pg_pair.west
    held = pg_pair.hold_back_replay()
    try:
        result = run_module(MODULE, switch_args(pg_pair, catchup_timeout=0.5))
        assert result.failed
        assert "catchup_timeout" in result.msg and "unfenced" in result.msg
        assert "nothing was lost" in result.msg
        assert result["old_primary"]["final_lsn"]
        assert result["timings"]["catchup"] is None
        # The primary takes writes again; the standby was not promoted.
        assert pg_pair.read_only(east) is False
        assert pg_pair.insert(east, "after the aborted switchover") > 0
        assert pg_pair.in_recovery(west) is True
    finally:
        pg_pair.release_replay()
    assert pg_pair.wait_row(west, held)


def test_standby_lost_during_catchup_leaves_a_writable_primary(pg_pair, run_module):
    """The reported incident: the standby was stopped while the fenced primary waited for it;
    the run said only 'terminating connection due to administrator command' and left the old
    primary read-only. Now the fence is lifted before the module fails, and it says so."""
    east, west = pg_pair.east, pg_pair.west
    pg_pair.hold_back_replay()
    stopper = WhenThen(lambda: pg_pair.read_only(east), lambda: fast_shutdown(west))
    stopper.start()
    try:
        result = run_module(MODULE, switch_args(pg_pair, catchup_timeout=30))
    finally:
        stopper.join(5)
    assert stopper.fired and stopper.error is None
    assert result.failed
    assert result.msg.startswith("waiting for the standby to replay the primary's final WAL")
    assert "on %s failed" % west.address in result.msg
    assert result.msg.endswith("The primary %s was unfenced and takes writes again; nothing was "
                               "promoted and nothing was lost." % east.address)
    assert result["steps"][-1] == "lifted the fence on %s again" % east.address
    assert result["timings"]["write_unavailable"] is None
    assert_no_traceback(result)
    # Independent view: the old primary takes writes; nothing was promoted.
    assert pg_pair.read_only(east) is False
    assert pg_pair.insert(east, "after the standby was lost") > 0
    assert pg_pair.in_recovery(east) is False


def test_a_primary_found_fenced_reports_the_outage_before_the_run(pg_pair, run_module):
    """A previous run was killed after the fence: writes were unavailable before this run."""
    east = pg_pair.east
    pg_pair.fence(east)
    time.sleep(1.5)
    result = run_module(MODULE, switch_args(pg_pair))
    assert not result.failed, result.msg
    assert result["switched"] is True
    old = result["old_primary"]
    assert old["fenced_at_start"] is True and old["fenced_since"]
    assert old["fenced_seconds_before_run"] >= 0.5
    assert "Writes were already unavailable when this run started" in result["msg"]
    assert old["fenced_since"] in result["msg"]
    # The module's own outage is still its own.
    assert result["timings"]["write_unavailable"] < old["fenced_seconds_before_run"] + 30


def test_zero_loss_under_load(pg_pair, run_module):
    east, west = pg_pair.east, pg_pair.west
    writer = Writer([(east.host, east.port), (west.host, west.port)], ADMIN_USER,
                    ADMIN_PASSWORD, run_id=f"it-{time.time_ns()}")
    writer.start()
    try:
        time.sleep(0.5)
        before = len(writer.acked)
        result = run_module(MODULE, switch_args(pg_pair))
        assert not result.failed, result.msg
        assert result["switched"] is True
        # Keep writing until the writer has committed on the new primary.
        deadline = time.monotonic() + 10
        after_switch = len(writer.acked)
        while len(writer.acked) < after_switch + 50 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        writer.stop()
    report = writer.verify()
    assert before > 0
    assert report.acknowledged > 0
    assert report.lost == 0, report.as_dict()
    assert len(writer.acked) >= after_switch + 50, "the writer did not resume on us-west"
    # The outage the writer saw is bounded by the module's own measure plus reconnecting.
    assert report.max_gap_seconds < result["timings"]["write_unavailable"] + 5, report.as_dict()
    # verify() read from whichever server accepts writes: that is us-west now.
    assert pg_pair.in_recovery(west) is False and pg_pair.read_only(east) is True
