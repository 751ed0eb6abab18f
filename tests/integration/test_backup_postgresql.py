"""Backups of the lab's PostgreSQL to the lab's S3 server (SeaweedFS), for real: backup, list,
verify, retention, restore latest and by id, corruption and failure refused, PITR, the DR drill.

Every state-changing module is run four times (check, real, check, real) and its effect is
verified independently: the bucket is read with boto3, the databases with psycopg.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import stat
import time

import psycopg
import pytest

# These tests run on the generic lab (lab.topology.make_lab, tests/integration/engines/): on a
# checkout without it they are skipped rather than failing on missing fixtures.
try:
    from lab.topology import make_lab as _generic_lab  # noqa: F401 pylint: disable=unused-import
except ImportError:
    pytest.skip("needs the generic lab (lab.topology.make_lab)", allow_module_level=True)

pytestmark = pytest.mark.usefixtures("lab_env")

UTC = datetime.timezone.utc


def backup(run_module, s3_store, db, check=False, **extra):
    args = dict(source=db.peer(), store=s3_store.store, source_region="us-east",
                source_name="pg-us-east")
    args.update(extra)
    return run_module("backup_postgresql", args, check=check)


def restore(run_module, s3_store, db, check=False, **extra):
    args = dict(target=db.node.peer(), store=s3_store.store)
    args.update(extra)
    return run_module("restore_postgresql", args, check=check)


def fake_tool(tmp_path, name, script):
    """A directory (for bin_dir) holding an executable shell script named `name`."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    tool = fake / name
    tool.write_text("#!/bin/sh\n" + script)
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    return fake


# Backup ---------------------------------------------------------------------------------------

def test_backup_four_steps_and_the_catalog_it_leaves(run_module, s3_store, backup_db):
    # 1. check mode: reports the key, writes nothing
    checked = backup(run_module, s3_store, backup_db, check=True, min_interval=3600)
    assert not checked.failed, checked.msg
    assert checked.changed and checked["backup"]["key"].startswith(s3_store.prefix + "/postgresql/")
    assert s3_store.keys() == []
    # 2. real
    done = backup(run_module, s3_store, backup_db, min_interval=3600)
    assert not done.failed, done.msg
    assert done.changed
    key = done["backup"]["key"]
    # independent checks: the object, its metadata, its bytes, the manifest
    meta = s3_store.head(key)
    assert meta["status"] == "success" and meta["backup-id"] == done["backup"]["backup_id"]
    assert meta["sha256"] == s3_store.sha256(key) == done["backup"]["sha256"]
    assert int(meta["size-bytes"]) == len(s3_store.body(key))
    assert meta["source-region"] == "us-east" and meta["dataset"] == backup_db.name
    assert meta["position"].startswith("lsn=") and meta["engine-version"].startswith("15")
    manifest = json.loads(s3_store.body(done["manifest_key"]))
    assert manifest["status"] == "success"
    assert manifest["members"][0]["counts"] == {"public.customers": 50, "public.orders": 200}
    parts = key.split("/")
    today = datetime.datetime.now(UTC)
    assert parts[1:5] == ["postgresql", "%04d" % today.year, "%02d" % today.month,
                          "%02d" % today.day]
    assert parts[5] == done["backup"]["backup_id"] + ".dump.zst"
    assert set(done["timings"]) >= {"dump_upload", "finalize", "total"}
    # 3. check mode again: a recent success, nothing to do
    again = backup(run_module, s3_store, backup_db, check=True, min_interval=3600)
    assert not again.changed and again["skipped_reason"]
    # 4. real again: no new object
    last = backup(run_module, s3_store, backup_db, min_interval=3600)
    assert not last.changed
    assert len(s3_store.keys("postgresql")) == 1


def test_backup_records_history_in_postgresql(run_module, s3_store, backup_db, pg_pair):
    done = backup(run_module, s3_store, backup_db, history=backup_db.peer())
    assert not done.failed, done.msg
    assert done["history"] == {"recorded": 1, "table": "backup_history", "error": None}
    with psycopg.connect(backup_db.node.conninfo(dbname=backup_db.name)) as conn:
        row = conn.execute("SELECT backup_type, status, checksum, size_bytes FROM backup_history "
                           "WHERE backup_id = %s", (done["backup"]["backup_id"],)).fetchone()
    assert row == ("postgresql", "success", done["backup"]["sha256"], done["backup"]["size_bytes"])


# List and verify ------------------------------------------------------------------------------

def test_info_lists_backups_and_verify_rereads_them(run_module, s3_store, backup_db):
    first = backup(run_module, s3_store, backup_db)
    backup_db.insert_orders(5000)
    second = backup(run_module, s3_store, backup_db)
    info = run_module("backup_info", dict(store=s3_store.store, engines=["postgresql"]))
    assert not info.failed, info.msg
    assert [b["backup_id"] for b in info["backups"]] == [
        second["backup"]["backup_id"], first["backup"]["backup_id"]]
    assert info["newest"]["postgresql"]["backup_id"] == second["backup"]["backup_id"]
    assert info["freshness"]["postgresql"]["status"] == "ok"
    growth = info["size_changes"]["postgresql"]
    assert growth["status"] == "alert" and growth["growth"] > 0.5  # 200 -> 5200 orders
    assert any("larger than" in p for p in info["problems"])
    verify = run_module("backup_verify", dict(store=s3_store.store, engines=["postgresql"],
                                              scope="all"))
    assert not verify.failed, verify.msg
    assert [c["ok"] for c in verify["checked"]] == [True, True]
    assert verify["bytes_read"] == first["backup"]["size_bytes"] + second["backup"]["size_bytes"]


def test_a_flipped_byte_is_reported_and_refused_before_the_target_is_touched(
        run_module, s3_store, backup_db):
    done = backup(run_module, s3_store, backup_db)
    s3_store.flip_byte(done["backup"]["key"])
    verify = run_module("backup_verify", dict(store=s3_store.store, engines=["postgresql"]))
    assert verify.failed
    assert done["backup"]["backup_id"] in verify.msg and "expected SHA-256" in verify.msg
    assert verify["mismatches"][0]["expected_sha256"] == done["backup"]["sha256"]
    target = backup_db.name + "_restored"
    refused = restore(run_module, s3_store, backup_db, database=target)
    assert refused.failed
    assert "refusing backup %s" % done["backup"]["backup_id"] in refused.msg
    assert done["backup"]["sha256"] in refused.msg and "target was not touched" in refused.msg
    assert not backup_db.exists(target) and not backup_db.exists(target + "__restoring")
    leftover = "failsafe-restore-" + done["backup"]["backup_id"]
    assert not [f for f in os.listdir("/var/tmp") if f.startswith(leftover)]


# Failures leave no success ----------------------------------------------------------------------

def test_an_interrupted_dump_leaves_nothing_usable(run_module, s3_store, backup_db, tmp_path):
    # 12 MiB of output (several parts of 5 MiB), then a failure, as a dump cut short would.
    fake = fake_tool(tmp_path, "pg_dump", "head -c 12582912 /dev/urandom\n"
                     "echo 'connection lost' >&2\nexit 1\n")
    failed = backup(run_module, s3_store, backup_db, bin_dir=str(fake), part_size_mb=5,
                    history=backup_db.peer())
    assert failed.failed
    assert "pg_dump exited with 1: connection lost" in failed.msg
    assert "no success was recorded" in failed.msg
    assert s3_store.keys("postgresql") == []
    assert s3_store.uploads() == []
    with psycopg.connect(backup_db.node.conninfo(dbname=backup_db.name)) as conn:
        status = conn.execute("SELECT status FROM backup_history").fetchall()
    assert status == [("failed",)]


def test_an_upload_cut_before_its_checksum_is_never_taken_for_a_success(
        run_module, s3_store, backup_db):
    good = backup(run_module, s3_store, backup_db)
    # What a backup killed between completing the upload and storing its checksum leaves.
    key = good["backup"]["key"].replace(".dump.zst", "_9.dump.zst")
    meta = dict(s3_store.head(good["backup"]["key"]))
    meta.update({"status": "uploading", "backup-id": good["backup"]["backup_id"] + "_9"})
    del meta["sha256"]
    s3_store.client.put_object(Bucket="backups", Key=key, Body=b"partial", Metadata=meta)
    info = run_module("backup_info", dict(store=s3_store.store, engines=["postgresql"]))
    assert info["newest"]["postgresql"]["backup_id"] == good["backup"]["backup_id"]
    listed = {b["backup_id"]: b for b in info["backups"]}
    assert "status is uploading, not success" in listed[meta["backup-id"]]["problems"]
    by_id = restore(run_module, s3_store, backup_db, backup_id=meta["backup-id"],
                    database=backup_db.name + "_x")
    assert by_id.failed and "is not a usable success" in by_id.msg
    assert not backup_db.exists(backup_db.name + "_x")


def test_s3_down_gives_a_clear_error_and_no_success(run_module, s3_store, backup_db,
                                                    closed_port):
    down = s3_store.bad(endpoint_url="http://127.0.0.1:%d" % closed_port())
    result = backup(run_module, s3_store, backup_db, store=down)
    assert result.failed
    assert "cannot reach S3 at http://127.0.0.1:" in result.msg
    info = run_module("backup_info", dict(store=down))
    assert info.failed and "cannot reach S3" in info.msg
    assert s3_store.keys() == []


def test_wrong_credentials_give_a_clear_error_and_no_success(run_module, s3_store, backup_db,
                                                             lab_secrets):
    wrong = s3_store.bad(secret_key="not-the-secret")
    result = backup(run_module, s3_store, backup_db, store=wrong, history=backup_db.peer())
    assert result.failed
    assert "S3 refused the credentials" in result.msg and "not-the-secret" not in result.msg
    assert s3_store.keys() == []
    assert not any(secret in json.dumps(dict(result)) for secret in lab_secrets)


# Restore --------------------------------------------------------------------------------------

def test_restore_latest_and_by_id_four_steps(run_module, s3_store, backup_db):
    first = backup(run_module, s3_store, backup_db)
    backup_db.insert_orders(100)
    second = backup(run_module, s3_store, backup_db)
    target = backup_db.name + "_copy"
    # latest: four steps
    checked = restore(run_module, s3_store, backup_db, database=target, check=True)
    assert checked.changed and not backup_db.exists(target)
    done = restore(run_module, s3_store, backup_db, database=target)
    assert not done.failed, done.msg
    assert done.changed and done["backup"]["backup_id"] == second["backup"]["backup_id"]
    assert backup_db.count("orders", target) == 300 and backup_db.count("customers", target) == 50
    assert restore(run_module, s3_store, backup_db, database=target, check=True).changed is False
    again = restore(run_module, s3_store, backup_db, database=target)
    assert not again.changed and again["already_restored"]
    # by id, replacing the database restored above only once the restore succeeded
    refused = restore(run_module, s3_store, backup_db, database=target,
                      backup_id=first["backup"]["backup_id"])
    assert refused.failed and "existing=replace" in refused.msg
    assert backup_db.count("orders", target) == 300
    by_id = restore(run_module, s3_store, backup_db, database=target, existing="replace",
                    backup_id=first["backup"]["backup_id"])
    assert not by_id.failed, by_id.msg
    assert by_id["replaced"] == "dropped"
    assert backup_db.count("orders", target) == 200
    integrity = run_module("restore_integrity", dict(
        target=backup_db.node.peer(db=target),
        expected_counts={"public.customers": 50, "public.orders": 200},
        expected_tables=["public.orders"], critical_columns=["public.orders.amount"],
        orphan_checks=[dict(child="public.orders.customer_id", parent="public.customers.id")]))
    assert integrity["passed"], integrity["failed"]


def test_validate_only_touches_no_server(run_module, s3_store, backup_db):
    backup(run_module, s3_store, backup_db)
    result = restore(run_module, s3_store, backup_db, validate_only=True,
                     source_database=backup_db.name)
    assert not result.failed, result.msg
    assert result["validated"] and not result.changed and result["archive_entries"] > 5
    assert not backup_db.exists(backup_db.name + "__restoring")


def test_streamed_restore_four_steps_and_a_flipped_byte_refused(run_module, s3_store, backup_db):
    first = backup(run_module, s3_store, backup_db)
    target = backup_db.name + "_streamed"
    checked = restore(run_module, s3_store, backup_db, database=target, stream=True, check=True)
    assert checked.changed and not backup_db.exists(target)
    assert "into pg_restore" in checked["steps"][0]
    done = restore(run_module, s3_store, backup_db, database=target, stream=True)
    assert not done.failed, done.msg
    assert done.changed and done["backup"]["backup_id"] == first["backup"]["backup_id"]
    assert done["verified_sha256"] == first["backup"]["sha256"] and done["archive_entries"] is None
    assert backup_db.count("orders", target) == 200 and backup_db.count("customers", target) == 50
    assert not backup_db.exists(target + "__restoring")
    assert restore(run_module, s3_store, backup_db, database=target, stream=True,
                   check=True).changed is False
    again = restore(run_module, s3_store, backup_db, database=target, stream=True)
    assert not again.changed and again["already_restored"]
    # A damaged newer backup: found only at the end of the stream, the staging database that
    # pg_restore was filling is dropped and the database restored above is left as it was.
    backup_db.insert_orders(10)
    second = backup(run_module, s3_store, backup_db)
    s3_store.flip_byte(second["backup"]["key"])
    refused = restore(run_module, s3_store, backup_db, database=target, stream=True,
                      existing="replace")
    assert refused.failed
    assert "refusing backup %s" % second["backup"]["backup_id"] in refused.msg
    assert second["backup"]["sha256"] in refused.msg and "target was not touched" in refused.msg
    assert not backup_db.exists(target + "__restoring")
    assert backup_db.count("orders", target) == 200


def test_a_streamed_restore_that_fails_drops_its_staging_database(
        run_module, s3_store, backup_db, tmp_path):
    backup(run_module, s3_store, backup_db)
    fake = fake_tool(tmp_path, "pg_restore", "head -c 1000 >/dev/null\n"
                     "echo 'pg_restore: error: could not execute query: disk full' >&2\nexit 1\n")
    target = backup_db.name + "_streamed_failed"
    failed = restore(run_module, s3_store, backup_db, database=target, stream=True,
                     bin_dir=str(fake))
    assert failed.failed
    assert "pg_restore exited with 1: pg_restore: error: could not execute query: disk full" \
        in failed.msg
    assert "staging database was dropped" in failed.msg
    assert not backup_db.exists(target) and not backup_db.exists(target + "__restoring")


@pytest.mark.parametrize("stream", [False, True], ids=["file", "streamed"])
def test_an_interrupted_restore_drops_its_staging_database(
        run_module, s3_store, backup_db, tmp_path, stream):
    # Ctrl-C reaches the module mid pg_restore: SIGINT from the fake to its parent, the module,
    # once the staging database exists.
    backup(run_module, s3_store, backup_db)
    real = shutil.which("pg_restore")
    fake = fake_tool(tmp_path, "pg_restore", (
        'case " $* " in *" --list "*) exec %s "$@";; esac\n' % real)  # the archive check
        + "kill -INT $PPID\nsleep 2\nexit 130\n")
    target = backup_db.name + "_interrupted"
    interrupted = restore(run_module, s3_store, backup_db, database=target, stream=stream,
                          bin_dir=str(fake))
    assert interrupted.failed
    assert not backup_db.exists(target) and not backup_db.exists(target + "__restoring")


# Retention ------------------------------------------------------------------------------------

def test_retention_keeps_the_newest_and_deletes_the_old(run_module, s3_store, backup_db):
    made = [backup(run_module, s3_store, backup_db) for _number in range(3)]
    now = datetime.datetime.now(UTC)
    # the two older backups made to look 40 and 35 days old; the newest stays young
    s3_store.set_created(made[0]["backup"]["key"], now - datetime.timedelta(days=40))
    s3_store.set_created(made[1]["backup"]["key"], now - datetime.timedelta(days=35))
    args = dict(store=s3_store.store, keep_days=30, engines=["postgresql"])
    checked = run_module("backup_retention", args, check=True)
    assert checked.changed
    assert sorted(d["backup_id"] for d in checked["deleted"]) == sorted(
        m["backup"]["backup_id"] for m in made[:2])
    assert len(s3_store.keys("postgresql")) == 3
    done = run_module("backup_retention", args)
    assert done.changed and len(done["deleted_manifests"]) == 2
    assert [k.rsplit("/", 1)[1] for k in s3_store.keys("postgresql")] == [
        made[2]["backup"]["backup_id"] + ".dump.zst"]
    assert run_module("backup_retention", args, check=True).changed is False
    assert run_module("backup_retention", args).changed is False
    # the newest success survives even when it is old itself
    s3_store.set_created(made[2]["backup"]["key"], now - datetime.timedelta(days=90))
    kept = run_module("backup_retention", args)
    assert not kept.changed
    assert kept["kept"][0]["reason"] == "newest successful postgresql backup"


# PITR -----------------------------------------------------------------------------------------

def test_pitr_to_a_moment_between_two_writes(run_module, s3_store, backup_db, pg_pair, lab_env):
    node = backup_db.node
    script_dir = str(node.config_dir.parent / f"failsafe-wal-{s3_store.prefix}")
    # Under the lab's directory: the server's user must reach the instance's files.
    path = str(lab_env.config.state_dir / f"pitr-{s3_store.prefix}")
    wal = dict(server=node.peer(), store=s3_store.store, script_dir=script_dir)
    try:
        assert run_module("backup_postgresql_wal", wal, check=True).changed
        configured = run_module("backup_postgresql_wal", wal)
        assert not configured.failed, configured.msg
        assert configured["verified_wal"]
        assert not run_module("backup_postgresql_wal", wal, check=True).changed
        assert not run_module("backup_postgresql_wal", wal).changed
        # independently: the primary archives with the collection, the standby has no
        # restore_command
        assert "failsafe_wal_s3.py push" in pg_pair.scalar(node, "SHOW archive_command")
        assert pg_pair.scalar(pg_pair.west, "SHOW restore_command") == ""
        base = run_module("backup_postgresql_base", dict(source=node.peer(), store=s3_store.store))
        assert not base.failed, base.msg
        time.sleep(1.2)
        with psycopg.connect(node.conninfo(dbname=backup_db.name), autocommit=True) as conn:
            conn.execute("CREATE TABLE pitr (id int, at timestamptz DEFAULT clock_timestamp())")
            conn.execute("INSERT INTO pitr VALUES (1)")
            time.sleep(0.5)
            target = conn.execute("SELECT clock_timestamp()").fetchone()[0]
            time.sleep(0.5)
            conn.execute("INSERT INTO pitr VALUES (2)")
            walfile = conn.execute("SELECT pg_walfile_name(pg_switch_wal() - 1)").fetchone()[0]
        deadline = time.monotonic() + 30
        while (pg_pair.scalar(node, "SELECT last_archived_wal FROM pg_stat_archiver") or "") < walfile:
            assert time.monotonic() < deadline, "WAL not archived"
            time.sleep(0.1)
        assert any(k.endswith(walfile) for k in s3_store.keys("wal"))
        pitr = dict(store=s3_store.store, target_time=target.isoformat(), path=path,
                    os_user=node.component.lab.runner.user)
        assert run_module("restore_postgresql_pitr", pitr, check=True).changed
        done = run_module("restore_postgresql_pitr", pitr)
        assert not done.failed, done.msg
        assert done["timeline"] == 2
        with psycopg.connect(host=path, port=done["port"], user="postgres",
                             dbname=backup_db.name) as conn:
            rows = [r[0] for r in conn.execute("SELECT id FROM pitr ORDER BY id")]
        assert rows == [1]
        assert not run_module("restore_postgresql_pitr", pitr).changed
        # a newer base backup; the first made to look old: the retention takes it and the WAL
        # only it needed, and keeps the WAL from the newer base backup's start
        newer = run_module("backup_postgresql_base", dict(source=node.peer(), store=s3_store.store))
        assert not newer.failed, newer.msg
        s3_store.set_created(base["backup"]["key"],
                             datetime.datetime.now(UTC) - datetime.timedelta(days=40))
        wal_before = s3_store.keys("wal")
        pruned = run_module("backup_retention", dict(store=s3_store.store, engines=["postgresql"]))
        assert not pruned.failed, pruned.msg
        assert [d["backup_id"] for d in pruned["deleted"]] == [base["backup"]["backup_id"]]
        assert pruned["deleted_wal"] > 0
        wal_after = s3_store.keys("wal")
        assert len(wal_after) == len(wal_before) - pruned["deleted_wal"]
        start = newer["start_lsn"].split("/")
        first_needed = "%08X%08X" % (int(start[0], 16), int(start[1], 16) // (16 * 1024 * 1024))
        assert all(k.rsplit("/", 1)[1][8:24] >= first_needed for k in wal_after
                   if len(k.rsplit("/", 1)[1]) == 24)
    finally:
        run_module("restore_scratch_postgresql", dict(path=path, state="absent",
                                                      os_user=node.component.lab.runner.user))
        reset = run_module("backup_postgresql_wal", dict(wal, state="absent"))
        assert not reset.failed, reset.msg
    assert "failsafe_wal_s3" not in pg_pair.scalar(node, "SHOW archive_command")


# Playbooks ------------------------------------------------------------------------------------

def extravars(s3_store, tmp_path, **more):
    values = dict(failsafe_s3_prefix=s3_store.prefix, failsafe_lock_path=str(tmp_path / "locks"),
                  failsafe_report_dir=str(tmp_path / "reports"))
    values.update(more)
    return values


def stats(runner, name):
    for event in runner.events:
        if event.get("event") == "playbook_on_stats":
            return (event["event_data"].get("artifact_data") or {}).get(name)
    return None


def test_backup_verify_and_dr_drill_playbooks(run_playbook, run_module, s3_store, backup_db,
                                              tmp_path, lab_env):
    ev = extravars(s3_store, tmp_path, backup_postgresql_databases=[backup_db.name])
    done = run_playbook("playbooks/backup.yml", extravars=ev)
    assert done.status == "successful", done.stdout_text[-3000:]
    record = stats(done, "failsafe_backup")
    assert record["members"][0]["database"] == backup_db.name
    metrics = tmp_path / "backup.prom"
    verified = run_playbook("playbooks/backup_verify.yml",
                            extravars=dict(ev, backup_verify_metrics_file=str(metrics)))
    assert verified.status == "successful", verified.stdout_text[-3000:]
    text = metrics.read_text()
    assert 'failsafe_backup_verify_ok{engine="postgresql"} 1' in text
    drill_dir = lab_env.config.state_dir / f"drill-{s3_store.prefix}"
    # what a drill stopped by Ctrl-C leaves: its server still running, with that run's password
    os_user = backup_db.node.component.lab.runner.user
    left = run_module("restore_scratch_postgresql", dict(
        path=str(drill_dir / "postgresql"), password="an-interrupted-drill", os_user=os_user))
    assert left["running"], left.msg
    drill = run_playbook("playbooks/dr_drill.yml", extravars=dict(
        ev, dr_drill_dir=str(drill_dir), dr_drill_expected_tables=["public.orders"],
        dr_drill_critical_columns=["public.orders.amount"], dr_drill_os_user=os_user))
    assert drill.status == "successful", drill.stdout_text[-3000:]
    report = stats(drill, "failsafe_dr_drill")
    assert report["validation_passed"] and report["postgresql_rto_met"]
    assert report["servers_removed"] and not drill_dir.exists()
    assert report["left_by_interrupted_drill_removed"] == ["postgresql"]
    assert "An earlier drill was interrupted before its clean-up" in drill.stdout_text
    # a corrupted newest backup makes the scheduled check exit non-zero
    s3_store.flip_byte(record["backups"][0]["key"])
    failing = run_playbook("playbooks/backup_verify.yml",
                           extravars=dict(ev, backup_verify_metrics_file=str(metrics)))
    assert failing.status == "failed" and failing.rc != 0
    assert "does not match its checksum" in failing.stdout_text
    assert 'failsafe_backup_verify_mismatches{engine="postgresql"} 1' in metrics.read_text()


def test_pitr_through_the_playbooks(run_playbook, run_module, s3_store, backup_db, pg_pair,
                                    lab_env, tmp_path):
    node = backup_db.node
    ev = extravars(s3_store, tmp_path, backup_postgresql_databases=[backup_db.name],
                   backup_postgresql_pitr=True)
    path = str(lab_env.config.state_dir / f"pitr-pb-{s3_store.prefix}")
    try:
        done = run_playbook("playbooks/backup.yml", extravars=ev)
        assert done.status == "successful", done.stdout_text[-3000:]
        members = stats(done, "failsafe_backup")["members"]
        assert sorted(m.get("kind", "dump") for m in members) == ["base backup", "dump"]
        assert "failsafe_wal_s3.py push" in pg_pair.scalar(node, "SHOW archive_command")
        with psycopg.connect(node.conninfo(dbname=backup_db.name), autocommit=True) as conn:
            conn.execute("INSERT INTO customers VALUES (1000, 'before the target')")
            time.sleep(0.5)
            target = conn.execute("SELECT clock_timestamp()").fetchone()[0]
            time.sleep(0.5)
            conn.execute("DELETE FROM orders")  # the accident
            conn.execute("SELECT pg_switch_wal()")
        time.sleep(2)
        restored = run_playbook("playbooks/restore.yml", extravars=dict(
            ev, restore_target_time=target.isoformat(), restore_pitr_path=path,
            restore_pitr_os_user=node.component.lab.runner.user))
        assert restored.status == "successful", restored.stdout_text[-3000:]
        pitr = stats(restored, "failsafe_restore")["postgresql"]["pitr"]
        with psycopg.connect(host=path, port=pitr["port"], user="postgres",
                             dbname=backup_db.name) as conn:
            assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 200
            assert conn.execute("SELECT name FROM customers WHERE id = 1000").fetchone()[0] == \
                "before the target"
        assert backup_db.count("orders") == 0  # the live server was not touched
    finally:
        run_module("restore_scratch_postgresql", dict(path=path, state="absent",
                                                      os_user=node.component.lab.runner.user))
        run_module("backup_postgresql_wal", dict(
            server=node.peer(), store=s3_store.store, state="absent",
            script_dir=str(node.data_dir.parent / "failsafe-wal")))


def test_a_backup_killed_mid_upload_leaves_no_object_and_retention_aborts_its_upload(
        run_module, s3_store, backup_db, tmp_path):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    fake = tmp_path / "bin"
    fake.mkdir()
    dumper = fake / "pg_dump"
    # 12 MiB at once (parts go up), then a dump that hangs: the run is killed meanwhile.
    dumper.write_text("#!/bin/sh\nhead -c 12582912 /dev/urandom\nexec sleep 60\n")
    dumper.chmod(0o755)
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": dict(
        source=backup_db.peer(), store=s3_store.store, bin_dir=str(fake), part_size_mb=5,
        upload_workers=1, record_counts=False)}))
    collections = Path(__file__).resolve().parents[2] / "collections"
    code = ("import sys, runpy; sys.path.insert(0, %r); runpy.run_module("
            "'ansible_collections.failsafe.datastores.plugins.modules.backup_postgresql', "
            "run_name='__main__')" % str(collections))
    proc = subprocess.Popen([sys.executable, "-c", code, str(args)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 30
    while not s3_store.uploads():
        assert time.monotonic() < deadline and proc.poll() is None, "no upload started"
        time.sleep(0.1)
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # nothing that looks like a backup; the unfinished upload is invisible to a listing
    assert s3_store.keys("postgresql") == []
    assert len(s3_store.uploads()) == 1
    info = run_module("backup_info", dict(store=s3_store.store, engines=["postgresql"]))
    assert info["newest"]["postgresql"] is None and info["backups"] == []
    # the retention aborts it once older than its grace (0 here)
    args = dict(store=s3_store.store, engines=["postgresql"], incomplete_grace_hours=0)
    checked = run_module("backup_retention", args, check=True)
    assert len(checked["aborted_uploads"]) == 1 and len(s3_store.uploads()) == 1
    done = run_module("backup_retention", args)
    assert done.changed and s3_store.uploads() == []


def test_backup_set_four_steps(run_module, s3_store):
    members = [dict(engine="postgresql", backup_id="postgresql_20250130_020000", status="success",
                    sha256="ab" * 32, size_bytes=10)]
    args = dict(store=s3_store.store, set_id="set_20250130_020000", members=members)
    checked = run_module("backup_set", args, check=True)
    assert checked.changed and s3_store.keys("sets") == []
    done = run_module("backup_set", args)
    assert done.changed and done["manifest_key"] == f"{s3_store.prefix}/sets/2025/01/30/set_20250130_020000.json"
    assert json.loads(s3_store.body(done["manifest_key"]))["members"] == members
    assert not run_module("backup_set", args, check=True).changed
    assert not run_module("backup_set", args).changed


def test_scratch_postgresql_four_steps(run_module, lab_env, pg_pair):
    user = lab_env.lab.runner.user
    path = str(lab_env.config.state_dir / "scratch-four-steps")
    args = dict(path=path, password="scratch-pw", os_user=user)
    try:
        checked = run_module("restore_scratch_postgresql", args, check=True)
        assert checked.changed and not os.path.exists(path)
        done = run_module("restore_scratch_postgresql", args)
        assert not done.failed, done.msg
        with psycopg.connect(host="127.0.0.1", port=done["port"], user="postgres",
                             password="scratch-pw", dbname="postgres") as conn:
            assert conn.execute("SELECT 1").fetchone()[0] == 1
        assert not run_module("restore_scratch_postgresql", args, check=True).changed
        again = run_module("restore_scratch_postgresql", args)
        assert not again.changed and again["port"] == done["port"]
    finally:
        gone = run_module("restore_scratch_postgresql", dict(path=path, state="absent",
                                                             os_user=user))
    assert gone.changed and not os.path.exists(path)
    assert not run_module("restore_scratch_postgresql", dict(path=path, state="absent",
                                                             os_user=user)).changed


def test_playbooks_in_check_mode_change_nothing(run_playbook, s3_store, backup_db, tmp_path):
    ev = extravars(s3_store, tmp_path, backup_postgresql_databases=[backup_db.name])
    checked = run_playbook("playbooks/backup.yml", extravars=ev, check=True, diff=True)
    assert checked.status == "successful", checked.stdout_text[-3000:]
    assert s3_store.keys() == []
    run_playbook("playbooks/backup.yml", extravars=ev)
    keys = s3_store.keys()
    target = backup_db.name + "_checked"
    restore = run_playbook("playbooks/restore.yml", check=True, diff=True, extravars=dict(
        ev, restore_postgresql_database=target, restore_postgresql_source_database=backup_db.name))
    assert restore.status == "successful", restore.stdout_text[-3000:]
    assert not backup_db.exists(target) and s3_store.keys() == keys
    verify = run_playbook("playbooks/backup_verify.yml", extravars=ev, check=True)
    assert verify.status == "successful", verify.stdout_text[-3000:]
