"""postgresql_setting: max_connections raised on the lab's standby, then its primary, with the
restart it needs; four steps each, the value in force and the restart read back independently."""

from __future__ import annotations

from lab import postgresql as lab_pg

MODULE = "postgresql_setting"


def max_connections(pair, node) -> int:
    return int(pair.scalar(node, "SHOW max_connections"))


def started_at(pair, node):
    return pair.scalar(node, "SELECT pg_postmaster_start_time()")


def args(node, value, **extra):
    return dict(node=node.peer(log_file=str(node.log_file)), name="max_connections",
                value=str(value), restart=True, data_dir=str(node.data_dir),
                config_dir=str(node.config_dir), **extra)


def test_setting_refuses_a_bad_value_and_changes_nothing(pg_pair, run_module):
    node = pg_pair.east
    before = started_at(pg_pair, node)
    for value, words in (("lots", "must be an integer"),):
        result = run_module(MODULE, args(node, value))
        assert result.failed
        assert words in result.msg and "Nothing was changed" in result.msg
    unknown = run_module(MODULE, dict(args(node, 1), name="max_conections"))
    assert unknown.failed and "has no setting 'max_conections'" in unknown.msg
    assert max_connections(pg_pair, node) == lab_pg.MAX_CONNECTIONS
    assert started_at(pg_pair, node) == before


def test_raise_max_connections_standby_then_primary_four_steps(pg_pair, run_module):
    wanted = lab_pg.MAX_CONNECTIONS + 10
    for node in (pg_pair.west, pg_pair.east):  # a standby's value must be >= its primary's
        before_start = started_at(pg_pair, node)
        check = run_module(MODULE, args(node, wanted), check=True, diff=True)
        assert not check.failed, check.msg
        assert check["changed"] is True and check["restarted"] is True
        assert check["before"] == str(lab_pg.MAX_CONNECTIONS) and check["after"] == str(wanted)
        assert check["statements"][0] == f"ALTER SYSTEM SET max_connections = '{wanted}'"
        assert check["diff"] == {"before": {"value": "50"}, "after": {"value": str(wanted)}}
        assert max_connections(pg_pair, node) == lab_pg.MAX_CONNECTIONS
        assert started_at(pg_pair, node) == before_start, "check mode restarted the node"
        assert pg_pair.scalar(node, "SELECT count(*) FROM pg_file_settings WHERE "
                                    "name = 'max_connections' AND sourcefile LIKE "
                                    "'%%postgresql.auto.conf'") == 0, "check mode wrote"

        real = run_module(MODULE, args(node, wanted))
        assert not real.failed, real.msg
        assert real["changed"] is True and real["restarted"] is True
        assert real["after"] == str(wanted) and real["pending_restart"] is False
        assert set(real["timings"]) >= {"configure", "restart", "ready", "total"}
        assert max_connections(pg_pair, node) == wanted
        assert started_at(pg_pair, node) > before_start, "the node was not restarted"

        restarted_at = started_at(pg_pair, node)
        for check_mode in (True, False):
            again = run_module(MODULE, args(node, wanted), check=check_mode)
            assert not again.failed, again.msg
            assert again["changed"] is False and again["restarted"] is False
            assert again["statements"] == []
        assert started_at(pg_pair, node) == restarted_at

    # Replication works after both restarts.
    assert pg_pair.in_recovery(pg_pair.west)
    row = pg_pair.insert(pg_pair.east, "after raising max_connections")
    assert pg_pair.wait_row(pg_pair.west, row, timeout=30)
    assert pg_pair.receiver(pg_pair.west)["status"] == "streaming"
