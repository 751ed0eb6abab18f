#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: neo4j_info
short_description: State of a Neo4j 5 cluster - servers, databases, what is wrong
version_added: 0.4.0
description:
  - "Runbook 000 (Neo4j Failover, Detect; Verify): C(SHOW SERVERS) (every server's state,
    health and the databases it hosts) and C(SHOW DATABASES) (every database on every server
    with its role, status and access), summarised per database (primaries online against the
    topology asked for, the writer) with the problems found, such as a lost core member."
  - Runs against the C(system) database.
  - Tested against a scripted Bolt stand-in of a Neo4j 5 cluster and FalkorDB's Bolt listener,
    not a real Neo4j (docs/neo4j.md).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.neo4j
  - failsafe.datastores.attributes
  - failsafe.datastores.attributes.INFO_MODULE
options:
  gather:
    description:
      - What to read. C(servers) needs Neo4j 5 (C(SHOW SERVERS)); leave it out for servers that
        do not have it.
    type: list
    elements: str
    choices: [servers, databases]
    default: [servers, databases]
'''

EXAMPLES = r'''
- name: Is a core member down?
  failsafe.datastores.neo4j_info:
    uri: neo4j://neo4j-core-0.neo4j:7687
    password: "{{ vault_neo4j_password }}"
  register: cluster

- name: Stop when the cluster is healthy
  ansible.builtin.assert:
    that: not cluster.core_loss
'''

RETURN = r'''
servers:
  description: SHOW SERVERS rows (serverId, name, address, state, health, hosting).
  returned: always
  type: list
  elements: dict
databases:
  description:
    - Per database - status (one of the members' or C(mixed)), requested_status, access,
      requested_primaries, requested_secondaries, online_primaries, online_secondaries,
      writer (address), degraded, members (address, server_id, role, status, message).
  returned: always
  type: dict
failed_servers:
  description: Servers whose health is not C(Available) (SHOW SERVERS rows).
  returned: always
  type: list
  elements: dict
free_servers:
  description: Servers in state C(Free) (joined, not enabled yet).
  returned: always
  type: list
  elements: dict
core_loss:
  description: Whether a server is unavailable or a database has fewer primaries online than asked for.
  returned: always
  type: bool
problems:
  description: What is wrong, as sentences (empty when nothing).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds for C(servers), C(databases) and C(total).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _neo4j
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

STEPS = (("servers", None, "servers"), ("databases", "servers", "databases"))


def main():
    spec = _neo4j.argument_spec()
    spec.update(gather=dict(type="list", elements="str", choices=["servers", "databases"],
                            default=["servers", "databases"]))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    _neo4j.ensure_driver(module)
    timer = Timer()
    result = dict(changed=False, servers=[], databases={}, failed_servers=[], free_servers=[],
                  core_loss=False, problems=[])
    client = _neo4j.Neo4jClient(module.params)
    try:
        if "servers" in module.params["gather"]:
            result["servers"] = client.servers()
        timer.mark("servers")
        if "databases" in module.params["gather"]:
            result["databases"] = _neo4j.summarise_databases(client.databases())
        timer.mark("databases")
    except _neo4j.Neo4jFailure as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finally:
        client.close()
    result["failed_servers"] = [s for s in result["servers"] if s.get("health") != "Available"]
    result["free_servers"] = [s for s in result["servers"] if s.get("state") == "Free"]
    result["problems"] = _neo4j.problems(result["servers"], result["databases"])
    result["core_loss"] = bool(result["failed_servers"]) or any(
        d["degraded"] for d in result["databases"].values())
    result["timings"] = timer.report(STEPS)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
