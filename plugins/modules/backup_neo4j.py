#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_neo4j
short_description: Stream a Neo4j database dump to S3, hashed and catalogued on the way
version_added: 0.3.0
description:
  - "Runbook 002 (Neo4j, neo4j-admin dumps), on the database host: C(neo4j-admin database dump
    DATABASE --to-stdout) -> C(zstd) -> S3 multipart upload with SHA-256 in-process. No local
    copy."
  - "Catalog: C(<prefix>/neo4j/YYYY/MM/DD/neo4j_YYYYMMDD_HHMMSS.dump.zst), dataset = the
    database, status C(success) only after the upload completed and its checksum was stored."
  - "C(neo4j-admin database dump) needs the database stopped (Neo4j Community) or, in
    Enterprise, offers an online C(neo4j-admin database backup) instead; give O(stop_command) /
    O(start_command) to stop and start it around the dump (both run even when the dump fails)."
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
      - Checks the bucket and the tool and reports the key and the commands; runs none.
  diff_mode:
    support: full
  idempotent:
    description: Every run takes a new dump.
    support: none
options:
  database:
    description: The Neo4j database to dump.
    type: str
    default: neo4j
  neo4j_admin:
    description: Path of C(neo4j-admin).
    type: path
    default: neo4j-admin
  stop_command:
    description: Command (argv) that stops the database before the dump; empty runs none.
    type: list
    elements: str
    default: []
  start_command:
    description: Command (argv) that starts it again afterwards; empty runs none.
    type: list
    elements: str
    default: []
  source_name:
    description: Name of the source in the catalog (the inventory host).
    type: str
    default: neo4j
  source_region:
    description: Region of the source, recorded in the catalog.
    type: str
  set_id:
    description: Backup set the dump belongs to; empty makes a set of its own and writes its manifest.
    type: str
    default: ""
  part_size_mb:
    description: Multipart part size in MiB (doubles every 1000 parts).
    type: int
    default: 8
requirements:
  - neo4j-admin (Neo4j 5) and zstd on the host that runs the module
'''

EXAMPLES = r'''
- name: Dump the graph into S3
  failsafe.datastores.backup_neo4j:
    database: neo4j
    stop_command: [neo4j, stop]
    start_command: [neo4j, start]
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: backup-writer
      secret_key: "{{ vault_s3_secret_key }}"
  delegate_to: neo4j-core-0
'''

RETURN = r'''
backup:
  description: The catalog record of the dump.
  returned: always
  type: dict
member:
  description: The dump as a member of a set manifest.
  returned: always
  type: dict
manifest_key:
  description: Key of the set manifest this module wrote; empty when a playbook completes the set.
  returned: always
  type: str
commands:
  description: The commands run (or that would be).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds for C(checks), C(stop), C(dump_upload), C(start) and C(total).
  returned: always
  type: dict
diff:
  description: The catalog entry before (none) and after.
  returned: when diff mode is on
  type: dict
'''

import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog
from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
from ansible_collections.failsafe.datastores.plugins.module_utils._backup_pg import (
    PipelineError,
    find_tool,
    pipeline_upload,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

ENGINE = "neo4j"
EXTENSION = "dump.zst"
FORMAT = "neo4j-admin-dump+zstd"
STEPS = (("checks", None, "checked"), ("stop", "checked", "stopped"),
         ("dump_upload", "stopped", "uploaded"), ("start", "uploaded", "started"))


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
            database=dict(type="str", default="neo4j"),
            neo4j_admin=dict(type="path", default="neo4j-admin"),
            stop_command=dict(type="list", elements="str", default=[]),
            start_command=dict(type="list", elements="str", default=[]),
            source_name=dict(type="str", default="neo4j"),
            source_region=dict(type="str"),
            set_id=dict(type="str", default=""),
            part_size_mb=dict(type="int", default=8),
        ),
        supports_check_mode=True,
    )
    _s3.ensure_boto3(module)
    params = module.params
    store = params["store"]
    timer = Timer()
    admin = shutil.which(params["neo4j_admin"]) or params["neo4j_admin"]
    dump = [admin, "database", "dump", params["database"], "--to-stdout"]
    result = dict(changed=False, backup={}, member={}, manifest_key="",
                  commands=[" ".join(c) for c in (params["stop_command"], dump,
                                                  params["start_command"]) if c])
    stopped = False
    try:
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        zstd = [find_tool("zstd"), "-q", "-c", "-1", "-T2"]
        now = catalog.utcnow()
        key, bid = catalog.free_backup_key(store, s3, ENGINE, now, EXTENSION)
        set_name = params["set_id"] or catalog.set_id(now)
        record = dict(backup_id=bid, set_id=set_name, engine=ENGINE, created=catalog.iso(now),
                      status=catalog.STATUS_UPLOADING, source_host=params["source_name"],
                      source_region=params["source_region"], format=FORMAT, key=key,
                      dataset=params["database"])
        result.update(changed=True, backup=catalog.summary(record))
        timer.mark("checked")
        if module.check_mode:
            finish(module, result, timer)
        try:
            if params["stop_command"]:
                run(module, params["stop_command"], "the stop command")
                stopped = True
            timer.mark("stopped")
            upload, _errors = pipeline_upload(store, s3, key, catalog.to_metadata(record),
                                              [dump, zstd], None,
                                              params["part_size_mb"] * _s3.MiB, 4)
            timer.mark("uploaded")
        finally:
            if stopped and params["start_command"]:
                run(module, params["start_command"], "the start command")
        timer.mark("started")
        record.update(sha256=upload.sha256, size_bytes=upload.size, status=catalog.STATUS_SUCCESS)
        _s3.replace_metadata(store, s3, key, catalog.to_metadata(record))
        member = dict(engine=ENGINE, backup_id=bid, key=key, sha256=upload.sha256,
                      size_bytes=upload.size, status=catalog.STATUS_SUCCESS,
                      source_host=params["source_name"], source_region=params["source_region"],
                      database=params["database"])
        result.update(backup=catalog.summary(dict(record, stored_bytes=upload.size, problems=[])),
                      member=member)
        if not params["set_id"]:
            mkey = catalog.manifest_key(store.get("prefix"), set_name, now)
            _s3.put_bytes(store, s3, mkey, catalog.manifest_json(
                catalog.manifest(set_name, now, [member])))
            result["manifest_key"] = mkey
    except (_s3.S3Error, PipelineError, Neo4jError) as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finish(module, result, timer)


def finish(module, result, timer):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(), after=dict(catalog=result["backup"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
