#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_postgresql_wal
short_description: Continuous WAL archiving of a PostgreSQL server to S3 (for point-in-time recovery)
version_added: 0.3.0
description:
  - Installs the collection's WAL archiver (a standard-library Python script, so it runs as the
    server's user without the collection's virtualenv) and its S3 configuration in O(script_dir)
    on the database host, and sets C(archive_command) with C(ALTER SYSTEM) and a reload.
  - "Each WAL file goes to C(<prefix>/wal/postgresql/<system identifier>/<file>), signed with its
    SHA-256 (the S3 server checks the bytes) and stored with it as metadata; a file already
    archived with other content is never overwritten (the archiver fails and PostgreSQL retries)."
  - Only the server named in O(server) is changed. Streaming standbys are not given a
    C(restore_command) (it would cost every promotion ~0.1 s while the startup process probes the
    archive); the PITR restore (M(failsafe.datastores.restore_postgresql_pitr)) sets one on the
    instance it creates.
  - C(archive_mode) must already be C(on) (changing it needs a restart); the module refuses
    otherwise, saying so.
  - With O(verify), a WAL switch proves that the archiver works (C(pg_stat_archiver)).
  - Run it on the database host (C(delegate_to)). The script and its configuration are written
    there, owned by the owner of the data directory.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.backup
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the server's settings and the files and reports what it would change.
  diff_mode:
    support: full
  idempotent:
    description: Settings and files that are already right are left alone.
    support: full
options:
  server:
    description: The primary whose WAL is archived (a superuser connection).
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
        description: A superuser (C(ALTER SYSTEM)).
        type: str
        default: postgres
      password:
        description: Password of O(server.user). Never returned or logged.
        type: str
      db:
        description: Database to connect to.
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
        description: CA certificate file for O(server.ssl_mode=verify-ca) and O(server.ssl_mode=verify-full).
        type: path
      log_file:
        description: The server's log file (C(failsafe_pg_log_file)); not used here, accepted so that the C(pg_conn) dict passes unchanged.
        type: path
  state:
    description:
      - V(present) archives to S3; V(absent) resets C(archive_command) to the value of the
        configuration file (the files stay).
    type: str
    choices: [present, absent]
    default: present
  script_dir:
    description: Directory on the database host for the archiver and its configuration (created, mode 0700, owned by the data directory's owner).
    type: path
    required: true
  python:
    description: Python interpreter the server runs the archiver with (the system one).
    type: path
    default: /usr/bin/python3
  verify:
    description: After a change, switch WAL and wait until the archiver has archived it.
    type: bool
    default: true
  verify_timeout:
    description: Seconds to wait for that.
    type: float
    default: 30
'''

EXAMPLES = r'''
- name: Archive WAL of the primary to S3
  failsafe.datastores.backup_postgresql_wal:
    server:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: wal-writer
      secret_key: "{{ vault_s3_secret_key }}"
    script_dir: /var/lib/postgresql/failsafe
  delegate_to: pg-east.example.com
'''

RETURN = r'''
archive_command:
  description: The C(archive_command) in force after the task.
  returned: always
  type: str
system_identifier:
  description: The cluster's system identifier (the WAL prefix in S3).
  returned: always
  type: str
wal_prefix:
  description: Where the WAL files go in the bucket.
  returned: always
  type: str
archiver:
  description: C(pg_stat_archiver) after the task (C(archived_count), C(last_archived_wal), C(failed_count), C(last_failed_wal)).
  returned: always
  type: dict
verified_wal:
  description: The WAL file switched to and seen archived with O(verify); empty otherwise.
  returned: always
  type: str
timings:
  description: Seconds for C(checks), C(configure), C(verify) and C(total).
  returned: always
  type: dict
diff:
  description: The archive_command and files before and after.
  returned: when diff mode is on
  type: dict
'''

import hashlib
import json
import os
import pkgutil
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    connect,
    describe,
    ensure_driver,
    PEER_SPEC,
    PostgresError,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import scalar
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer
from ansible_collections.failsafe.datastores.plugins.module_utils._wal_s3 import wal_prefix

SCRIPT = "failsafe_wal_s3.py"
CONFIG = "wal-s3.json"
STEPS = (("checks", None, "checked"), ("configure", "checked", "configured"),
         ("verify", "configured", "verified"))


def script_source():
    return pkgutil.get_data("ansible_collections.failsafe.datastores.plugins.module_utils",
                            "_wal_s3.py")


def wal_config(store, sysid):
    config = dict(endpoint_url=store.get("endpoint_url"), region=store.get("region"),
                  bucket=store["bucket"], prefix=store.get("prefix") or "",
                  system_identifier=sysid, access_key=store.get("access_key"),
                  secret_key=store.get("secret_key"))
    if store.get("ca_cert"):
        config["ca_cert"] = store["ca_cert"]
    return json.dumps(config, indent=2, sort_keys=True).encode("utf-8") + b"\n"


def command(python, script_dir, verb="push"):
    args = "%p %f" if verb == "push" else "%f %p"
    return "%s %s %s %s --config %s" % (python, os.path.join(script_dir, SCRIPT), verb, args,
                                        os.path.join(script_dir, CONFIG))


def file_digest(path):
    try:
        with open(path, "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()
    except (IOError, OSError):
        return None


def write_file(path, data, mode, uid, gid):
    partial = path + ".partial"
    with open(partial, "wb") as handle:
        handle.write(data)
    os.chmod(partial, mode)
    if os.geteuid() == 0:
        os.chown(partial, uid, gid)
    os.rename(partial, path)


def archiver(conn):
    row = conn.execute("SELECT archived_count, last_archived_wal, failed_count, last_failed_wal"
                       " FROM pg_stat_archiver").fetchone()
    return dict(row)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            server=dict(type="dict", required=True, options=dict(PEER_SPEC)),
            store=_s3.store_option(),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            script_dir=dict(type="path", required=True),
            python=dict(type="path", default="/usr/bin/python3"),
            verify=dict(type="bool", default=True),
            verify_timeout=dict(type="float", default=30),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    params = module.params
    store, server = params["store"], params["server"]
    timer = Timer()
    result = dict(changed=False, archive_command="", system_identifier="", wal_prefix="",
                  archiver={}, verified_wal="")
    try:
        with connect(server, application_name="failsafe.backup") as conn:
            if scalar(conn, "SELECT pg_is_in_recovery()"):
                raise PostgresError("%s is a standby: archive the primary's WAL (a standby "
                                    "with archive_mode=on archives nothing). Nothing was changed"
                                    % describe(server))
            mode = scalar(conn, "SHOW archive_mode")
            current = scalar(conn, "SHOW archive_command")
            sysid = str(scalar(conn, "SELECT system_identifier FROM pg_control_system()"))
            data_dir = scalar(conn, "SHOW data_directory")
            result.update(system_identifier=sysid, archive_command=current,
                          wal_prefix=wal_prefix(store.get("prefix"), sysid))
            if params["state"] == "present" and mode == "off":
                raise PostgresError("archive_mode is off on %s: set archive_mode = on (it needs a "
                                    "restart), then run this again. Nothing was changed"
                                    % describe(server))
            script_path = os.path.join(params["script_dir"], SCRIPT)
            config_path = os.path.join(params["script_dir"], CONFIG)
            source = script_source()
            config = wal_config(store, sysid)
            wanted = command(params["python"], params["script_dir"]) \
                if params["state"] == "present" else ""
            before = dict(archive_command=current, script=file_digest(script_path),
                          config=file_digest(config_path))
            after = dict(archive_command=wanted,
                         script=hashlib.sha256(source).hexdigest()
                         if params["state"] == "present" else before["script"],
                         config=hashlib.sha256(config).hexdigest()
                         if params["state"] == "present" else before["config"])
            result["changed"] = before != after
            timer.mark("checked")
            if result["changed"] and not module.check_mode:
                if params["state"] == "present":
                    owner = os.stat(data_dir) if os.path.isdir(data_dir) else None
                    if owner is None:
                        raise PostgresError(
                            "the data directory %s of %s is not on this host: run the module on "
                            "the database host (delegate_to). Nothing was changed"
                            % (data_dir, describe(server)))
                    if not os.path.isdir(params["script_dir"]):
                        os.makedirs(params["script_dir"], 0o700)
                    if os.geteuid() == 0:
                        os.chown(params["script_dir"], owner.st_uid, owner.st_gid)
                    write_file(script_path, source, 0o755, owner.st_uid, owner.st_gid)
                    write_file(config_path, config, 0o600, owner.st_uid, owner.st_gid)
                    conn.execute("ALTER SYSTEM SET archive_command = %s" % quote_literal(wanted))
                else:
                    conn.execute("ALTER SYSTEM RESET archive_command")
                conn.execute("SELECT pg_reload_conf()")
                deadline = time.monotonic() + 10
                # present: ours is in force; absent: the configuration file's value is again.
                while (scalar(conn, "SHOW archive_command") != wanted) if wanted else \
                        (scalar(conn, "SHOW archive_command") == current):
                    if time.monotonic() > deadline:
                        raise PostgresError("archive_command is not in force 10 s after the reload")
                    time.sleep(0.01)
            result["archive_command"] = scalar(conn, "SHOW archive_command")
            timer.mark("configured")
            if result["changed"] and params["verify"] and params["state"] == "present" \
                    and not module.check_mode:
                result["verified_wal"] = verify_archiving(conn, params["verify_timeout"])
            timer.mark("verified")
            result["archiver"] = archiver(conn)
            for key in ("last_archived_wal", "last_failed_wal"):
                result["archiver"][key] = result["archiver"][key] or None
    except (PostgresError, OSError) as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=before, after=after)
    module.exit_json(**result)


def quote_literal(text):
    return "'" + text.replace("'", "''") + "'"


def verify_archiving(conn, timeout):
    """pg_switch_wal() and wait until the archiver has archived that segment."""
    scalar(conn, "SELECT txid_current()")  # something to switch away from, even when idle
    walfile = scalar(conn, "SELECT pg_walfile_name(pg_switch_wal() - 1)")
    deadline = time.monotonic() + timeout
    while True:
        row = archiver(conn)
        if row["last_archived_wal"] and row["last_archived_wal"] >= walfile:
            return walfile
        if time.monotonic() > deadline:
            raise PostgresError(
                "WAL file %s was not archived within %ss (last archived %s, last failed %s): "
                "read the server log for failsafe-wal messages"
                % (walfile, timeout, row["last_archived_wal"], row["last_failed_wal"]))
        time.sleep(0.05)


if __name__ == "__main__":
    main()
