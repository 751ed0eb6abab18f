"""postgresql_standby: rejoin the old primary as a standby of the new one (rewind), for real."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from lab.postgresql import REPLICATION_PASSWORD, REPLICATION_USER

MODULE = "postgresql_standby"


def rejoin_args(pair, **extra):
    """Make us-east a standby of us-west (the lab's files for us-east, slot us_east)."""
    east, west = pair.east, pair.west
    args = dict(
        node=east.peer(log_file=str(east.log_file)),
        data_dir=str(east.data_dir),
        config_dir=str(east.config_dir),
        primary=west.peer(),
        replication_user=REPLICATION_USER,
        replication_password=REPLICATION_PASSWORD,
        slot_name=east.slot_name,
        wait_timeout=30,
    )
    args.update(extra)
    return args


def assert_streams_from_west(pair):
    east, west = pair.east, pair.west
    assert pair.in_recovery(east) is True
    receiver = pair.receiver(east)
    assert receiver is not None
    assert receiver["status"] == "streaming"
    assert receiver["sender_host"] == west.host  # 127.0.4.1 in the default test lab
    assert receiver["sender_port"] == west.port
    assert receiver["slot_name"] == east.slot_name
    row_id = pair.insert(west, "replicated to the rejoined node")
    assert pair.wait_row(east, row_id, timeout=5), "row written on us-west never reached us-east"
    slot = pair.query(west, "SELECT active FROM pg_replication_slots WHERE slot_name = %s",
                      (east.slot_name,))
    assert slot and slot[0][0] is True


def test_rejoin_after_switchover_four_steps(pg_pair, run_module):
    east, west = pg_pair.east, pg_pair.west
    pg_pair.manual_switchover()
    pid_before = east.postmaster_pid()
    args = rejoin_args(pg_pair)

    check = run_module(MODULE, args, check=True, diff=True)
    assert not check.failed, check.msg
    assert check["changed"] is True
    assert check["node"]["role"] == "primary" and check["node"]["read_only"] is True
    assert check["method"] == "rewind"
    assert check["msg"].startswith("Check mode: would make %s a standby of %s by rewind"
                                   % (east.address, west.address))
    assert "start the node" in check["steps"]
    assert check["diff"]["after"] == {"role": "standby", "upstream": west.address}
    assert "********" in check["primary_conninfo"]
    assert REPLICATION_PASSWORD not in json.dumps(dict(check))
    # Check mode touched nothing: same postmaster, still a (fenced) primary, no slot made.
    assert east.postmaster_pid() == pid_before
    assert pg_pair.in_recovery(east) is False
    assert not (east.data_dir / "standby.signal").exists()
    assert pg_pair.query(west, "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
                         (east.slot_name,)) == []

    real = run_module(MODULE, args, diff=True)
    assert not real.failed, real.msg
    assert real["changed"] is True
    # The old primary wrote WAL past the fork (its shutdown checkpoint): a real rewind.
    assert real["method"] == "rewind", real
    assert real["rewind_output"] and "Done!" in real["rewind_output"][-1]
    assert real["streaming"] is True
    assert "moved_aside" not in real
    # What the rewind discarded was kept and counted: only the shutdown checkpoint, no commit.
    assert real["rewind_dry_run"]["needed"] is True and real["rewind_dry_run"]["diverged_at"]
    discarded = real["discarded_wal"]
    assert discarded["from_lsn"] == real["rewind_dry_run"]["diverged_at"]
    assert discarded["committed_transactions"] == 0, discarded
    assert discarded["summary"] == "0 committed transactions: nothing was lost"
    kept = Path(discarded["kept_in"])
    assert kept.parent == east.data_dir.parent and kept.name.startswith("data.failsafe-discarded-wal-")
    assert len(list(kept.iterdir())) == discarded["files"] > 0
    assert REPLICATION_PASSWORD not in json.dumps(dict(real))
    assert isinstance(real["timings"]["total"], float)

    check2 = run_module(MODULE, args, check=True)
    assert not check2.failed, check2.msg
    assert check2["changed"] is False and check2["method"] == "none"
    real2 = run_module(MODULE, args)
    assert not real2.failed, real2.msg
    assert real2["changed"] is False and real2["method"] == "none"
    assert real2["streaming"] is True

    assert_streams_from_west(pg_pair)
    # The inherited fence was removed from the rejoined node's own configuration.
    auto_conf = (east.data_dir / "postgresql.auto.conf").read_text()
    assert "default_transaction_read_only" not in auto_conf
    assert REPLICATION_PASSWORD in auto_conf  # primary_conninfo needs it to stream


def test_refuses_running_writable_primary(pg_pair, run_module):
    east = pg_pair.east
    pg_pair.manual_switchover()
    pg_pair.unfence(east)  # two writable primaries: the old one took writes since
    pid_before = east.postmaster_pid()
    result = run_module(MODULE, rejoin_args(pg_pair))
    assert result.failed
    assert "writable primary" in result.msg and "Nothing was changed" in result.msg
    assert "force=true" in result.msg and "postgresql_rejoin_force=true" in result.msg
    assert east.postmaster_pid() == pid_before
    assert pg_pair.in_recovery(east) is False
    divergent = f"divergent write {time.time_ns()}"
    pg_pair.insert(east, divergent)
    assert not (east.data_dir / "standby.signal").exists()

    # force=true converts it anyway: the divergent write is discarded by the rewind.
    forced = run_module(MODULE, rejoin_args(pg_pair, force=True))
    assert not forced.failed, forced.msg
    assert forced["changed"] is True and forced["method"] == "rewind"
    assert forced["streaming"] is True
    # The divergent write was committed on the old timeline: counted, and its WAL kept.
    assert forced["discarded_wal"]["committed_transactions"] >= 1, forced["discarded_wal"]
    assert Path(forced["discarded_wal"]["kept_in"]).is_dir()
    assert_streams_from_west(pg_pair)
    # (ids are not unique across the two timelines: look the row up by its note)
    assert pg_pair.scalar(east, "SELECT count(*) FROM failsafe_it WHERE note = %s",
                          (divergent,)) == 0


def test_refuses_primary_that_is_a_standby(pg_pair, run_module):
    # Canonical pair: us-west is a standby, so it cannot be the primary to follow.
    result = run_module(MODULE, rejoin_args(pg_pair))
    assert result.failed
    assert "is in recovery, not a primary" in result.msg
    assert pg_pair.in_recovery(pg_pair.east) is False


def test_follower_already_streaming_is_unchanged(pg_pair, run_module):
    west, east = pg_pair.west, pg_pair.east
    args = dict(node=west.peer(log_file=str(west.log_file)), data_dir=str(west.data_dir),
                config_dir=str(west.config_dir), primary=east.peer(),
                replication_user=REPLICATION_USER,
                replication_password=REPLICATION_PASSWORD, slot_name=west.slot_name)
    pid_before = west.postmaster_pid()
    for check in (True, False):
        result = run_module(MODULE, args, check=check)
        assert not result.failed, result.msg
        assert result["changed"] is False and result["method"] == "none"
        assert result["streaming"] is True
    assert west.postmaster_pid() == pid_before


def test_emergency_rejoin_after_crash(pg_pair, run_module):
    east, west = pg_pair.east, pg_pair.west
    lost_candidate = pg_pair.insert(east, "written just before the crash")
    pg_pair.crash(east)
    assert east.postmaster_pid() is None

    promote = run_module("postgresql_promote",
                         dict(node=west.peer(), primary=east.peer(connect_timeout=2),
                              accept_data_loss=True))
    assert not promote.failed, promote.msg
    assert promote["promoted"] is True and promote["old_primary"]["reachable"] is False
    pg_pair.insert(west, "written on the new primary")

    args = rejoin_args(pg_pair)
    check = run_module(MODULE, args, check=True)
    assert not check.failed, check.msg
    assert check["changed"] is True and check["node"]["running"] is False
    assert check["node"]["clean_shutdown"] is False and check["method"] == "rewind"
    assert check["steps"][0] == "finish crash recovery in single-user mode (no network)"
    assert check["msg"].startswith("Check mode: would make")
    assert east.postmaster_pid() is None, "check mode started the crashed node"

    real = run_module(MODULE, args)
    assert not real.failed, real.msg
    assert real["changed"] is True
    assert real["method"] in ("rewind", "reconfigure"), real
    assert real["streaming"] is True

    again = run_module(MODULE, args)
    assert not again.failed, again.msg
    assert again["changed"] is False and again["method"] == "none"

    assert_streams_from_west(pg_pair)
    west_tli = int(pg_pair.scalar(west, "SELECT pg_walfile_name(pg_current_wal_lsn())")[:8], 16)
    assert west_tli == 2
    assert pg_pair.scalar(east, "SELECT received_tli FROM pg_stat_wal_receiver") == west_tli
    # Rows the standby had replayed before the crash survive on both.
    assert pg_pair.wait_row(east, lost_candidate, timeout=1) == \
        pg_pair.wait_row(west, lost_candidate, timeout=1)


def stop(node, timeout=30.0):
    """Fast shutdown (SIGINT to the postmaster), waiting until it has exited."""
    pid = node.postmaster_pid()
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while node.postmaster_pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert node.postmaster_pid() is None, f"{node.region} did not stop"


def test_a_stopped_node_is_planned_with_pg_rewind_dry_run(pg_pair, run_module):
    """Check mode on a stopped node asks pg_rewind --dry-run and reports that method, not a
    failure; the real run then does just that."""
    east, west = pg_pair.east, pg_pair.west
    pg_pair.manual_switchover()
    stop(east)
    args = rejoin_args(pg_pair)

    check = run_module(MODULE, args, check=True)
    assert not check.failed, check.msg
    assert check["node"]["running"] is False and check["node"]["clean_shutdown"] is True
    assert check["rewind_dry_run"]["needed"] is True and check["rewind_dry_run"]["rc"] == 0
    assert check["method"] == "rewind"
    assert "pg_rewind --dry-run: the servers diverged at %s" % (
        check["rewind_dry_run"]["diverged_at"]) in check["msg"]
    assert "stop the node" not in check["steps"]
    assert east.postmaster_pid() is None, "check mode started the node"
    assert not list(east.data_dir.parent.glob("data.failsafe-*")), "check mode kept WAL"

    real = run_module(MODULE, args)
    assert not real.failed, real.msg
    assert real["method"] == "rewind" and real["streaming"] is True
    assert real["discarded_wal"]["committed_transactions"] == 0
    assert_streams_from_west(pg_pair)
