#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postgresql_promote
short_description: Promote a PostgreSQL standby, refusing when that would lose data or split the brain
version_added: 0.1.0
description:
  - Promotes the standby given by O(node) and waits until it accepts writes
    (C(pg_promote(wait => false)) then polling every 2 ms, which is faster than the 100 ms
    steps of C(pg_promote(wait => true))).
  - Split-brain guard. With O(require_fenced_primary=true) the old primary (O(primary)) must be
    unreachable, a standby, or fenced read-only; a reachable writable primary is refused.
  - Data-loss guard. When the old primary is reachable, the standby is given
    O(catchup_timeout) seconds to replay the primary's flushed WAL; if it is then still more
    than O(max_lag_bytes) behind, the promotion is refused. When the old primary cannot be
    reached the loss cannot be measured, so O(accept_data_loss=true) is required, and the
    module reports an estimate of the window of writes that may be missing (see RV(data_loss);
    give O(node.log_file) so that it can tell when the standby lost the primary).
  - A promoted node that inherited a read-only fence (C(default_transaction_read_only)) gets
    it reset, so that the new primary really accepts writes. A C(CHECKPOINT) follows, so that
    C(pg_rewind) of the old primary works right away.
  - A server that is already a primary is left alone (changed=false), after the same
    split-brain check.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.postgresql
  - failsafe.datastores.postgresql.NODE
  - failsafe.datastores.postgresql.PRIMARY
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Runs every guard (read-only queries) and reports whether it would promote.
  diff_mode:
    support: full
  idempotent:
    description: Promoting a primary reports changed=false.
    support: full
options:
  max_lag_bytes:
    description:
      - Largest replay lag (bytes of WAL the standby has not replayed, measured against the
        reachable primary's flushed WAL) that may be given up. V(0) for a planned promotion.
    type: int
    default: 0
  accept_data_loss:
    description:
      - Promote even when the lag exceeds O(max_lag_bytes) or cannot be measured (the primary
        is unreachable). Must be set explicitly; the loss estimate is reported.
    type: bool
    default: false
  require_fenced_primary:
    description:
      - Refuse while the old primary is reachable, a primary and not read-only. Needs
        O(primary); set V(false) only when you have fenced it by other means (network
        isolation, stopped service) and confirmed that.
    type: bool
    default: true
  catchup_timeout:
    description: Seconds to let the standby replay up to the primary's flushed WAL first.
    type: float
    default: 10
  wait_timeout:
    description: Seconds to wait for the standby to leave recovery after C(pg_promote()).
    type: float
    default: 60
  checkpoint:
    description: Run C(CHECKPOINT) on the new primary once it accepts writes.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Promote the us-west standby (planned; the old primary was fenced before)
  failsafe.datastores.postgresql_promote:
    node:
      host: pg-west.example.com
      password: "{{ vault_pg_password }}"
    primary:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"

- name: Emergency promotion, primary region is down
  failsafe.datastores.postgresql_promote:
    node: "{{ hostvars['pg-west'] | failsafe.datastores.pg_conn }}"
    primary: "{{ hostvars['pg-east'] | failsafe.datastores.pg_conn }}"
    accept_data_loss: true
  register: promotion

- name: Record the data-loss estimate
  ansible.builtin.debug:
    var: promotion.data_loss
'''

RETURN = r'''
promoted:
  description: Whether the module promoted the server (or would, in check mode).
  returned: always
  type: bool
role:
  description: Role of the server after the task.
  returned: always
  type: str
timeline:
  description: Timeline of the server after the task (before it, in check mode).
  returned: always
  type: int
promoted_at_lsn:
  description: Replayed WAL position at which the standby was promoted.
  returned: when promoted
  type: str
lag_bytes:
  description: Replay lag against the old primary's flushed WAL when the decision was made;
    null when the primary was unreachable.
  returned: always
  type: int
old_primary:
  description: What was found at the old primary (reachable, role, read_only, flush_lsn,
    unreachable_reason).
  returned: always
  type: dict
data_loss:
  description:
    - Loss estimate. C(bytes) when the primary was reachable (measured against its flushed WAL).
    - Otherwise C(bytes=null) and the window of writes that may be missing, as
      M(failsafe.datastores.postgresql_failover) reports it - C(window_seconds_at_most),
      C(last_contact), C(connection_lost_at), C(basis), C(meaning) (a sentence), the LSNs.
    - C(already_primary=true) and C(bytes=null) when the server was a primary already (what an
      earlier promotion lost is not known here).
  returned: always
  type: dict
unfenced:
  description: Whether an inherited read-only fence was reset on the new primary.
  returned: always
  type: bool
timings:
  description: Seconds spent in each step (catchup, promote, writable, checkpoint, total).
  returned: always
  type: dict
steps:
  description: The steps taken (or planned, in check mode).
  returned: always
  type: list
  elements: str
diff:
  description: Role before and after.
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_actions import (
    promote_standby,
    promotion_plan,
    wait_replayed,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    PostgresError,
    connect,
    describe,
    doing,
    ensure_driver,
    explain_error,
    peer_option,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import (
    estimate_loss,
    lsn_diff,
    probe_old_primary,
    replication_facts,
    scalar,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._report import Report

APPLICATION_NAME = "failsafe.promote"

# Reported timings: (name, from mark, to mark); None is the start of the module.
TIMED_STEPS = (
    ("catchup", None, "caught_up"),
    ("promote", "caught_up", "promoted"),
    ("writable", "promoted", "writable"),
    ("checkpoint", "writable", "checkpoint"),
)


def split_brain_message(old, already=False):
    if already:
        return ("split brain: this server is already a primary and the old primary at %s is "
                "also a writable primary. Fence one of them now (postgresql_read_only) and "
                "rejoin it as a standby (postgresql_standby)" % old["address"])
    return ("the old primary at %s is reachable and still writable: promoting now would give "
            "two writable primaries (split brain). Nothing was changed. Fence it first "
            "(postgresql_read_only read_only=true), use postgresql_switchover for a planned "
            "switch, or, if it is fenced by other means, set require_fenced_primary=false"
            % old["address"])


def decide(params, facts, old, estimate=None):
    """The refusals, before anything changes. Returns (lag_bytes, data_loss).

    `estimate` is the loss window (estimate_loss) used when the old primary cannot measure
    the loss.
    """
    if params["require_fenced_primary"]:
        if params["primary"] is None:
            raise PostgresError(
                "require_fenced_primary is true but no primary connection was given: pass "
                "primary= so the old primary can be checked, or set require_fenced_primary=false "
                "after confirming it is fenced or down")
        if old["reachable"] and old["role"] == "primary" and not old["read_only"]:
            raise PostgresError(split_brain_message(old))
    if old["reachable"] and old["role"] == "primary":
        lag = lsn_diff(old["flush_lsn"], facts["replayed_lsn"])
        loss = dict(bytes=lag, primary_reachable=True)
        if lag > params["max_lag_bytes"] and not params["accept_data_loss"]:
            raise PostgresError(
                "the standby has replayed up to %s but the primary has flushed %s: %d bytes "
                "behind, more than max_lag_bytes=%d%s. Nothing was changed. Let it catch up "
                "(is replay paused or the primary still writing?), raise max_lag_bytes, or set "
                "accept_data_loss=true to give those bytes up"
                % (facts["replayed_lsn"], old["flush_lsn"], lag, params["max_lag_bytes"],
                   " (replay is paused)" if facts["replay_paused"] else ""))
        return lag, loss
    if not params["accept_data_loss"]:
        if params["primary"] is None:
            why = "no primary connection was given"
        elif old["reachable"]:
            why = "the old primary at %s is itself a standby" % old["address"]
        else:
            why = "the old primary is unreachable (%s)" % old.get("unreachable_reason")
        raise PostgresError(
            "%s, so the data loss of this promotion cannot be measured. Nothing was changed. "
            "If this is an emergency failover, set accept_data_loss=true (the estimate is "
            "reported); otherwise restore the primary's reachability first" % why)
    return None, estimate


def promote(module, report, result):
    params = module.params
    peer = params["node"]
    with connect(peer, APPLICATION_NAME) as conn:
        with doing("reading the replication state", peer):
            facts = replication_facts(conn)
        with doing("reading the old primary", params["primary"] or peer):
            old = probe_old_primary(params["primary"], APPLICATION_NAME)
        result["old_primary"] = old
        if facts["role"] == "primary":
            # Already promoted: still refuse to report success beside a live twin.
            if params["require_fenced_primary"] and old["reachable"] \
                    and old["role"] == "primary" and not old["read_only"] \
                    and old.get("system_identifier") == facts["system_identifier"]:
                raise PostgresError(split_brain_message(old, already=True))
            # What an earlier promotion lost is not known here: say so, not "0".
            result.update(role="primary", timeline=facts["timeline"],
                          data_loss=dict(bytes=None, primary_reachable=old["reachable"],
                                         already_primary=True))
            report.changes(dict(role="primary"), dict(role="primary"))
            return
        if old["reachable"] and old.get("system_identifier") not in (
                None, facts["system_identifier"]):
            raise PostgresError(
                "the primary at %s belongs to another cluster (system identifier %s, the "
                "standby has %s): check the primary option" % (
                    old["address"], old["system_identifier"], facts["system_identifier"]))
        primary_measures = old["reachable"] and old["role"] == "primary"
        estimate = None
        if primary_measures:
            # Give a fenced (or idle) primary's last WAL a chance to arrive.
            with doing("waiting for the standby to replay %s" % old["flush_lsn"], peer):
                dummy, facts["replayed_lsn"] = wait_replayed(conn, old["flush_lsn"],
                                                             params["catchup_timeout"])
        else:
            with doing("estimating the data loss", peer):
                estimate = estimate_loss(conn, facts, peer.get("log_file"),
                                         primary_reachable=bool(old["reachable"]))
        report.mark("caught_up")
        lag, loss = decide(params, facts, old, estimate)
        result.update(lag_bytes=lag, data_loss=loss, timeline=facts["timeline"], promoted=True,
                      changed=True)
        report.changes(dict(role="standby"), dict(role="primary"))
        if module.check_mode:
            report.plan(promotion_plan(describe(peer), params["checkpoint"]))
            result["role"] = "primary"
            return
        with doing("reading the replayed WAL position", peer):
            result["promoted_at_lsn"] = scalar(conn, "SELECT pg_last_wal_replay_lsn()::text")
        result["unfenced"], result["timeline"] = promote_standby(
            conn, peer, report, params["wait_timeout"], params["checkpoint"], APPLICATION_NAME)
        result["role"] = "primary"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            node=peer_option(required=True),
            primary=peer_option(),
            max_lag_bytes=dict(type="int", default=0),
            accept_data_loss=dict(type="bool", default=False),
            require_fenced_primary=dict(type="bool", default=True),
            catchup_timeout=dict(type="float", default=10),
            wait_timeout=dict(type="float", default=60),
            checkpoint=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    params = module.params
    if params["max_lag_bytes"] < 0:
        module.fail_json(msg="max_lag_bytes must be 0 or more, got %d" % params["max_lag_bytes"])
    report = Report(module, TIMED_STEPS)
    result = dict(changed=False, promoted=False, unfenced=False, lag_bytes=None, data_loss={})
    report.run(lambda: promote(module, report, result), result, explain_error)


if __name__ == "__main__":
    main()
