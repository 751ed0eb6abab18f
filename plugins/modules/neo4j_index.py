#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: neo4j_index
short_description: Rebuild failed Neo4j indexes and wait until they are ONLINE
version_added: 0.4.0
description:
  - "Runbook 001 (Check and Rebuild Indexes): C(SHOW INDEXES) of the database -> for each
    index to rebuild, C(DROP INDEX) and run again the C(createStatement) that SHOW INDEXES
    gave for it (same type, labels, properties and options) -> poll C(SHOW INDEXES) until every
    selected index is C(ONLINE), reporting C(populationPercent)."
  - "Which ones: O(rebuild=failed) (default) rebuilds those in state C(FAILED) - a second run
    finds none and changes nothing; V(always) rebuilds every selected index; V(never) only
    waits."
  - "An index that belongs to a constraint cannot be dropped alone: the module refuses and
    names the constraint (drop and create the constraint instead)."
  - Tested against a scripted Bolt stand-in of a Neo4j 5 cluster, not a real Neo4j (docs/neo4j.md).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.neo4j
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the indexes and returns the statements it would run; runs none and does not wait.
  diff_mode:
    support: full
  idempotent:
    description: With O(rebuild=failed) or V(never); V(always) rebuilds at every run.
    support: partial
options:
  database:
    description: The database whose indexes are rebuilt.
    type: str
    default: neo4j
  names:
    description: Index names; empty selects every index of the database (C(LOOKUP) indexes excepted).
    type: list
    elements: str
    default: []
  rebuild:
    description: Which selected indexes to drop and create again.
    type: str
    choices: [failed, always, never]
    default: failed
  wait:
    description: Wait until every selected index is C(ONLINE).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait.
    type: float
    default: 600
'''

EXAMPLES = r'''
- name: Rebuild the indexes that failed, wait until they serve queries
  failsafe.datastores.neo4j_index:
    uri: bolt://neo4j-core-0.neo4j:7687
    password: "{{ vault_neo4j_password }}"
    database: neo4j
'''

RETURN = r'''
indexes:
  description: Per selected index after the run - state, populationPercent, type, labelsOrTypes, properties.
  returned: always
  type: dict
rebuilt:
  description: Indexes dropped and created again (or that would be).
  returned: always
  type: list
  elements: str
statements:
  description: The statements run (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds for C(read), C(rebuild), C(wait) and C(total).
  returned: always
  type: dict
diff:
  description: Index states before and after.
  returned: when diff mode is on
  type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _neo4j
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

STEPS = (("read", None, "read"), ("rebuild", "read", "rebuilt"), ("wait", "rebuilt", "waited"))
SHOW = ("SHOW INDEXES YIELD name, type, entityType, labelsOrTypes, properties, state, "
        "populationPercent, owningConstraint, createStatement")
KEPT = ("state", "populationPercent", "type", "labelsOrTypes", "properties")


def select(rows, names):
    by_name = dict((row["name"], row) for row in rows)
    missing = [name for name in names if name not in by_name]
    if missing:
        raise _neo4j.Neo4jFailure("no index %s in this database (it has %s). Nothing was changed"
                                  % (", ".join(missing), ", ".join(sorted(by_name)) or "none"))
    if names:
        return [by_name[name] for name in names]
    return [row for row in rows if row.get("type") != "LOOKUP"]


def plan(selected, rebuild):
    chosen = [row for row in selected
              if rebuild == "always" or (rebuild == "failed" and row["state"] == "FAILED")]
    owned = [row for row in chosen if row.get("owningConstraint")]
    if owned:
        raise _neo4j.Neo4jFailure(
            "index %s belongs to constraint %s: DROP INDEX cannot remove it; drop and create the "
            "constraint instead. Nothing was changed"
            % (owned[0]["name"], owned[0]["owningConstraint"]))
    statements = []
    for row in chosen:
        if not row.get("createStatement"):
            raise _neo4j.Neo4jFailure("SHOW INDEXES gave no createStatement for %s: cannot "
                                      "recreate it. Nothing was changed" % row["name"])
        statements += ["DROP INDEX %s" % _neo4j.quote_name(row["name"]), row["createStatement"]]
    return [row["name"] for row in chosen], statements


def main():
    spec = _neo4j.argument_spec()
    spec.update(
        database=dict(type="str", default="neo4j"),
        names=dict(type="list", elements="str", default=[]),
        rebuild=dict(type="str", choices=["failed", "always", "never"], default="failed"),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="float", default=600),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    _neo4j.ensure_driver(module)
    params = module.params
    timer = Timer()
    result = dict(changed=False, indexes={}, rebuilt=[], statements=[])
    client = _neo4j.Neo4jClient(params)
    before = {}
    try:
        selected = select(read(client, params["database"]), params["names"])
        before = dict((row["name"], row["state"]) for row in selected)
        result["indexes"] = dict((row["name"], dict((k, row.get(k)) for k in KEPT))
                                 for row in selected)
        result["rebuilt"], result["statements"] = plan(selected, params["rebuild"])
        result["changed"] = bool(result["rebuilt"])
        timer.mark("read")
        if not module.check_mode:
            for statement in result["statements"]:
                doing = "%s on %s" % (statement.split(" FOR ")[0], params["database"])
                client.query(statement, database=params["database"], doing=doing)
            timer.mark("rebuilt")
            if params["wait"]:
                result["indexes"] = wait(client, params, list(before))
            timer.mark("waited")
    except _neo4j.Neo4jFailure as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finally:
        client.close()
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=before, after=dict(
            (name, "ONLINE" if name in result["rebuilt"] else state)
            for name, state in before.items()) if module.check_mode else dict(
            (name, entry["state"]) for name, entry in result["indexes"].items()))
    module.exit_json(**result)


def read(client, database):
    return client.query(SHOW, database=database, doing="listing the indexes of %s" % database)


def wait(client, params, names):
    deadline = time.monotonic() + params["wait_timeout"]
    while True:
        rows = dict((row["name"], row) for row in read(client, params["database"]))
        current = dict((name, dict((k, rows.get(name, {}).get(k)) for k in KEPT))
                       for name in names)
        failed = [n for n, entry in current.items() if entry["state"] == "FAILED"]
        if failed:
            raise _neo4j.Neo4jFailure("index %s is FAILED again after the rebuild: look at the "
                                      "server's log for the population error" % ", ".join(failed))
        if all(entry["state"] == "ONLINE" for entry in current.values()):
            return current
        if time.monotonic() >= deadline:
            raise _neo4j.Neo4jFailure(
                "indexes not ONLINE within %s s: %s. They keep populating on the server; run "
                "again with rebuild=never to wait more" % (params["wait_timeout"], ", ".join(
                    "%s %s %s%%" % (n, e["state"], e["populationPercent"])
                    for n, e in current.items() if e["state"] != "ONLINE")))
        time.sleep(0.5)


if __name__ == "__main__":
    main()
