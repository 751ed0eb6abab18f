#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: restore_neo4j
short_description: Load a Neo4j dump from S3, verified before the database is touched
version_added: 0.3.0
description:
  - "Runbook 002 (Neo4j Manual Recovery), on the database host: read the catalog -> download
    the dump through C(zstd -d) into O(work_dir)/DATABASE.dump while hashing SHA-256 -> compare
    with the catalog (a mismatch is refused, naming the backup and both digests; nothing was
    stopped) -> O(stop_command) -> C(neo4j-admin database load DATABASE --from-path=DIR
    --overwrite-destination=true) -> O(start_command) (also when the load failed)."
  - Tested against a stand-in C(neo4j-admin) script that checks its arguments, not a real Neo4j.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.backup
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the catalog and reports the commands it would run; runs none.
  diff_mode:
    support: full
  idempotent:
    description: Every run loads the dump again.
    support: none
options:
  backup_id:
    description: The dump (C(neo4j_YYYYMMDD_HHMMSS)) or V(latest) of O(database).
    type: str
    default: latest
  database:
    description: The database to load into (and whose latest dump V(latest) picks).
    type: str
    default: neo4j
  neo4j_admin:
    description: Path of C(neo4j-admin).
    type: path
    default: neo4j-admin
  stop_command:
    description: Command (argv) that stops the database before the load; empty runs none.
    type: list
    elements: str
    default: []
  start_command:
    description: Command (argv) that starts it afterwards; empty runs none.
    type: list
    elements: str
    default: []
  validate_only:
    description: Download and compare the checksum; stop and load nothing.
    type: bool
    default: false
  work_dir:
    description: Directory for the dump while it is loaded (removed afterwards).
    type: path
    default: /var/tmp
'''

EXAMPLES = r'''
- name: Load the latest graph dump
  failsafe.datastores.restore_neo4j:
    database: neo4j
    stop_command: [neo4j, stop]
    start_command: [neo4j, start]
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: restore-reader
      secret_key: "{{ vault_s3_secret_key }}"
  delegate_to: neo4j-core-0
'''

RETURN = r'''
backup:
  description: The catalog record of the dump loaded (or validated).
  returned: always
  type: dict
validated:
  description: True when the checksum matched.
  returned: always
  type: bool
commands:
  description: The commands run (or that would be).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds for C(checks), C(download_verify), C(stop), C(load), C(start) and C(total).
  returned: always
  type: dict
diff:
  description: The backup loaded.
  returned: when diff mode is on
  type: dict
'''

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog
from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
from ansible_collections.failsafe.datastores.plugins.module_utils._backup_pg import (
    PipelineError,
    download_decompressed,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

ENGINE = "neo4j"
STEPS = (("checks", None, "checked"), ("download_verify", "checked", "downloaded"),
         ("stop", "downloaded", "stopped"), ("load", "stopped", "loaded"),
         ("start", "loaded", "started"))


class Neo4jError(Exception):
    pass


def run(module, argv, what):
    code, out, err = module.run_command(argv, cwd="/")
    if code != 0:
        raise Neo4jError("%s failed (%s): %s" % (what, code, (err or out).strip()[-500:]))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=_s3.store_option(),
            backup_id=dict(type="str", default="latest"),
            database=dict(type="str", default="neo4j"),
            neo4j_admin=dict(type="path", default="neo4j-admin"),
            stop_command=dict(type="list", elements="str", default=[]),
            start_command=dict(type="list", elements="str", default=[]),
            validate_only=dict(type="bool", default=False),
            work_dir=dict(type="path", default="/var/tmp"),
        ),
        supports_check_mode=True,
    )
    _s3.ensure_boto3(module)
    params = module.params
    store = params["store"]
    timer = Timer()
    admin = shutil.which(params["neo4j_admin"]) or params["neo4j_admin"]
    result = dict(changed=False, backup={}, validated=False, commands=[])
    directory = None
    try:
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        try:
            record = catalog.find(catalog.load_records(store, s3, [ENGINE]), params["backup_id"],
                                  ENGINE, params["database"]
                                  if params["backup_id"] in ("", "latest") else None)
        except catalog.CatalogError as exc:
            raise Neo4jError("%s. Nothing was changed" % exc)
        if not catalog.usable(record):
            raise Neo4jError("backup %s is not a usable success (%s). Nothing was changed"
                             % (record["backup_id"], "; ".join(record["problems"])))
        result["backup"] = catalog.summary(record)
        where = "%s/failsafe-neo4j-<random>" % params["work_dir"]
        load = [admin, "database", "load", params["database"], "--from-path=%s" % where,
                "--overwrite-destination=true"]
        if not params["validate_only"]:
            result["commands"] = [" ".join(c) for c in (params["stop_command"], load,
                                                        params["start_command"]) if c]
        result["changed"] = not params["validate_only"]
        timer.mark("checked")
        if module.check_mode:
            finish(module, result, timer, record)
        directory = tempfile.mkdtemp(prefix="failsafe-neo4j-", dir=params["work_dir"])
        load[4] = "--from-path=%s" % directory
        path = os.path.join(directory, "%s.dump" % params["database"])
        digest, size, code, err = download_decompressed(store, s3, record["key"], path)
        if digest != record["sha256"] or size != record.get("size_bytes", size):
            raise Neo4jError(
                "refusing backup %s (%s): its SHA-256 does not match the catalog: expected %s "
                "(%s bytes), found %s (%s bytes). Nothing was stopped or loaded"
                % (record["backup_id"], record["key"], record["sha256"],
                   record.get("size_bytes"), digest, size))
        if code != 0:
            raise Neo4jError("zstd could not decompress backup %s: %s. Nothing was stopped"
                             % (record["backup_id"], err))
        result["validated"] = True
        timer.mark("downloaded")
        if params["validate_only"]:
            finish(module, result, timer, record)
        stopped = False
        try:
            if params["stop_command"]:
                run(module, params["stop_command"], "the stop command")
                stopped = True
            timer.mark("stopped")
            run(module, load, "neo4j-admin database load")
            timer.mark("loaded")
        finally:
            if (stopped or not params["stop_command"]) and params["start_command"]:
                run(module, params["start_command"], "the start command")
        timer.mark("started")
    except (_s3.S3Error, PipelineError, Neo4jError, OSError) as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finally:
        if directory:
            shutil.rmtree(directory, ignore_errors=True)
    finish(module, result, timer, record)


def finish(module, result, timer, record):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(), after=dict(backup_id=record["backup_id"])
                              if result["changed"] else dict())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
