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
    standby among O(candidates) that has the most WAL (the furthest of its received and
    replayed positions), checks the data-loss estimate, promotes it and waits until it accepts
    writes.
  - One module call, so that no Ansible round trip adds to the time without a primary.
  - Data loss is accepted only when told. Without O(max_data_loss_seconds) (in the
    C(postgresql_failover) role, C(postgresql_failover_max_data_loss_seconds)) and without
    O(accept_data_loss=true) it refuses before anything changes.
  - "The loss estimate is the window of writes the new primary may miss, on the best basis
    available (C(basis) in RV(data_loss)): while the standby's WAL receiver is still connected,
    from its last message until now; once the connection is gone, from the standby's own server log
    (O(nodes[].log_file), read through SQL): when the primary closed the connection (it stopped
    or crashed then), the window runs from the standby's last contact (its last replayed commit,
    or C(wal_receiver_timeout) before the end) to that moment, and does not grow while the
    operator reacts; after a receiver timeout (a network partition) or when nothing is known it
    runs until now, labelled as such."
  - "Synchronous replication (O(synchronous)): the promoted node never keeps a non-empty
    C(synchronous_standby_names) (a copy inherited by a base backup would name a standby that
    does not stream and block every commit): it is emptied before the promotion. When the old
    primary replicated synchronously (read from it when it answers, else from the candidate's
    inherited copy) or O(synchronous=on), C(synchronous.state) is V(degraded_async): the new
    primary takes writes asynchronously until the old one streams from it again, and
    C(synchronous.restore) says how the rejoin makes it synchronous again."
  - When a candidate is already the only writable primary (a repeated run, or a healthy
    cluster), nothing changes; RV(msg) tells which.
  - Nodes that do not answer are taken as down; a node that answers and refuses the connection
    (wrong password, C(pg_hba.conf), no free slot) or a host name that does not resolve fails
    the task, so that a typo cannot pass for a dead primary.
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
      - Reads every node (read-only queries only) and reports which one it would promote and
        the loss estimate.
  diff_mode:
    support: full
  idempotent:
    description: A repeated run finds the promoted candidate and changes nothing.
    support: full
options:
  candidates:
    description:
      - Names of the nodes that may be promoted (the target region). Empty means every node.
    type: list
    elements: str
    default: []
  max_data_loss_seconds:
    description:
      - Refuse when the loss estimate exceeds this many seconds, or cannot be made (unless
        O(accept_data_loss=true)).
      - Unset, O(accept_data_loss=true) is required to promote at all.
    type: float
  accept_data_loss:
    description:
      - Promote whatever the loss estimate (it is still reported). Must be set explicitly.
    type: bool
    default: false
  promote_timeout:
    description: Seconds to wait for the promoted node to leave recovery.
    type: float
    default: 60
  checkpoint:
    description: Run C(CHECKPOINT) on the new primary once it accepts writes (for C(pg_rewind)).
    type: bool
    default: true
  synchronous:
    description:
      - V(keep) restores synchronous replication after the rejoin when the old primary (or the
        candidate's inherited copy) had a non-empty C(synchronous_standby_names); V(on) in any
        case (the cluster replicates synchronously, as the inventory says); V(off) leaves the
        new primary asynchronous. The new primary always starts asynchronous.
    type: str
    choices: [keep, 'on', 'off']
    default: keep
'''

EXAMPLES = r'''
- name: Fail over to us-west (us-east is lost)
  failsafe.datastores.postgresql_failover:
    nodes:
      - name: pg-east-1
        host: 10.10.1.10
        password: "{{ vault_pg_password }}"
        log_file: /var/log/postgresql/postgresql-15-main.log
      - name: pg-west-1
        host: 10.20.1.10
        password: "{{ vault_pg_password }}"
        log_file: /var/log/postgresql/postgresql-15-main.log
    candidates: [pg-west-1]
    max_data_loss_seconds: 60
  register: failover

- name: Fail over whatever the loss, with every node as the inventory describes it
  failsafe.datastores.postgresql_failover:
    nodes: "{{ groups['postgresql'] | map('extract', hostvars)
               | map('failsafe.datastores.pg_conn', with_name=true) | list }}"
    candidates: "{{ groups['us-west'] }}"
    accept_data_loss: true
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
  description: True when a candidate already was the only writable primary (nothing to do).
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
  description:
    - Estimate for the promoted node. C(bytes) is null (the lost primary cannot be asked).
    - C(window_seconds_at_most) (null when unknown, never 0 for "not measured"),
      C(last_contact) (when the standby last had everything), C(connection_lost_at) and
      C(connection_lost_line) (from its log), C(basis) (V(connected), V(connection closed),
      V(connection timed out), V(since now), or V(not measured)), C(meaning) (a sentence),
      C(received_lsn), C(replayed_lsn), C(last_replayed_commit), C(log_file) and C(log_note)
      (why the log could not be read).
  returned: always
  type: dict
timeline:
  description: Timeline of the new primary (before promotion, in check mode).
  returned: always
  type: int
steps:
  description: The steps taken (or planned, in check mode).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds spent reading the nodes (checks), promoting, until writable, on the
    checkpoint, and in total.
  returned: always
  type: dict
synchronous:
  description:
    - Synchronous replication across the failover. C(mode), C(old_primary_setting) (null when
      the old primary could not be read), C(candidate_setting), C(clear) (emptied before the
      promotion), C(new_primary_setting) (empty), C(state) (V(degraded_async) or V(async)),
      C(restore) (C(method) and C(num_sync) for
      M(failsafe.datastores.postgresql_sync_replication) once the old primary streams, or null).
  returned: always
  type: dict
msg:
  description: What happened, in a sentence (also on success).
  returned: always
  type: str
diff:
  description: The writable primary before and after.
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_actions import (
    promote_standby,
    promotion_plan,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    PEER_SPEC,
    PostgresError,
    doing,
    ensure_driver,
    explain_error,
    try_connect,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import (
    estimate_loss,
    furthest_lsn,
    lsn_to_int,
    replication_facts,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_sync import (
    promotion_sync,
    promotion_sync_note,
    promotion_sync_step,
    set_sync_settings,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._report import Report

APPLICATION_NAME = "failsafe.failover"

# Reported timings: (name, from mark, to mark); None is the start of the module.
TIMED_STEPS = (
    ("checks", None, "checked"),
    ("promote", "checked", "promoted"),
    ("writable", "promoted", "writable"),
    ("checkpoint", "writable", "checkpoint"),
)

NOT_MEASURED = dict(bytes=None, window_seconds_at_most=None, basis="not measured")


def survey(nodes):
    """Open every node that answers; returns ({name: conn}, [summary per node], {name: facts})."""
    conns, summary, facts = {}, [], {}
    for node in nodes:
        conn, reason = try_connect(node, APPLICATION_NAME)
        entry = dict(name=node["name"], reachable=conn is not None, role=None, read_only=None,
                     received_lsn=None, replayed_lsn=None, unreachable_reason=reason)
        if conn is not None:
            conns[node["name"]] = conn
            with doing("reading the replication state of %s" % node["name"], node):
                facts[node["name"]] = node_facts = replication_facts(conn)
            entry.update(role=node_facts["role"], read_only=node_facts["read_only"],
                         received_lsn=node_facts["received_lsn"],
                         replayed_lsn=node_facts["replayed_lsn"])
        summary.append(entry)
    return conns, summary, facts


def wal_position(entry):
    """How much WAL a standby has: the furthest of its received and replayed positions."""
    return lsn_to_int(furthest_lsn(entry["received_lsn"], entry["replayed_lsn"]) or "0/0")


def choose(params, summary, facts):
    """The verdict before anything changes: ('done', name, why) or ('promote', name, None)."""
    candidates = set(params["candidates"] or [n["name"] for n in params["nodes"]])
    writable = [n["name"] for n in summary
                if n["reachable"] and n["role"] == "primary" and not n["read_only"]]
    if len(writable) > 1:
        raise PostgresError(
            "split brain now: %s are %s writable primaries. Nothing was changed. Fence all but "
            "one (postgresql_read_only read_only=true) and rejoin them as standbys "
            "(postgresql_standby); what each accepted alone must be reconciled by hand"
            % (" and ".join(writable), "both" if len(writable) == 2 else "all"))
    if writable and writable[0] in candidates:
        return "done", writable[0], healthy_or_failed_over(writable[0], summary)
    if writable:
        raise PostgresError(
            "%s answers as a writable primary: an emergency failover now would give two "
            "writable primaries. Nothing was changed. For a planned move use "
            "postgresql_switchover; if that primary must go, fence it (postgresql_read_only) or "
            "stop it first" % writable[0])
    standbys = [n for n in summary if n["reachable"] and n["role"] == "standby"
                and n["name"] in candidates]
    if not standbys:
        raise PostgresError(
            "no reachable standby to promote among %s (answering: %s)%s. Nothing was changed"
            % (sorted(candidates), [n["name"] for n in summary if n["reachable"]] or "none",
               fenced_hint(summary)))
    sysids = set(facts[n["name"]]["system_identifier"] for n in summary if n["reachable"])
    if len(sysids) > 1:
        raise PostgresError("the nodes belong to different clusters (system identifiers %s): "
                            "check the nodes option. Nothing was changed" % sorted(sysids))
    return "promote", max(standbys, key=wal_position)["name"], None


def fenced_hint(summary):
    """What to run when no node takes writes but a primary answers fenced, or ''."""
    fenced = [n["name"] for n in summary
              if n["reachable"] and n["role"] == "primary" and n["read_only"]]
    if not fenced:
        return ""
    return (": %s %s a primary fenced read-only and no node takes writes (an interrupted "
            "switchover): a fenced primary took no writes, so nothing needs failing over. Give "
            "writes back to it with postgresql_read_only read_only=false (playbook: "
            "ansible-playbook playbooks/postgresql_unfence.yml%s), then rejoin the standby"
            % (" and ".join(fenced), "is" if len(fenced) == 1 else "are",
               "" if len(fenced) == 1 else " -e postgresql_unfence_node=HOST"))


def healthy_or_failed_over(primary, summary):
    """Why nothing needs doing when a candidate already is the only writable primary."""
    others = [n for n in summary if n["name"] != primary]
    down = [n["name"] for n in others if not n["reachable"]]
    fenced = [n["name"] for n in others if n["reachable"] and n["role"] == "primary"]
    found = []
    if down:
        found.append("unreachable: %s" % ", ".join(down))
    if fenced:
        found.append("fenced primaries: %s" % ", ".join(fenced))
    if found:
        return ("Already failed over: %s is the only writable primary (%s). Nothing needs "
                "failing over." % (primary, "; ".join(found)))
    return ("%s is the writable primary and every other node is a standby: nothing needs "
            "failing over." % primary)


def check_loss(params, name, loss):
    """Refuse unless the loss is accepted: explicitly, or within the budget."""
    limit = params["max_data_loss_seconds"]
    if params["accept_data_loss"]:
        return
    window = loss["window_seconds_at_most"]
    estimate = "%s may miss up to %s seconds of writes (%s)" % (
        name, "an unknown number of" if window is None else window, loss["basis"])
    if limit is None:
        raise PostgresError(
            "no data-loss budget was given, and an emergency failover may lose writes: %s. "
            "Nothing was changed. Set max_data_loss_seconds=SECONDS (playbook: -e "
            "postgresql_failover_max_data_loss_seconds=SECONDS) to promote when at most that "
            "much may be lost, or accept_data_loss=true (playbook: -e "
            "postgresql_failover_accept_data_loss=true) to promote whatever the loss"
            % estimate)
    if window is None or window > limit:
        raise PostgresError(
            "%s, more than max_data_loss_seconds=%s. Nothing was changed. %s Raise the limit "
            "(or set accept_data_loss=true) to accept that loss, or recover the primary"
            % (estimate, limit, loss["meaning"]))


def fail_over(module, report, result):
    params = module.params
    conns = {}
    try:
        conns, summary, facts = survey(params["nodes"])
        result["nodes"] = summary
        verdict, target, why = choose(params, summary, facts)
        result["target"] = target
        result["timeline"] = facts[target]["timeline"]
        result["old_primaries"] = [n["name"] for n in summary if n["name"] != target and (
            not n["reachable"] or n["role"] == "primary")]
        node = dict((n["name"], n) for n in params["nodes"])[target]
        if verdict == "done":
            report.mark("checked")
            result.update(already_failed_over=True, msg=why,
                          data_loss=dict(NOT_MEASURED, meaning=(
                              "Nothing was promoted by this run; what an earlier failover "
                              "lost is not known here.")))
            report.changes(dict(writable_primary=target), dict(writable_primary=target))
            return
        with doing("estimating the data loss of %s" % target, node):
            result["data_loss"] = loss = estimate_loss(conns[target], facts[target],
                                                       node.get("log_file"))
        report.mark("checked")
        check_loss(params, target, loss)
        old_settings = [facts[name]["synchronous_standby_names"]
                        for name in result["old_primaries"] if name in facts]
        result["synchronous"] = sync = promotion_sync(
            params["synchronous"], old_settings[0] if old_settings else None,
            facts[target]["synchronous_standby_names"])
        result.update(changed=True, promoted=True)
        report.changes(dict(writable_primary=None), dict(writable_primary=target))
        if module.check_mode:
            report.plan(([promotion_sync_step(sync)] if sync["clear"] else [])
                        + promotion_plan(target, params["checkpoint"]))
            result["msg"] = "Check mode: would promote %s. %s" % (target, loss["meaning"])
            return
        if sync["clear"]:
            with doing("making %s asynchronous before its promotion" % target, node):
                set_sync_settings(conns[target], "")
            report.done("set synchronous_standby_names = '' on %s (was %r) before promoting it"
                        % (target, sync["candidate_setting"]))
        dummy, result["timeline"] = promote_standby(
            conns[target], node, report, params["promote_timeout"], params["checkpoint"],
            APPLICATION_NAME)
        result["msg"] = "Promoted %s. %s%s" % (target, loss["meaning"],
                                               promotion_sync_note(sync, target))
    finally:
        for conn in conns.values():
            conn.close()


def main():
    node_spec = dict(PEER_SPEC, name=dict(type="str", required=True),
                     connect_timeout=dict(type="int", default=3))
    module = AnsibleModule(
        argument_spec=dict(
            nodes=dict(type="list", elements="dict", required=True, options=node_spec),
            candidates=dict(type="list", elements="str", default=[]),
            max_data_loss_seconds=dict(type="float"),
            accept_data_loss=dict(type="bool", default=False),
            promote_timeout=dict(type="float", default=60),
            checkpoint=dict(type="bool", default=True),
            synchronous=dict(type="str", choices=["keep", "on", "off"], default="keep"),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    params = module.params
    names = [n["name"] for n in params["nodes"]]
    unknown = sorted(set(params["candidates"]) - set(names))
    if unknown:
        module.fail_json(msg="candidates %s are not among the nodes %s" % (unknown, names))
    report = Report(module, TIMED_STEPS)
    result = dict(changed=False, promoted=False, already_failed_over=False, target=None,
                  old_primaries=[], nodes=[], data_loss=dict(NOT_MEASURED), timeline=None,
                  synchronous=dict(mode=params["synchronous"], state=None, restore=None))
    report.run(lambda: fail_over(module, report, result), result, explain_error)


if __name__ == "__main__":
    main()
