#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: restore_postgresql
short_description: Restore a PostgreSQL backup from S3, verified before anything is touched
version_added: 0.3.0
description:
  - Restores the latest successful PostgreSQL backup, or one named by id, into a new database or
    in place of an existing one (runbook 002 "Execute Restore", runbook 003 "restore to a
    temporary database").
  - "Order: read the catalog -> stream the object from S3 through C(zstd -d) into a local file
    while hashing SHA-256 in-process -> compare digest and size with the catalog record -> only
    then touch the server. A backup whose checksum does not match is refused, naming the backup
    and both digests, and the target is left untouched (no database created, none dropped)."
  - "The dump is restored with C(pg_restore -j) into a staging database C(<database>__restoring);
    only when that succeeded is an existing database replaced: sessions on it are terminated, it
    is dropped (or renamed, O(keep_old)) and the staging database takes its name. A failed
    restore drops the staging database and leaves the existing one as it was."
  - The restored database carries a comment naming the backup, so restoring the same backup
    again reports changed=false (unless O(force)).
  - With O(validate_only) the backup is downloaded, its checksum compared and the archive's table
    of contents read (C(pg_restore --list)); the server is not touched.
  - C(pg_restore -j) needs a seekable file, so the uncompressed dump is written to O(work_dir)
    and removed afterwards; the space needed is about the size of the dump.
  - "With O(stream) the object flows from S3 through C(zstd -d) straight into C(pg_restore) (one
    job): no local copy, and the download overlaps the restore. The checksum is then known only
    once the last byte is read, while C(pg_restore) still works on the tail: a mismatch kills it
    and drops the staging database, so the target is still never touched, but the staging
    database existed meanwhile."
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.backup
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the catalog and the target server and reports what it would do; downloads nothing,
        changes nothing.
  diff_mode:
    support: full
  idempotent:
    description: A database that already holds the backup is recognised (its comment).
    support: full
options:
  backup_id:
    description:
      - The backup to restore (C(postgresql_YYYYMMDD_HHMMSS)), V(latest) for the newest
        successful one, or a backup set (C(set_YYYYMMDD_HHMMSS)) for its PostgreSQL member (of
        O(source_database) when the set has several).
    type: str
    default: latest
  target:
    description: The server to restore into; O(target.db) is the database the module connects to (not the one restored).
    type: dict
    required: true
    suboptions:
      host:
        description: Host name or address of the server.
        type: str
        required: true
      port:
        description: TCP port of the server.
        type: int
        default: 5432
      user:
        description: Role to connect as; it needs C(CREATEDB) and to own (or be superuser over) the database it replaces.
        type: str
        default: postgres
      password:
        description: Password of O(target.user). Never returned or logged.
        type: str
      db:
        description: Maintenance database to connect to.
        type: str
        default: postgres
      connect_timeout:
        description: Seconds to wait for a connection.
        type: int
        default: 5
      ssl_mode:
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(target.ssl_mode=verify-ca) and O(target.ssl_mode=verify-full).
        type: path
      log_file:
        description: The server's log file (C(failsafe_pg_log_file)); not used here, accepted so that the C(pg_conn) dict passes unchanged.
        type: path
  source_database:
    description:
      - With O(backup_id=latest), the newest backup of this database (the database the backup
        was taken of). Empty takes the one database the catalog holds dumps of, or O(database)
        when it is one of several; several and no match are refused.
    type: str
  database:
    description: Database to restore into. Default the database the backup was taken of (from its set manifest).
    type: str
  existing:
    description:
      - What to do when O(database) exists and does not hold this backup. V(fail) refuses,
        V(replace) replaces it once the restore into the staging database succeeded.
    type: str
    choices: [fail, replace]
    default: fail
  keep_old:
    description: With O(existing=replace), rename the replaced database to C(<database>__before_<time>) instead of dropping it.
    type: bool
    default: false
  force:
    description: Restore even when O(database) already holds this backup.
    type: bool
    default: false
  validate_only:
    description: Download, compare the checksum and read the archive's contents; touch no server.
    type: bool
    default: false
  jobs:
    description: Parallel C(pg_restore) jobs (C(-j)); not used with O(stream) (always one job).
    type: int
    default: 2
  stream:
    description:
      - Restore while downloading, without a local copy of the dump (see the description). Faster
        when the data is in few large tables (one C(pg_restore) job loses little) or the download
        is slow; with many tables and indexes, C(jobs) on a file can be faster.
      - O(validate_only) always downloads to a file (it reads the archive's contents).
    type: bool
    default: false
  work_dir:
    description: Directory for the uncompressed dump while it is restored (not used with O(stream)).
    type: path
    default: /var/tmp
  bin_dir:
    description: Directory of C(pg_restore); default the newest C(/usr/lib/postgresql/*/bin), then C(PATH).
    type: path
requirements:
  - psycopg >= 3.1
  - pg_restore of the backup's major version or newer
  - zstd
'''

EXAMPLES = r'''
- name: Restore the latest backup into a new database
  failsafe.datastores.restore_postgresql:
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: backup-writer
      secret_key: "{{ vault_s3_secret_key }}"
    target:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"
    database: ai_platform_restored

- name: Replace ai_platform with a given backup
  failsafe.datastores.restore_postgresql:
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: backup-writer
      secret_key: "{{ vault_s3_secret_key }}"
    target:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"
    database: ai_platform
    backup_id: postgresql_20250128_020000
    existing: replace
'''

RETURN = r'''
backup:
  description: The catalog record of the backup restored (or validated).
  returned: always
  type: dict
database:
  description: The database restored into.
  returned: always
  type: str
already_restored:
  description: True when the database already held this backup (nothing done).
  returned: always
  type: bool
validated:
  description: True when the checksum matched and the archive was readable (also without O(validate_only)).
  returned: always
  type: bool
verified_sha256:
  description: The SHA-256 of the bytes read from S3.
  returned: always
  type: str
archive_entries:
  description: Entries in the archive's table of contents (C(pg_restore --list)); null when streamed.
  returned: always
  type: int
replaced:
  description: What happened to an existing database (C(dropped), C(renamed to NAME), or empty).
  returned: always
  type: str
steps:
  description: The steps taken (or planned, in check mode).
  returned: always
  type: list
  elements: str
throughput_mb_s:
  description: Megabytes (10^6 bytes of the uncompressed dump) restored per second by C(pg_restore); null when streamed.
  returned: always
  type: float
timings:
  description:
    - Seconds per step (C(checks), C(download_verify), C(validate), C(restore), C(swap)) and C(total).
    - Streamed, C(download_verify) is the download with the restore beside it and C(restore) what
      was left of the restore after the last byte.
  returned: always
  type: dict
diff:
  description: The backup the database holds before and after.
  returned: when diff mode is on
  type: dict
'''

import contextlib
import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog
from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
from ansible_collections.failsafe.datastores.plugins.module_utils._backup_pg import (
    PipelineError,
    download_decompressed,
    download_into,
    find_bin,
    libpq_env,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    connect,
    describe,
    ensure_driver,
    PEER_SPEC,
    PostgresError,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import scalar
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

ENGINE = "postgresql"
DUMP_FORMAT = "pg_dump-custom+zstd"
MARK = "failsafe.restore backup_id="
STEPS = (
    ("checks", None, "checked"),
    ("download_verify", "checked", "downloaded"),
    ("validate", "downloaded", "validated"),
    ("restore", "validated", "restored"),
    ("swap", "restored", "swapped"),
)


class RestoreError(Exception):
    pass


def db_exists(conn, name):
    return bool(scalar(conn, "SELECT count(*) FROM pg_database WHERE datname = %s", (name,)))


def restored_backup(conn, name):
    comment = scalar(conn, "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                           "WHERE datname = %s", (name,))
    if comment and comment.startswith(MARK):
        return comment[len(MARK):].split()[0]
    return None


def member_database(store, s3, record):
    """The database a backup was taken of, from its set manifest."""
    if not record.get("set_id"):
        return None
    when = catalog.parse_time(record["created"])
    for candidate in (catalog.manifest_key(store.get("prefix"), record["set_id"], when),):
        if _s3.head(store, s3, candidate) is None:
            continue
        data = json.loads(_s3.get_bytes(store, s3, candidate).decode("utf-8"))
        for member in data.get("members") or []:
            if member.get("backup_id") == record["backup_id"]:
                return member.get("database")
    return None


def latest_dataset(records, wanted, database):
    """For 'latest' without source_database: the one database backed up, or `database` if it
    is one of several; several and no match is refused rather than guessed."""
    if wanted not in (None, "", "latest"):
        return None
    datasets = sorted(set(r.get("dataset") for r in records if catalog.usable(r)
                          and r.get("format") == DUMP_FORMAT and r.get("dataset")))
    if len(datasets) <= 1:
        return datasets[0] if datasets else None
    if database in datasets:
        return database
    raise RestoreError("the catalog holds dumps of several databases (%s): name the one to "
                       "restore with source_database. Nothing was changed" % ", ".join(datasets))


def set_member(store, s3, set_name, source_database):
    """The backup id of the PostgreSQL member of a set (of source_database if given)."""
    for manifest in catalog.load_manifests(store, s3):
        if manifest.get("set_id") != set_name:
            continue
        members = [m for m in manifest.get("members") or [] if m.get("engine") == ENGINE
                   and (not source_database or m.get("database") == source_database)]
        if len(members) == 1:
            return members[0]["backup_id"]
        raise RestoreError("backup set %s has %d PostgreSQL members%s: name the database with "
                           "source_database. Nothing was changed" % (
                               set_name, len(members),
                               " of %s" % source_database if source_database else ""))
    raise RestoreError("no backup set %s in the catalog. Nothing was changed" % set_name)


def check_digest(record, digest, size):
    """Raise unless the SHA-256 and the size read match the catalog record."""
    if digest != record["sha256"] or (record.get("size_bytes") is not None
                                      and size != record["size_bytes"]):
        raise RestoreError(
            "refusing backup %s (%s): its SHA-256 does not match the catalog: expected %s "
            "(%s bytes), found %s (%s bytes). The target was not touched. Restore another "
            "backup (backup_info lists them) and check the S3 service"
            % (record["backup_id"], record["key"], record["sha256"], record.get("size_bytes"),
               digest, size))


def download_verified(store, s3, record, path):
    """Stream the object through zstd -d into `path`; raise unless SHA-256 and size match."""
    digest, size, code, err = download_decompressed(store, s3, record["key"], path)
    check_digest(record, digest, size)
    if code != 0:
        raise RestoreError("zstd could not decompress backup %s (%s): %s. The target was not "
                           "touched" % (record["backup_id"], record["key"], err))
    return digest


def archive_entries(module, pg_restore, path):
    code, out, err = module.run_command([pg_restore, "--list", path])
    if code != 0:
        raise RestoreError("pg_restore cannot read the archive: %s. The target was not touched"
                           % err.strip()[-500:])
    return len([line for line in out.splitlines() if line and not line.startswith(";")])


def terminate(conn, database):
    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))


def drop_database(conn, name):
    from psycopg import sql

    terminate(conn, name)
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=_s3.store_option(),
            backup_id=dict(type="str", default="latest"),
            target=dict(type="dict", required=True, options=dict(PEER_SPEC)),
            source_database=dict(type="str"),
            database=dict(type="str"),
            existing=dict(type="str", choices=["fail", "replace"], default="fail"),
            keep_old=dict(type="bool", default=False),
            force=dict(type="bool", default=False),
            validate_only=dict(type="bool", default=False),
            jobs=dict(type="int", default=2),
            stream=dict(type="bool", default=False),
            work_dir=dict(type="path", default="/var/tmp"),
            bin_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    _s3.ensure_boto3(module)
    params = module.params
    store, target = params["store"], params["target"]
    timer = Timer()
    result = dict(changed=False, backup={}, database=params["database"] or "",
                  already_restored=False, validated=False, verified_sha256="",
                  archive_entries=0, replaced="", steps=[], throughput_mb_s=None)
    before = None
    path = None
    try:
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        records = catalog.load_records(store, s3, [ENGINE])
        wanted = params["backup_id"]
        source_database = params["source_database"] or latest_dataset(records, wanted,
                                                                      params["database"])
        if wanted.startswith("set_"):
            wanted = set_member(store, s3, wanted, source_database)
        try:
            record = catalog.find(records, wanted, ENGINE, source_database or None, [DUMP_FORMAT])
        except catalog.CatalogError as exc:
            raise RestoreError("%s. Nothing was changed" % exc)
        if not catalog.usable(record):
            raise RestoreError("backup %s is not a usable success (%s). Nothing was changed"
                               % (record["backup_id"], "; ".join(record["problems"])))
        result["backup"] = catalog.summary(record)
        database = params["database"] or record.get("dataset") \
            or member_database(store, s3, record)
        if not database:
            raise RestoreError("backup %s does not say which database it holds: set database"
                               % record["backup_id"])
        result["database"] = database
        staging = (database[:50] + "__restoring")
        pg_restore = find_bin("pg_restore", params["bin_dir"])
        exists = False
        if not params["validate_only"]:
            with connect(target, application_name="failsafe.restore") as conn:
                exists = db_exists(conn, database)
                before = restored_backup(conn, database) if exists else None
            if exists and before == record["backup_id"] and not params["force"]:
                result["already_restored"] = True
                finish(module, result, timer, before, before)
            if exists and params["existing"] == "fail":
                raise RestoreError(
                    "database %s exists at %s and does not hold backup %s: set existing=replace "
                    "to replace it once the restore succeeded, or restore into another "
                    "database. Nothing was changed" % (database, describe(target),
                                                       record["backup_id"]))
        steps = ["download %s and verify its SHA-256" % record["key"],
                 "read the archive's table of contents"]
        streamed = params["stream"] and not params["validate_only"]
        if streamed:
            steps = ["create database %s and stream %s through zstd -d into pg_restore, "
                     "verifying its SHA-256 (a mismatch drops %s)" % (staging, record["key"], staging)]
        elif not params["validate_only"]:
            steps += ["create database %s and pg_restore -j %d into it" % (staging, params["jobs"])]
            if exists:
                steps.append("terminate sessions on %s and %s it" % (
                    database, "rename" if params["keep_old"] else "drop"))
            steps.append("rename %s to %s and mark it with the backup id" % (staging, database))
        result["steps"] = steps
        result["changed"] = not params["validate_only"]
        timer.mark("checked")
        if module.check_mode:
            finish(module, result, timer, before, record["backup_id"])

        if streamed:
            result["verified_sha256"] = stream_into(module, target, pg_restore, staging, record,
                                                    store, s3, timer)
            result.update(validated=True, archive_entries=None)
            timer.mark("restored")
            result["replaced"] = swap(params, target, staging, database, exists, record)
            timer.mark("swapped")
            finish(module, result, timer, before, record["backup_id"])
        if not os.path.isdir(params["work_dir"]):
            raise RestoreError("work_dir %s does not exist. Nothing was changed" % params["work_dir"])
        handle, path = tempfile.mkstemp(prefix="failsafe-restore-%s-" % record["backup_id"],
                                        suffix=".dump", dir=params["work_dir"])
        os.close(handle)
        result["verified_sha256"] = download_verified(store, s3, record, path)
        timer.mark("downloaded")
        result["archive_entries"] = archive_entries(module, pg_restore, path)
        result["validated"] = True
        timer.mark("validated")
        if params["validate_only"]:
            finish(module, result, timer, before, before)
        restore_into(module, target, pg_restore, path, staging, record)
        timer.mark("restored")
        seconds = timer.between("validated", "restored") or 1e-9
        result["throughput_mb_s"] = round(os.path.getsize(path) / 1e6 / seconds, 1)
        result["replaced"] = swap(params, target, staging, database, exists, record)
        timer.mark("swapped")
    except (_s3.S3Error, PostgresError, PipelineError, RestoreError) as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finally:
        if path and os.path.exists(path):
            os.unlink(path)
    finish(module, result, timer, before, record["backup_id"])


@contextlib.contextmanager
def staging_database(target, staging, database):
    """Create `staging` (dropping one an interrupted run left: ours by its name); drop it again
    if the body fails or is interrupted (Ctrl-C, a stopped job), so no half-restored database
    stays behind. A RestoreError from the body is completed with what became of `staging`; if
    it cannot be dropped (the server died), the error says so and how it goes away."""
    from psycopg import sql

    with connect(target, application_name="failsafe.restore") as conn:
        drop_database(conn, staging)
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(staging)))
    try:
        yield
    except BaseException as exc:
        try:
            with connect(target, application_name="failsafe.restore") as conn:
                drop_database(conn, staging)
        except Exception as lost:  # pylint: disable=broad-except
            if not isinstance(exc, Exception):
                raise exc  # Ctrl-C: stop now, the next restore drops it first
            raise RestoreError(
                "%s. The staging database %s could not be dropped (%s): the next restore drops "
                "it first, or DROP DATABASE %s WITH (FORCE) once the server answers; %s was not "
                "touched" % (str(exc).rstrip(". "), staging, lost, staging, database))
        if isinstance(exc, RestoreError):
            raise RestoreError("%s. The staging database was dropped; %s was not touched"
                               % (str(exc).rstrip(". "), database))
        raise


def stream_into(module, target, pg_restore, staging, record, store, s3, timer):
    """Download, decompress and pg_restore in one stream; refuse a mismatch before the end."""
    params = module.params

    def verify(digest, size):
        check_digest(record, digest, size)
        timer.mark("downloaded")
        timer.mark("validated")

    with staging_database(target, staging, params["database"] or "the target database"):
        try:
            digest, _size = download_into(
                store, s3, record["key"],
                [pg_restore, "--no-password", "--exit-on-error", "-d", staging],
                env=libpq_env(target, staging, inherit=False), verify=verify)
        except PipelineError as exc:
            raise RestoreError("streamed restore of backup %s failed: %s" % (
                record["backup_id"], str(exc)[-1000:]))
    return digest


def restore_into(module, target, pg_restore, path, staging, record):
    params = module.params
    with staging_database(target, staging, params["database"] or "the target database"):
        code, _out, err = module.run_command(
            [pg_restore, "--no-password", "--exit-on-error", "-j", str(params["jobs"]), "-d",
             staging, path], environ_update=libpq_env(target, staging, inherit=False))
        if code != 0:
            raise RestoreError("pg_restore of backup %s failed: %s" % (
                record["backup_id"], err.strip()[-1000:]))


def swap(params, target, staging, database, exists, record):
    from psycopg import sql

    replaced = ""
    with connect(target, application_name="failsafe.restore") as conn:
        if exists:
            if params["keep_old"]:
                old = "%s__before_%s" % (database[:40], catalog.stamp(catalog.utcnow()))
                terminate(conn, database)
                conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(database), sql.Identifier(old)))
                replaced = "renamed to %s" % old
            else:
                drop_database(conn, database)
                replaced = "dropped"
        terminate(conn, staging)
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
            sql.Identifier(staging), sql.Identifier(database)))
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(database), sql.Literal("%s%s sha256=%s restored_at=%s" % (
                MARK, record["backup_id"], record["sha256"], catalog.iso(catalog.utcnow())))))
    return replaced


def finish(module, result, timer, before, after):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(database=result["database"], backup_id=before),
                              after=dict(database=result["database"], backup_id=after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
