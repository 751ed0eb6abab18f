"""Redis backups to the lab's S3 server, for real: RDB of a full resync streamed to S3, restore by
replacing the RDB and restarting, corruption refused.

The Redis servers here are throwaway servers started with restore_scratch_redis in the test lab's
directory (the lab's own Redis servers are not part of this branch's lab yet). Verification is
independent of the modules: redis-py for the data, boto3 for the bucket.
"""

from __future__ import annotations

import json
import os
import shlex
import uuid

import pytest
import redis
import yaml

# These tests run on the generic lab (lab.topology.make_lab, tests/integration/engines/): on a
# checkout without it they are skipped rather than failing on missing fixtures.
try:
    from lab.topology import make_lab as _generic_lab  # noqa: F401 pylint: disable=unused-import
except ImportError:
    pytest.skip("needs the generic lab (lab.topology.make_lab)", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("lab_env")


@pytest.fixture
def scratch_redis(lab_env, run_module):
    """scratch_redis(name) -> (server dict for the modules, redis-py client, start command)."""
    started = []

    def start(name):
        path = str(lab_env.config.state_dir / f"redis-{name}-{uuid.uuid4().hex[:6]}")
        password = uuid.uuid4().hex
        result = run_module("restore_scratch_redis", dict(path=path, password=password))
        assert not result.failed, result.msg
        started.append(path)
        server = dict(host=result["host"], port=result["port"], password=password)
        client = redis.Redis(host=result["host"], port=result["port"], password=password)
        return server, client, result["start_command"], path

    yield start
    for path in started:
        run_module("restore_scratch_redis", dict(path=path, state="absent"))


def fill(client, count, prefix="k"):
    pipe = client.pipeline(transaction=False)
    for number in range(count):
        pipe.set(f"{prefix}{number}", f"value-{number}-" + "x" * 100)
    pipe.execute()


def test_backup_and_restore_four_steps(run_module, s3_store, scratch_redis):
    source, src, _cmd, _path = scratch_redis("src")
    fill(src, 20000)
    args = dict(server=source, store=s3_store.store, source_name="redis-test", min_interval=3600)
    checked = run_module("backup_redis", args, check=True)
    assert checked.changed and s3_store.keys() == []
    done = run_module("backup_redis", args)
    assert not done.failed, done.msg
    key = done["backup"]["key"]
    meta = s3_store.head(key)
    assert meta["status"] == "success" and meta["sha256"] == s3_store.sha256(key)
    assert meta["position"].startswith("offset=") and key.endswith(".rdb.zst")
    manifest = json.loads(s3_store.body(done["manifest_key"]))
    assert manifest["members"][0]["counts"] == {"db0": 20000}
    assert not run_module("backup_redis", args, check=True).changed
    assert not run_module("backup_redis", args).changed

    target, dst, start_command, _path = scratch_redis("dst")
    restore = dict(target=target, store=s3_store.store, start_command=start_command)
    checked = run_module("restore_redis", restore, check=True)
    assert checked.changed and dst.dbsize() == 0
    restored = run_module("restore_redis", restore)
    assert not restored.failed, restored.msg
    assert restored["counts"] == {"db0": 20000}
    dst = redis.Redis(host=target["host"], port=target["port"], password=target["password"])
    assert dst.dbsize() == 20000 and dst.get("k4242").startswith(b"value-4242-")
    assert not run_module("restore_redis", restore, check=True).changed
    again = run_module("restore_redis", restore)
    assert not again.changed and again["already_restored"]


def test_a_flipped_byte_is_refused_and_the_server_untouched(run_module, s3_store, scratch_redis):
    source, src, _cmd, _path = scratch_redis("src")
    fill(src, 5000)
    done = run_module("backup_redis", dict(server=source, store=s3_store.store))
    s3_store.flip_byte(done["backup"]["key"], offset=500)
    target, dst, start_command, _path = scratch_redis("dst")
    fill(dst, 7, prefix="keep")
    refused = run_module("restore_redis", dict(target=target, store=s3_store.store,
                                               start_command=start_command, existing="replace"))
    assert refused.failed
    assert "refusing backup %s" % done["backup"]["backup_id"] in refused.msg
    assert "server was not touched" in refused.msg
    assert dst.dbsize() == 7 and dst.ping()


def test_ctrl_c_while_redis_is_stopped_starts_it_again(run_module, s3_store, scratch_redis,
                                                       tmp_path):
    source, src, _cmd, _path = scratch_redis("src")
    fill(src, 3000)
    run_module("backup_redis", dict(server=source, store=s3_store.store))
    target, _dst, start_command, _path = scratch_redis("dst")
    # The first start is interrupted (SIGINT to the module, its parent); the next one starts.
    first = tmp_path / "interrupted-once"
    wrapper = tmp_path / "start-redis"
    wrapper.write_text("#!/bin/sh\nif [ ! -e %s ]; then touch %s; kill -INT $PPID; sleep 2; "
                       "exit 130; fi\nexec %s\n" % (first, first, shlex.join(start_command)))
    wrapper.chmod(0o755)
    interrupted = run_module("restore_redis", dict(target=target, store=s3_store.store,
                                                   start_command=[str(wrapper)]))
    assert interrupted.failed and first.exists()
    dst = redis.Redis(host=target["host"], port=target["port"], password=target["password"])
    assert dst.ping() and dst.dbsize() == 3000  # running again, on the restored RDB


def test_a_server_with_keys_is_refused_without_replace(run_module, s3_store, scratch_redis):
    source, src, _cmd, _path = scratch_redis("src")
    fill(src, 10)
    run_module("backup_redis", dict(server=source, store=s3_store.store))
    target, dst, start_command, _path = scratch_redis("dst")
    fill(dst, 3, prefix="live")
    refused = run_module("restore_redis", dict(target=target, store=s3_store.store,
                                               start_command=start_command))
    assert refused.failed and "holds 3 keys" in refused.msg and "existing=replace" in refused.msg
    assert dst.dbsize() == 3
    valid = run_module("restore_redis", dict(target=target, store=s3_store.store,
                                             validate_only=True))
    assert not valid.failed, valid.msg
    assert valid["validated"] and not valid.changed and dst.dbsize() == 3


def test_wrong_password_is_a_clear_error(run_module, s3_store, scratch_redis):
    source, _src, _cmd, _path = scratch_redis("src")
    failed = run_module("backup_redis", dict(server=dict(source, password="wrong"),
                                             store=s3_store.store))
    assert failed.failed and "refused the credentials" in failed.msg
    assert "wrong" not in failed.msg.replace("wrong password", "")
    assert s3_store.keys() == []


def test_backup_set_with_redis_and_the_drill_of_both(run_playbook, run_module, s3_store,
                                                     scratch_redis, backup_db, lab_env, tmp_path):
    source, src, start_command, _path = scratch_redis("src")
    fill(src, 3000)
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    # The lab's own Redis nodes (group redis) are not this test's: the scratch server is.
    lab_inventory = yaml.safe_load(lab_env.inventory.read_text())
    children = lab_inventory["all"]["children"]
    lab_redis_hosts = set((children.pop("redis", None) or {}).get("hosts") or {})
    children.pop("redis_sentinel", None)
    for group in children.values():
        for host in list((group or {}).get("hosts") or {}):
            if host in lab_redis_hosts or host.startswith("sentinel-"):
                del group["hosts"][host]
    (inventory / "lab.yml").write_text(yaml.safe_dump(lab_inventory))
    (inventory / "redis.yml").write_text(json.dumps({"redis": {"hosts": {"redis-scratch": {
        "failsafe_region": "us-east", "failsafe_redis_host": source["host"],
        "failsafe_redis_port": source["port"], "failsafe_redis_password": source["password"],
        "failsafe_redis_start_command": start_command}}}}))
    ev = dict(failsafe_s3_prefix=s3_store.prefix, failsafe_lock_path=str(tmp_path / "locks"),
              backup_engines=["postgresql", "redis"],
              backup_postgresql_databases=[backup_db.name])
    done = run_playbook("playbooks/backup.yml", inventory=inventory, extravars=ev)
    assert done.status == "successful", done.stdout_text[-3000:]
    manifests = s3_store.keys("sets")
    assert len(manifests) == 1
    members = json.loads(s3_store.body(manifests[0]))["members"]
    assert sorted(m["engine"] for m in members) == ["postgresql", "redis"]
    assert [m["counts"] for m in members if m["engine"] == "redis"] == [{"db0": 3000}]
    metrics = tmp_path / "drill.prom"
    drill = run_playbook("playbooks/dr_drill.yml", inventory=inventory, extravars=dict(
        ev, dr_drill_dir=str(lab_env.config.state_dir / f"drill-{s3_store.prefix}"),
        dr_drill_os_user=backup_db.node.component.lab.runner.user,
        dr_drill_metrics_file=str(metrics)))
    assert drill.status == "successful", drill.stdout_text[-3000:]
    text = metrics.read_text()
    assert 'failsafe_restore_validation_ok{engine="redis"} 1' in text
    assert 'failsafe_restore_validation_ok{engine="postgresql"} 1' in text
    assert text.count("# TYPE failsafe_restore_duration_seconds gauge") == 1
    # restore.yml brings the live Redis back to the set's snapshot
    fill(src, 5, prefix="after-backup")
    # Without restore_confirm under ansible-runner (as AWX runs it): refused at once, no prompt
    # that nobody answers, nothing changed.
    unconfirmed = run_playbook("playbooks/restore.yml", inventory=inventory, timeout=300,
                               extravars=dict(ev, restore_engines=["redis"],
                                              restore_redis_target="redis-scratch",
                                              restore_redis_existing="replace"))
    assert unconfirmed.status == "failed", unconfirmed.status
    assert "Restore not confirmed (this run has no terminal to ask on" \
        in unconfirmed.stdout_text, unconfirmed.stdout_text[-3000:]
    assert src.get("after-backup0") is not None
    refused = run_playbook("playbooks/restore.yml", inventory=inventory, extravars=dict(
        ev, restore_engines=["redis"], restore_redis_target="redis-scratch",
        restore_confirm=True))
    assert refused.status == "failed" and "holds 3005 keys" in refused.stdout_text
    restored = run_playbook("playbooks/restore.yml", inventory=inventory, extravars=dict(
        ev, restore_engines=["redis"], restore_redis_target="redis-scratch",
        restore_redis_existing="replace", restore_confirm=True))
    assert restored.status == "successful", restored.stdout_text[-3000:]
    live = redis.Redis(host=source["host"], port=source["port"], password=source["password"])
    assert live.dbsize() == 3000 and live.get("after-backup0") is None


def test_scratch_redis_four_steps(run_module, lab_env):
    path = str(lab_env.config.state_dir / "scratch-redis-four-steps")
    args = dict(path=path, password="scratch-redis-pw")
    try:
        checked = run_module("restore_scratch_redis", args, check=True)
        assert checked.changed and not os.path.exists(path)
        done = run_module("restore_scratch_redis", args)
        assert not done.failed, done.msg
        client = redis.Redis(host=done["host"], port=done["port"], password="scratch-redis-pw")
        assert client.ping() and client.config_get("appendonly")["appendonly"] == "no"
        assert not run_module("restore_scratch_redis", args, check=True).changed
        again = run_module("restore_scratch_redis", args)
        assert not again.changed and again["port"] == done["port"]
    finally:
        gone = run_module("restore_scratch_redis", dict(path=path, state="absent"))
    assert gone.changed and not run_module("restore_scratch_redis",
                                           dict(path=path, state="absent")).changed
