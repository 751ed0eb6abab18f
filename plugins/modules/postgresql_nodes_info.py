#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postgresql_nodes_info
short_description: Replication facts of every PostgreSQL node of a cluster, read at the same moment
version_added: 0.5.0
description:
  - Reads every node of O(nodes) at once, one connection each in parallel, and returns for each
    the facts of M(failsafe.datastores.postgresql_replication_info) (role, timeline, LSNs, lag,
    fence, synchronous replication, slots).
  - One call for the whole cluster instead of one per node (a loop of
    M(failsafe.datastores.postgresql_replication_info)), so every node is read at the same
    moment, and a run pays one module start instead of one per node (0.3-0.5 s each here).
  - A node that does not answer is reported with C(reachable=false) in RV(nodes). A node that
    answers but refuses (authentication, C(pg_hba.conf), no free connection slot) or fails is
    reported with C(failed) and C(msg), and the task fails after every node was read - a live
    server that refuses is never taken for a lost one.
  - Never changes anything.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.postgresql
  - failsafe.datastores.postgresql.NODES
  - failsafe.datastores.attributes
  - failsafe.datastores.attributes.INFO_MODULE
'''

EXAMPLES = r'''
- name: Read every node of the inventory group postgresql at once
  failsafe.datastores.postgresql_nodes_info:
    nodes: >-
      {{ groups['postgresql'] | map('extract', hostvars)
         | map('failsafe.datastores.pg_conn', with_name=true) | list }}
  register: cluster

- name: Name the writable primaries
  ansible.builtin.debug:
    msg: >-
      {{ cluster.nodes | dict2items | selectattr('value.reachable')
         | selectattr('value.role', 'equalto', 'primary') | rejectattr('value.read_only')
         | map(attribute='key') | list }}
'''

RETURN = r'''
nodes:
  description:
    - Per node name, the return values of M(failsafe.datastores.postgresql_replication_info)
      (C(reachable), C(unreachable_reason), C(role), C(read_only), C(timeline), C(current_lsn),
      C(replayed_lsn), C(replay_lag_bytes), C(standbys), ...).
    - A node that answered but could not be read has C(failed=true) and C(msg) instead.
  returned: always
  type: dict
  sample: {"pg-us-east": {"reachable": true, "role": "primary", "read_only": false}}
steps:
  description: Always empty (this module never changes anything).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds the module took (C(total)).
  returned: always
  type: dict
'''

from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    PEER_SPEC,
    PostgresError,
    doing,
    ensure_driver,
    explain_error,
    try_connect,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import (
    replication_facts,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._report import Report

APPLICATION_NAME = "failsafe.nodes_info"


def read_node(peer):
    """The facts of one node, `reachable: false` with the reason, or `failed` with the message."""
    try:
        conn, reason = try_connect(peer, APPLICATION_NAME)
        if conn is None:
            return dict(reachable=False, unreachable_reason=reason)
        with conn:
            with doing("reading the replication state", peer):
                facts = replication_facts(conn)
    except Exception as exc:  # pylint: disable=broad-except  # worded per node, never raised
        return dict(reachable=None, failed=True, msg=explain_error(exc, peer))
    facts["reachable"] = True
    return facts


def read_all(module, result):
    nodes = module.params["nodes"]
    names = [node["name"] for node in nodes]
    duplicates = sorted(set(name for name in names if names.count(name) > 1))
    if duplicates:
        raise PostgresError("nodes: the names %s appear more than once; give each node its own "
                            "name (the inventory host name)" % ", ".join(duplicates))
    with ThreadPoolExecutor(max_workers=max(1, len(nodes))) as pool:
        facts = list(pool.map(read_node, nodes))
    result["nodes"] = dict(zip(names, facts))
    refused = ["%s: %s" % (name, one["msg"]) for name, one in zip(names, facts)
               if one.get("failed")]
    if refused:
        raise PostgresError("%d of %d nodes answered but could not be read - %s"
                            % (len(refused), len(nodes), "; ".join(refused)))


def main():
    # A node that does not answer in 3 s is down (as for postgresql_failover's nodes).
    node_spec = dict(PEER_SPEC, name=dict(type="str", required=True),
                     connect_timeout=dict(type="int", default=3))
    module = AnsibleModule(
        argument_spec=dict(
            nodes=dict(type="list", elements="dict", required=True, options=node_spec),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    report = Report(module)
    result = dict(changed=False, nodes={})
    report.run(lambda: read_all(module, result), result, explain_error)


if __name__ == "__main__":
    main()
