"""The lab's application (a writer per region under supervisord) and the app_traffic role.

Every state is verified independently of the role: supervisord's XML-RPC interface for the
program's state, a plain HTTP GET of /health, the journals against PostgreSQL and Redis.
"""

from __future__ import annotations

import pytest

from lab import app as lab_app

PLAYBOOK = "playbooks/app_traffic.yml"


def role_result(runner) -> dict:
    """app_traffic_result as the role's last task showed it."""
    for event in reversed(list(runner.events)):
        res = event.get("event_data", {}).get("res", {})
        if event.get("event") == "runner_on_ok" and "app_traffic_result" in res:
            return res["app_traffic_result"]
    raise AssertionError(f"no app_traffic_result (status {runner.status}):\n{runner.stdout_text}")


def traffic(run_playbook, action, region=None, check=False):
    extravars = {"app_traffic_action": action}
    if region:
        extravars["app_traffic_region"] = region
    runner = run_playbook(PLAYBOOK, extravars=extravars, check=check)
    assert runner.status == "successful", runner.stdout_text
    return role_result(runner)


def test_the_writer_writes_through_the_lab_dns_and_answers_health(app_pair, lab_env):
    east = app_pair.east
    health = app_pair.wait_writing(east)
    pg = lab_env.lab.component("postgresql-us-east")
    redis = lab_env.lab.component("redis-us-east")
    assert health["region"] == "us-east" and health["writing"] == "ok"
    assert health["resolved"] == {"postgresql.failsafe.lab.": east.host,
                                  "redis.failsafe.lab.": east.host}
    assert health["stores"]["postgresql"]["address"] == f"{pg.host}:{pg.port}"
    assert health["stores"]["redis"]["address"] == f"{redis.host}:{redis.port}"
    assert app_pair.health(app_pair.west) is None  # stopped: nothing answers
    app_pair.wait_acknowledged(east, "postgresql", 10)
    app_pair.wait_acknowledged(east, "redis", 10)
    report = app_pair.losses()
    for store in ("postgresql", "redis"):
        assert report[store].acknowledged > 10 and report[store].lost == 0, report[store]


def test_the_writer_follows_a_dns_change_and_each_store_fails_alone(app_pair, dns_zone):
    east = app_pair.east
    app_pair.wait_writing(east)
    west_address = dns_zone.address("us-west")
    try:
        # redis.failsafe.lab now names the replica: the writer resolves again once the TTL ran
        # out, connects there and is refused (READONLY); PostgreSQL keeps being written.
        dns_zone.set_records({"redis": west_address})
        health = app_pair.wait_health(east, lambda h: (
            h["stores"]["redis"]["address"].startswith(west_address + ":")
            and h["stores"]["redis"]["state"] == "failing"))
        assert health["writing"] == "failing"
        assert health["stores"]["redis"]["last_error"].startswith("ReadOnlyError")
        app_pair.wait_acknowledged(east, "postgresql",
                                   health["stores"]["postgresql"]["acknowledged"])
    finally:
        dns_zone.restore()
    health = app_pair.wait_health(east, lambda h: h["writing"] == "ok")
    assert health["stores"]["redis"]["address"].startswith(east.host + ":")
    assert health["resolved"]["redis.failsafe.lab."] == east.host


def test_role_moves_the_writers_from_one_region_to_the_other(app_pair, run_playbook):
    east, west = app_pair.east, app_pair.west
    app_pair.wait_writing(east)

    # Stop us-east: check, real, check, real.
    planned = traffic(run_playbook, "stop", "us-east", check=True)
    assert planned["changed"] and planned["hosts"]["app-us-east"]["changed"]
    assert set(planned["hosts"]) == {"app-us-east"}
    assert app_pair.program_state(east) == "RUNNING"
    app_pair.wait_acknowledged(east, "postgresql", app_pair.acknowledged(east, "postgresql"))

    done = traffic(run_playbook, "stop", "us-east")
    assert done["changed"] and done["hosts"]["app-us-east"]["state"] == "STOPPED"
    assert app_pair.program_state(east) == "STOPPED"
    assert app_pair.health(east) is None and done["hosts"]["app-us-east"]["health"] is None

    for check in (True, False):
        again = traffic(run_playbook, "stop", "us-east", check=check)
        assert not again["changed"] and app_pair.program_state(east) == "STOPPED"

    # Start us-west: check, real, check, real.
    planned = traffic(run_playbook, "start", "us-west", check=True)
    assert planned["changed"] and planned["hosts"]["app-us-west"]["state"] == "STOPPED"
    assert app_pair.program_state(west) == "STOPPED" and app_pair.health(west) is None

    done = traffic(run_playbook, "start", "us-west")
    assert done["changed"] and done["hosts"]["app-us-west"]["state"] == "RUNNING"
    # The role waited for the health endpoint to say the writer writes.
    assert done["hosts"]["app-us-west"]["health"]["writing"] == "ok"
    assert app_pair.program_state(west) == "RUNNING"
    app_pair.wait_acknowledged(west, "redis", app_pair.acknowledged(west, "redis"))

    for check in (True, False):
        again = traffic(run_playbook, "start", "us-west", check=check)
        assert not again["changed"] and app_pair.program_state(west) == "RUNNING"
    assert app_pair.program_state(east) == "STOPPED"

    report = app_pair.losses()
    for store in ("postgresql", "redis"):
        assert report[store].lost == 0, report[store]


def test_status_reports_every_writer_and_changes_nothing(app_pair, run_playbook):
    result = traffic(run_playbook, "status")
    assert not result["changed"]
    assert {host: info["state"] for host, info in result["hosts"].items()} == {
        "app-us-east": "RUNNING", "app-us-west": "STOPPED"}
    assert result["hosts"]["app-us-west"]["health"] is None
    assert result["hosts"]["app-us-east"]["platform"] == "supervisor"
    assert app_pair.program_state(app_pair.east) == "RUNNING"
    assert app_pair.program_state(app_pair.west) == "STOPPED"


@pytest.mark.parametrize("extravars", [
    {"app_traffic_action": "start"},
    {"app_traffic_action": "start", "app_traffic_region": "eu-north"},
    {"app_traffic_action": "restart", "app_traffic_region": "us-west"},
])
def test_a_bad_request_is_refused_and_changes_nothing(app_pair, run_playbook, extravars):
    runner = run_playbook(PLAYBOOK, extravars=extravars)
    assert runner.status == "failed"
    assert "app_traffic" in runner.stdout_text
    assert app_pair.program_state(app_pair.east) == "RUNNING"
    assert app_pair.program_state(app_pair.west) == "STOPPED"


def test_stopping_the_component_stops_supervisord_and_its_writer(app_pair, lab_env):
    east = app_pair.east
    app_pair.wait_writing(east)
    writer_pid = east.rpc().supervisor.getProcessInfo(lab_app.PROGRAM)["pid"]
    supervisord_pid = east.pid()
    lab_env.lab.down(kinds=["app"], keep_data=True)
    from lab.core import pid_alive

    assert not pid_alive(writer_pid) and not pid_alive(supervisord_pid)
    assert not east.running() and not app_pair.west.running()
    # The next app_pair starts it again (the engine's canonical check fails now).
    assert lab_env.canonical_problems()


def test_the_loss_counter_sees_a_write_that_is_gone(app_pair, lab_env):
    """lab/app_journal.py counts an acknowledged write missing from a store (removed here)."""
    import json

    from lab import app_service
    from lab import redis as lab_redis

    east = app_pair.east
    app_pair.wait_acknowledged(east, "redis", 5)
    app_pair.wait_acknowledged(east, "postgresql", 5)
    records = [json.loads(line) for line in east.journal.read_text().splitlines()[:20]]
    pg_id = next(r["id"] for r in records if r["store"] == "postgresql")
    redis_id = next(r["id"] for r in records if r["store"] == "redis")
    primary = lab_env.lab.component("postgresql-us-east")
    import psycopg

    with psycopg.connect(primary.conninfo(), autocommit=True) as conn:
        conn.execute(f"DELETE FROM {app_service.TABLE} WHERE id = %s", (pg_id,))
    master = lab_env.lab.component("redis-us-east")
    conn = lab_redis.client(master.host, master.port)
    try:
        assert conn.srem(app_service.REDIS_KEY, redis_id) == 1
    finally:
        conn.close()
    report = app_pair.losses()
    assert report["postgresql"].lost == 1 and report["postgresql"].missing == [pg_id]
    assert report["redis"].lost == 1 and report["redis"].missing == [redis_id]


def test_supervisor_reached_by_url_and_credentials(app_pair, lab_env, run_playbook, tmp_path,
                                                   lab_secrets):
    """Without failsafe_app_supervisor_config: supervisorctl -s URL with the credentials, and
    the password shows in no output."""
    import yaml

    data = yaml.safe_load(lab_env.inventory.read_text())
    for host in data["all"]["children"]["app"]["hosts"].values():
        del host["failsafe_app_supervisor_config"]
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump(data))
    west = app_pair.west
    try:
        for action, state in (("start", "RUNNING"), ("stop", "STOPPED")):
            runner = run_playbook(PLAYBOOK, inventory=inventory, verbosity=2, extravars={
                "app_traffic_action": action, "app_traffic_region": "us-west"})
            assert runner.status == "successful", runner.stdout_text
            result = role_result(runner)
            assert result["changed"] and result["hosts"]["app-us-west"]["state"] == state
            assert app_pair.program_state(west) == state
            for secret in lab_secrets:
                assert secret not in runner.stdout_text
        status = role_result(run_playbook(PLAYBOOK, inventory=inventory,
                                          extravars={"app_traffic_action": "status"}))
        assert status["hosts"]["app-us-west"]["state"] == "STOPPED"
        assert status["hosts"]["app-us-east"]["state"] == "RUNNING"
    finally:
        if app_pair.program_state(west) != "STOPPED":
            app_pair.stop(west)
