# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup catalog: where backups live in S3, what each one says about itself, and the pure
decisions taken on it (newest success, freshness, size anomalies, retention), plus the
`backup_history` table and Prometheus text for the scheduled verification.

Layout (runbook 002), under the store's prefix:

    <prefix>/<engine>/YYYY/MM/DD/<engine>_YYYYMMDD_HHMMSS.<ext>     one backup (an object)
    <prefix>/sets/YYYY/MM/DD/<set id>.json                          one backup set's manifest

Each backup object carries its record as S3 metadata (x-amz-meta-*): backup id, set id, engine,
ISO 8601 time, SHA-256, size, status, engine version, source host and region, position. It is
uploaded with status `uploading`, without a checksum; only once the upload has completed and its
SHA-256 is known is the metadata replaced with status `success` and the checksum. An
interrupted or failed backup therefore never looks like a success: a failed multipart upload is
aborted (no object at all), and an object whose metadata was never completed stays `uploading`
and is ignored by restore, by "newest success" and so by the retention's protections.

S3 is the source of truth; the `backup_history` table (runbook 002) mirrors the records.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import re

from ansible_collections.failsafe.datastores.plugins.module_utils import _prometheus as prometheus
from ansible_collections.failsafe.datastores.plugins.module_utils._prometheus import unix_seconds

ENGINES = ("postgresql", "redis", "neo4j", "qdrant", "opensearch")
SETS_DIR = "sets"

STATUS_UPLOADING = "uploading"
STATUS_SUCCESS = "success"
STATUS_FAILED = "failed"

# Metadata names (S3 lowercases them; values must be ASCII).
META_FIELDS = (
    ("backup-id", "backup_id"),
    ("backup-set-id", "set_id"),
    ("engine", "engine"),
    ("created", "created"),
    ("status", "status"),
    ("sha256", "sha256"),
    ("size-bytes", "size_bytes"),
    ("engine-version", "engine_version"),
    ("source-host", "source_host"),
    ("source-region", "source_region"),
    ("position", "position"),
    ("format", "format"),
    ("data-bytes", "data_bytes"),
    ("dataset", "dataset"),
)
INT_FIELDS = ("size_bytes", "data_bytes")

_KEY = re.compile(r"(?:^|/)(?P<engine>[a-z0-9]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/"
                  r"(?P<id>(?P=engine)_(?P<stamp>\d{8}_\d{6})(?:_(?P<seq>\d+))?)\.(?P<ext>[a-z0-9.]+)$")


class CatalogError(Exception):
    """A catalog problem phrased for the operator."""


# Time -----------------------------------------------------------------------------------------

def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def iso(when):
    return when.astimezone(datetime.timezone.utc).replace(microsecond=0).isoformat().replace(
        "+00:00", "Z")


def parse_time(text):
    """ISO 8601 (with Z or an offset; naive means UTC) -> aware datetime; None stays None."""
    if text is None or isinstance(text, datetime.datetime):
        return text if text is None or text.tzinfo else text.replace(tzinfo=datetime.timezone.utc)
    value = datetime.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)


def stamp(when):
    return when.astimezone(datetime.timezone.utc).strftime("%Y%m%d_%H%M%S")


# Layout ---------------------------------------------------------------------------------------

def backup_id(engine, when, seq=0):
    base = "%s_%s" % (engine, stamp(when))
    return base if not seq else "%s_%d" % (base, seq)


def set_id(when, seq=0):
    base = "set_%s" % stamp(when)
    return base if not seq else "%s_%d" % (base, seq)


def day_path(when):
    when = when.astimezone(datetime.timezone.utc)
    return "%04d/%02d/%02d" % (when.year, when.month, when.day)


def _join(*parts):
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def object_key(prefix, engine, when, ext, seq=0):
    """<prefix>/<engine>/YYYY/MM/DD/<engine>_YYYYMMDD_HHMMSS[_n].<ext>"""
    return _join(prefix, engine, day_path(when), "%s.%s" % (backup_id(engine, when, seq), ext))


def manifest_key(prefix, set_name, when):
    return _join(prefix, SETS_DIR, day_path(when), "%s.json" % set_name)


def engine_prefix(prefix, engine):
    return _join(prefix, engine) + "/"


def sets_prefix(prefix):
    return _join(prefix, SETS_DIR) + "/"


def parse_key(key):
    """(engine, backup id, time) of a key in the layout, or None."""
    match = _KEY.search(key)
    if not match:
        return None
    when = datetime.datetime.strptime(match.group("stamp"), "%Y%m%d_%H%M%S").replace(
        tzinfo=datetime.timezone.utc)
    return match.group("engine"), match.group("id"), when


# Records --------------------------------------------------------------------------------------

def to_metadata(record):
    """A record -> S3 user metadata (strings; absent values left out)."""
    meta = {}
    for name, field in META_FIELDS:
        value = record.get(field)
        if value is None or value == "":
            continue
        meta[name] = str(value)
    return meta


def from_object(key, size, last_modified, metadata):
    """The record of one backup object, from its key, size and metadata."""
    parsed = parse_key(key)
    record = dict((field, None) for _name, field in META_FIELDS)
    for name, field in META_FIELDS:
        if name in metadata:
            record[field] = metadata[name]
    for field in INT_FIELDS:
        if record[field] is not None:
            try:
                record[field] = int(record[field])
            except ValueError:
                record[field] = None
    if parsed:
        record["engine"] = record["engine"] or parsed[0]
        record["backup_id"] = record["backup_id"] or parsed[1]
        record["created"] = record["created"] or iso(parsed[2])
    record["key"] = key
    record["stored_bytes"] = size
    record["last_modified"] = iso(last_modified) if last_modified else None
    if not record["status"]:
        record["status"] = "unknown"
    record["problems"] = record_problems(record)
    return record


def record_problems(record):
    """Why a record is not a usable success (empty: it is one)."""
    problems = []
    if record.get("status") != STATUS_SUCCESS:
        problems.append("status is %s, not success" % record.get("status"))
    if not record.get("sha256"):
        problems.append("no SHA-256 stored")
    if record.get("size_bytes") is not None and record.get("stored_bytes") is not None \
            and record["size_bytes"] != record["stored_bytes"]:
        problems.append("size is %s bytes in S3 but %s in its record"
                        % (record["stored_bytes"], record["size_bytes"]))
    return problems


def usable(record):
    return not record_problems(record)


def created(record):
    return parse_time(record.get("created"))


def by_time(records):
    """Newest first; the backup id breaks ties (ids of one second carry a sequence)."""
    return sorted(records, key=lambda r: (created(r), r.get("backup_id") or ""), reverse=True)


def newest_success(records, engine, dataset=None, formats=None):
    for record in by_time(records):
        if record.get("engine") == engine and usable(record) \
                and (dataset is None or record.get("dataset") == dataset) \
                and (formats is None or record.get("format") in formats):
            return record
    return None


def find(records, backup_id_or_latest, engine=None, dataset=None, formats=None):
    """The record named `backup_id_or_latest` ('latest': the newest success of `engine`, of
    `dataset` and in one of `formats` when given)."""
    if backup_id_or_latest in (None, "", "latest"):
        if not engine:
            raise CatalogError("'latest' needs an engine")
        found = newest_success(records, engine, dataset, formats)
        if found is None:
            raise CatalogError("no successful %s backup%s in the catalog"
                               % (engine, " of %s" % dataset if dataset else ""))
        return found
    for record in records:
        if record.get("backup_id") == backup_id_or_latest:
            if engine and record.get("engine") != engine:
                raise CatalogError("backup %s is a %s backup, not %s"
                                   % (backup_id_or_latest, record.get("engine"), engine))
            if formats and record.get("format") not in formats:
                raise CatalogError("backup %s is in format %s, not %s"
                                   % (backup_id_or_latest, record.get("format"),
                                      " or ".join(formats)))
            return record
    raise CatalogError("no backup %s in the catalog" % backup_id_or_latest)


def summary(record):
    """The fields an operator reads in a listing."""
    keep = ("backup_id", "set_id", "engine", "dataset", "created", "status", "size_bytes",
            "sha256", "key",
            "engine_version", "source_host", "source_region", "position", "problems")
    return dict((k, record.get(k)) for k in keep)


# Freshness and size ---------------------------------------------------------------------------

def age_hours(record, now):
    return round((now - created(record)).total_seconds() / 3600.0, 3)


def freshness(records, engines, now, max_age_hours=24.0, alert_age_hours=25.0):
    """Per engine: the newest success, its age and a verdict.

    ok: age <= max_age_hours; late: older, but not past alert_age_hours; alert: older than
    that, or no successful backup at all.
    """
    result = {}
    for engine in engines:
        newest = newest_success(records, engine)
        if newest is None:
            result[engine] = dict(newest=None, age_hours=None, status="alert",
                                  message="no successful %s backup" % engine)
            continue
        age = age_hours(newest, now)
        if age <= max_age_hours:
            status, message = "ok", None
        elif age <= alert_age_hours:
            status = "late"
            message = ("the newest %s backup %s is %.1f h old (over %s h)"
                       % (engine, newest["backup_id"], age, max_age_hours))
        else:
            status = "alert"
            message = ("no %s backup in %s h: the newest, %s, is %.1f h old"
                       % (engine, alert_age_hours, newest["backup_id"], age))
        result[engine] = dict(newest=newest["backup_id"], created=newest["created"],
                              age_hours=age, status=status, message=message)
    return result


def size_change(records, engine, max_growth=0.5):
    """Newest success against the previous success of the engine with the same dataset (the
    database of a PostgreSQL dump): ratio and verdict."""
    successes = [r for r in by_time(records) if r.get("engine") == engine and usable(r)]
    if successes:
        successes = [r for r in successes if r.get("dataset") == successes[0].get("dataset")]
    if len(successes) < 2:
        return dict(newest=successes[0]["backup_id"] if successes else None, previous=None,
                    growth=None, status="ok", message=None)
    newest, previous = successes[0], successes[1]
    if not previous.get("size_bytes"):
        growth = None
    else:
        growth = round(float(newest["size_bytes"]) / previous["size_bytes"] - 1.0, 4)
    alert = growth is not None and growth > max_growth
    return dict(newest=newest["backup_id"], previous=previous["backup_id"],
                newest_bytes=newest["size_bytes"], previous_bytes=previous["size_bytes"],
                growth=growth, status="alert" if alert else "ok",
                message=("%s backup %s is %.0f %% larger than %s (alert above +%.0f %%)"
                         % (engine, newest["backup_id"], growth * 100, previous["backup_id"],
                            max_growth * 100)) if alert else None)


# Retention ------------------------------------------------------------------------------------

def retention(records, manifests, now, keep_days=30, incomplete_grace_hours=24.0):
    """What the retention deletes and what it keeps, with a reason for each.

    - a success younger than keep_days stays;
    - the newest success of each engine stays, however old, and so does the newest success of
      each dataset (each database's dump, each cluster's base backup for PITR);
    - every member of a kept set stays (a set is kept when one of its members is kept for one
      of the reasons above): a recovery point across engines is never broken up;
    - a success older than keep_days goes;
    - anything that is not a usable success (interrupted, failed, no checksum) goes once it is
      older than incomplete_grace_hours (a backup may still be running before that).
    Returns (delete, keep): lists of (record, reason), newest first.
    """
    cutoff = now - datetime.timedelta(days=keep_days)
    grace = now - datetime.timedelta(hours=incomplete_grace_hours)
    newest = {}
    newest_of_dataset = {}
    for record in by_time(records):
        if not usable(record):
            continue
        newest.setdefault(record.get("engine"), record["backup_id"])
        newest_of_dataset.setdefault((record.get("engine"), record.get("dataset")),
                                     record["backup_id"])
    reasons = {}
    for record in records:
        rid = record["backup_id"]
        if usable(record):
            if newest.get(record["engine"]) == rid:
                reasons[rid] = "newest successful %s backup" % record["engine"]
            elif newest_of_dataset.get((record.get("engine"), record.get("dataset"))) == rid:
                reasons[rid] = "newest successful %s backup of %s" % (record["engine"],
                                                                      record.get("dataset"))
            elif created(record) >= cutoff:
                reasons[rid] = "younger than %s days" % keep_days
        elif created(record) >= grace:
            reasons[rid] = "not a success yet, younger than %s h (may still run)" \
                % incomplete_grace_hours
    # Sets with a kept member keep all their members.
    member_sets = {}
    for manifest in manifests:
        for member in manifest.get("members") or []:
            member_sets.setdefault(member.get("backup_id"), []).append(manifest.get("set_id"))
    kept_sets = set()
    for rid in list(reasons):
        kept_sets.update(member_sets.get(rid, []))
    for record in records:
        if record["backup_id"] in reasons:
            continue
        sets = [s for s in member_sets.get(record["backup_id"], []) if s in kept_sets]
        if sets and usable(record):
            reasons[record["backup_id"]] = "member of kept set %s" % sets[0]
    delete, keep = [], []
    for record in by_time(records):
        rid = record["backup_id"]
        if rid in reasons:
            keep.append((record, reasons[rid]))
        elif usable(record):
            delete.append((record, "older than %s days" % keep_days))
        else:
            delete.append((record, "not a success (%s), older than %s h"
                           % ("; ".join(record_problems(record)), incomplete_grace_hours)))
    return delete, keep


WAL_SEGMENT_BYTES = 16 * 1024 * 1024
_WAL_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")


def wal_segment(lsn, segment_bytes=WAL_SEGMENT_BYTES):
    """(log, segment) of the WAL file that holds an LSN ('0/9000060')."""
    high, low = (int(part, 16) for part in lsn.split("/"))
    return high, low // segment_bytes


def wal_to_delete(wal_keys, kept_bases, segment_bytes=WAL_SEGMENT_BYTES):
    """Archived WAL segments no kept base backup needs: per system identifier, the segments
    before the start of its oldest kept base backup (any timeline). History files, partial
    segments and WAL of a system with no kept base backup are kept.

    wal_keys: keys '<prefix>/wal/postgresql/<sysid>/<file>'; kept_bases: base backup records
    (dataset 'base:<sysid>', position 'start_lsn=... ...')."""
    oldest = {}
    for record in kept_bases:
        sysid = (record.get("dataset") or "").partition(":")[2]
        start = dict(item.partition("=")[::2] for item in (record.get("position") or "").split())
        if not sysid or not start.get("start_lsn"):
            continue
        segment = wal_segment(start["start_lsn"], segment_bytes)
        if sysid not in oldest or segment < oldest[sysid]:
            oldest[sysid] = segment
    doomed = []
    for key in wal_keys:
        parts = key.rsplit("/", 2)
        if len(parts) != 3:
            continue
        sysid, name = parts[1], parts[2]
        match = _WAL_NAME.match(name)
        if not match or sysid not in oldest:
            continue
        if (int(match.group(2), 16), int(match.group(3), 16)) < oldest[sysid]:
            doomed.append(key)
    return doomed


def manifests_to_delete(manifests, remaining_ids):
    """Manifests none of whose members remain."""
    return [m for m in manifests
            if not any(member.get("backup_id") in remaining_ids for member in m.get("members") or [])]


# Manifests ------------------------------------------------------------------------------------

def manifest(set_name, when, members, status=None):
    """A backup set's manifest: one recovery point across engines."""
    if status is None:
        status = STATUS_SUCCESS if members and all(
            m.get("status") == STATUS_SUCCESS for m in members) else "partial"
    return dict(schema="failsafe.backup_set/1", set_id=set_name, created=iso(when),
                status=status, members=members)


def manifest_json(data):
    return json.dumps(data, indent=2, sort_keys=True).encode("utf-8")


# backup_history (runbook 002) -------------------------------------------------------------------

HISTORY_DDL = (
    "CREATE TABLE IF NOT EXISTS {table} ("
    " backup_id text PRIMARY KEY,"
    " backup_type text NOT NULL,"
    " backup_set_id text,"
    ' "timestamp" timestamptz NOT NULL,'
    " status text NOT NULL,"
    " checksum text,"
    " size_bytes bigint,"
    " object_key text,"
    " engine_version text,"
    " source_host text,"
    " source_region text,"
    " position text,"
    " message text,"
    " recorded_at timestamptz NOT NULL DEFAULT now())"
)

HISTORY_UPSERT = (
    'INSERT INTO {table} (backup_id, backup_type, backup_set_id, "timestamp", status, checksum,'
    " size_bytes, object_key, engine_version, source_host, source_region, position, message)"
    " VALUES (%(backup_id)s, %(engine)s, %(set_id)s, %(created)s, %(status)s, %(sha256)s,"
    " %(size_bytes)s, %(key)s, %(engine_version)s, %(source_host)s, %(source_region)s,"
    " %(position)s, %(message)s)"
    " ON CONFLICT (backup_id) DO UPDATE SET status = EXCLUDED.status,"
    " checksum = EXCLUDED.checksum, size_bytes = EXCLUDED.size_bytes,"
    " object_key = EXCLUDED.object_key, message = EXCLUDED.message, recorded_at = now()"
)


def history_row(record, message=None):
    row = dict((field, record.get(field)) for field in (
        "backup_id", "engine", "set_id", "created", "status", "sha256", "size_bytes", "key",
        "engine_version", "source_host", "source_region", "position"))
    row["message"] = message
    return row


# Prometheus text format -------------------------------------------------------------------------

def prometheus_text(findings, now, verification=True):
    """The scheduled verification's findings as Prometheus text format (node_exporter's textfile
    collector reads it). `findings`: {engine: {...}} as backup_verify's role builds it.
    `verification`: add the time of this verification (not for a drill's file)."""
    metrics = [
        ("failsafe_backup_last_success_timestamp_seconds", "gauge",
         "Unix time of the newest successful backup", "last_success_timestamp"),
        ("failsafe_backup_age_seconds", "gauge",
         "Age of the newest successful backup", "age_seconds"),
        ("failsafe_backup_size_bytes", "gauge",
         "Size of the newest successful backup as stored", "size_bytes"),
        ("failsafe_backup_size_growth_ratio", "gauge",
         "Size change of the newest backup against the previous one (0.5 = +50 %)",
         "growth"),
        ("failsafe_backup_failed", "gauge",
         "1 when the newest backup attempt of the engine failed", "failed"),
        ("failsafe_backup_verify_ok", "gauge",
         "1 when every checked backup's SHA-256 matched its catalog record", "verify_ok"),
        ("failsafe_backup_verify_mismatches", "gauge",
         "Backups whose stored bytes do not match their SHA-256", "mismatches"),
        ("failsafe_restore_duration_seconds", "gauge",
         "Duration of the last restore (drill or real)", "restore_seconds"),
        ("failsafe_restore_validation_ok", "gauge",
         "1 when the last restore's integrity validation passed", "validation_ok"),
    ]
    families = [(name, kind, help_text,
                 [({"engine": engine}, data.get(field)) for engine, data in sorted(findings.items())])
                for name, kind, help_text, field in metrics]
    if verification:
        families.append(("failsafe_backup_verify_timestamp_seconds", "gauge",
                         "Unix time of this verification", [({}, unix_seconds(now))]))
    return prometheus.render(families)


# Reading and writing the catalog in S3 -----------------------------------------------------------

def load_records(store, s3, engines=None, workers=8):
    """Every backup object of `engines` (default: all) under the store's prefix, as records."""
    from concurrent.futures import ThreadPoolExecutor

    from ansible_collections.failsafe.datastores.plugins.module_utils import _s3

    listed = []
    for engine in engines or ENGINES:
        for key, size, modified in _s3.list_keys(store, s3, engine_prefix(store.get("prefix"), engine)):
            if parse_key(key):
                listed.append((key, size, modified))

    def one(item):
        key, size, modified = item
        info = _s3.head(store, s3, key)
        if info is None:  # deleted meanwhile
            return None
        return from_object(key, info["size"], info["last_modified"] or modified, info["metadata"])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        records = [r for r in pool.map(one, listed) if r is not None]
    return by_time(records)


def load_manifests(store, s3):
    from ansible_collections.failsafe.datastores.plugins.module_utils import _s3

    found = []
    for key, _size, _modified in _s3.list_keys(store, s3, sets_prefix(store.get("prefix"))):
        if not key.endswith(".json"):
            continue
        try:
            data = json.loads(_s3.get_bytes(store, s3, key).decode("utf-8"))
        except ValueError:
            data = dict(set_id=key.rsplit("/", 1)[-1][:-5], members=[], status="unreadable")
        data["key"] = key
        found.append(data)
    return sorted(found, key=lambda m: m.get("created") or "", reverse=True)


def free_backup_key(store, s3, engine, when, ext):
    """The key and id for a new backup at `when`: a sequence number when the second is taken."""
    from ansible_collections.failsafe.datastores.plugins.module_utils import _s3

    taken = set(k for k, _s, _m in _s3.list_keys(
        store, s3, _join(store.get("prefix"), engine, day_path(when),
                         "%s_%s" % (engine, stamp(when)))))
    seq = 0
    while object_key(store.get("prefix"), engine, when, ext, seq) in taken:
        seq += 1
    return object_key(store.get("prefix"), engine, when, ext, seq), backup_id(engine, when, seq)
