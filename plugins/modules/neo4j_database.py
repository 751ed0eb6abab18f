#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: neo4j_database
short_description: Start, stop, fence read-only or re-topologise a Neo4j 5 database, and wait until it is online
version_added: 0.4.0
description:
  - "Read C(SHOW DATABASES) -> compare with what is asked -> C(START DATABASE), C(STOP
    DATABASE), C(ALTER DATABASE ... SET ACCESS READ ONLY | READ WRITE), C(ALTER DATABASE ...
    SET TOPOLOGY n PRIMARIES m SECONDARIES) (all on the C(system) database, the name as a
    parameter) -> wait until every member reports the status asked for and, online, as many
    primaries as the topology asks for."
  - "Runbook 000's C(neo4j-admin server promote) does not exist in Neo4j 5: a secondary is not
    promoted by hand; raise the primaries of the topology instead (O(topology)) and Neo4j
    allocates them."
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
      - Reads the database and returns the statements it would run; runs none.
  diff_mode:
    support: full
  idempotent:
    description: Only what differs from the database's state is changed.
    support: full
options:
  name:
    description: The database.
    type: str
    required: true
  state:
    description: V(online) (started) or V(offline) (stopped); omitted leaves it as it is.
    type: str
    choices: [online, offline]
  access:
    description: V(read-only) or V(read-write); omitted leaves it as it is.
    type: str
    choices: [read-only, read-write]
  topology:
    description: Primaries and secondaries the database should have; omitted leaves it as it is.
    type: dict
    suboptions:
      primaries:
        description: Number of primaries.
        type: int
        required: true
      secondaries:
        description: Number of secondaries.
        type: int
        default: 0
  wait:
    description: Wait until every member has the status asked for (and, online, enough primaries).
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait.
    type: float
    default: 300
'''

EXAMPLES = r'''
- name: Fence the graph read-only during the maintenance
  failsafe.datastores.neo4j_database:
    uri: neo4j://neo4j-core-0.neo4j:7687
    password: "{{ vault_neo4j_password }}"
    name: neo4j
    access: read-only

- name: Start it and wait until every member is online
  failsafe.datastores.neo4j_database:
    uri: neo4j://neo4j-core-0.neo4j:7687
    password: "{{ vault_neo4j_password }}"
    name: neo4j
    state: online
    wait_timeout: 600
'''

RETURN = r'''
database:
  description: The database after the run (neo4j_info's per-database summary).
  returned: always
  type: dict
statements:
  description: The statements run (or, in check mode, that would be).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds for C(read), C(change), C(wait) and C(total).
  returned: always
  type: dict
diff:
  description: Status, access and topology before and after.
  returned: when diff mode is on
  type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _neo4j
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

STEPS = (("read", None, "read"), ("change", "read", "changed"), ("wait", "changed", "waited"))


def view(entry):
    return dict(state=entry["requested_status"], access=entry["access"],
                primaries=entry["requested_primaries"],
                secondaries=entry["requested_secondaries"])


def plan(params, before):
    """(statements, after view) for what is asked."""
    statements = []
    after = dict(before)
    topology = params["topology"]
    if topology and (topology["primaries"], topology["secondaries"]) != (
            before["primaries"], before["secondaries"]):
        if topology["primaries"] < 1 or topology["secondaries"] < 0:
            raise _neo4j.Neo4jFailure("topology needs at least one primary and no negative "
                                      "number of secondaries; got %s. Nothing was changed"
                                      % topology)
        statements.append("ALTER DATABASE $name SET TOPOLOGY %d PRIMARIES %d SECONDARIES"
                          % (topology["primaries"], topology["secondaries"]))
        after.update(primaries=topology["primaries"], secondaries=topology["secondaries"])
    if params["access"] and params["access"] != before["access"]:
        statements.append("ALTER DATABASE $name SET ACCESS READ %s"
                          % ("ONLY" if params["access"] == "read-only" else "WRITE"))
        after["access"] = params["access"]
    if params["state"] and params["state"] != before["state"]:
        statements.append("%s DATABASE $name" % ("START" if params["state"] == "online"
                                                 else "STOP"))
        after["state"] = params["state"]
    return statements, after


def settled(entry, state):
    """Whether every member has reached `state` (online: also enough primaries online)."""
    if any(m["status"] != state for m in entry["members"]):
        return False
    return state != "online" or entry["online_primaries"] >= (entry["requested_primaries"] or 1)


def read(client, name):
    databases = _neo4j.summarise_databases(client.databases())
    if name not in databases:
        raise _neo4j.Neo4jFailure("database %s does not exist (the cluster has %s). Nothing "
                                  "was changed" % (name, ", ".join(sorted(databases)) or "none"))
    return databases[name]


def main():
    spec = _neo4j.argument_spec()
    spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["online", "offline"]),
        access=dict(type="str", choices=["read-only", "read-write"]),
        topology=dict(type="dict", options=dict(primaries=dict(type="int", required=True),
                                                secondaries=dict(type="int", default=0))),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="float", default=300),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    _neo4j.ensure_driver(module)
    params = module.params
    timer = Timer()
    result = dict(changed=False, database={}, statements=[])
    client = _neo4j.Neo4jClient(params)
    before = after = {}
    try:
        entry = read(client, params["name"])
        result["database"] = entry
        before = view(entry)
        statements, after = plan(params, before)
        result["statements"] = statements
        result["changed"] = bool(statements)
        timer.mark("read")
        if not module.check_mode:
            for statement in statements:
                doing = "%s on %s" % (statement.replace("$name", params["name"]), params["name"])
                client.query(statement, {"name": params["name"]}, doing=doing)
            timer.mark("changed")
            if params["wait"]:
                result["database"] = wait(client, params, after["state"] or before["state"])
            else:
                result["database"] = read(client, params["name"])
            timer.mark("waited")
    except _neo4j.Neo4jFailure as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finally:
        client.close()
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=before, after=after)
    module.exit_json(**result)


def wait(client, params, state):
    deadline = time.monotonic() + params["wait_timeout"]
    while True:
        entry = read(client, params["name"])
        if settled(entry, state):
            return entry
        if time.monotonic() >= deadline:
            members = ", ".join("%s %s %s%s" % (m["address"], m["role"], m["status"],
                                                (" (" + m["message"] + ")") if m["message"]
                                                else "") for m in entry["members"])
            raise _neo4j.Neo4jFailure(
                "database %s did not reach %s within %s s: %s primaries online of %s; members: "
                "%s. The statements were run; look at the unavailable members (neo4j_info)"
                % (params["name"], state, params["wait_timeout"], entry["online_primaries"],
                   entry["requested_primaries"], members))
        time.sleep(0.5)


if __name__ == "__main__":
    main()
