#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: restore_postgresql_pitr
short_description: Point-in-time recovery of PostgreSQL from a base backup and the WAL archive in S3
version_added: 0.3.0
description:
  - "Runbook 001 \"PostgreSQL PITR\": restores a base backup (M(failsafe.datastores.backup_postgresql_base))
    into a new instance in O(path) and replays the archived WAL
    (M(failsafe.datastores.backup_postgresql_wal)) up to O(target_time), then promotes it."
  - "Order: choose the newest successful base backup that ended before O(target_time) (or
    O(backup_id)) -> stream it from S3 through C(zstd -d | tar -x) into a new directory while
    hashing SHA-256 -> compare with the catalog (a mismatch removes the directory and refuses,
    nothing was started) -> configure recovery (C(recovery.signal), C(restore_command) with the
    collection's WAL fetcher, which checks each file's SHA-256, C(recovery_target_time),
    C(recovery_target_action=promote), C(archive_mode=off) so the new timeline never enters the
    source's archive) -> start -> wait until promoted."
  - The instance listens on O(host) and a free port from O(port); its roles and passwords are the
    source's. Move the data where it belongs, or dump what you need from it (runbook 003 "Recover
    deleted data"), then remove it with M(failsafe.datastores.restore_scratch_postgresql) (same
    O(path)).
  - An instance already running in O(path) is reported as it is (changed=false).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.backup
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the catalog and reports the base backup it would use; downloads nothing.
  diff_mode:
    support: full
  idempotent:
    description: An instance running in O(path) is left as it is.
    support: full
options:
  target_time:
    description: Recover up to this moment (ISO 8601; a time without an offset is UTC).
    type: str
    required: true
  backup_id:
    description: The base backup to start from; V(latest) picks the newest that ended before O(target_time).
    type: str
    default: latest
  path:
    description: Directory of the new instance (data, configuration, log, WAL fetcher).
    type: path
    required: true
  host:
    description: Address it listens on.
    type: str
    default: 127.0.0.1
  port:
    description: First port tried (0 tries from 26432).
    type: int
    default: 0
  os_user:
    description: System user that runs the instance when the module runs as root.
    type: str
    default: postgres
  python:
    description: Interpreter the server runs the WAL fetcher with.
    type: path
    default: /usr/bin/python3
  timeout:
    description: Seconds to wait for the recovery and promotion.
    type: float
    default: 600
  bin_dir:
    description: Directory of C(pg_ctl); default the newest C(/usr/lib/postgresql/*/bin).
    type: path
requirements:
  - psycopg >= 3.1
  - zstd and tar
'''

EXAMPLES = r'''
- name: Recover to just before the accident, in a new instance
  failsafe.datastores.restore_postgresql_pitr:
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: restore-reader
      secret_key: "{{ vault_s3_secret_key }}"
    target_time: "2025-01-30T11:59:00Z"
    path: /var/tmp/pitr
  register: pitr
'''

RETURN = r'''
backup:
  description: The catalog record of the base backup used.
  returned: always
  type: dict
host:
  description: Address of the instance.
  returned: always
  type: str
port:
  description: Its port.
  returned: always
  type: int
recovered_to:
  description: Commit time of the last transaction replayed (ISO 8601), at or before O(target_time).
  returned: always
  type: str
timeline:
  description: The instance's timeline after the promotion.
  returned: always
  type: int
verified_sha256:
  description: SHA-256 of the base backup as read from S3.
  returned: always
  type: str
steps:
  description: The steps taken (or planned).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds for C(checks), C(download_verify), C(configure), C(recover) and C(total).
  returned: always
  type: dict
diff:
  description: The instance before and after.
  returned: when diff mode is on
  type: dict
'''

import json
import os
import pkgutil
import pwd
import shutil
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog
from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
from ansible_collections.failsafe.datastores.plugins.module_utils._backup_pg import (
    PipelineError,
    download_untar,
    find_bin,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    ensure_driver,
    PostgresError,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer
# Imported so that the module's payload carries the WAL fetcher it writes onto the host.
from ansible_collections.failsafe.datastores.plugins.module_utils._wal_s3 import WAL_DIR  # noqa: F401 pylint: disable=unused-import

ENGINE = "postgresql"
BASE_FORMAT = "pg_basebackup-tar+zstd"
STEPS = (("checks", None, "checked"), ("download_verify", "checked", "downloaded"),
         ("configure", "downloaded", "configured"), ("recover", "configured", "recovered"))


class PitrError(Exception):
    pass


def position_field(record, name):
    for item in (record.get("position") or "").split():
        key, _sep, value = item.partition("=")
        if key == name:
            return value
    return None


def choose_base(records, backup_id, target):
    bases = [r for r in records if r.get("format") == BASE_FORMAT]
    if backup_id not in (None, "", "latest"):
        return catalog.find(bases, backup_id, ENGINE)
    for record in catalog.by_time(bases):
        ended = catalog.parse_time(position_field(record, "end_time") or record["created"])
        if catalog.usable(record) and ended <= target:
            return record
    raise PitrError("no successful base backup ended before %s: the target is older than the "
                    "oldest base backup kept. Nothing was changed" % catalog.iso(target))


def extract_verified(store, s3, record, data_dir):
    digest, size, codes, errors = download_untar(store, s3, record["key"], data_dir)
    if digest != record["sha256"] or size != record.get("size_bytes", size):
        raise PitrError(
            "refusing base backup %s (%s): its SHA-256 does not match the catalog: expected %s "
            "(%s bytes), found %s (%s bytes). The extracted files were removed and nothing was "
            "started" % (record["backup_id"], record["key"], record["sha256"],
                         record.get("size_bytes"), digest, size))
    if codes != (0, 0):
        raise PitrError("could not unpack base backup %s: zstd %s, tar %s: %s" % (
            record["backup_id"], codes[0], codes[1], errors[-500:]))
    return digest


def free_port(host, port):
    import socket

    while port < 65000:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
                return port
            except OSError:
                port += 1
    raise PitrError("no free port on %s" % host)


def running_port(path):
    try:
        with open(os.path.join(path, "data", "postmaster.pid")) as handle:
            lines = handle.read().splitlines()
        os.kill(int(lines[0]), 0)
        return int(lines[3])
    except (OSError, ValueError, IndexError):
        return None


def query(path, sql):
    import psycopg

    with psycopg.connect(host=path, port=running_port(path), user="postgres", dbname="postgres",
                         connect_timeout=5, autocommit=True) as conn:
        return conn.execute(sql).fetchone()[0]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=_s3.store_option(),
            target_time=dict(type="str", required=True),
            backup_id=dict(type="str", default="latest"),
            path=dict(type="path", required=True),
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int", default=0),
            os_user=dict(type="str", default="postgres"),
            python=dict(type="path", default="/usr/bin/python3"),
            timeout=dict(type="float", default=600),
            bin_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    _s3.ensure_boto3(module)
    params = module.params
    store, path = params["store"], params["path"]
    timer = Timer()
    result = dict(changed=False, backup={}, host=params["host"], port=None, recovered_to=None,
                  timeline=None, verified_sha256="", steps=[])
    try:
        target = catalog.parse_time(params["target_time"])
    except ValueError:
        module.fail_json(msg="target_time %s is not an ISO 8601 time" % params["target_time"])
    as_root = os.geteuid() == 0
    user = None
    if as_root:
        try:
            user = pwd.getpwnam(params["os_user"])
        except KeyError:
            module.fail_json(msg="os_user %s does not exist: PostgreSQL refuses to run as root"
                             % params["os_user"])
    port = running_port(path)
    if port is not None:
        result.update(port=port, recovered_to=str(query(path, "SELECT pg_last_xact_replay_timestamp()")),
                      timeline=int(query(path, "SELECT timeline_id FROM pg_control_checkpoint()")))
        finish(module, result, timer, True)
    created = False
    try:
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        records = catalog.load_records(store, s3, [ENGINE])
        try:
            record = choose_base(records, params["backup_id"], target)
        except catalog.CatalogError as exc:
            raise PitrError("%s. Nothing was changed" % exc)
        result["backup"] = catalog.summary(record)
        sysid = (record.get("dataset") or "").partition(":")[2]
        result["steps"] = [
            "download base backup %s into %s/data, verifying its SHA-256" % (record["backup_id"], path),
            "configure recovery to %s with the WAL of system %s from S3" % (catalog.iso(target), sysid),
            "start on %s and wait for the promotion" % params["host"]]
        result["changed"] = True
        timer.mark("checked")
        if module.check_mode:
            finish(module, result, timer, False)
        pg_ctl = find_bin("pg_ctl", params["bin_dir"])
        if os.path.exists(path):
            raise PitrError("%s exists and holds no running instance: remove it first (a "
                            "restore never writes into a directory it did not create)" % path)
        data = os.path.join(path, "data")
        os.makedirs(data, 0o700)
        created = True
        result["verified_sha256"] = extract_verified(store, s3, record, data)
        timer.mark("downloaded")
        configure(params, store, record, sysid, path, data, target)
        if as_root:
            for root, dirs, files in os.walk(path):
                for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                    os.lchown(name, user.pw_uid, user.pw_gid)
        timer.mark("configured")
        port = free_port(params["host"], params["port"] or 26432)
        argv = [pg_ctl, "-D", data, "-l", os.path.join(path, "server.log"),
                "-o", "-c port=%d" % port, "-w", "-t", str(int(params["timeout"])), "start"]
        if as_root:
            argv = ["runuser", "-u", params["os_user"], "--"] + argv
        code, out, err = module.run_command(argv, cwd="/")
        if code != 0:
            raise PitrError("the recovered instance did not start: %s; see %s" % (
                (err or out).strip()[-300:], log_tail(path)))
        deadline = time.monotonic() + params["timeout"]
        while query(path, "SELECT pg_is_in_recovery()"):
            if time.monotonic() > deadline:
                raise PitrError("still in recovery after %ss; see %s" % (params["timeout"],
                                                                         log_tail(path)))
            time.sleep(0.1)
        timer.mark("recovered")
        last = query(path, "SELECT pg_last_xact_replay_timestamp()")
        result.update(port=port, recovered_to=last.isoformat() if last else None,
                      timeline=int(query(path, "SELECT substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)"), 16))
    except (_s3.S3Error, PostgresError, PipelineError, PitrError, OSError) as exc:
        if created and running_port(path) is None and "SHA-256" in str(exc):
            shutil.rmtree(path, ignore_errors=True)
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    except Exception as exc:  # psycopg errors while polling the new instance
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg="the recovered instance failed: %s: %s; see %s" % (
            exc.__class__.__name__, exc, log_tail(path)), **result)
    finish(module, result, timer, False)


def log_tail(path):
    try:
        with open(os.path.join(path, "server.log"), "rb") as handle:
            lines = handle.read().decode("utf-8", "replace").strip().splitlines()
        return "%s (last lines: %s)" % (os.path.join(path, "server.log"), " | ".join(lines[-4:]))
    except (IOError, OSError):
        return os.path.join(path, "server.log")


def configure(params, store, record, sysid, path, data, target):
    wal = os.path.join(path, "wal")
    os.makedirs(wal, 0o700)
    with open(os.path.join(wal, "failsafe_wal_s3.py"), "wb") as handle:
        handle.write(pkgutil.get_data("ansible_collections.failsafe.datastores.plugins.module_utils",
                                      "_wal_s3.py"))
    config = dict(endpoint_url=store.get("endpoint_url"), region=store.get("region"),
                  bucket=store["bucket"], prefix=store.get("prefix") or "",
                  system_identifier=sysid, access_key=store.get("access_key"),
                  secret_key=store.get("secret_key"))
    if store.get("ca_cert"):
        config["ca_cert"] = store["ca_cert"]
    config_path = os.path.join(wal, "wal-s3.json")
    with os.fdopen(os.open(config_path, os.O_WRONLY | os.O_CREAT, 0o600), "w") as handle:
        json.dump(config, handle)
    with open(os.path.join(path, "pg_hba.conf"), "w") as handle:
        handle.write("local all all trust\nhost all all 127.0.0.0/8 scram-sha-256\n"
                     "host all all ::1/128 scram-sha-256\n")
    for name in ("postgresql.conf", "pg_ident.conf"):
        conf = os.path.join(data, name)
        if not os.path.exists(conf):
            open(conf, "a").close()
    for stale in ("standby.signal", "postmaster.pid", "postmaster.opts"):
        if os.path.exists(os.path.join(data, stale)):
            os.unlink(os.path.join(data, stale))
    restore_command = "%s %s fetch %%f %%p --config %s" % (
        params["python"], os.path.join(wal, "failsafe_wal_s3.py"), config_path)
    settings = [
        ("listen_addresses", params["host"]), ("unix_socket_directories", path),
        ("hba_file", os.path.join(path, "pg_hba.conf")),
        ("ident_file", os.path.join(data, "pg_ident.conf")),
        ("archive_mode", "off"), ("ssl", "off"), ("primary_conninfo", ""),
        ("primary_slot_name", ""), ("restore_command", restore_command),
        ("recovery_target_time", target.strftime("%Y-%m-%d %H:%M:%S.%f+00")),
        ("recovery_target_action", "promote"), ("hot_standby", "on"),
        ("default_transaction_read_only", "off"),
    ]
    with open(os.path.join(data, "postgresql.auto.conf"), "a") as handle:
        handle.write("\n# Point-in-time recovery by failsafe.datastores.restore_postgresql_pitr\n")
        for name, value in settings:
            handle.write("%s = '%s'\n" % (name, value.replace("'", "''")))
    open(os.path.join(data, "recovery.signal"), "w").close()


def finish(module, result, timer, existed):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(running=existed),
                              after=dict(running=existed or (result["changed"] and not module.check_mode)))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
