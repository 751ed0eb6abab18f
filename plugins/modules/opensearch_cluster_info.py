#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: opensearch_cluster_info
short_description: OpenSearch cluster health, nodes and unassigned shards with the reason why
version_added: 0.4.0
description:
  - "Runbook 000 (OpenSearch Failover, Detect; Verify): C(GET /_cluster/health), C(GET
    /_cat/nodes), C(GET /_cat/shards) and, for each unassigned shard, C(POST
    /_cluster/allocation/explain) (a read, despite the method): whether it can be allocated,
    OpenSearch's explanation and the reason it became unassigned."
  - Tested against a recorded-response stand-in of OpenSearch's REST API, not a real OpenSearch (docs/opensearch.md).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.attributes
  - failsafe.datastores.attributes.INFO_MODULE
options:
  server:
    description: The OpenSearch cluster.
    type: dict
    required: true
    suboptions:
      url:
        description: Its REST URL (C(https://opensearch:9200)).
        type: str
        required: true
      user:
        description: User for basic authentication.
        type: str
      password:
        description: Its password. Never returned or logged.
        type: str
      ca_cert:
        description: CA bundle for an C(https) URL.
        type: path
      timeout:
        description: Seconds per request.
        type: float
        default: 600
  explain_limit:
    description: Unassigned shards explained at most (one request each).
    type: int
    default: 20
'''

EXAMPLES = r'''
- name: Why are shards unassigned?
  failsafe.datastores.opensearch_cluster_info:
    server:
      url: https://opensearch:9200
      user: admin
      password: "{{ vault_opensearch_password }}"
  register: opensearch
'''

RETURN = r'''
health:
  description: C(_cluster/health) as OpenSearch returns it (status, number_of_data_nodes, unassigned_shards, ...).
  returned: always
  type: dict
status:
  description: C(green), C(yellow) or C(red).
  returned: always
  type: str
nodes:
  description: Nodes (name, node.role, ip).
  returned: always
  type: list
  elements: dict
unassigned:
  description:
    - Unassigned shards - index, shard, primary, reason, and from the explanation
      can_allocate, allocate_explanation and the deciders' NO decisions per node.
  returned: always
  type: list
  elements: dict
lost_primaries:
  description: Unassigned primaries no node holds a copy of (C(can_allocate) C(no_valid_shard_copy)), as C(index[shard]).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds for C(health), C(shards), C(explain) and C(total).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils import _opensearch
from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

STEPS = (("health", None, "health"), ("shards", "health", "shards"),
         ("explain", "shards", "explained"))


def summarise(row, explanation):
    decisions = []
    for node in explanation.get("node_allocation_decisions") or []:
        nos = [d.get("explanation") for d in node.get("deciders") or []
               if d.get("decision") == "NO"]
        if nos:
            decisions.append(dict(node=node.get("node_name"), no=nos))
    return dict(index=row["index"], shard=int(row["shard"]), primary=row["prirep"] == "p",
                reason=row.get("unassigned.reason"),
                can_allocate=explanation.get("can_allocate"),
                allocate_explanation=explanation.get("allocate_explanation"),
                decisions=decisions)


def main():
    module = AnsibleModule(
        argument_spec=dict(server=_opensearch.server_option(),
                           explain_limit=dict(type="int", default=20)),
        supports_check_mode=True,
    )
    server = module.params["server"]
    timer = Timer()
    result = dict(changed=False, health={}, status=None, nodes=[], unassigned=[],
                  lost_primaries=[])
    try:
        if server.get("user") and not server.get("password"):
            raise _opensearch.OpenSearchError(
                "server.user %s is given without server.password. Nothing was sent"
                % server["user"])
        cluster = _opensearch.OpenSearchCluster(server)
        result["health"] = cluster.health()
        result["status"] = result["health"].get("status")
        result["nodes"] = cluster.nodes()
        timer.mark("health")
        unassigned = [row for row in cluster.shards() if row.get("state") == "UNASSIGNED"]
        timer.mark("shards")
        for row in unassigned[:module.params["explain_limit"]]:
            explanation = cluster.explain(row["index"], int(row["shard"]), row["prirep"] == "p")
            result["unassigned"].append(summarise(row, explanation))
        for row in unassigned[module.params["explain_limit"]:]:
            result["unassigned"].append(summarise(row, {}))
        result["lost_primaries"] = ["%s[%s]" % (s["index"], s["shard"])
                                    for s in result["unassigned"]
                                    if s["primary"] and s["can_allocate"] == "no_valid_shard_copy"]
        timer.mark("explained")
    except _opensearch.OpenSearchError as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    result["timings"] = timer.report(STEPS)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
