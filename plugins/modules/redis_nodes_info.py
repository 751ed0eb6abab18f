#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: redis_nodes_info
short_description: Replication state of every Redis node, and what the Sentinels say, read at the same moment
version_added: 0.5.0
description:
  - Reads every node of O(nodes) at once, one connection each in parallel, and returns for each
    the facts of M(failsafe.datastores.redis_replication_info) (role, link status, offsets, lag
    of every replica, C(master_failover_state)); with O(sentinels), what each Sentinel says
    about O(master_name), read once for all nodes.
  - One call instead of one per node (a loop of M(failsafe.datastores.redis_replication_info)),
    so every node is read at the same moment, and a run pays one module start instead of one
    per node (0.3-0.5 s each here).
  - A node that does not answer is reported with C(reachable=false) and C(failed=true) (the
    per-node module fails for it); the task fails only when a node answers but refuses
    (a wrong password, an ACL) or cannot be read, after every node was read - a live server
    that refuses is never taken for a lost one. An unreachable Sentinel is reported in
    RV(sentinel).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.redis.NODES
  - failsafe.datastores.redis.SENTINELS
  - failsafe.datastores.attributes
  - failsafe.datastores.attributes.INFO_MODULE
'''

EXAMPLES = r'''
- name: Read every Redis node and the Sentinels' view at once
  failsafe.datastores.redis_nodes_info:
    nodes: >-
      {{ groups['redis'] | map('extract', hostvars)
         | map('failsafe.datastores.redis_conn', with_name=true) | list }}
    sentinels: >-
      {{ groups['redis_sentinel'] | map('extract', hostvars)
         | map('failsafe.datastores.redis_conn', sentinel=true) | list }}
    master_name: cache
  register: redis_state

- name: Name the masters
  ansible.builtin.debug:
    msg: >-
      {{ redis_state.nodes | dict2items | selectattr('value.role', 'defined')
         | selectattr('value.role', 'equalto', 'master') | map(attribute='key') | list }}
'''

RETURN = r'''
nodes:
  description:
    - Per node name, C(reachable=true) and the return values of
      M(failsafe.datastores.redis_replication_info) (C(role), C(master_link_status),
      C(master_repl_offset), C(replicas) with C(lag_bytes), ...).
    - A node that could not be read has C(failed=true), C(msg) and C(reachable) (false when
      nothing answered there, null when it answered and refused) instead.
  returned: always
  type: dict
  sample: {"redis-us-east": {"reachable": true, "role": "master", "connected_replicas": 1}}
sentinel:
  description: What the Sentinels say, as RV(failsafe.datastores.redis_replication_info#module:sentinel) (null without O(sentinels)).
  returned: always
  type: dict
timings:
  description: Seconds spent reading (C(read), the nodes and the Sentinels in parallel), and C(total).
  returned: always
  type: dict
'''

from concurrent.futures import ThreadPoolExecutor

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer
from ansible_collections.failsafe.datastores.plugins.module_utils._redis import (
    PEER_SPEC,
    RedisModuleError,
    ensure_driver,
    node_facts,
    sentinel_options,
    sentinel_view,
    try_connect,
    unexpected,
)

STEPS = (("read", None, "read"),)


def read_node(peer):
    """The facts of one node, or `failed` with the message (`reachable`: false or null)."""
    try:
        conn, reason = try_connect(peer)
        if conn is None:
            return dict(reachable=False, failed=True, msg=reason)
        try:
            facts = node_facts(conn, peer)
        finally:
            conn.close()
    except Exception as exc:  # pylint: disable=broad-except  # worded per node, never raised
        text = str(exc) if isinstance(exc, RedisModuleError) else unexpected(exc)
        return dict(reachable=None, failed=True, msg=text)
    facts["reachable"] = True
    return facts


def main():
    argument_spec = dict(
        nodes=dict(type="list", elements="dict", required=True,
                   options=dict(PEER_SPEC, name=dict(type="str", required=True))),
    )
    argument_spec.update(sentinel_options())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_driver(module)
    params = module.params
    if params["sentinels"] and not params["master_name"]:
        module.fail_json(msg="master_name is required with sentinels")
    names = [node["name"] for node in params["nodes"]]
    duplicates = sorted(set(name for name in names if names.count(name) > 1))
    if duplicates:
        module.fail_json(msg="nodes: the names %s appear more than once; give each node its own "
                             "name (the inventory host name)" % ", ".join(duplicates))
    timer = Timer()
    peers = [dict((key, node[key]) for key in PEER_SPEC) for node in params["nodes"]]
    try:
        # The Sentinels are asked beside the nodes, not after them.
        with ThreadPoolExecutor(max_workers=len(peers) + 1) as pool:
            asked = (pool.submit(sentinel_view, params["sentinels"], params["master_name"])
                     if params["sentinels"] else None)
            facts = dict(zip(names, pool.map(read_node, peers)))
            view = asked.result() if asked else None
        timer.mark("read")
    # No traceback ever reaches the operator: an error nobody mapped is worded too.
    except Exception as exc:  # pylint: disable=broad-except
        text = str(exc) if isinstance(exc, RedisModuleError) else unexpected(exc)
        module.fail_json(msg=text, timings=timer.report(STEPS))
    result = dict(changed=False, nodes=facts, sentinel=view, timings=timer.report(STEPS))
    refused = ["%s: %s" % (name, one["msg"]) for name, one in facts.items()
               if one.get("failed") and one.get("reachable") is None]
    if refused:
        module.fail_json(msg="%d of %d nodes answered but could not be read - %s"
                             % (len(refused), len(names), "; ".join(refused)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
