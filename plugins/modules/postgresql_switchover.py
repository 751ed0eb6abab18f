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
  - If the standby does not catch up within O(catchup_timeout), the primary is unfenced and the
    task fails; nothing is lost, the old primary takes writes again.
  - The old primary stays fenced; turn it into a standby of the new one with
    M(failsafe.datastores.postgresql_standby).
  - Running it again after a switchover reports changed=false. A pair with two writable
    primaries is refused (split brain).
  - Commits made with C(synchronous_commit=off) are acknowledged before they are flushed;
    they are covered only if flushed before the fence (PostgreSQL itself may lose them on a
    crash).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.postgresql.PRIMARY_REQUIRED
  - failsafe.datastores.postgresql.STANDBY
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Runs every check (read-only queries) and reports the steps it would take.
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
  description: Whether the module switched over (or would, in check mode).
  returned: always
  type: bool
already_switched:
  description: True when the standby was already the primary and the old primary fenced or a standby.
  returned: always
  type: bool
steps:
  description: The steps taken (or planned, in check mode).
  returned: always
  type: list
  elements: str
old_primary:
  description: C(address), C(final_lsn) (flushed WAL position after the fence) and C(read_only).
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
diff:
  description: Which server is primary before and after.
  returned: when diff mode is on
  type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres import (
    PostgresError,
    Timer,
    connect,
    describe,
    ensure_driver,
    lsn_diff,
    peer_option,
    promote_until_writable,
    replication_facts,
    scalar,
    set_read_only,
    stale_sessions,
    timeline,
    wait_replayed,
)


# Reported timings: (name, from mark, to mark); None is the start of the module.
STEPS = (
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


def terminate_and_wait(conn, sessions, timeout=5.0):
    """Terminate every session at once, then wait until all have exited."""
    if not sessions:
        return []
    pids = [s["pid"] for s in sessions]
    conn.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) AS pid", (pids,))
    deadline = time.monotonic() + timeout
    while scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)):
        if time.monotonic() > deadline:
            raise PostgresError("sessions %s did not exit within %ss of pg_terminate_backend"
                                % (pids, timeout))
        time.sleep(0.001)
    return sessions


def main():
    argument_spec = dict(
        primary=peer_option(required=True),
        standby=peer_option(required=True),
        max_lag_bytes=dict(type="int", default=64 * 1024 * 1024),
        catchup_timeout=dict(type="float", default=10),
        promote_timeout=dict(type="float", default=30),
        terminate_sessions=dict(type="bool", default=True),
        exclude_users=dict(type="list", elements="str", default=[]),
        checkpoint=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_driver(module)
    params = module.params
    p_addr, s_addr = describe(params["primary"]), describe(params["standby"])
    timer = Timer()
    result = dict(changed=False, switched=False, already_switched=False, steps=[],
                  terminated=[], unfenced=False, lag_bytes_before=None,
                  old_primary=dict(address=p_addr), new_primary=dict(address=s_addr))
    fenced = promoting = False
    try:
        pconn = connect(params["primary"], application_name="failsafe.switchover")
        sconn = connect(params["standby"], application_name="failsafe.switchover")
        with pconn, sconn:
            primary = replication_facts(pconn)
            standby = replication_facts(sconn)
            verdict = checks(params, primary, standby, p_addr, s_addr)
            result["old_primary"].update(read_only=primary["read_only"])
            result["new_primary"].update(timeline=standby["timeline"])
            if verdict == "done":
                result.update(already_switched=True)
                finish(module, result, timer, p_addr, s_addr)
            result["lag_bytes_before"] = lsn_diff(primary["current_lsn"], standby["replayed_lsn"])
            result.update(changed=True, switched=True, steps=list(PLAN))
            if module.check_mode:
                finish(module, result, timer, p_addr, s_addr)

            # The write outage starts here: keep everything until 'writable' in this call.
            timer.mark("fence_start")
            if not primary["read_only"]:
                set_read_only(pconn, True, 10)
            fenced = True
            timer.mark("fenced")
            if params["terminate_sessions"]:
                sessions = stale_sessions(pconn, params["exclude_users"])
                result["terminated"] = terminate_and_wait(pconn, sessions)
            timer.mark("terminated")
            final_lsn = scalar(pconn, "SELECT pg_current_wal_flush_lsn()::text")
            result["old_primary"].update(final_lsn=final_lsn, read_only=True)
            ok, replayed = wait_replayed(sconn, final_lsn, params["catchup_timeout"])
            if not ok:
                set_read_only(pconn, False, 10)
                fenced = False
                raise PostgresError(
                    "the standby %s replayed only up to %s of the primary's final %s within "
                    "catchup_timeout=%ss; the primary %s was unfenced and takes writes again, "
                    "nothing was promoted and nothing was lost"
                    % (s_addr, replayed, final_lsn, params["catchup_timeout"], p_addr))
            timer.mark("caught_up")
            promoting = True
            result["new_primary"]["promoted_at_lsn"] = replayed
            # The outage ends at 'writable'; the checkpoint after it only prepares the rejoin.
            result["unfenced"] = promote_until_writable(sconn, timer, params["promote_timeout"],
                                                        params["checkpoint"])
            result["new_primary"]["timeline"] = timeline(sconn, False)
    except PostgresError as exc:
        state = ""
        if promoting:
            state = (" The old primary %s stays fenced (read-only); check %s before "
                     "unfencing anything." % (p_addr, s_addr))
        elif fenced:
            state = " The old primary %s is still fenced (read-only)." % p_addr
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc) + state, **result)
    finish(module, result, timer, p_addr, s_addr)


def finish(module, result, timer, p_addr, s_addr):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        before_primary = s_addr if result["already_switched"] else p_addr
        after_primary = s_addr if (result["switched"] or result["already_switched"]) else p_addr
        result["diff"] = dict(before=dict(primary=before_primary),
                              after=dict(primary=after_primary))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
