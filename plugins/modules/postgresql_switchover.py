#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postgresql_switchover
short_description: Zero-loss planned PostgreSQL switchover in one call
version_added: 0.1.0
description:
  - Switches the primary role from O(primary) to O(standby) with no acknowledged commit lost,
    inside one module call so that no Ansible round trip falls in the write outage.
  - "Steps: checks (read-only) -> fence the primary (C(default_transaction_read_only) via
    C(ALTER SYSTEM), reload, wait until in force) -> terminate client sessions opened before
    the fence and wait until they have exited -> read the primary's flushed WAL position ->
    wait until the standby has replayed at least that position -> C(pg_promote(wait => false))
    and poll every 2 ms -> reset an inherited fence on the new primary -> C(CHECKPOINT) (after
    writes resume, so that C(pg_rewind) of the old primary works at once)."
  - The cluster is never left without a writable primary. Any failure after the fence and
    before the promotion (the standby does not catch up within O(catchup_timeout), the standby
    is lost, an error, our own session terminated by someone else) lifts the fence through a
    new session before the task fails, and the message says so; nothing is lost, the old
    primary takes writes again. A failure once C(pg_promote()) was sent re-reads both servers
    and says what each is now, instead of guessing.
  - A primary found already fenced (an earlier run was killed, or someone fenced it) is
    reported with the time the fence was written, so that the write outage before this run
    is on record too.
  - The old primary stays fenced; turn it into a standby of the new one with
    M(failsafe.datastores.postgresql_standby).
  - Running it again after a switchover reports changed=false. A pair with two writable
    primaries is refused (split brain).
  - "Synchronous replication (O(synchronous)): the new primary never starts with a non-empty
    C(synchronous_standby_names) (it could name a standby that does not stream yet and block
    every commit): a non-empty value on the standby is emptied before the fence. When the old
    primary replicated synchronously (or O(synchronous=on)), C(synchronous.state) is
    V(degraded_async) and C(synchronous.restore) says how to make the new primary synchronous
    again once the old one streams from it (role C(failsafe.datastores.postgresql_rejoin) does
    it with M(failsafe.datastores.postgresql_sync_replication))."
  - Commits made with C(synchronous_commit=off) are acknowledged before they are flushed;
    they are covered only if flushed before the fence (PostgreSQL itself may lose them on a
    crash).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.postgresql
  - failsafe.datastores.postgresql.PRIMARY_REQUIRED
  - failsafe.datastores.postgresql.STANDBY
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Runs every check (read-only queries only) and reports the steps it would take.
  diff_mode:
    support: full
  idempotent:
    description: A completed switchover is recognised and reported as changed=false.
    support: full
options:
  max_lag_bytes:
    description:
      - Refuse to start (before fencing) when the standby's replay is further behind the
        primary than this, because writes would stay fenced while it catches up.
    type: int
    default: 67108864
  catchup_timeout:
    description:
      - Seconds the fenced primary waits for the standby to replay its final WAL. On timeout
        the primary is unfenced and the task fails.
    type: float
    default: 10
  promote_timeout:
    description: Seconds to wait for the standby to leave recovery after C(pg_promote()).
    type: float
    default: 30
  terminate_sessions:
    description: Terminate client sessions opened before the fence (they could still write).
    type: bool
    default: true
  exclude_users:
    description: Roles whose sessions are not terminated.
    type: list
    elements: str
    default: []
  checkpoint:
    description: Run C(CHECKPOINT) on the new primary after it accepts writes.
    type: bool
    default: true
  synchronous:
    description:
      - V(keep) restores synchronous replication after the rejoin when the old primary had a
        non-empty C(synchronous_standby_names); V(on) in any case (the cluster replicates
        synchronously); V(off) leaves the new primary asynchronous.
      - In every case the new primary starts asynchronous (C(synchronous.state)).
    type: str
    choices: [keep, 'on', 'off']
    default: keep
'''

EXAMPLES = r'''
- name: Planned switchover us-east -> us-west
  failsafe.datastores.postgresql_switchover:
    primary:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"
    standby:
      host: pg-west.example.com
      password: "{{ vault_pg_password }}"
  register: switchover

- name: Show the write outage
  ansible.builtin.debug:
    msg: "writes unavailable for {{ switchover.timings.write_unavailable }} s"
'''

RETURN = r'''
switched:
  description:
    - Whether the module switched over (or would, in check mode).
    - False when the run failed before the promotion was sent (the primary was unfenced again);
      still true when it failed after it (the message then says what each server is).
  returned: always
  type: bool
already_switched:
  description: True when the standby was already the primary and the old primary fenced or a standby.
  returned: always
  type: bool
steps:
  description: The steps taken, also on failure (or planned, in check mode).
  returned: always
  type: list
  elements: str
old_primary:
  description:
    - C(address), C(final_lsn) (flushed WAL position after the fence) and C(read_only).
    - C(fenced_at_start=true) when it was already fenced when the run started, with
      C(fenced_since) (when the fence was written to C(postgresql.auto.conf), ISO 8601; null
      when unknown) and C(fenced_seconds_before_run).
  returned: always
  type: dict
new_primary:
  description: C(address), C(timeline) and C(promoted_at_lsn).
  returned: always
  type: dict
lag_bytes_before:
  description: Standby replay lag when the switchover started.
  returned: always
  type: int
terminated:
  description: Client sessions terminated on the old primary.
  returned: always
  type: list
  elements: dict
unfenced:
  description: Whether the new primary's inherited read-only fence was reset.
  returned: always
  type: bool
timings:
  description:
    - Seconds per step. C(write_unavailable) runs from the fence to the moment the new primary
      accepts writes; C(checks), C(fence), C(terminate), C(catchup), C(promote), C(writable),
      C(checkpoint) and C(total) are the parts.
  returned: always
  type: dict
  sample: {"checks": 0.02, "fence": 0.004, "terminate": 0.006, "catchup": 0.003,
           "promote": 0.031, "writable": 0.0004, "write_unavailable": 0.045,
           "checkpoint": 0.09, "total": 0.16}
synchronous:
  description:
    - Synchronous replication across the swap. C(mode) (O(synchronous)),
      C(old_primary_setting) and C(candidate_setting) (C(synchronous_standby_names) found on
      each), C(clear) (the standby's value was emptied before the promotion),
      C(new_primary_setting) (always empty), C(state) (V(degraded_async) when synchronous mode
      is to be restored once the old primary streams, V(async) otherwise; after an earlier
      completed switchover, V(synchronous), V(sync_blocked) or V(async) as found on the
      primary), C(restore) (C(method) and C(num_sync) for
      M(failsafe.datastores.postgresql_sync_replication), or null).
  returned: always
  type: dict
msg:
  description: What happened, in a sentence (also on success).
  returned: always
  type: str
diff:
  description: Which server is primary before and after.
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_actions import (
    lift_fence,
    promote_until_writable,
    server_state,
    set_read_only,
    stale_sessions,
    terminate_sessions,
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
    fence_age,
    lsn_diff,
    replication_facts,
    scalar,
    timeline,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_sync import (
    promotion_sync,
    promotion_sync_note,
    promotion_sync_step,
    set_sync_settings,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._report import Report

APPLICATION_NAME = "failsafe.switchover"

# Reported timings: (name, from mark, to mark); None is the start of the module.
TIMED_STEPS = (
    ("checks", None, "fence_start"),
    ("fence", "fence_start", "fenced"),
    ("terminate", "fenced", "terminated"),
    ("catchup", "terminated", "caught_up"),
    ("promote", "caught_up", "promoted"),
    ("writable", "promoted", "writable"),
    ("write_unavailable", "fence_start", "writable"),
    ("checkpoint", "writable", "checkpoint"),
)

PLAN = [
    "fence the primary (default_transaction_read_only = on, reload)",
    "terminate client sessions opened before the fence",
    "wait until the standby has replayed the primary's flushed WAL",
    "promote the standby",
    "checkpoint the new primary",
]


def checks(params, primary, standby, p_addr, s_addr):
    """Everything that must hold before the fence. Returns 'switch' or 'done'."""
    if primary["system_identifier"] != standby["system_identifier"]:
        raise PostgresError(
            "%s and %s belong to different clusters (system identifiers %s and %s)"
            % (p_addr, s_addr, primary["system_identifier"], standby["system_identifier"]))
    if standby["role"] == "primary":
        if primary["role"] == "standby" or primary["read_only"]:
            return "done"
        raise PostgresError(
            "split brain: %s and %s are both writable primaries. Fence one now "
            "(postgresql_read_only) and rejoin it as a standby (postgresql_standby)"
            % (p_addr, s_addr))
    if primary["role"] != "primary":
        raise PostgresError(
            "%s is not a primary (it is in recovery) and %s is a standby: check the primary "
            "option" % (p_addr, s_addr))
    receiver = standby["wal_receiver"]
    if receiver and receiver["status"] is None:
        # A WAL receiver runs, but this role may not see its columns (PostgreSQL shows them to
        # superusers and members of pg_read_all_stats only): not a standby that does not stream.
        raise PostgresError(
            "cannot tell whether %s streams: the role %s may not read pg_stat_wal_receiver "
            "(connect as a superuser, or grant it pg_monitor). Nothing was changed"
            % (s_addr, (params.get("standby") or {}).get("user") or "used"))
    if not receiver or receiver["status"] != "streaming":
        raise PostgresError(
            "%s is not streaming from its primary (WAL receiver: %s); a switchover needs a "
            "streaming standby. Check primary_conninfo and the standby's log"
            % (s_addr, receiver["status"] if receiver else "not running"))
    if standby["timeline"] != primary["timeline"]:
        raise PostgresError(
            "%s is on timeline %s but the primary %s is on timeline %s"
            % (s_addr, standby["timeline"], p_addr, primary["timeline"]))
    if standby["replay_paused"]:
        raise PostgresError(
            "WAL replay is paused on %s, so it could never catch up: resume it with "
            "SELECT pg_wal_replay_resume() first. Nothing was changed" % s_addr)
    lag = lsn_diff(primary["current_lsn"], standby["replayed_lsn"])
    if lag > params["max_lag_bytes"]:
        raise PostgresError(
            "%s is %d bytes behind the primary, more than max_lag_bytes=%d: writes would stay "
            "fenced while it catches up. Nothing was changed. Retry when the lag is lower"
            % (s_addr, lag, params["max_lag_bytes"]))
    return "switch"


def already_fenced_note(old_primary):
    """A sentence on a fence found at the start, or ''."""
    if not old_primary.get("fenced_at_start"):
        return ""
    if old_primary.get("fenced_since"):
        return (" Writes were already unavailable when this run started: %s had been fenced "
                "since %s (%.1f s before this run)." % (
                    old_primary["address"], old_primary["fenced_since"],
                    old_primary["fenced_seconds_before_run"]))
    return (" Writes were already unavailable when this run started: %s was already fenced "
            "(since when is not known)." % old_primary["address"])


def switch_over(module, report, result):
    params = module.params
    p_peer, s_peer = params["primary"], params["standby"]
    p_addr, s_addr = describe(p_peer), describe(s_peer)
    pconn = connect(p_peer, APPLICATION_NAME)
    sconn = connect(s_peer, APPLICATION_NAME)
    with pconn, sconn:
        with doing("reading the replication state", p_peer):
            primary = replication_facts(pconn)
        with doing("reading the replication state", s_peer):
            standby = replication_facts(sconn)
        verdict = checks(params, primary, standby, p_addr, s_addr)
        result["old_primary"].update(read_only=primary["read_only"])
        result["new_primary"].update(timeline=standby["timeline"])
        if verdict == "done":
            names = standby["synchronous_standby_names"]
            result["synchronous"].update(
                new_primary_setting=names,
                state=("sync_blocked" if standby["sync_blocked"] else "synchronous")
                if names else "async")
            result.update(already_switched=True,
                          msg="Already switched: %s is the primary, %s is %s." % (
                              s_addr, p_addr, "a standby" if primary["role"] == "standby"
                              else "fenced"))
            report.changes(dict(primary=s_addr), dict(primary=s_addr))
            return
        if primary["read_only"]:
            with doing("reading when the fence was written", p_peer):
                age = fence_age(pconn)
            result["old_primary"].update(fenced_at_start=True, fenced_since=age["since"],
                                         fenced_seconds_before_run=age["seconds"])
        result["lag_bytes_before"] = lsn_diff(primary["current_lsn"], standby["replayed_lsn"])
        sync = promotion_sync(params["synchronous"], primary["synchronous_standby_names"],
                              standby["synchronous_standby_names"])
        result["synchronous"] = sync
        result.update(changed=True, switched=True)
        report.changes(dict(primary=p_addr), dict(primary=s_addr))
        if module.check_mode:
            report.plan(([promotion_sync_step(sync)] if sync["clear"] else []) + PLAN)
            result["msg"] = ("Check mode: would switch over from %s to %s."
                             % (p_addr, s_addr)) + already_fenced_note(result["old_primary"])
            return
        if sync["clear"]:
            # Before the fence: on a standby it changes nothing yet, and costs no outage.
            with doing("making the standby asynchronous before its promotion", s_peer):
                set_sync_settings(sconn, "")
            report.done("set synchronous_standby_names = '' on %s (was %r) before promoting it"
                        % (s_addr, sync["candidate_setting"]))
        critical_section(params, report, result, pconn, sconn)
        result["msg"] = ("Switched over from %s to %s: writes were unavailable for %.3f s."
                         % (p_addr, s_addr, report.timer.between("fence_start", "writable"))
                         + already_fenced_note(result["old_primary"])
                         + promotion_sync_note(sync, s_addr))


def critical_section(params, report, result, pconn, sconn):
    """Fence, terminate, catch up, promote: the write outage, all in this call.

    Whatever fails before pg_promote() is sent lifts the fence again (through a new session:
    ours may be what failed); after it, both servers are re-read and described.
    """
    p_peer, s_peer = params["primary"], params["standby"]
    p_addr, s_addr = describe(p_peer), describe(s_peer)
    promotion_sent = False
    report.mark("fence_start")
    try:
        with doing("fencing the primary", p_peer):
            if not result["old_primary"]["read_only"]:
                set_read_only(pconn, True, 10)
        report.done("fenced %s (default_transaction_read_only = on, reload)" % p_addr)
        report.mark("fenced")
        if params["terminate_sessions"]:
            with doing("terminating the client sessions opened before the fence", p_peer):
                result["terminated"] = terminate_sessions(
                    pconn, stale_sessions(pconn, params["exclude_users"]))
            report.done("terminated %d client session(s) opened before the fence"
                        % len(result["terminated"]))
        report.mark("terminated")
        with doing("reading the primary's final WAL position", p_peer):
            final_lsn = scalar(pconn, "SELECT pg_current_wal_flush_lsn()::text")
        result["old_primary"].update(final_lsn=final_lsn, read_only=True)
        with doing("waiting for the standby to replay the primary's final WAL %s" % final_lsn,
                   s_peer):
            ok, replayed = wait_replayed(sconn, final_lsn, params["catchup_timeout"])
        if not ok:
            raise PostgresError(
                "the standby %s replayed only up to %s of the primary's final %s within "
                "catchup_timeout=%ss" % (s_addr, replayed, final_lsn, params["catchup_timeout"]))
        report.done("%s replayed the primary's final WAL %s" % (s_addr, final_lsn))
        report.mark("caught_up")
        result["new_primary"]["promoted_at_lsn"] = replayed
        promotion_sent = True
        # The outage ends at 'writable'; the checkpoint after it only prepares the rejoin.
        result["unfenced"] = promote_until_writable(sconn, s_peer, report,
                                                    params["promote_timeout"], params["checkpoint"])
        with doing("reading the new timeline", s_peer):
            result["new_primary"]["timeline"] = timeline(sconn, False)
    except Exception:
        if not promotion_sent:
            result["switched"] = False  # nothing was promoted: the run did not switch over
        report.leaves(promotion_state(p_peer, s_peer) if promotion_sent
                      else unfence_after_failure(p_peer, report))
        raise
    report.leaves("%s is the primary now; %s stays fenced." % (s_addr, p_addr))


def unfence_after_failure(p_peer, report):
    """Lift the fence before failing: the cluster must keep a writable primary."""
    p_addr = describe(p_peer)
    try:
        lift_fence(p_peer, APPLICATION_NAME)
    except Exception as exc:  # pylint: disable=broad-except  # said in the message instead
        kind, now = server_state(p_peer, APPLICATION_NAME)
        if kind == "writable":  # the fence never took (e.g. ALTER SYSTEM was refused)
            return ("The primary %s was not left fenced (now: %s); nothing was promoted and "
                    "nothing was lost." % (p_addr, now))
        return ("The primary %s may be STILL FENCED: lifting the fence failed (%s); now: %s. "
                "The cluster may have no writable primary: lift the fence now "
                "(postgresql_read_only read_only=false, or ALTER SYSTEM RESET "
                "default_transaction_read_only; SELECT pg_reload_conf()). Nothing was promoted."
                % (p_addr, explain_error(exc), now))
    report.done("lifted the fence on %s again" % p_addr)
    return ("The primary %s was unfenced and takes writes again; nothing was promoted and "
            "nothing was lost." % p_addr)


def promotion_state(p_peer, s_peer):
    """After pg_promote() may have run: what each server is now, read through new sessions."""
    return ("The promotion of %s may have taken effect. Now: %s; %s. Check both before changing "
            "anything: never unfence %s while %s may be a primary."
            % (describe(s_peer), server_state(s_peer, APPLICATION_NAME)[1],
               server_state(p_peer, APPLICATION_NAME)[1], describe(p_peer), describe(s_peer)))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            primary=peer_option(required=True),
            standby=peer_option(required=True),
            max_lag_bytes=dict(type="int", default=64 * 1024 * 1024),
            catchup_timeout=dict(type="float", default=10),
            promote_timeout=dict(type="float", default=30),
            terminate_sessions=dict(type="bool", default=True),
            exclude_users=dict(type="list", elements="str", default=[]),
            checkpoint=dict(type="bool", default=True),
            synchronous=dict(type="str", choices=["keep", "on", "off"], default="keep"),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    params = module.params
    p_addr, s_addr = describe(params["primary"]), describe(params["standby"])
    report = Report(module, TIMED_STEPS)
    result = dict(changed=False, switched=False, already_switched=False,
                  terminated=[], unfenced=False, lag_bytes_before=None,
                  old_primary=dict(address=p_addr), new_primary=dict(address=s_addr),
                  synchronous=dict(mode=params["synchronous"], state=None, restore=None))
    report.run(lambda: switch_over(module, report, result), result, explain_error)


if __name__ == "__main__":
    main()
