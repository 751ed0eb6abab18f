#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: redis_replication_info
short_description: Replication state of a Redis node and what its Sentinels say
version_added: 0.2.0
description:
  - Reads C(INFO replication) and C(INFO server) of one Redis node - role, link status, offsets,
    lag of every replica in bytes and seconds, C(master_failover_state) - and, with O(sentinels),
    what each Sentinel says about O(master_name) - the master address it gives clients, whether
    C(SENTINEL CKQUORUM) passes, whether a failover is in progress.
  - An unreachable node fails the task; an unreachable Sentinel is reported in RV(sentinel).
    A node or Sentinel that refuses the password fails the task (it is alive and must not be
    taken for a lost one).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.redis
  - failsafe.datastores.redis.SENTINELS
  - failsafe.datastores.attributes
  - failsafe.datastores.attributes.INFO_MODULE
'''

EXAMPLES = r'''
- name: Read the replication state of the us-west node and the Sentinels' view
  failsafe.datastores.redis_replication_info:
    login_host: redis-west.example.com
    login_password: "{{ vault_redis_password }}"
    sentinels:
      - host: sentinel-east.example.com
      - host: sentinel-west.example.com
      - host: sentinel-witness.example.com
    master_name: cache
  register: redis_state

- name: Show the lag of every replica
  ansible.builtin.debug:
    msg: "{{ redis_state.replicas | map(attribute='lag_bytes') | list }}"
'''

RETURN = r'''
address:
  description: The node's C(host:port) as given.
  returned: always
  type: str
role:
  description: C(master) or C(replica).
  returned: always
  type: str
redis_version:
  description: Server version.
  returned: always
  type: str
run_id:
  description: The server's run id (changes at every restart).
  returned: always
  type: str
config_file:
  description: Configuration file the server runs from (null without one; C(CONFIG REWRITE) then fails).
  returned: always
  type: str
master_replid:
  description: Replication id of the data set.
  returned: always
  type: str
master_repl_offset:
  description: The node's replication offset (on a master, bytes of the stream produced so far).
  returned: always
  type: int
master_failover_state:
  description: C(no-failover), C(waiting-for-sync) or C(failover-in-progress) (C(FAILOVER) command).
  returned: always
  type: str
connected_replicas:
  description: Number of connected replicas (on a master).
  returned: always
  type: int
replicas:
  description:
    - On a master, each replica as C(address), C(ip), C(port), C(state), C(offset),
      C(lag_bytes) (master offset minus replica offset) and C(lag_seconds) (since its last ack).
  returned: always
  type: list
  elements: dict
master_host:
  description: On a replica, the master it replicates from (null on a master).
  returned: always
  type: str
master_port:
  description: On a replica, that master's port.
  returned: always
  type: int
master_link_status:
  description: On a replica, C(up) or C(down).
  returned: always
  type: str
master_last_io_seconds_ago:
  description: On a replica, seconds since it last heard from its master.
  returned: always
  type: int
master_link_down_since_seconds:
  description: On a replica whose link is down, for how many seconds.
  returned: always
  type: int
master_sync_in_progress:
  description: On a replica, whether a full synchronisation is running.
  returned: always
  type: bool
replica_repl_offset:
  description: On a replica, the offset it has received.
  returned: always
  type: int
replica_read_only:
  description: On a replica, whether it refuses writes.
  returned: always
  type: bool
replica_priority:
  description: On a replica, its C(replica-priority) (0 - Sentinel never promotes it).
  returned: always
  type: int
sentinel:
  description:
    - With O(sentinels), C(sentinels) (per Sentinel - C(address), C(reachable), C(error),
      C(master) (the address it gives clients), C(quorum_ok), C(quorum_message),
      C(failover_in_progress), C(flags), C(config_epoch), C(other_sentinels), C(replicas),
      C(quorum), C(down_after_milliseconds), C(failover_timeout), C(parallel_syncs),
      C(last_ok_ping_reply_ms)) and the summary C(reachable), C(total), C(masters) (distinct
      answers), C(agreed_master) (the one answer when every Sentinel answers it, else null),
      C(quorum_ok) and C(failover_in_progress). Null without O(sentinels).
  returned: always
  type: dict
timings:
  description: Seconds spent in C(node) and C(sentinel) reads, and C(total).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer
from ansible_collections.failsafe.datastores.plugins.module_utils._redis import (
    RedisModuleError,
    connect,
    ensure_driver,
    login_argument_spec,
    login_params,
    node_facts,
    sentinel_options,
    sentinel_view,
    unexpected,
)

STEPS = (("node", None, "node"), ("sentinel", "node", "sentinel"))


def main():
    argument_spec = login_argument_spec()
    argument_spec.update(sentinel_options())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_driver(module)
    params = module.params
    if params["sentinels"] and not params["master_name"]:
        module.fail_json(msg="master_name is required with sentinels")
    peer = login_params(params)
    timer = Timer()
    try:
        conn = connect(peer)
        try:
            facts = node_facts(conn, peer)
        finally:
            conn.close()
        timer.mark("node")
        view = None
        if params["sentinels"]:
            view = sentinel_view(params["sentinels"], params["master_name"])
        timer.mark("sentinel")
    # No traceback ever reaches the operator: an error nobody mapped is worded too.
    except Exception as exc:  # pylint: disable=broad-except
        text = str(exc) if isinstance(exc, RedisModuleError) else unexpected(exc)
        module.fail_json(msg=text, timings=timer.report(STEPS))
    result = dict(changed=False, sentinel=view, timings=timer.report(STEPS))
    result.update(facts)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
