#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: redis_replica
short_description: Make a Redis node a replica of a master, or a master, and wait for the sync
version_added: 0.2.0
description:
  - "O(role=replica): sets C(masterauth) (when O(master_auth) is given and differs), runs
    C(REPLICAOF host port) when the node does not already replicate from O(replica_of), and
    waits until the link is up and the initial synchronisation has finished (O(wait_sync))."
  - "O(role=master): C(REPLICAOF NO ONE) when the node is a replica. The node keeps its data;
    with Sentinels watching, use M(failsafe.datastores.redis_failover) instead, or Sentinel
    turns it back into a replica."
  - Persists the role with C(CONFIG REWRITE) where the server runs from a configuration file
    (O(persist)), so that a restart does not bring back the old role.
  - A master that holds keys is not turned into a replica unless O(discard_data=true) - the full
    synchronisation replaces its data set with the master's.
  - community.general.redis (C(command=replica)) neither waits for the link nor the sync, nor
    persists, nor compares C(masterauth); this module does.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.redis
  - failsafe.datastores.redis.REPLICA_OF
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the node and reports the commands it would run; it runs none of them.
  diff_mode:
    support: full
  idempotent:
    description: A node already in the asked role (and C(masterauth)) is left alone.
    support: full
options:
  role:
    description: V(replica) - replicate from O(replica_of); V(master) - stop replicating.
    type: str
    choices: [replica, master]
    default: replica
  master_auth:
    description:
      - Password the node uses to authenticate to its master (C(masterauth)). Omit it to leave
        C(masterauth) as it is. Never returned or logged.
    type: str
  master_user:
    description: ACL user the node authenticates to its master as (C(masteruser)). Omit it to leave it as it is.
    type: str
  wait_sync:
    description: Wait until the link is up and no synchronisation is in progress.
    type: bool
    default: true
  sync_timeout:
    description: Seconds to wait for the link and the initial synchronisation.
    type: float
    default: 60
  persist:
    description: Run C(CONFIG REWRITE) after a change when the server runs from a configuration file.
    type: bool
    default: true
  discard_data:
    description:
      - Allow turning a master that holds keys into a replica (its data set is replaced by the
        master's). Without it such a change is refused.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Make the old us-east master a replica of the new one in us-west
  failsafe.datastores.redis_replica:
    login_host: redis-east.example.com
    login_password: "{{ vault_redis_password }}"
    replica_of:
      host: redis-west.example.com
      port: 6379
    master_auth: "{{ vault_redis_password }}"
    discard_data: true

- name: Promote a standalone replica (no Sentinel)
  failsafe.datastores.redis_replica:
    login_host: redis-west.example.com
    login_password: "{{ vault_redis_password }}"
    role: master
'''

RETURN = r'''
address:
  description: The node's C(host:port) as given.
  returned: always
  type: str
role:
  description: The node's role after the task (or that it would have, in check mode).
  returned: always
  type: str
master:
  description: C(host:port) of the master it replicates from after the task; null for a master.
  returned: always
  type: str
commands:
  description: The commands run (or that would run, in check mode); secrets masked.
  returned: always
  type: list
  elements: str
master_auth_changed:
  description: Whether C(masterauth) or C(masteruser) was (or would be) changed.
  returned: always
  type: bool
link_status:
  description: C(master_link_status) at the end (null for a master, or when not waited for).
  returned: always
  type: str
replica_repl_offset:
  description: The replica's offset at the end (null for a master).
  returned: always
  type: int
persisted:
  description: Whether C(CONFIG REWRITE) ran.
  returned: always
  type: bool
timings:
  description: Seconds in C(checks), C(change), C(sync) (until the link is up and synchronised), C(persist) and C(total).
  returned: always
  type: dict
diff:
  description: Role and master before and after.
  returned: when diff mode is on
  type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer
from ansible_collections.failsafe.datastores.plugins.module_utils._redis import (
    RedisModuleError,
    command,
    connect,
    describe,
    ensure_driver,
    login_argument_spec,
    login_params,
    node_facts,
    peer_option,
    persist,
    points_at,
    same_node,
    unexpected,
)

STEPS = (
    ("checks", None, "checked"),
    ("change", "checked", "changed"),
    ("sync", "changed", "synced"),
    ("persist", "synced", "persisted"),
)


def config_value(conn, peer, name):
    reply = command(conn, peer, "CONFIG", "GET", name)
    if isinstance(reply, dict):
        return reply.get(name)
    values = dict(zip(reply[::2], reply[1::2])) if reply else {}
    return values.get(name)


def plan(params, facts, keys, current_auth, current_user):
    """(commands to run as argv lists, masked texts, auth_changed); raises on a refusal."""
    argvs, texts = [], []
    auth_changed = False
    if params["role"] == "master":
        if facts["role"] == "replica":
            argvs.append(["REPLICAOF", "NO", "ONE"])
        return argvs, [" ".join(a) for a in argvs], False
    master = params["replica_of"]
    if params["master_user"] is not None and params["master_user"] != (current_user or None):
        argvs.append(["CONFIG", "SET", "masteruser", params["master_user"]])
        texts.append("CONFIG SET masteruser %s" % params["master_user"])
        auth_changed = True
    if params["master_auth"] is not None and params["master_auth"] != (current_auth or None):
        argvs.append(["CONFIG", "SET", "masterauth", params["master_auth"]])
        texts.append("CONFIG SET masterauth ********")
        auth_changed = True
    repoint = not points_at(facts, master)
    if repoint and facts["role"] == "master" and keys and not params["discard_data"]:
        raise RedisModuleError(
            "%s is a master holding %d keys: as a replica of %s it would replace them with the "
            "master's data set. Nothing was changed. Set discard_data=true if that is intended "
            "(for example to rejoin an old master after a failover)"
            % (facts["address"], keys, describe(master)))
    if repoint or (auth_changed and facts.get("master_link_status") != "up"):
        argvs.append(["REPLICAOF", master["host"], str(master["port"])])
        texts.append("REPLICAOF %s %s" % (master["host"], master["port"]))
    return argvs, texts, auth_changed


def wait_synced(conn, peer, timeout):
    deadline = time.monotonic() + timeout
    while True:
        facts = node_facts(conn, peer)
        if facts["master_link_status"] == "up" and not facts["master_sync_in_progress"]:
            return facts
        if time.monotonic() > deadline:
            raise RedisModuleError(
                "%s has not synchronised from %s:%s within sync_timeout=%ss (link %s%s): check "
                "masterauth and the master's log" % (
                    describe(peer), facts["master_host"], facts["master_port"], timeout,
                    facts["master_link_status"],
                    ", full sync in progress" if facts["master_sync_in_progress"] else ""))
        time.sleep(0.02)


def main():
    argument_spec = login_argument_spec()
    argument_spec.update(
        role=dict(type="str", default="replica", choices=["replica", "master"]),
        replica_of=peer_option(),
        master_auth=dict(type="str", no_log=True),
        master_user=dict(type="str"),
        wait_sync=dict(type="bool", default=True),
        sync_timeout=dict(type="float", default=60),
        persist=dict(type="bool", default=True),
        discard_data=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("role", "replica", ["replica_of"])])
    ensure_driver(module)
    params = module.params
    peer = login_params(params)
    timer = Timer()
    result = dict(changed=False, address=describe(peer), role=None, master=None, commands=[],
                  master_auth_changed=False, link_status=None, replica_repl_offset=None,
                  persisted=False)
    try:
        conn = connect(peer)
        try:
            converge(module, params, peer, conn, result, timer)
        finally:
            conn.close()
    # No traceback ever reaches the operator: an error nobody mapped is worded too.
    except Exception as exc:  # pylint: disable=broad-except
        text = str(exc) if isinstance(exc, RedisModuleError) else unexpected(exc)
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=text, **result)
    result["timings"] = timer.report(STEPS)
    module.exit_json(**result)


def converge(module, params, peer, conn, result, timer):
    facts = node_facts(conn, peer)
    if params["role"] == "replica" and same_node(describe(params["replica_of"]), peer):
        raise RedisModuleError("%s cannot replicate from itself. Nothing was changed" % describe(peer))
    keys = command(conn, peer, "DBSIZE") if facts["role"] == "master" else 0
    current_auth = current_user = None
    if params["role"] == "replica":
        current_auth = config_value(conn, peer, "masterauth")
        current_user = config_value(conn, peer, "masteruser")
    argvs, texts, auth_changed = plan(params, facts, keys, current_auth, current_user)
    before = dict(role=facts["role"], master=None if facts["role"] == "master"
                  else "%s:%s" % (facts["master_host"], facts["master_port"]))
    after = dict(role=params["role"], master=None if params["role"] == "master" else describe(
        params["replica_of"]))
    result.update(role=after["role"], master=after["master"], commands=texts,
                  master_auth_changed=auth_changed, changed=bool(argvs))
    if module._diff:
        result["diff"] = dict(before=dict(before, master_auth_changed=False),
                              after=dict(after, master_auth_changed=auth_changed))
    timer.mark("checked")
    if module.check_mode:
        return
    for argv in argvs:
        command(conn, peer, *argv)
    timer.mark("changed")
    final = facts
    if params["role"] == "replica" and params["wait_sync"]:
        final = wait_synced(conn, peer, params["sync_timeout"])
    elif argvs:
        final = node_facts(conn, peer)
    timer.mark("synced")
    if argvs and params["persist"]:
        result["persisted"] = persist(conn, peer, final)
    timer.mark("persisted")
    if final["role"] == "replica":
        result.update(link_status=final["master_link_status"] if params["wait_sync"] else None,
                      replica_repl_offset=final["replica_repl_offset"])


if __name__ == "__main__":
    main()
