# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup catalog's pure logic: layout, records, newest success, freshness, size changes,
retention selection, Prometheus text."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog

UTC = datetime.timezone.utc
NOW = datetime.datetime(2025, 1, 30, 12, 0, 0, tzinfo=UTC)


def rec(engine, hours_ago, status="success", size=1000, sha="ab" * 32, seq=0, set_id=None):
    when = NOW - datetime.timedelta(hours=hours_ago)
    key = catalog.object_key("prod", engine, when, "dump.zst", seq)
    meta = catalog.to_metadata(dict(
        backup_id=catalog.backup_id(engine, when, seq), set_id=set_id, engine=engine,
        created=catalog.iso(when), status=status, sha256=sha if status == "success" else None,
        size_bytes=size if status == "success" else None))
    return catalog.from_object(key, size, when, meta)


# Layout -------------------------------------------------------------------------------------------

def test_object_key_follows_the_runbook_layout():
    when = datetime.datetime(2025, 1, 30, 2, 0, 0, tzinfo=UTC)
    assert catalog.object_key("backups", "qdrant", when, "snapshot") == \
        "backups/qdrant/2025/01/30/qdrant_20250130_020000.snapshot"
    assert catalog.object_key("", "postgresql", when, "dump.zst", 2) == \
        "postgresql/2025/01/30/postgresql_20250130_020000_2.dump.zst"
    assert catalog.manifest_key("p/", "set_20250130_020000", when) == \
        "p/sets/2025/01/30/set_20250130_020000.json"


def test_key_is_parsed_back():
    key = "prod/postgresql/2025/01/30/postgresql_20250130_020000_3.dump.zst"
    engine, bid, when = catalog.parse_key(key)
    assert (engine, bid) == ("postgresql", "postgresql_20250130_020000_3")
    assert when == datetime.datetime(2025, 1, 30, 2, 0, 0, tzinfo=UTC)
    assert catalog.parse_key("prod/sets/2025/01/30/set_20250130_020000.json") is None
    assert catalog.parse_key("prod/postgresql/2025/01/30/redis_20250130_020000.rdb") is None


def test_times_are_iso_8601_utc():
    assert catalog.iso(NOW) == "2025-01-30T12:00:00Z"
    assert catalog.parse_time("2025-01-30T12:00:00Z") == NOW
    assert catalog.parse_time("2025-01-30T13:00:00+01:00") == NOW
    assert catalog.parse_time("2025-01-30") == datetime.datetime(2025, 1, 30, tzinfo=UTC)


# Records ------------------------------------------------------------------------------------------

def test_metadata_round_trip():
    record = dict(backup_id="postgresql_20250130_020000", set_id="set_20250130_020000",
                  engine="postgresql", created="2025-01-30T02:00:00Z", status="success",
                  sha256="cd" * 32, size_bytes=42, engine_version="15.8", source_host="pg-east",
                  source_region="us-east", position="lsn=0/3000060", format="f", data_bytes=None)
    meta = catalog.to_metadata(record)
    assert all(isinstance(v, str) for v in meta.values())
    assert "data-bytes" not in meta
    back = catalog.from_object("x/postgresql/2025/01/30/postgresql_20250130_020000.dump.zst",
                               42, NOW, meta)
    for field in record:
        assert back[field] == record[field], field
    assert back["problems"] == []


def test_an_upload_without_checksum_is_not_usable():
    uploading = rec("postgresql", 1, status="uploading")
    assert not catalog.usable(uploading)
    assert "status is uploading, not success" in uploading["problems"]
    assert "no SHA-256 stored" in uploading["problems"]


def test_a_size_that_differs_from_the_record_is_a_problem():
    record = rec("postgresql", 1)
    record["stored_bytes"] = 999
    assert catalog.record_problems(record) == ["size is 999 bytes in S3 but 1000 in its record"]


def test_an_object_without_metadata_is_unknown():
    record = catalog.from_object("p/redis/2025/01/30/redis_20250130_020000.rdb.zst", 5, NOW, {})
    assert record["status"] == "unknown" and record["engine"] == "redis"
    assert record["backup_id"] == "redis_20250130_020000" and not catalog.usable(record)


def test_newest_success_skips_failures_and_other_engines():
    records = [rec("postgresql", 1, status="uploading"), rec("postgresql", 5),
               rec("postgresql", 30), rec("redis", 0.5)]
    assert catalog.newest_success(records, "postgresql")["backup_id"] == records[1]["backup_id"]
    assert catalog.newest_success(records, "neo4j") is None


def test_find_latest_or_by_id():
    records = [rec("postgresql", 5), rec("postgresql", 30)]
    assert catalog.find(records, "latest", "postgresql") is records[0]
    assert catalog.find(records, records[1]["backup_id"], "postgresql") is records[1]
    with pytest.raises(catalog.CatalogError, match="no backup postgresql_1"):
        catalog.find(records, "postgresql_1")
    with pytest.raises(catalog.CatalogError, match="no successful redis backup"):
        catalog.find(records, "latest", "redis")
    with pytest.raises(catalog.CatalogError, match="is a postgresql backup, not redis"):
        catalog.find(records, records[0]["backup_id"], "redis")


# Freshness and size -------------------------------------------------------------------------------

@pytest.mark.parametrize("hours, status", [(1, "ok"), (24, "ok"), (24.5, "late"), (25.5, "alert")])
def test_freshness_against_24_and_25_hours(hours, status):
    result = catalog.freshness([rec("postgresql", hours)], ["postgresql"], NOW)
    assert result["postgresql"]["status"] == status
    assert result["postgresql"]["age_hours"] == hours


def test_no_backup_at_all_is_an_alert():
    result = catalog.freshness([rec("postgresql", 1, status="uploading")], ["postgresql"], NOW)
    assert result["postgresql"]["status"] == "alert"
    assert result["postgresql"]["message"] == "no successful postgresql backup"


@pytest.mark.parametrize("newest, previous, status", [(150, 100, "ok"), (151, 100, "alert"),
                                                      (50, 100, "ok")])
def test_size_growth_alert_above_50_percent(newest, previous, status):
    records = [rec("postgresql", 1, size=newest), rec("postgresql", 25, size=previous),
               rec("postgresql", 2, status="uploading", size=10 ** 9)]
    change = catalog.size_change(records, "postgresql")
    assert change["status"] == status
    assert change["growth"] == round(newest / previous - 1, 4)


def test_size_change_with_one_backup_is_ok():
    assert catalog.size_change([rec("redis", 1)], "redis")["status"] == "ok"


# Retention ----------------------------------------------------------------------------------------

def ids(pairs):
    return [r["backup_id"] for r, _reason in pairs]


def test_retention_deletes_what_is_older_than_the_policy():
    young, old = rec("postgresql", 24 * 10), rec("postgresql", 24 * 31)
    newest = rec("postgresql", 1)
    delete, keep = catalog.retention([newest, young, old], [], NOW, keep_days=30)
    assert ids(delete) == [old["backup_id"]]
    assert ids(keep) == [newest["backup_id"], young["backup_id"]]


def test_retention_never_deletes_the_newest_success_of_an_engine():
    ancient = rec("redis", 24 * 90)
    failed_newer = rec("redis", 24 * 40, status="uploading")
    delete, keep = catalog.retention([ancient, failed_newer], [], NOW, keep_days=30)
    assert ids(keep) == [ancient["backup_id"]]
    assert dict((r["backup_id"], why) for r, why in keep)[ancient["backup_id"]] == \
        "newest successful redis backup"
    assert ids(delete) == [failed_newer["backup_id"]]


def test_retention_keeps_every_member_of_a_kept_set():
    pg = rec("postgresql", 24 * 60, set_id="set_a")  # newest postgresql: keeps set_a
    redis_old = rec("redis", 24 * 60, set_id="set_a", seq=1)
    redis_new = rec("redis", 1, set_id="set_b")
    manifests = [dict(set_id="set_a", members=[dict(backup_id=pg["backup_id"]),
                                               dict(backup_id=redis_old["backup_id"])]),
                 dict(set_id="set_b", members=[dict(backup_id=redis_new["backup_id"])])]
    delete, keep = catalog.retention([pg, redis_old, redis_new], manifests, NOW, keep_days=30)
    assert delete == []
    reasons = dict((r["backup_id"], why) for r, why in keep)
    assert reasons[redis_old["backup_id"]] == "member of kept set set_a"


def test_retention_leaves_recent_incomplete_backups_alone():
    running = rec("postgresql", 2, status="uploading")
    stale = rec("postgresql", 48, status="uploading")
    good = rec("postgresql", 3)
    delete, keep = catalog.retention([running, stale, good], [], NOW, keep_days=30,
                                     incomplete_grace_hours=24)
    assert ids(delete) == [stale["backup_id"]]
    assert running["backup_id"] in ids(keep)


def test_an_incomplete_backup_never_protects_its_set():
    broken = rec("postgresql", 1, status="uploading", set_id="s")
    old_redis = rec("redis", 24 * 40, set_id="s", seq=1)
    newer_redis = rec("redis", 24 * 35)
    manifests = [dict(set_id="s", members=[dict(backup_id=broken["backup_id"]),
                                           dict(backup_id=old_redis["backup_id"])])]
    delete, keep = catalog.retention([broken, old_redis, newer_redis], manifests, NOW,
                                     keep_days=30, incomplete_grace_hours=0.5)
    assert set(ids(delete)) == {broken["backup_id"], old_redis["backup_id"]}


def test_manifests_go_when_no_member_remains():
    manifests = [dict(set_id="a", members=[dict(backup_id="x")]),
                 dict(set_id="b", members=[dict(backup_id="x"), dict(backup_id="y")])]
    assert [m["set_id"] for m in catalog.manifests_to_delete(manifests, {"y"})] == ["a"]


def test_manifest_status():
    assert catalog.manifest("s", NOW, [dict(status="success")])["status"] == "success"
    assert catalog.manifest("s", NOW, [dict(status="success"), dict(status="failed")])["status"] \
        == "partial"


# Prometheus ---------------------------------------------------------------------------------------

def test_prometheus_text_format():
    text = catalog.prometheus_text({
        "postgresql": dict(last_success_timestamp=1738202400, age_seconds=3600.5, size_bytes=10,
                           growth=0.1, failed=False, verify_ok=True, mismatches=0),
        "redis": dict(age_seconds=None, failed=True, verify_ok=False, mismatches=1),
    }, NOW)
    lines = text.splitlines()
    assert "# TYPE failsafe_backup_age_seconds gauge" in lines
    assert 'failsafe_backup_age_seconds{engine="postgresql"} 3600.5' in lines
    assert not any(line.startswith('failsafe_backup_age_seconds{engine="redis"}') for line in lines)
    assert 'failsafe_backup_failed{engine="redis"} 1' in lines
    assert 'failsafe_backup_verify_ok{engine="postgresql"} 1' in lines
    assert text.endswith("\n")
    assert "failsafe_backup_verify_timestamp_seconds 1738238400.0" in lines


def test_retention_keeps_the_newest_of_each_dataset():
    dump = rec("postgresql", 1)
    base = rec("postgresql", 24 * 50, seq=1)
    base["dataset"] = "base:7312"
    older_base = rec("postgresql", 24 * 60, seq=2)
    older_base["dataset"] = "base:7312"
    delete, keep = catalog.retention([dump, base, older_base], [], NOW, keep_days=30)
    assert ids(delete) == [older_base["backup_id"]]
    assert dict((r["backup_id"], why) for r, why in keep)[base["backup_id"]] == \
        "newest successful postgresql backup of base:7312"


def test_wal_segments_before_the_oldest_kept_base_go():
    base = dict(dataset="base:7312", position="start_lsn=0/9000060 end_lsn=0/B000000")
    keys = ["p/wal/postgresql/7312/%s" % name for name in (
        "000000010000000000000007", "000000010000000000000008", "000000010000000000000009",
        "00000002000000000000000A", "00000002.history", "000000010000000000000008.00000028.backup")]
    keys.append("p/wal/postgresql/9999/000000010000000000000001")  # no kept base: kept
    assert catalog.wal_to_delete(keys, [base]) == keys[:2]
    assert catalog.wal_segment("1/2000000") == (1, 2)
    assert catalog.wal_to_delete(keys, []) == []


def test_restore_latest_never_guesses_between_databases():
    from ansible_collections.failsafe.datastores.plugins.modules import restore_postgresql as mod

    def dump(db, seq):
        record = rec("postgresql", 1, seq=seq)
        record.update(dataset=db, format=mod.DUMP_FORMAT)
        return record

    one = [dump("app", 0)]
    assert mod.latest_dataset(one, "latest", None) == "app"
    two = [dump("app", 0), dump("billing", 1)]
    assert mod.latest_dataset(two, "latest", "billing") == "billing"
    assert mod.latest_dataset(two, "postgresql_20250130_110000", None) is None
    with pytest.raises(mod.RestoreError, match="several databases \\(app, billing\\)"):
        mod.latest_dataset(two, "latest", "app_copy")


def test_listing_looks_like_the_runbook():
    from ansible_collections.failsafe.datastores.plugins.modules.backup_info import listing

    good = rec("postgresql", 10, size=134689587)
    good["dataset"] = "ai_platform"
    broken = rec("postgresql", 2, status="uploading", seq=1)
    lines = listing([broken, good], ["postgresql", "redis"])
    assert lines[0] == "POSTGRESQL Backups:"
    assert lines[2] == "  %s: 2025-01-30 02:00:00 (128.45 MB) ai_platform" % good["backup_id"]
    assert lines[1].endswith("[status is uploading, not success; no SHA-256 stored]")
    assert lines[3] == "REDIS Backups: none"
