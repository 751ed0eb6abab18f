#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: backup_info
short_description: List the backup catalog, with freshness and size findings
version_added: 0.3.0
description:
  - Reads the catalog in S3 (the backup objects and their metadata, and the set manifests) and
    lists backups by engine, set and date with their sizes (runbook 002, "List Available
    Backups").
  - "Per engine: the newest successful backup and its age against O(max_age_hours) (runbooks:
    24 h) and O(alert_age_hours) (25 h), and the size of the newest backup against the previous
    one (alert above O(max_growth), +50 %)."
  - Backups whose status is not C(success) (interrupted, failed, no checksum) are listed with
    their problems and never count as the newest success.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.backup
  - failsafe.datastores.attributes
  - failsafe.datastores.attributes.INFO_MODULE
attributes:
  idempotent:
    description: Only reads.
    support: full
options:
  engines:
    description: Engines to list (the collection's labels).
    type: list
    elements: str
    default: [postgresql, redis]
    choices: [postgresql, redis, neo4j, qdrant, opensearch]
  set_id:
    description: Only the members of this backup set.
    type: str
  since:
    description: Only backups created at or after this ISO 8601 time or date (C(2025-01-28)).
    type: str
  max_age_hours:
    description: The newest success of an engine older than this is late.
    type: float
    default: 24
  alert_age_hours:
    description: The newest success of an engine older than this (or none) is an alert.
    type: float
    default: 25
  max_growth:
    description: Size growth of the newest backup against the previous one that is an alert (0.5 is +50 %).
    type: float
    default: 0.5
'''

EXAMPLES = r'''
- name: List the backups
  failsafe.datastores.backup_info:
    store:
      endpoint_url: https://minio.example.com:9000
      bucket: backups
      prefix: prod
      access_key: backup-writer
      secret_key: "{{ vault_s3_secret_key }}"
    engines: [postgresql]
  register: catalog

- name: Show the newest PostgreSQL backup
  ansible.builtin.debug:
    msg: "{{ catalog.newest.postgresql }}"
'''

RETURN = r'''
backups:
  description: Backups, newest first, with C(backup_id), C(set_id), C(engine), C(created), C(status), C(size_bytes), C(sha256), C(key) and C(problems).
  returned: always
  type: list
  elements: dict
sets:
  description: Set manifests, newest first (C(set_id), C(created), C(status), C(members) with their positions).
  returned: always
  type: list
  elements: dict
newest:
  description: Per engine, the newest successful backup (null when there is none).
  returned: always
  type: dict
freshness:
  description: Per engine, C(status) (C(ok), C(late), C(alert)), C(age_hours), C(newest) and a C(message).
  returned: always
  type: dict
size_changes:
  description: Per engine, the newest success against the previous one (C(growth), C(status), C(message)).
  returned: always
  type: dict
listing:
  description:
    - "The backups as the runbook lists them, per engine, newest first
      (C(postgresql_20250130_020000: 2025-01-30 02:00:00 (128.45 MB)), with the problems of a
      backup that is not a success)."
  returned: always
  type: list
  elements: str
problems:
  description: Every finding an operator must act on (late or missing backups, size alerts, backups that are not a success), one sentence each.
  returned: always
  type: list
  elements: str
timings:
  description: Seconds to read the catalog (C(catalog)) and C(total).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog
from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store=_s3.store_option(),
            engines=dict(type="list", elements="str", default=["postgresql", "redis"],
                         choices=list(catalog.ENGINES)),
            set_id=dict(type="str"),
            since=dict(type="str"),
            max_age_hours=dict(type="float", default=24),
            alert_age_hours=dict(type="float", default=25),
            max_growth=dict(type="float", default=0.5),
        ),
        supports_check_mode=True,
    )
    _s3.ensure_boto3(module)
    params = module.params
    store = params["store"]
    timer = Timer()
    try:
        since = catalog.parse_time(params["since"]) if params["since"] else None
    except ValueError:
        module.fail_json(msg="since=%s is not an ISO 8601 time or date" % params["since"])
    try:
        s3 = _s3.client(store)
        _s3.check_bucket(store, s3)
        records = catalog.load_records(store, s3, params["engines"])
        manifests = catalog.load_manifests(store, s3)
    except _s3.S3Error as exc:
        module.fail_json(msg=str(exc), timings=dict(total=timer.since_start()))
    timer.mark("catalog")
    result = evaluate(records, manifests, params, catalog.utcnow())
    selected = records
    if params["set_id"]:
        selected = [r for r in selected if r.get("set_id") == params["set_id"]]
    if since is not None:
        selected = [r for r in selected if catalog.created(r) >= since]
    result.update(
        changed=False,
        listing=listing(selected, params["engines"]),
        backups=[catalog.summary(r) for r in selected],
        sets=[m for m in manifests if not params["set_id"] or m.get("set_id") == params["set_id"]],
        timings=timer.report((("catalog", None, "catalog"),)),
    )
    module.exit_json(**result)


def listing(records, engines):
    """Lines like the runbook's `restore_backup.py --list` (pure)."""
    lines = []
    for engine in engines:
        mine = [r for r in records if r.get("engine") == engine]
        lines.append("%s Backups:%s" % (engine.upper(), "" if mine else " none"))
        for record in mine:
            when = catalog.created(record).strftime("%Y-%m-%d %H:%M:%S")
            size = record.get("size_bytes") or record.get("stored_bytes") or 0
            status = "" if record.get("status") == catalog.STATUS_SUCCESS else \
                " [%s]" % "; ".join(record.get("problems") or [record.get("status")])
            lines.append("  %s: %s (%.2f MB)%s%s" % (
                record["backup_id"], when, size / 1048576.0,
                " %s" % record["dataset"] if record.get("dataset") else "", status))
    return lines


def evaluate(records, manifests, params, now):
    """Newest success, freshness, size changes and the problems, per engine (pure)."""
    engines = params["engines"]
    fresh = catalog.freshness(records, engines, now, params["max_age_hours"],
                              params["alert_age_hours"])
    sizes = dict((e, catalog.size_change(records, e, params["max_growth"])) for e in engines)
    newest = {}
    for engine in engines:
        found = catalog.newest_success(records, engine)
        newest[engine] = catalog.summary(found) if found else None
    problems = [f["message"] for f in fresh.values() if f["status"] != "ok"]
    problems += [s["message"] for s in sizes.values() if s["status"] != "ok"]
    for record in records:
        if record.get("problems") and record.get("status") != catalog.STATUS_UPLOADING:
            problems.append("backup %s is not usable: %s" % (record["backup_id"],
                                                             "; ".join(record["problems"])))
    return dict(newest=newest, freshness=fresh, size_changes=sizes, problems=problems)


if __name__ == "__main__":
    main()
