#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: redis_failover
short_description: Zero-loss planned Redis failover, or emergency promotion, in one call
version_added: 0.2.0
description:
  - "O(mode=planned): moves the master role from O(master) to O(replica) without losing an
    acknowledged write, also for a client that keeps its connection to the old master. Steps:
    checks (read-only) -> C(CLIENT PAUSE <pause_timeout> WRITE) on the master -> wait until the
    replica's own C(INFO replication) shows the master's offset -> C(FAILOVER TO <replica>
    TIMEOUT 1 FORCE) on the master, which demotes itself and then hands the master role over
    (C(PSYNC FAILOVER)); the old master answers writes with C(READONLY) from then on -> poll
    until the old master reports C(master_failover_state:no-failover) and the replica C(ROLE)
    master -> C(CLIENT UNPAUSE) -> with O(sentinels), make every Sentinel answer the new master
    (O(sentinel_method)) -> C(CONFIG REWRITE) on both nodes."
  - Why not C(FAILOVER TO) alone - it waits for the replica's acknowledgement, which a replica
    sends once a second, so writes stayed paused 0.3-0.9 s under load in the lab. Reading the
    replica's offset directly and then handing over with C(FORCE) took 0.03-0.1 s, with the same
    guarantee - every acknowledged write is on the replica before it is promoted. FORCE is only
    sent after that check.
  - If the replica does not catch up within O(pause_timeout), the master is unpaused and the task
    fails; nothing was promoted and nothing was lost. If this process dies while writes are
    paused, the pause expires by itself (before the hand-over nothing has changed; after it the
    old master is already a replica).
  - "O(mode=emergency): the master is gone. Promotes O(replica) only when O(master) (if given)
    does not answer at all, the replica's own link to its master is down, a Sentinel quorum is
    reachable (with O(sentinels)), and the estimated loss window is within
    O(max_data_loss_seconds) (or O(accept_data_loss=true)). With Sentinels it asks them to fail
    over (C(SENTINEL FAILOVER), each Sentinel in turn until one accepts), so that their
    configuration epochs stay authoritative, and waits until every Sentinel answers the new
    master; a failover Sentinel already started by itself is waited for first. Without
    Sentinels it runs C(REPLICAOF NO ONE)."
  - C(SENTINEL FAILOVER) alone is never used for a planned failover - the old master keeps
    accepting writes until Sentinel converts it about 10 s later, and a client still connected
    to it loses them (FIELD-NOTES measured 56-180 thousand acknowledged writes per trial).
  - Running it again after a completed failover reports changed=false; after an interrupted one
    it completes the missing Sentinel step. Two masters at once are refused (split brain).
  - community.general's redis modules neither wait for the replica nor know Sentinel; this
    module exists for that.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.redis.MASTER
  - failsafe.datastores.redis.REPLICA
  - failsafe.datastores.redis.SENTINELS
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Runs every check (read-only commands) and reports the steps it would take.
  diff_mode:
    support: full
  idempotent:
    description: A completed failover is recognised and reported as changed=false.
    support: full
options:
  mode:
    description:
      - V(planned) - both nodes answer, zero loss; V(emergency) - the master is lost.
    type: str
    choices: [planned, emergency]
    default: planned
  sentinel_method:
    description:
      - How the Sentinels learn the new master after the hand-over (O(mode=planned)).
      - V(remonitor) - C(SENTINEL REMOVE) on every Sentinel, then C(SENTINEL MONITOR) of the new
        master and C(SENTINEL SET) of the settings each had (quorum, down-after-milliseconds,
        failover-timeout, parallel-syncs, and auth-pass/auth-user from O(replica)). Clients that
        ask Sentinel find the new master within milliseconds. It resets the configuration epoch
        and does not carry over other per-master settings (notification and reconfiguration
        scripts, rename-command), so it is refused unless every Sentinel answers and no Sentinel
        knows of one that was not given (one that missed the update could push the old address
        back).
      - V(failover) - C(SENTINEL FAILOVER) on one Sentinel; Sentinel confirms the promotion,
        bumps its configuration epoch and tells the other Sentinels; a Sentinel that is down
        learns it when it comes back. Clients that ask Sentinel wait 1-2 s for it (they get
        C(READONLY) from the old master meanwhile; nothing is lost).
    type: str
    choices: [failover, remonitor]
    default: remonitor
  max_lag_bytes:
    description:
      - O(mode=planned) - refuse before the pause when the replica is further behind the master
        than this, because writes would stay paused while it catches up.
    type: int
    default: 1048576
  pause_timeout:
    description:
      - Milliseconds the master may pause writes waiting for the replica (C(FAILOVER ...
        TIMEOUT)). Must stay below every Sentinel's C(down-after-milliseconds), or Sentinel
        takes the paused master for a dead one.
    type: int
    default: 1000
  sentinel_timeout:
    description: Seconds to wait until every reachable Sentinel answers the new master.
    type: float
    default: 30
  max_data_loss_seconds:
    description:
      - O(mode=emergency) - refuse when the master may have accepted writes this replica never
        received for longer than this (C(window_seconds_at_most) of RV(estimated_loss)).
    type: float
    default: 10
  accept_data_loss:
    description:
      - O(mode=emergency) - promote even when the loss window is over O(max_data_loss_seconds)
        or cannot be estimated. The estimate is still reported.
    type: bool
    default: false
  persist:
    description: Run C(CONFIG REWRITE) on the nodes whose role changed, where they run from a config file.
    type: bool
    default: true
  wait_quorum:
    description:
      - With O(sentinel_method=remonitor), wait until the Sentinels know each other again and the
        quorum is reachable (about 2 s after C(SENTINEL MONITOR); clients are served meanwhile).
      - V(false) returns once every Sentinel answers the new master. The caller must then check
        the quorum itself later (C(regional_failover.yml) does, once the new region's writers
        run, so that the wait stays out of the application's downtime).
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Planned failover us-east -> us-west with Sentinels watching
  failsafe.datastores.redis_failover:
    master:
      host: redis-east.example.com
      password: "{{ vault_redis_password }}"
    replica:
      host: redis-west.example.com
      password: "{{ vault_redis_password }}"
    sentinels:
      - host: sentinel-east.example.com
      - host: sentinel-west.example.com
      - host: sentinel-witness.example.com
    master_name: cache
  register: redis_failover

- name: Show the write outage
  ansible.builtin.debug:
    msg: "writes paused for {{ redis_failover.timings.write_unavailable }} s"

- name: Emergency - the us-east master is lost
  failsafe.datastores.redis_failover:
    mode: emergency
    replica:
      host: redis-west.example.com
      password: "{{ vault_redis_password }}"
    max_data_loss_seconds: 5
'''

RETURN = r'''
mode:
  description: The mode the module ran in.
  returned: always
  type: str
switched:
  description: Whether the module moved the master role (or would, in check mode).
  returned: always
  type: bool
already_switched:
  description: True when the replica was already the master and nothing was left to do.
  returned: always
  type: bool
steps:
  description: The steps taken (or planned, in check mode).
  returned: always
  type: list
  elements: str
old_master:
  description: C(address), C(reachable), C(role_before), C(role_after) and C(offset) (its last replication offset).
  returned: always
  type: dict
new_master:
  description: C(address) (as the master and Sentinel know it), C(role_before), C(offset) when promoted.
  returned: always
  type: dict
lag_bytes_before:
  description: How far the replica was behind when the module started (planned mode).
  returned: always
  type: int
sentinel:
  description:
    - C(method), C(before) (the summary of M(failsafe.datastores.redis_replication_info)'s
      C(sentinel) - C(masters), C(agreed_master), C(reachable), C(total), C(quorum_ok),
      C(failover_in_progress)), C(answers) (the master address each Sentinel gives after the
      module), C(agreed) (every reachable Sentinel answers the new master) and, in emergency
      mode, C(waited_for_sentinel_failover) (a failover Sentinel had started by itself was
      waited for, up to O(sentinel_timeout), before judging the result). Null without
      O(sentinels).
  returned: always
  type: dict
estimated_loss:
  description:
    - Planned mode - C(acknowledged_writes_lost) is 0 by construction (C(FAILOVER) waits for the
      replica's offset). Emergency mode - C(link_status), C(link_down_seconds),
      C(master_last_seen_by_sentinel_seconds_ago), C(replica_offset) and
      C(window_seconds_at_most) (an upper bound of the time the master may have accepted writes
      this replica never received). Once the replica is already the master (a previous run,
      or Sentinel by itself) these are null - a master no longer knows what it missed.
  returned: always
  type: dict
persisted:
  description: Addresses of the nodes whose configuration file was rewritten.
  returned: always
  type: list
  elements: str
timings:
  description:
    - Seconds per step. C(write_unavailable) runs from the pause (C(CLIENT PAUSE), or the
      promotion in emergency mode) to the moment the new master accepts writes; C(checks),
      C(catchup) (pause until the replica has the master's offset), C(handover) (then until the
      replica is master), C(failover) (pause until the old master is a replica), C(sentinel) (new master writable
      until every Sentinel answers it), C(sentinel_clients_unavailable) (the pause until every
      Sentinel answers the new master - the outage of a client that asks Sentinel),
      C(persist), C(sentinel_quorum) (V(remonitor) - until the Sentinels know each other again
      and the quorum is reachable, about 2 s; clients are served meanwhile) and C(total) are
      the parts. Null for a step that did not run.
  returned: always
  type: dict
  sample: {"checks": 0.03, "catchup": 0.002, "handover": 0.06, "failover": 0.062,
           "write_unavailable": 0.062, "sentinel": 0.03, "sentinel_clients_unavailable": 0.092,
           "persist": 0.002, "total": 0.13}
diff:
  description: Which server is master before and after.
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
    loss_estimate,
    node_facts,
    peer_option,
    persist,
    points_at,
    redis,
    reopened_once,
    replica_entry,
    replica_lag_bytes,
    same_node,
    sentinel_options,
    sentinel_view,
    try_connect,
    unexpected,
    wait_sentinels_agree,
    with_state,
    NOTHING_CHANGED,
)

# Reported timings: (name, from mark, to mark); None is the start of the module.
STEPS = (
    ("checks", None, "pause_start"),
    ("catchup", "pause_start", "caught_up"),
    ("handover", "caught_up", "writable"),
    ("failover", "pause_start", "old_demoted"),
    ("write_unavailable", "pause_start", "writable"),
    ("sentinel", "writable", "sentinels_agree"),
    ("sentinel_clients_unavailable", "pause_start", "sentinels_agree"),
    ("persist", "sentinels_agree", "persisted"),
    ("sentinel_quorum", "persisted", "quorum_restored"),
)

POLL = 0.001


# Decisions (pure: unit-tested) ---------------------------------------------------------------------

def sentinel_refusal(params, view, current=None):
    """Why the Sentinels forbid starting (None: they allow it). `current`: the master (peer
    dict) they must all answer (None: any)."""
    if view is None:
        return None
    if view["total"] and not view["reachable"]:
        return ("no Sentinel answers (%d given): %s"
                % (view["total"], "; ".join(v["error"] or "" for v in view["sentinels"])))
    if not view["quorum_ok"]:
        messages = sorted(set(v["quorum_message"] or v["error"] or "unreachable"
                              for v in view["sentinels"]))
        return ("no Sentinel quorum: %d of %d Sentinels answer (%s). Without a quorum Sentinel "
                "cannot fail over later either: bring the Sentinels back first"
                % (view["reachable"], view["total"], "; ".join(messages)))
    if view["failover_in_progress"]:
        return ("a Sentinel failover of %s is in progress: wait until it ends (SENTINEL MASTERS "
                "shows no failover_in_progress flag) and run again" % params["master_name"])
    if current is not None and not all(same_node(m, current) for m in view["masters"]):
        return ("the Sentinels answer %s for %s, not the master %s: check master_name and the "
                "master option" % (", ".join(view["masters"]), params["master_name"],
                                   describe(current)))
    return None


def remonitor_refusal(params, view):
    """sentinel_method=remonitor needs every Sentinel, and no Sentinel we were not given."""
    if params["sentinel_method"] != "remonitor":
        return
    if view["reachable"] < view["total"]:
        raise RedisModuleError(
            "sentinel_method=remonitor needs every Sentinel, and %d of %d answer: one that "
            "misses the update would later push the old master back. Nothing was changed. Use "
            "sentinel_method=failover, or bring them back" % (view["reachable"], view["total"]))
    others = max([v["other_sentinels"] or 0 for v in view["sentinels"]] or [0])
    if others > view["total"] - 1:
        raise RedisModuleError(
            "a Sentinel knows %d other Sentinels, but only %d Sentinels were given: "
            "sentinel_method=remonitor must update every one of them. Nothing was changed. Give "
            "all of them in sentinels, or use sentinel_method=failover" % (others, view["total"]))


def planned_checks(params, master, replica, entry, view):
    """'switch', 'sentinel' (only the Sentinel step is missing) or 'done'; raises otherwise."""
    m_addr, r_addr = master["address"], replica["address"]
    if master.get("run_id") and master.get("run_id") == replica.get("run_id"):
        raise RedisModuleError(
            "master and replica are the same server (%s and %s, run id %s): check the "
            "inventory. Nothing was changed" % (m_addr, r_addr, master["run_id"]))
    if replica["role"] == "master":
        if master["role"] == "master":
            raise RedisModuleError(
                "split brain: %s and %s are both masters. Nothing was changed. Decide which one "
                "keeps its data and make the other a replica of it (redis_replica)"
                % (m_addr, r_addr))
        if not points_at(master, params["replica"]):
            raise RedisModuleError(
                "%s is already a master, and %s replicates from %s:%s, not from it: check the "
                "master and replica options. Nothing was changed"
                % (r_addr, m_addr, master["master_host"], master["master_port"]))
        if view is None or (view["agreed_master"] and same_node(view["agreed_master"],
                                                                params["replica"])):
            return "done"
        return "sentinel"
    if master["role"] != "master":
        raise RedisModuleError(
            "%s is not a master (it replicates from %s:%s) and %s is a replica: check the master "
            "option. Nothing was changed"
            % (m_addr, master["master_host"], master["master_port"], r_addr))
    if not points_at(replica, params["master"]) or entry is None:
        raise RedisModuleError(
            "%s replicates from %s:%s, and the master %s does not list it among its replicas: "
            "it is not a replica of this master. Nothing was changed"
            % (r_addr, replica["master_host"], replica["master_port"], m_addr))
    if replica["master_link_status"] != "up" or replica["master_sync_in_progress"]:
        raise RedisModuleError(
            "the replication link of %s is %s%s: a planned failover needs a synchronised "
            "replica. Nothing was changed. Check the replica's log (masterauth, network)"
            % (r_addr, replica["master_link_status"],
               " (full sync in progress)" if replica["master_sync_in_progress"] else ""))
    lag = replica_lag_bytes(master, replica)
    if lag is not None and lag > params["max_lag_bytes"]:
        raise RedisModuleError(
            "%s is %d bytes behind the master, more than max_lag_bytes=%d: writes would stay "
            "paused while it catches up. Nothing was changed. Retry when the lag is lower"
            % (r_addr, lag, params["max_lag_bytes"]))
    if master["master_failover_state"] != "no-failover":
        raise RedisModuleError(
            "a FAILOVER is already running on %s (master_failover_state: %s): wait for it to "
            "end. Nothing was changed" % (m_addr, master["master_failover_state"]))
    if view is not None:
        problem = sentinel_refusal(params, view, params["master"])
        if problem:
            raise RedisModuleError(problem + ". Nothing was changed")
        remonitor_refusal(params, view)
        others = [e["address"] for e in master["replicas"] if e is not entry]
        if params["sentinel_method"] == "failover" and others:
            raise RedisModuleError(
                "the master has other replicas (%s): with sentinel_method=failover Sentinel picks "
                "the replica to promote itself and could demote %s again. Nothing was changed. "
                "Use sentinel_method=remonitor, or set replica-priority 0 on the others"
                % (", ".join(others), r_addr))
        downs = [v["down_after_milliseconds"] for v in view["sentinels"]
                 if v["down_after_milliseconds"]]
        if downs and params["pause_timeout"] >= min(downs):
            raise RedisModuleError(
                "pause_timeout=%d ms is not below the Sentinels' down-after-milliseconds (%d): a "
                "paused master would be taken for a dead one. Nothing was changed. Lower "
                "pause_timeout" % (params["pause_timeout"], min(downs)))
    return "switch"


def emergency_checks(params, old, replica, view):
    """'promote', 'sentinel' or 'done'; raises otherwise. `old` is the probe of the master."""
    r_addr = replica["address"]
    if old["reachable"] and old["role"] == "master":
        if replica["role"] == "master":
            raise RedisModuleError(
                "split brain: %s and %s are both masters. Nothing was changed. Decide which one "
                "keeps its data and make the other a replica of it (redis_replica)"
                % (old["address"], r_addr))
        raise RedisModuleError(
            "the master %s answers and is a master: this is no emergency. Nothing was changed. "
            "Use mode=planned, which loses no write" % old["address"])
    if replica["role"] == "master":
        if view is None or (view["agreed_master"] and same_node(view["agreed_master"],
                                                                params["replica"])):
            return "done"
        problem = sentinel_refusal(params, view, None)
        if problem:
            raise RedisModuleError(problem + ". Nothing was changed")
        return "sentinel"
    if replica["master_link_status"] == "up":
        raise RedisModuleError(
            "%s still has a live replication link to its master %s:%s, so that master is alive "
            "even if this controller cannot reach it (a network partition?). Promoting now "
            "would give two masters. Nothing was changed"
            % (r_addr, replica["master_host"], replica["master_port"]))
    problem = sentinel_refusal(params, view, None)
    if problem:
        raise RedisModuleError(problem + ". Nothing was changed")
    known = max([v.get("replicas") or 0 for v in (view or {}).get("sentinels", [])] or [0])
    if known > 1:
        raise RedisModuleError(
            "the Sentinels know %d replicas of the lost master and pick the one to promote "
            "themselves (replica-priority, then offset), perhaps not %s. Nothing was changed. "
            "Set replica-priority 0 on the others, or let Sentinel fail over by itself"
            % (known, r_addr))
    loss = loss_estimate(replica, view)
    window = loss["window_seconds_at_most"]
    if not params["accept_data_loss"]:
        if window is None:
            raise RedisModuleError(
                "cannot estimate what %s may have missed (its link state gives no down time). "
                "Nothing was changed. Set accept_data_loss=true to promote anyway" % r_addr)
        if window > params["max_data_loss_seconds"]:
            raise RedisModuleError(
                "the lost master may have accepted writes that %s never received for up to "
                "%.1f s (link down %s s), more than max_data_loss_seconds=%s. Nothing was "
                "changed. Set accept_data_loss=true to promote anyway"
                % (r_addr, window, loss["link_down_seconds"], params["max_data_loss_seconds"]))
    return "promote"


PLANNED_PLAN = [
    "CLIENT PAUSE {timeout} WRITE on {master}",
    "wait until {target} has the master's offset (its own INFO replication)",
    "FAILOVER TO {target} TIMEOUT 1 FORCE on {master} (it demotes itself, then hands over)",
    "wait until {master} reports no-failover and {target} ROLE master; CLIENT UNPAUSE on {master}",
]
SENTINEL_PLAN = {
    "failover": "SENTINEL FAILOVER {name} on {sentinel}; wait until every Sentinel answers {target}",
    "remonitor": "SENTINEL REMOVE {name}, MONITOR {target}, SET the previous settings on every "
                 "Sentinel; wait until every Sentinel answers {target}",
}
PERSIST_PLAN = "CONFIG REWRITE on the nodes that run from a config file"


# Actions ---------------------------------------------------------------------------------------------

def role_of(conn, peer):
    reply = command(conn, peer, "ROLE")
    return "master" if reply[0] == "master" else "replica"


def failover_to(params, mconn, rconn, entry, timer):
    """Pause writes, wait for the replica's own offset, hand over with FAILOVER ... FORCE, and
    wait until the replica is the master; marks the timer. Returns the master's client."""
    master, replica = params["master"], params["replica"]
    timeout_ms = params["pause_timeout"]
    timer.mark("pause_start")
    # Our pause expires by itself: if this process dies before the FAILOVER is sent, writes
    # resume on the old master and nothing has changed.
    command(mconn, master, "CLIENT", "PAUSE", timeout_ms, "WRITE")
    try:
        final = node_facts(mconn, master)["master_repl_offset"]
        deadline = timer.marks["pause_start"] + timeout_ms / 1000.0 * 0.8
        offset = None
        while True:
            offset = node_facts(rconn, replica)["replica_repl_offset"] or 0
            if offset >= final:
                break
            if time.monotonic() > deadline:
                raise RedisModuleError(
                    "the replica %s reached offset %d of the paused master's %d within "
                    "pause_timeout=%d ms: writes were resumed on the master %s, nothing was "
                    "promoted and nothing was lost. Retry when the replica keeps up, or raise "
                    "pause_timeout (below down-after-milliseconds)"
                    % (describe(replica), offset, final, timeout_ms, describe(master)))
            time.sleep(POLL)
        timer.mark("caught_up")
        # The replica has every write the master acknowledged (read from the replica itself,
        # not from its once-a-second ACK): FORCE hands over without waiting for that ACK. The
        # master demotes itself before it tells the replica to take over, so two masters never
        # take writes, also if this process dies now.
        command(mconn, master, "FAILOVER", "TO", entry["ip"], entry["port"], "TIMEOUT", 1, "FORCE")
        wait_handover(params, mconn, rconn, timer)
    finally:
        try:
            mconn.execute_command("CLIENT", "UNPAUSE")
        except redis.exceptions.RedisError:
            pass  # it expires by itself
    return mconn


def wait_handover(params, mconn, rconn, timer):
    master, replica = params["master"], params["replica"]
    deadline = time.monotonic() + params["pause_timeout"] / 1000.0 + 10
    writable = demoted = False
    state = role = None
    while not (writable and demoted):
        if not writable and role_of(rconn, replica) == "master":
            timer.mark("writable")
            writable = True
        if not demoted:
            info = reopened_once(lambda: mconn.info("replication"))
            state, role = info.get("master_failover_state", "no-failover"), info.get("role")
            if state == "no-failover":
                if role == "master":
                    raise RedisModuleError(
                        "the replica %s refused the hand-over (PSYNC FAILOVER), so Redis aborted "
                        "the FAILOVER: the master %s takes writes again, nothing was promoted "
                        "and nothing was lost. See the replica's log"
                        % (describe(replica), describe(master)))
                timer.mark("old_demoted")
                demoted = True
        if time.monotonic() > deadline:
            raise RedisModuleError(
                "the FAILOVER has not finished %.1f s after it started (master_failover_state %s, "
                "role of %s: %s)" % (time.monotonic() - timer.marks["pause_start"], state,
                                     describe(master), role))
        if not (writable and demoted):
            time.sleep(POLL)


def sentinel_switch(params, view, target, timer):
    """Make every Sentinel answer `target` (dict host/port as Sentinel knows it)."""
    name = params["master_name"]
    reachable = [p for p, v in zip(params["sentinels"], view["sentinels"]) if v["reachable"]]
    if params["mode"] == "planned" and params["sentinel_method"] == "remonitor":
        settings = [v for v in view["sentinels"] if v["reachable"]]
        conns = [connect(p, what="Sentinel") for p in reachable]
        try:
            for peer, conn in zip(reachable, conns):
                try:
                    conn.execute_command("SENTINEL", "REMOVE", name)
                except redis.exceptions.ResponseError as exc:
                    if "no such master" not in str(exc).lower():
                        raise RedisModuleError("Sentinel at %s refused SENTINEL REMOVE: %s"
                                               % (describe(peer), exc))
            for peer, conn, old in zip(reachable, conns, settings):
                command(conn, peer, "SENTINEL", "MONITOR", name, target["host"], target["port"],
                        old["quorum"], what="Sentinel")
            for peer, conn, old in zip(reachable, conns, settings):
                args = ["SENTINEL", "SET", name,
                        "down-after-milliseconds", old["down_after_milliseconds"],
                        "failover-timeout", old["failover_timeout"],
                        "parallel-syncs", old["parallel_syncs"]]
                if params["replica"].get("password"):
                    args += ["auth-pass", params["replica"]["password"]]
                if params["replica"].get("username"):
                    args += ["auth-user", params["replica"]["username"]]
                command(conn, peer, *args, what="Sentinel")
        finally:
            for conn in conns:
                conn.close()
    else:
        conn = connect(reachable[0], what="Sentinel")
        try:
            command(conn, reachable[0], "SENTINEL", "FAILOVER", name, what="Sentinel")
        finally:
            conn.close()
    ok, answers = wait_sentinels_agree(params["sentinels"], name, target,
                                       params["sentinel_timeout"])
    if not ok:
        raise RedisModuleError(
            "the Sentinels did not all answer %s:%s within sentinel_timeout=%ss (answers: %s)"
            % (target["host"], target["port"], params["sentinel_timeout"], answers))
    timer.mark("sentinels_agree")
    return answers


# The module --------------------------------------------------------------------------------------------

def probe(peer):
    """The master as far as it can be seen; never raises for an unreachable one."""
    if peer is None:
        return dict(address=None, reachable=False, role=None, facts=None,
                    reason="no master given")
    conn, reason = try_connect(peer)
    if conn is None:
        return dict(address=describe(peer), reachable=False, role=None, facts=None, reason=reason)
    try:
        facts = node_facts(conn, peer)
    finally:
        conn.close()
    return dict(address=describe(peer), reachable=True, role=facts["role"], facts=facts,
                reason=None)


def main():
    argument_spec = dict(
        mode=dict(type="str", default="planned", choices=["planned", "emergency"]),
        master=peer_option(),
        replica=peer_option(required=True),
        sentinel_method=dict(type="str", default="remonitor", choices=["failover", "remonitor"]),
        max_lag_bytes=dict(type="int", default=1024 * 1024),
        pause_timeout=dict(type="int", default=1000),
        sentinel_timeout=dict(type="float", default=30),
        max_data_loss_seconds=dict(type="float", default=10),
        accept_data_loss=dict(type="bool", default=False),
        persist=dict(type="bool", default=True),
        wait_quorum=dict(type="bool", default=True),
    )
    argument_spec.update(sentinel_options())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("mode", "planned", ["master"])])
    ensure_driver(module)
    params = module.params
    if params["sentinels"] and not params["master_name"]:
        module.fail_json(msg="master_name is required with sentinels")
    if params["pause_timeout"] < 1:
        module.fail_json(msg="pause_timeout must be 1 ms or more, got %d" % params["pause_timeout"])
    timer = Timer()
    replica = params["replica"]
    result = dict(changed=False, mode=params["mode"], switched=False, already_switched=False,
                  steps=[], lag_bytes_before=None, persisted=[],
                  old_master=dict(address=describe(params["master"]) if params["master"] else None,
                                  reachable=None, role_before=None, role_after=None, offset=None),
                  new_master=dict(address=describe(replica), role_before=None, offset=None),
                  sentinel=None, estimated_loss={})
    progress = dict(paused=False, promoted=False)
    try:
        if params["mode"] == "planned":
            run_planned(module, params, result, timer, progress)
        else:
            run_emergency(module, params, result, timer, progress)
    # No traceback ever reaches the operator: an error nobody mapped is worded too.
    except Exception as exc:  # pylint: disable=broad-except
        text = str(exc) if isinstance(exc, RedisModuleError) else unexpected(exc)
        if progress["promoted"]:
            state = ("The new master %s takes writes; the Sentinels may still give clients the "
                     "old address: run this module again to complete the Sentinel step."
                     % describe(replica))
        elif progress["paused"]:
            state = ("Writes were paused and the pause was lifted; look at both nodes "
                     "(redis_replication_info) before running it again.")
        else:
            state = NOTHING_CHANGED
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=with_state(text, state), **result)
    finish(module, result, timer)


def sentinel_result(params, view):
    if view is None:
        return None
    before = dict((k, view[k]) for k in ("masters", "agreed_master", "reachable", "total",
                                         "quorum_ok", "failover_in_progress"))
    return dict(method=params["sentinel_method"] if params["mode"] == "planned" else "failover",
                before=before, answers={}, agreed=bool(view["agreed_master"]
                                                       and same_node(view["agreed_master"],
                                                                     params["replica"])))


def run_planned(module, params, result, timer, progress):
    master, replica = params["master"], params["replica"]
    mconn = connect(master)
    rconn = connect(replica)
    try:
        m = node_facts(mconn, master)
        r = node_facts(rconn, replica)
        entry = replica_entry(m, replica) if m["role"] == "master" else None
        view = sentinel_view(params["sentinels"], params["master_name"]) if params["sentinels"] else None
        result["old_master"].update(reachable=True, role_before=m["role"], role_after=m["role"],
                                    offset=m["master_repl_offset"] if m["role"] == "master"
                                    else m["replica_repl_offset"])
        result["new_master"].update(role_before=r["role"])
        result["sentinel"] = sentinel_result(params, view)
        verdict = planned_checks(params, m, r, entry, view)
        result["estimated_loss"] = dict(acknowledged_writes_lost=0)
        if verdict == "done":
            result["already_switched"] = True
            return
        target = dict(host=replica["host"], port=replica["port"])
        if entry is not None:
            target = dict(host=entry["ip"], port=entry["port"])
            result["new_master"]["address"] = "%s:%s" % (entry["ip"], entry["port"])
            result["lag_bytes_before"] = replica_lag_bytes(m, r)
        elif view and view["masters"]:
            # Only the Sentinel step is missing: the address Sentinel knows the replica by.
            target = dict(host=replica["host"], port=replica["port"])
        words = dict(target="%s:%s" % (target["host"], target["port"]), master=m["address"],
                     timeout=params["pause_timeout"], name=params["master_name"],
                     sentinel=next((v["address"] for v in (view or {}).get("sentinels", [])
                                    if v["reachable"]), None))
        steps = [s.format(**words) for s in PLANNED_PLAN] if verdict == "switch" else []
        if view is not None:
            steps.append(SENTINEL_PLAN[params["sentinel_method"]].format(**words))
        if params["persist"]:
            steps.append(PERSIST_PLAN)
        result.update(changed=True, switched=True, steps=steps)
        if module.check_mode:
            return

        # The write pause starts here: everything until the Sentinels agree is in this call.
        if verdict == "switch":
            progress["paused"] = True
            mconn = failover_to(params, mconn, rconn, entry, timer)
            progress["promoted"] = True
            result["old_master"]["role_after"] = "replica"
            result["new_master"]["offset"] = node_facts(rconn, replica)["master_repl_offset"]
        else:
            progress["promoted"] = True
            for mark in ("pause_start", "writable", "old_demoted"):
                timer.mark(mark)
        if view is not None:
            result["sentinel"]["answers"] = sentinel_switch(params, view, target, timer)
            result["sentinel"]["agreed"] = True
        else:
            timer.mark("sentinels_agree")
        if params["persist"]:
            for conn, peer in ((rconn, replica), (mconn, master)):
                if persist(conn, peer, node_facts(conn, peer)):
                    result["persisted"].append(describe(peer))
        timer.mark("persisted")
        if view is not None and params["sentinel_method"] == "remonitor" and params["wait_quorum"]:
            wait_quorum_restored(params, view)
            timer.mark("quorum_restored")
    finally:
        mconn.close()
        rconn.close()


def run_emergency(module, params, result, timer, progress):
    replica = params["replica"]
    old = probe(params["master"])
    result["old_master"].update(reachable=old["reachable"], role_before=old["role"],
                                role_after=old["role"])
    if old["facts"]:
        result["old_master"]["offset"] = old["facts"]["master_repl_offset"]
    rconn = connect(replica)
    try:
        r = node_facts(rconn, replica)
        view = sentinel_view(params["sentinels"], params["master_name"]) if params["sentinels"] else None
        waited = False
        if view is not None and view["failover_in_progress"]:
            # Sentinel is already doing what we came for: let it finish, then judge the result.
            view = wait_sentinel_failover(params)
            r = node_facts(rconn, replica)
            waited = True
        result["new_master"].update(role_before=r["role"])
        result["sentinel"] = sentinel_result(params, view)
        if result["sentinel"] is not None:
            result["sentinel"]["waited_for_sentinel_failover"] = waited
        verdict = emergency_checks(params, old, r, view)
        result["estimated_loss"] = loss_estimate(r, view)
        if verdict == "done":
            result["already_switched"] = True
            return
        target = dict(host=replica["host"], port=replica["port"])
        name = params["master_name"]
        if view is not None:
            steps = ["SENTINEL FAILOVER %s; wait until %s is master and every Sentinel answers it"
                     % (name, describe(replica))]
        else:
            steps = ["REPLICAOF NO ONE on %s" % describe(replica)]
        if params["persist"]:
            steps.append(PERSIST_PLAN)
        result.update(changed=True, switched=True, steps=steps)
        if module.check_mode:
            return

        timer.mark("pause_start")
        progress["paused"] = True
        if view is not None:
            sentinel_promote(params, view, rconn, target, timer, result)
        else:
            command(rconn, replica, "REPLICAOF", "NO", "ONE")
            timer.mark("writable")
            timer.mark("sentinels_agree")
        progress["promoted"] = True
        timer.mark("old_demoted")
        result["new_master"]["offset"] = node_facts(rconn, replica)["master_repl_offset"]
        if params["persist"] and persist(rconn, replica, node_facts(rconn, replica)):
            result["persisted"].append(describe(replica))
        timer.mark("persisted")
    finally:
        rconn.close()


def wait_quorum_restored(params, before):
    """After SENTINEL REMOVE/MONITOR the Sentinels have forgotten each other and find each other
    again through hello messages (every 2 s): wait until each knows as many others as before
    and the quorum is reachable, so that Sentinel could fail the new master over by itself."""
    wanted = dict((v["address"], v["other_sentinels"] or 0) for v in before["sentinels"])
    deadline = time.monotonic() + params["sentinel_timeout"]
    while True:
        view = sentinel_view(params["sentinels"], params["master_name"])
        known = dict((v["address"], v["other_sentinels"] or 0) for v in view["sentinels"])
        if view["quorum_ok"] and all(known.get(a, 0) >= n for a, n in wanted.items()):
            return view
        if time.monotonic() > deadline:
            raise RedisModuleError(
                "every Sentinel answers the new master, but they have not found each other again "
                "within sentinel_timeout=%ss (other Sentinels known: %s, before: %s): until they "
                "do, Sentinel cannot fail over by itself. Check the Sentinels' logs (announce-ip, "
                "network)" % (params["sentinel_timeout"], known, wanted))
        time.sleep(0.05)


def wait_sentinel_failover(params):
    """Wait until no Sentinel reports a failover in progress; returns the view then."""
    deadline = time.monotonic() + params["sentinel_timeout"]
    while True:
        view = sentinel_view(params["sentinels"], params["master_name"])
        if not view["failover_in_progress"] or time.monotonic() > deadline:
            return view
        time.sleep(0.05)


def ask_sentinels_to_fail_over(params, reachable):
    """SENTINEL FAILOVER on the reachable Sentinels in turn until one accepts.

    A Sentinel that has not yet seen the master go down refreshes its replicas' INFO only every
    10 s and answers NOGOODSLAVE while what it knows is older than 5 s; another Sentinel, or the
    same a moment later, accepts. INPROG means one is already failing over: that is accepted.
    """
    deadline = time.monotonic() + params["sentinel_timeout"]
    answers = {}
    while True:
        for peer in reachable:
            conn, _reason = try_connect(peer, what="Sentinel")
            if conn is None:
                continue
            try:
                conn.execute_command("SENTINEL", "FAILOVER", params["master_name"])
                return describe(peer)
            except redis.exceptions.ResponseError as exc:
                if str(exc).upper().startswith("INPROG"):
                    return describe(peer)
                answers[describe(peer)] = str(exc)
            finally:
                conn.close()
        if time.monotonic() > deadline:
            raise RedisModuleError(
                "no Sentinel accepted SENTINEL FAILOVER %s within sentinel_timeout=%ss: %s. "
                "Nothing was promoted" % (params["master_name"], params["sentinel_timeout"],
                                          answers))
        time.sleep(0.2)


def sentinel_promote(params, view, rconn, target, timer, result):
    """Emergency with Sentinels: SENTINEL FAILOVER, wait for the replica's promotion and for
    every Sentinel to answer it."""
    replica = params["replica"]
    reachable = [p for p, v in zip(params["sentinels"], view["sentinels"]) if v["reachable"]]
    if view["masters"] and not any(same_node(m, replica) for m in view["masters"]):
        ask_sentinels_to_fail_over(params, reachable)
    deadline = time.monotonic() + params["sentinel_timeout"]
    while role_of(rconn, replica) != "master":
        if time.monotonic() > deadline:
            raise RedisModuleError(
                "Sentinel did not promote %s within sentinel_timeout=%ss: it may have chosen "
                "another replica (see the Sentinels' logs and SENTINEL MASTERS)"
                % (describe(replica), params["sentinel_timeout"]))
        time.sleep(POLL * 5)
    timer.mark("writable")
    result["sentinel"]["answers"] = wait_or_fail(params, target, timer)
    result["sentinel"]["agreed"] = True


def wait_or_fail(params, target, timer):
    ok, answers = wait_sentinels_agree(params["sentinels"], params["master_name"], target,
                                       params["sentinel_timeout"])
    if not ok:
        raise RedisModuleError(
            "the Sentinels did not all answer %s:%s within sentinel_timeout=%ss (answers: %s)"
            % (target["host"], target["port"], params["sentinel_timeout"], answers))
    timer.mark("sentinels_agree")
    return answers


def finish(module, result, timer):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        old = result["old_master"]["address"]
        new = result["new_master"]["address"]
        before = new if result["already_switched"] else old
        after = new if (result["switched"] or result["already_switched"]) else old
        result["diff"] = dict(before=dict(master=before), after=dict(master=after))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
