#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: restore_redis
short_description: Restore a Redis RDB backup from S3 by replacing the RDB file and restarting
version_added: 0.3.0
description:
  - "Runbook 003 \"Restore Redis\", done so that a bad backup never reaches the server: read the
    catalog -> stream the object through C(zstd -d) into a file beside the server's RDB while
    hashing SHA-256 -> compare with the catalog (a mismatch is refused, naming the backup and
    both digests; the server is not touched) -> C(redis-check-rdb) -> stop the server with
    C(SHUTDOWN NOSAVE) (so it does not overwrite the file on its way down) -> put the file in
    place of C(dir)/C(dbfilename) -> O(start_command) -> wait until it answers and count its keys."
  - A server with keys is refused unless O(existing=replace). A server with C(appendonly yes) is
    refused (it would load its AOF, not the RDB).
  - A marker file beside the RDB names the backup restored, so restoring the same backup again
    reports changed=false (unless O(force)).
  - Run it on the Redis host (C(delegate_to)); the file is written there.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.backup
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the catalog and the server and reports what it would do; downloads nothing.
  diff_mode:
    support: full
  idempotent:
    description: A server that already holds the backup (its marker) is left as it is.
    support: full
options:
  backup_id:
    description: The backup (C(redis_YYYYMMDD_HHMMSS)), a backup set (its Redis member), or V(latest).
    type: str
    default: latest
  target:
    description: The Redis server to restore.
    type: dict
    required: true
    suboptions:
      host:
        description: Host name or address.
        type: str
        required: true
      port:
        description: TCP port.
        type: int
        default: 6379
      username:
        description: ACL user; empty for the default user.
        type: str
      password:
        description: Password. Never returned or logged.
        type: str
      tls:
        description: Connect with TLS.
        type: bool
        default: false
      ca_cert:
        description: CA bundle for O(target.tls).
        type: path
      connect_timeout:
        description: Seconds to wait for a connection.
        type: float
        default: 5
  data_dir:
    description: The server's C(dir); default what C(CONFIG GET dir) answers.
    type: path
  dbfilename:
    description: The server's RDB file name; default what C(CONFIG GET dbfilename) answers.
    type: str
  start_command:
    description: Command (argv) that starts the server again, such as C([systemctl, start, redis-server]); required unless O(validate_only).
    type: list
    elements: str
  os_user:
    description: Owner of the restored RDB file; default the owner of O(data_dir).
    type: str
  existing:
    description: A server that holds keys is refused (V(fail)) or replaced (V(replace)).
    type: str
    choices: [fail, replace]
    default: fail
  force:
    description: Restore even when the server already holds this backup.
    type: bool
    default: false
  validate_only:
    description: Download, compare the checksum and check the RDB; stop and replace nothing.
    type: bool
    default: false
  start_timeout:
    description: Seconds to wait for the server to answer after the start.
    type: float
    default: 120
requirements:
  - zstd, redis-check-rdb
'''

EXAMPLES = r'''
- name: Restore the latest Redis backup
  failsafe.datastores.restore_redis:
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: restore-reader
      secret_key: "{{ vault_s3_secret_key }}"
    target:
      host: 127.0.0.1
      password: "{{ vault_redis_password }}"
    start_command: [systemctl, start, redis-server]
    existing: replace
  delegate_to: redis-east.example.com
'''

RETURN = r'''
backup:
  description: The catalog record of the backup restored (or validated).
  returned: always
  type: dict
already_restored:
  description: True when the server already held this backup.
  returned: always
  type: bool
validated:
  description: True when the checksum matched and redis-check-rdb accepted the file.
  returned: always
  type: bool
verified_sha256:
  description: SHA-256 of the bytes read from S3.
  returned: always
  type: str
counts:
  description: Keys per database after the restore.
  returned: always
  type: dict
steps:
  description: The steps taken (or planned).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds for C(checks), C(download_verify), C(validate), C(stop), C(start) and C(total).
  returned: always
  type: dict
diff:
  description: The backup the server holds before and after.
  returned: when diff mode is on
  type: dict
'''

import json
import os
import pwd
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog
from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
from ansible_collections.failsafe.datastores.plugins.module_utils._backup_pg import (
    PipelineError,
    download_decompressed,
    find_tool,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._backup_redis import (
    REDIS_SPEC,
    RedisError,
    Resp,
    describe,
    keyspace,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

ENGINE = "redis"
STEPS = (("checks", None, "checked"), ("download_verify", "checked", "downloaded"),
         ("validate", "downloaded", "validated"), ("stop", "validated", "stopped"),
         ("start", "stopped", "started"))


class RestoreError(Exception):
    pass


def marker_path(data_dir, dbfilename):
    return os.path.join(data_dir, dbfilename + ".failsafe-restore.json")


def read_marker(data_dir, dbfilename):
    try:
        with open(marker_path(data_dir, dbfilename)) as handle:
            return json.load(handle).get("backup_id")
    except (IOError, OSError, ValueError):
        return None


def pick(store, s3, records, wanted):
    if wanted.startswith("set_"):
        for manifest in catalog.load_manifests(store, s3):
            if manifest.get("set_id") == wanted:
                members = [m for m in manifest.get("members") or [] if m.get("engine") == ENGINE]
                if not members:
                    raise RestoreError("backup set %s has no Redis member. Nothing was changed"
                                       % wanted)
                wanted = members[0]["backup_id"]
                break
        else:
            raise RestoreError("no backup set %s in the catalog. Nothing was changed" % wanted)
    try:
        record = catalog.find(records, wanted, ENGINE)
    except catalog.CatalogError as exc:
        raise RestoreError("%s. Nothing was changed" % exc)
    if not catalog.usable(record):
        raise RestoreError("backup %s is not a usable success (%s). Nothing was changed"
                           % (record["backup_id"], "; ".join(record["problems"])))
    return record


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=_s3.store_option(),
            backup_id=dict(type="str", default="latest"),
            target=dict(type="dict", required=True, options=dict(REDIS_SPEC)),
            data_dir=dict(type="path"),
            dbfilename=dict(type="str"),
            start_command=dict(type="list", elements="str"),
            os_user=dict(type="str"),
            existing=dict(type="str", choices=["fail", "replace"], default="fail"),
            force=dict(type="bool", default=False),
            validate_only=dict(type="bool", default=False),
            start_timeout=dict(type="float", default=120),
        ),
        required_if=[("validate_only", False, ["start_command"])],
        supports_check_mode=True,
    )
    _s3.ensure_boto3(module)
    params = module.params
    store, target = params["store"], params["target"]
    timer = Timer()
    result = dict(changed=False, backup={}, already_restored=False, validated=False,
                  verified_sha256="", counts={}, steps=[])
    before = None
    temp = None
    try:
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        record = pick(store, s3, catalog.load_records(store, s3, [ENGINE]), params["backup_id"])
        result["backup"] = catalog.summary(record)
        data_dir, dbfilename, counts, appendonly = params["data_dir"], params["dbfilename"], {}, None
        with Resp(target) as conn:
            data_dir = data_dir or conn.config_get("dir")
            dbfilename = dbfilename or conn.config_get("dbfilename")
            appendonly = conn.config_get("appendonly")
            counts = keyspace(conn.info("keyspace"))
        if not os.path.isdir(data_dir or ""):
            raise RestoreError("the data directory %s of Redis at %s is not on this host: run the "
                               "module on the Redis host (delegate_to). Nothing was changed"
                               % (data_dir, describe(target)))
        before = read_marker(data_dir, dbfilename)
        if not params["validate_only"]:
            if before == record["backup_id"] and not params["force"]:
                result["already_restored"] = True
                finish(module, result, timer, before, before)
            if appendonly == "yes":
                raise RestoreError("Redis at %s runs with appendonly yes: it would load its AOF, "
                                   "not the restored RDB. Turn AOF off for the restore (and back "
                                   "on afterwards). Nothing was changed" % describe(target))
            if sum(counts.values()) and params["existing"] == "fail":
                raise RestoreError("Redis at %s holds %d keys (%s): set existing=replace to "
                                   "replace them with backup %s. Nothing was changed" % (
                                       describe(target), sum(counts.values()),
                                       ", ".join("%s=%s" % kv for kv in sorted(counts.items())),
                                       record["backup_id"]))
        path = os.path.join(data_dir, dbfilename)
        result["steps"] = ["download %s and verify its SHA-256" % record["key"],
                           "redis-check-rdb the file"]
        if not params["validate_only"]:
            result["steps"] += ["SHUTDOWN NOSAVE %s" % describe(target),
                                "replace %s" % path, "start: %s" % " ".join(params["start_command"])]
        result["changed"] = not params["validate_only"]
        timer.mark("checked")
        if module.check_mode:
            finish(module, result, timer, before, record["backup_id"])

        temp = os.path.join(data_dir, ".%s.failsafe-restoring" % dbfilename)
        digest, size, code, err = download_decompressed(store, s3, record["key"], temp)
        if digest != record["sha256"] or size != record.get("size_bytes", size):
            raise RestoreError(
                "refusing backup %s (%s): its SHA-256 does not match the catalog: expected %s "
                "(%s bytes), found %s (%s bytes). The server was not touched"
                % (record["backup_id"], record["key"], record["sha256"],
                   record.get("size_bytes"), digest, size))
        if code != 0:
            raise RestoreError("zstd could not decompress backup %s: %s. The server was not "
                               "touched" % (record["backup_id"], err))
        result["verified_sha256"] = digest
        timer.mark("downloaded")
        check_code, out, err = module.run_command([find_tool("redis-check-rdb"), temp])
        if check_code != 0:
            raise RestoreError("redis-check-rdb rejects backup %s: %s. The server was not "
                               "touched" % (record["backup_id"], (out + err).strip()[-500:]))
        result["validated"] = True
        timer.mark("validated")
        if params["validate_only"]:
            finish(module, result, timer, before, before)
        owner = pwd.getpwnam(params["os_user"]) if params["os_user"] else os.stat(data_dir)
        uid = getattr(owner, "pw_uid", getattr(owner, "st_uid", None))
        gid = getattr(owner, "pw_gid", getattr(owner, "st_gid", None))
        shutdown(target)
        timer.mark("stopped")
        try:
            os.chmod(temp, 0o640)
            if os.geteuid() == 0:
                os.chown(temp, uid, gid)
            os.replace(temp, path)
            temp = None
            code, out, err = module.run_command(params["start_command"], cwd="/")
        except KeyboardInterrupt:
            # Ctrl-C while Redis is stopped: start it again (on whichever RDB is in place) first.
            module.run_command(params["start_command"], cwd="/")
            raise
        if code != 0:
            raise RestoreError("the restored RDB is in place but the start command failed (%s): "
                               "%s. Start Redis by hand" % (code, (err or out).strip()[-500:]))
        result["counts"] = wait_ready(target, params["start_timeout"])
        timer.mark("started")
        with open(marker_path(data_dir, dbfilename), "w") as handle:
            json.dump(dict(backup_id=record["backup_id"], sha256=digest,
                           restored_at=catalog.iso(catalog.utcnow())), handle)
    except (_s3.S3Error, RedisError, PipelineError, RestoreError, OSError, KeyError) as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finally:
        if temp and os.path.exists(temp):
            os.unlink(temp)
    finish(module, result, timer, before, record["backup_id"])


def shutdown(target, timeout=60):
    """SHUTDOWN NOSAVE, then wait until the port is closed."""
    try:
        with Resp(target) as conn:
            conn.send("SHUTDOWN", "NOSAVE")
            try:
                conn.reply()
            except RedisError:
                pass
    except RedisError as exc:
        if "cannot reach" not in str(exc):
            raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            Resp(dict(target, connect_timeout=0.5)).close()
        except RedisError:
            return
        time.sleep(0.05)
    raise RestoreError("Redis at %s still answers %ss after SHUTDOWN NOSAVE; nothing was replaced"
                       % (describe(target), timeout))


def wait_ready(target, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with Resp(dict(target, connect_timeout=1)) as conn:
                if conn.command("PING") == "PONG":
                    return keyspace(conn.info("keyspace"))
        except RedisError as exc:
            if time.monotonic() > deadline:
                raise RestoreError("Redis at %s does not answer %ss after the start: %s"
                                   % (describe(target), timeout, exc))
        time.sleep(0.05)


def finish(module, result, timer, before, after):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(backup_id=before), after=dict(backup_id=after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
