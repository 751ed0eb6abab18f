#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: neo4j_server
short_description: Enable, cordon, deallocate or drop a server of a Neo4j 5 cluster
version_added: 0.4.0
description:
  - "Runbook 000 (Remove Failed Core, Rejoin Cluster) in Neo4j 5 terms: read C(SHOW SERVERS)
    -> C(ENABLE SERVER) a free (new) or cordoned server, C(CORDON SERVER) (no new
    allocations), C(DEALLOCATE DATABASES FROM SERVER) (its databases move to other enabled
    servers; the module waits until it is C(Deallocated)), or remove it: deallocate when
    needed, then C(DROP SERVER)."
  - "Check mode sends Neo4j's own dry run, C(DRYRUN DEALLOCATE DATABASES FROM SERVER), and
    returns the moves Neo4j would make (RV(plan)); when Neo4j refuses it (no enabled server can
    take the databases) the task fails with Neo4j's reason, in check mode as in a real run."
  - "Runbook 000's C(neo4j-admin server unbind) and C(neo4j-admin server enable) are for
    Neo4j 4 and a member that keeps its store; a replacement with an empty volume joins as a
    free server and is enabled with O(state=enabled)."
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
      - Reads the server; for a deallocation runs C(DRYRUN DEALLOCATE) (changes nothing) and
        returns its plan.
  diff_mode:
    support: full
  idempotent:
    description: A server already in the state asked for is left alone.
    support: full
options:
  server:
    description: The server's id or name (C(SHOW SERVERS)).
    type: str
    required: true
  state:
    description:
      - V(enabled), V(cordoned), V(deallocated) (no database left on it) or V(absent)
        (deallocated when needed, then dropped).
    type: str
    choices: [enabled, cordoned, deallocated, absent]
    required: true
  wait_timeout:
    description: Seconds to wait for a deallocation to finish.
    type: float
    default: 600
'''

EXAMPLES = r'''
- name: Show where the failed member's databases would go
  failsafe.datastores.neo4j_server:
    uri: neo4j://neo4j-core-0.neo4j:7687
    password: "{{ vault_neo4j_password }}"
    server: neo4j-core-1
    state: absent
  check_mode: true

- name: Enable the replacement
  failsafe.datastores.neo4j_server:
    uri: neo4j://neo4j-core-0.neo4j:7687
    password: "{{ vault_neo4j_password }}"
    server: 8a4b6e0c-5d2f-4b8e-9f1e-2f3b4c5d6e7f
    state: enabled
'''

RETURN = r'''
server:
  description: The server's SHOW SERVERS row before the run (empty when it did not exist).
  returned: always
  type: dict
plan:
  description: Moves of a deallocation (database, fromServerName, toServerName, toServerId, mode), from C(DRYRUN DEALLOCATE).
  returned: always
  type: list
  elements: dict
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
  description: The server's state before and after.
  returned: when diff mode is on
  type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _neo4j
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

STEPS = (("read", None, "read"), ("change", "read", "changed"), ("wait", "changed", "waited"))
ENABLE = "ENABLE SERVER $server"
CORDON = "CORDON SERVER $server"
DEALLOCATE = "DEALLOCATE DATABASES FROM SERVER $server"
DRYRUN = ("DRYRUN DEALLOCATE DATABASES FROM SERVER $server YIELD database, fromServerName, "
          "fromServerId, toServerName, toServerId, mode")
DROP = "DROP SERVER $server"
DEALLOCATED = ("Deallocated", "Deallocating")


def plan(server, wanted, name):
    """(statements, state after) for a server row (None: missing) and the state asked."""
    if server is None:
        if wanted == "absent":
            return [], "absent"
        raise _neo4j.Neo4jFailure(
            "no server %s in SHOW SERVERS: give its id or name as SHOW SERVERS lists them (a "
            "new member appears there as Free once it runs). Nothing was changed" % name)
    state = server["state"]
    if wanted == "enabled":
        if state == "Enabled":
            return [], state
        if state in ("Free", "Cordoned"):
            return [ENABLE], "Enabled"
    elif wanted == "cordoned":
        if state == "Cordoned":
            return [], state
        if state == "Enabled":
            return [CORDON], "Cordoned"
    elif wanted == "deallocated":
        if state in DEALLOCATED:
            return [], "Deallocated"
        if state in ("Enabled", "Cordoned"):
            return [DEALLOCATE], "Deallocated"
    elif wanted == "absent":
        if state in ("Enabled", "Cordoned"):
            return [DEALLOCATE, DROP], "absent"
        return [DROP], "absent"
    raise _neo4j.Neo4jFailure(
        "server %s is %s: Neo4j cannot make it %s from there (a deallocated server can only be "
        "dropped; a replacement joins as a new, free server). Nothing was changed"
        % (name, state, wanted))


def main():
    spec = _neo4j.argument_spec()
    spec.update(
        server=dict(type="str", required=True),
        state=dict(type="str", required=True,
                   choices=["enabled", "cordoned", "deallocated", "absent"]),
        wait_timeout=dict(type="float", default=600),
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    _neo4j.ensure_driver(module)
    params = module.params
    timer = Timer()
    result = dict(changed=False, server={}, plan=[], statements=[])
    client = _neo4j.Neo4jClient(params)
    before = after = None
    try:
        server = _neo4j.find_server(client.servers(), params["server"])
        result["server"] = server or {}
        before = server["state"] if server else "absent"
        statements, after = plan(server, params["state"], params["server"])
        result["statements"] = statements
        result["changed"] = bool(statements)
        # Address the server by its id from here on (a name can be reused by a replacement).
        arguments = {"server": server["serverId"]} if server else {}
        if DEALLOCATE in statements:
            result["plan"] = client.query(
                DRYRUN, arguments, doing="planning the deallocation of server %s (DRYRUN)"
                % params["server"])
        timer.mark("read")
        if not module.check_mode:
            for statement in statements:
                if statement == DROP and server["state"] == "Deallocating":
                    wait_deallocated(client, server, params)
                client.query(statement, arguments, doing="%s %s" % (
                    statement.replace(" $server", ""), params["server"]))
                if statement == DEALLOCATE:
                    wait_deallocated(client, server, params)
            timer.mark("changed")
            timer.mark("waited")
    except _neo4j.Neo4jFailure as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finally:
        client.close()
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(before=dict(state=before), after=dict(state=after))
    module.exit_json(**result)


def wait_deallocated(client, server, params):
    deadline = time.monotonic() + params["wait_timeout"]
    while True:
        found = _neo4j.find_server(client.servers(), server["serverId"])
        if found is None or found["state"] == "Deallocated":
            return
        if time.monotonic() >= deadline:
            raise _neo4j.Neo4jFailure(
                "server %s is still %s after %s s, hosting %s: the databases are still being "
                "moved; run again later (nothing is undone)"
                % (params["server"], found["state"], params["wait_timeout"],
                   ", ".join(found.get("hosting") or [])))
        time.sleep(0.5)


if __name__ == "__main__":
    main()
