#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postgresql_partition_decision
short_description: Decide which side of a network partition keeps the PostgreSQL primary
version_added: 0.3.0
description:
  - Changes nothing. Probes every node of O(nodes) from where it runs (the control node), takes
    what the witness reached (O(witness_view), probed on the witness host), and decides by the
    runbook's quorum rule, which RV(verdict) and RV(msg) state.
  - A node is on the majority side when the control node and the witness both reach it. A
    writable primary there keeps the primary role (V(keep_primary)); else the standbys there
    are the candidates of a promotion (V(fail_over), RV(promote_candidates)). A writable primary
    outside the majority that the control node still reaches is to be fenced first
    (RV(fence)).
  - With O(phase=heal) (the network is whole again) the primary is the writable primary on the
    newest timeline; every other primary is stale and is to be fenced and rejoined with
    C(pg_rewind) (V(rejoin), RV(rejoin)).
  - "Refusals fail the task and change nothing: no node on the majority side (no side has the
    majority), O(phase=heal) while a node is still cut off, two writable primaries on the
    majority side, or no node that takes writes after the heal."
  - A node that answers and refuses the connection (wrong password, C(pg_hba.conf)) fails the
    task, so that a typo never passes for a cut link.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.postgresql
  - failsafe.datastores.postgresql.NODES
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; check mode changes nothing either.
  diff_mode:
    support: none
  idempotent:
    description: It only reads.
    support: full
options:
  witness_view:
    description:
      - What the witness reached, one entry per node (by O(nodes[].name)); a node missing here
        counts as not reached by the witness (an empty list when the witness host itself does
        not answer).
      - The C(network_partition) role fills it from M(failsafe.datastores.postgresql_replication_info)
        run on the witness host against each node's witness route.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The node's name, as in O(nodes[].name).
        type: str
        required: true
      reachable:
        description: Whether the witness reached the node.
        type: bool
        required: true
      role:
        description: V(primary) or V(standby), as the node told the witness.
        type: str
      read_only:
        description: Whether the node was fenced read-only, as it told the witness.
        type: bool
      timeline:
        description: The node's timeline, as it told the witness.
        type: int
  regions:
    description: The region of each node (name to region), for the messages.
    type: dict
    default: {}
  phase:
    description:
      - V(partition) decides on a partition seen now; V(heal) decides what to rejoin once the
        network is whole again.
    type: str
    choices: [partition, heal]
    default: partition
'''

EXAMPLES = r'''
- name: Decide which side keeps the primary
  failsafe.datastores.postgresql_partition_decision:
    nodes: "{{ groups['postgresql'] | map('extract', hostvars)
               | map('failsafe.datastores.pg_conn', with_name=true) | list }}"
    witness_view:
      - name: pg-us-east
        reachable: false
      - name: pg-us-west
        reachable: true
        role: standby
        read_only: false
        timeline: 1
  register: decision

- name: After the heal, name the stale primaries
  failsafe.datastores.postgresql_partition_decision:
    nodes: "{{ nodes }}"
    witness_view: "{{ witness_view }}"
    phase: heal
'''

RETURN = r'''
verdict:
  description:
    - "V(no_partition) (both vantage points reach every node; nothing to do),
      V(keep_primary) (the primary is on the majority side), V(fail_over) (promote one of
      RV(promote_candidates)), V(rejoin) (after the heal, fence and rejoin RV(rejoin)),
      V(healthy) (after the heal, nothing to rejoin)."
  returned: success
  type: str
primary:
  description: The node that keeps (or, after the heal, is) the primary; null when a promotion
    is still to come or none is known.
  returned: success
  type: str
promote_candidates:
  description: The standbys on the majority side (for V(fail_over)).
  returned: success
  type: list
  elements: str
fence:
  description: Writable primaries to fence read-only now (outside the majority but reachable
    from the control node; after the heal, the stale ones that still take writes).
  returned: success
  type: list
  elements: str
rejoin:
  description: Stale primaries to rejoin with C(pg_rewind) (phase V(heal)).
  returned: success
  type: list
  elements: str
partitioned:
  description: Whether a node is not reached by both vantage points.
  returned: success
  type: bool
sides:
  description: Node names by who reaches them - C(majority) (both), C(control_only),
    C(witness_only), C(unreachable) (neither).
  returned: always
  type: dict
nodes:
  description: Per node, C(name), C(region) and the C(control) and C(witness) views (reachable,
    role, read_only, timeline, unreachable_reason).
  returned: always
  type: list
  elements: dict
msg:
  description: The decision (or the refusal) in a sentence.
  returned: always
  type: str
steps:
  description: Empty (the module changes nothing).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds spent probing the nodes from the control node and in total.
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._partition import (
    PartitionRefusal,
    decide,
    sides,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    PEER_SPEC,
    doing,
    ensure_driver,
    explain_error,
    try_connect,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import (
    in_recovery,
    read_only_setting,
    system_identifier,
    timeline,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._report import Report

APPLICATION_NAME = "failsafe.partition"
TIMED_STEPS = (("probe", None, "probed"),)
VIEW_KEYS = ("reachable", "role", "read_only", "timeline")


def probe(node):
    """The control node's view of one node (a live server that refuses raises)."""
    conn, reason = try_connect(node, APPLICATION_NAME)
    if conn is None:
        return dict(reachable=False, role=None, read_only=None, timeline=None,
                    system_identifier=None, unreachable_reason=reason)
    with conn:
        with doing("reading the role of %s" % node["name"], node):
            recovering = in_recovery(conn)
            return dict(reachable=True, role="standby" if recovering else "primary",
                        read_only=read_only_setting(conn), timeline=timeline(conn, recovering),
                        system_identifier=system_identifier(conn), unreachable_reason=None)


def views(params, control):
    witness = dict((entry["name"], entry) for entry in params["witness_view"])
    nodes = []
    for node in params["nodes"]:
        seen = witness.get(node["name"]) or dict(reachable=False)
        nodes.append(dict(
            name=node["name"], region=params["regions"].get(node["name"]),
            control=control[node["name"]],
            witness=dict((key, seen.get(key)) for key in VIEW_KEYS)))
    return nodes


def run(module, report, result):
    params = module.params
    control = dict((node["name"], probe(node)) for node in params["nodes"])
    report.mark("probed")
    nodes = views(params, control)
    result.update(nodes=nodes, sides=dict((key, [n["name"] for n in value])
                                          for key, value in sides(nodes).items()))
    plan = decide(nodes, params["phase"])
    result.update(verdict=plan["verdict"], primary=plan["primary"],
                  promote_candidates=plan["promote_candidates"], fence=plan["fence"],
                  rejoin=plan["rejoin"], partitioned=plan["partitioned"], msg=plan["msg"])


def main():
    node_spec = dict(PEER_SPEC, name=dict(type="str", required=True),
                     connect_timeout=dict(type="int", default=3))
    view_spec = dict(name=dict(type="str", required=True),
                     reachable=dict(type="bool", required=True),
                     role=dict(type="str"), read_only=dict(type="bool"),
                     timeline=dict(type="int"))
    module = AnsibleModule(
        argument_spec=dict(
            nodes=dict(type="list", elements="dict", required=True, options=node_spec),
            witness_view=dict(type="list", elements="dict", default=[], options=view_spec),
            regions=dict(type="dict", default={}),
            phase=dict(type="str", choices=["partition", "heal"], default="partition"),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    names = [n["name"] for n in module.params["nodes"]]
    unknown = sorted(set(e["name"] for e in module.params["witness_view"]) - set(names))
    if unknown:
        module.fail_json(msg="witness_view names %s, which are not among the nodes %s. "
                             "Nothing was changed" % (unknown, names))
    report = Report(module, TIMED_STEPS)
    result = dict(changed=False, nodes=[], sides={})

    def explain(exc):
        if isinstance(exc, PartitionRefusal):
            return str(exc)
        return explain_error(exc)

    report.run(lambda: run(module, report, result), result, explain)


if __name__ == "__main__":
    main()
