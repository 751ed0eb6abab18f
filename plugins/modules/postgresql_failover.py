#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postgresql_failover
short_description: Emergency PostgreSQL failover to the most advanced standby, in one call
version_added: 0.1.0
description:
  - For a lost primary. Reads every node of O(nodes), refuses while any of them answers as a
    writable primary (that would be a split brain; use
    M(failsafe.datastores.postgresql_switchover) for a planned move), picks the reachable
    standby among O(candidates) that has received the most WAL, checks the data-loss estimate
    against O(max_data_loss_seconds), promotes it and waits until it accepts writes.
  - One module call, so that no Ansible round trip adds to the time without a primary.
  - "The loss estimate is an upper bound of the window of writes the new primary may miss: the
    smaller of the seconds since the standby last heard from the primary and the seconds since
    it last replayed a commit (loose on an idle database)."
  - When a candidate is already the only writable primary (a repeated run), nothing changes.
  - Nodes that do not answer are taken as down; a node that answers and refuses the connection
    (wrong password, C(pg_hba.conf), no free slot) or a host name that does not resolve fails
    the task, so that a typo cannot pass for a dead primary.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads every node and reports which one it would promote and the loss estimate.
  diff_mode:
    support: full
  idempotent:
    description: A repeated run finds the promoted candidate and changes nothing.
    support: full
options:
  nodes:
    description:
      - Every node of the cluster, each a connection dict with a C(name).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the node in reports (the inventory host name).
        type: str
        required: true
      host:
        description: Host name or address of the server.
        type: str
        required: true
      port:
        description: TCP port of the server.
        type: int
        default: 5432
      user:
        description: Role to connect as (a superuser).
        type: str
        default: postgres
      password:
        description: Password of O(nodes[].user). Never returned or logged.
        type: str
      db:
        description: Database to connect to.
        type: str
        default: postgres
      connect_timeout:
        description: Seconds to wait for a connection; a node that does not answer in time is down.
        type: int
        default: 3
      ssl_mode:
        description: libpq C(sslmode).
        type: str
        default: prefer
        choices: [allow, disable, prefer, require, verify-ca, verify-full]
      ca_cert:
        description: CA certificate file for O(nodes[].ssl_mode=verify-ca) and O(nodes[].ssl_mode=verify-full).
        type: path
  candidates:
    description:
      - Names of the nodes that may be promoted (the target region). Empty means every node.
    type: list
    elements: str
    default: []
  max_data_loss_seconds:
    description:
      - Refuse when the loss estimate exceeds this many seconds, or cannot be made. Unset means
        no limit (the estimate is still reported).
    type: float
  promote_timeout:
    description: Seconds to wait for the promoted node to leave recovery.
    type: float
    default: 60
  checkpoint:
    description: Run C(CHECKPOINT) on the new primary once it accepts writes (for C(pg_rewind)).
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Fail over to us-west (us-east is lost)
  failsafe.datastores.postgresql_failover:
    nodes:
      - name: pg-east-1
        host: 10.10.1.10
        password: "{{ vault_pg_password }}"
      - name: pg-west-1
        host: 10.20.1.10
        password: "{{ vault_pg_password }}"
    candidates: [pg-west-1]
    max_data_loss_seconds: 60
  register: failover
'''

RETURN = r'''
target:
  description: Name of the node promoted (or that would be, in check mode; or already promoted).
  returned: always
  type: str
promoted:
  description: Whether the module promoted it (or would, in check mode).
  returned: always
  type: bool
already_failed_over:
  description: True when a candidate already was the only writable primary.
  returned: always
  type: bool
old_primaries:
  description: Names of the nodes that were down or fenced primaries.
  returned: always
  type: list
  elements: str
nodes:
  description: What was found at each node (name, reachable, role, read_only, received_lsn,
    replayed_lsn, unreachable_reason).
  returned: always
  type: list
  elements: dict
data_loss:
  description: Estimate for the promoted node (bytes null, received_lsn, replayed_lsn,
    seconds_since_last_contact, seconds_since_last_replay, window_seconds_at_most).
  returned: always
  type: dict
timeline:
  description: Timeline of the new primary (before promotion, in check mode).
  returned: always
  type: int
timings:
  description: Seconds spent reading the nodes (checks), promoting, until writable, on the
    checkpoint, and in total.
  returned: always
  type: dict
diff:
  description: The writable primary before and after.
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres import (
    PEER_SPEC,
    PostgresError,
    Timer,
    ensure_driver,
    loss_estimate,
    lsn_to_int,
    promote_until_writable,
    replication_facts,
    timeline,
    try_connect,
)


# Reported timings: (name, from mark, to mark); None is the start of the module.
STEPS = (
    ("checks", None, "checked"),
    ("promote", "checked", "promoted"),
    ("writable", "promoted", "writable"),
    ("checkpoint", "writable", "checkpoint"),
)


def survey(nodes):
    """Open every node that answers; returns ({name: conn}, [summary per node], {name: facts})."""
    conns, summary, facts = {}, [], {}
    for node in nodes:
        conn, reason = try_connect(node, application_name="failsafe.failover")
        entry = dict(name=node["name"], reachable=conn is not None, role=None, read_only=None,
                     received_lsn=None, replayed_lsn=None, unreachable_reason=reason)
        if conn is not None:
            conns[node["name"]] = conn
            facts[node["name"]] = node_facts = replication_facts(conn)
            entry.update(role=node_facts["role"], read_only=node_facts["read_only"],
                         received_lsn=node_facts["received_lsn"],
                         replayed_lsn=node_facts["replayed_lsn"])
        summary.append(entry)
    return conns, summary, facts


def choose(params, summary, facts):
    """The verdict before anything changes: ('done', name) or ('promote', name)."""
    candidates = set(params["candidates"] or [n["name"] for n in params["nodes"]])
    writable = [n["name"] for n in summary
                if n["reachable"] and n["role"] == "primary" and not n["read_only"]]
    if len(writable) == 1 and writable[0] in candidates:
        return "done", writable[0]
    if writable:
        raise PostgresError(
            "%s answers as a writable primary: an emergency failover now would give two "
            "writable primaries. Nothing was changed. For a planned move use "
            "postgresql_switchover; if that primary must go, fence it (postgresql_read_only) or "
            "stop it first" % ", ".join(writable))
    standbys = [n for n in summary if n["reachable"] and n["role"] == "standby"
                and n["name"] in candidates]
    if not standbys:
        raise PostgresError(
            "no reachable standby to promote among %s (answering: %s). Nothing was changed"
            % (sorted(candidates), [n["name"] for n in summary if n["reachable"]] or "none"))
    sysids = set(facts[n["name"]]["system_identifier"] for n in summary if n["reachable"])
    if len(sysids) > 1:
        raise PostgresError("the nodes belong to different clusters (system identifiers %s): "
                            "check the nodes option. Nothing was changed" % sorted(sysids))
    best = max(standbys, key=lambda n: lsn_to_int(n["received_lsn"] or n["replayed_lsn"]
                                                  or "0/0"))
    return "promote", best["name"]


def check_loss(params, name, loss):
    limit = params["max_data_loss_seconds"]
    if limit is None:
        return
    window = loss["window_seconds_at_most"]
    if window is None or window > limit:
        raise PostgresError(
            "%s may miss up to %s seconds of writes, more than max_data_loss_seconds=%s. "
            "Nothing was changed. Raise the limit to accept that loss, or recover the primary"
            % (name, "an unknown number of" if window is None else window, limit))


def main():
    node_spec = dict(PEER_SPEC, name=dict(type="str", required=True),
                     connect_timeout=dict(type="int", default=3))
    module = AnsibleModule(
        argument_spec=dict(
            nodes=dict(type="list", elements="dict", required=True, options=node_spec),
            candidates=dict(type="list", elements="str", default=[]),
            max_data_loss_seconds=dict(type="float"),
            promote_timeout=dict(type="float", default=60),
            checkpoint=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    params = module.params
    names = [n["name"] for n in params["nodes"]]
    unknown = sorted(set(params["candidates"]) - set(names))
    if unknown:
        module.fail_json(msg="candidates %s are not among the nodes %s" % (unknown, names))
    timer = Timer()
    result = dict(changed=False, promoted=False, already_failed_over=False, target=None,
                  old_primaries=[], nodes=[], data_loss={}, timeline=None)
    conns = {}
    try:
        conns, summary, facts = survey(params["nodes"])
        result["nodes"] = summary
        verdict, target = choose(params, summary, facts)
        result["target"] = target
        result["timeline"] = facts[target]["timeline"]
        result["old_primaries"] = [n["name"] for n in summary if n["name"] != target and (
            not n["reachable"] or n["role"] == "primary")]
        timer.mark("checked")
        if verdict == "done":
            result.update(already_failed_over=True, data_loss=dict(bytes=0))
            finish(module, result, timer)
        loss = loss_estimate(facts[target])
        result["data_loss"] = loss
        check_loss(params, target, loss)
        result.update(changed=True, promoted=True)
        if module.check_mode:
            finish(module, result, timer)
        conn = conns[target]
        promote_until_writable(conn, timer, params["promote_timeout"], params["checkpoint"])
        result["timeline"] = timeline(conn, False)
    except PostgresError as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finally:
        for conn in conns.values():
            conn.close()
    finish(module, result, timer)


def finish(module, result, timer):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        before = result["target"] if result["already_failed_over"] else None
        after = result["target"] if (result["promoted"] or before) else None
        result["diff"] = dict(before=dict(writable_primary=before),
                              after=dict(writable_primary=after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
