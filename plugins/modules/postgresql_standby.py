#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postgresql_standby
short_description: Make a PostgreSQL node a streaming standby of a given primary (rejoin)
version_added: 0.1.0
description:
  - Turns the local node O(node) (typically the old primary after a switchover or failover)
    into a physical streaming standby of O(primary).
  - "It first decides how (RV(method)), from what it finds at the node and the primary: V(none)
    when the node already streams from the primary; V(reconfigure) when its WAL ends before the
    point where the primary's timeline left it (only the settings change); V(rewind) when it went
    past that point; V(basebackup) when it belongs to another cluster, its data directory is
    empty, or C(pg_rewind) cannot rewind it. For a stopped node, C(pg_rewind --dry-run) tells."
  - "Steps: stop the node -> finish a crash recovery in single-user mode (no network) ->
    C(CHECKPOINT) on the primary (C(pg_rewind) needs the new timeline's checkpoint) ->
    C(pg_rewind --dry-run) finds where the servers diverged -> before a real rewind, the node's
    WAL from that point on is copied to C(DATA_DIR.failsafe-discarded-wal-TIMESTAMP) (never
    deleted) and C(pg_waldump) counts the committed transactions in it (what the rewind
    discards; 0 means nothing was lost) -> C(pg_rewind) -> if it fails and
    O(basebackup_fallback=true), move the data directory aside (C(DATA_DIR.failsafe-TIMESTAMP),
    never deleted) and C(pg_basebackup) -> write C(standby.signal), C(primary_conninfo) and
    C(primary_slot_name) -> create the slot on the primary -> start -> wait until the WAL
    receiver streams."
  - "Writing the settings also drops C(default_transaction_read_only) (an old primary's fence)
    and C(synchronous_standby_names) from the node's C(postgresql.auto.conf) (the old primary's
    own value, or the new primary's copied by C(pg_rewind) / C(pg_basebackup)): neither must
    follow the node into a later promotion, where the names could block every commit."
  - A node that already streams from O(primary) is left alone (changed=false).
  - A running node that is a writable primary is refused unless O(force=true) (in the
    C(postgresql_rejoin) role, C(postgresql_rejoin_force=true)); converting it would discard
    whatever it accepted since it diverged. Fence it first, or confirm.
  - Runs on the node's host. C(pg_ctl), C(pg_controldata), C(pg_rewind), C(pg_waldump) and
    C(pg_basebackup) run as the owner of O(data_dir) (through C(runuser) when the module runs
    as root).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.postgresql
  - failsafe.datastores.postgresql.NODE
  - failsafe.datastores.postgresql.PRIMARY_REQUIRED
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Inspects the node (SQL or C(pg_controldata)) and the primary with read-only queries
        and reports the method it would use and its steps; for a stopped, cleanly shut down
        node it asks C(pg_rewind --dry-run).
  diff_mode:
    support: full
  idempotent:
    description: A node already streaming from the primary reports changed=false.
    support: full
options:
  data_dir:
    description:
      - The node's data directory (where C(PG_VERSION) is). It must exist; an empty one is
        cloned with C(pg_basebackup).
    type: path
    required: true
  config_dir:
    description:
      - Directory given to C(pg_ctl -D); the data directory unless the configuration lives
        elsewhere (Debian's C(/etc/postgresql/VERSION/NAME) layout).
    type: path
  bin_dir:
    description:
      - Directory of C(pg_ctl), C(pg_rewind) and C(pg_basebackup). Default is
        C(/usr/lib/postgresql/VERSION/bin) for the version in O(data_dir) (or the primary's).
    type: path
  service_name:
    description:
      - Stop and start the node with C(systemctl stop/start) of this unit instead of C(pg_ctl).
    type: str
  os_user:
    description: OS user to run the PostgreSQL programs as. Default is the owner of O(data_dir).
    type: str
  replication_user:
    description: Role the standby streams as. Default is O(primary.user).
    type: str
  replication_password:
    description: Password of O(replication_user). Default is O(primary.password).
    type: str
  slot_name:
    description: Physical replication slot to stream from; created on the primary if missing.
    type: str
  application_name:
    description: C(application_name) of the standby in C(pg_stat_replication).
    type: str
  basebackup_fallback:
    description:
      - When C(pg_rewind) cannot rewind the node (or it belongs to another cluster), re-clone it
        with C(pg_basebackup). The old data directory is renamed to
        C(DATA_DIR.failsafe-TIMESTAMP), never deleted.
    type: bool
    default: true
  force:
    description:
      - Convert a running, writable primary too (its divergent writes are discarded; the WAL
        that held them is kept, see RV(discarded_wal)).
    type: bool
    default: false
  rebuild:
    description:
      - Clone the node anew with C(pg_basebackup) even when it already streams from
        O(primary) (a replica that lags and does not catch up, runbook 001 "Rebuild replica").
        Its data directory is renamed to C(DATA_DIR.failsafe-TIMESTAMP), never deleted. Always
        changes; the C(postgresql_replication_lag) role sets it only when the lag is above its
        threshold.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for the node to stream after it started.
    type: float
    default: 60
'''

EXAMPLES = r'''
- name: Rejoin the old primary as a standby of the new one
  failsafe.datastores.postgresql_standby:
    node:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"
      log_file: /var/log/postgresql/postgresql-15-main.log
    data_dir: /var/lib/postgresql/15/main
    config_dir: /etc/postgresql/15/main
    service_name: postgresql@15-main
    primary:
      host: pg-west.example.com
      password: "{{ vault_pg_password }}"
    replication_user: replicator
    replication_password: "{{ vault_replication_password }}"
    slot_name: pg_east
  become: true
'''

RETURN = r'''
method:
  description: How the node was (or, in check mode, would be) made a standby - V(none) when it
    already was one of O(primary), V(reconfigure) (no rewind needed, only the settings change),
    V(rewind) or V(basebackup).
  returned: always
  type: str
steps:
  description: The steps taken (or planned, in check mode).
  returned: always
  type: list
  elements: str
msg:
  description: What happened (or would happen, in check mode) and why this method, in a sentence.
  returned: always
  type: str
node:
  description: What was found at the node before the task (running, role, read_only,
    system_identifier, timeline, upstream, end_lsn, clean_shutdown, data_dir_present).
  returned: always
  type: dict
rewind_dry_run:
  description: What C(pg_rewind --dry-run) said (needed, diverged_at, diverged_timeline, rc,
    output).
  returned: when it ran
  type: dict
discarded_wal:
  description:
    - The node's WAL past the divergence point, kept before C(pg_rewind) discarded it -
      C(from_lsn), C(to_lsn), C(timeline), C(kept_in) (the directory, never deleted by the
      collection), C(files), C(committed_transactions) (0 means nothing was lost; null when
      C(pg_waldump) could not read it), C(aborted_transactions) and C(summary).
  returned: when pg_rewind rewound the node
  type: dict
moved_aside:
  description: Where the old data directory was moved before a base backup.
  returned: when a base backup was taken
  type: str
rewind_output:
  description: Last lines printed by C(pg_rewind).
  returned: when pg_rewind ran
  type: list
  elements: str
primary_conninfo:
  description: The C(primary_conninfo) written, password masked.
  returned: always
  type: str
streaming:
  description: Whether the WAL receiver streams from the primary at the end (in check mode, now).
  returned: always
  type: bool
timings:
  description: Seconds per step (stop, sync, start, streaming, total).
  returned: always
  type: dict
diff:
  description: Role and upstream before and after.
  returned: when diff mode is on
  type: dict
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_actions import (
    wait_streaming,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    PostgresError,
    connect,
    describe,
    doing,
    ensure_driver,
    explain_error,
    peer_option,
    try_connect,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import (
    furthest_lsn,
    in_recovery,
    replication_facts,
    rewind_needed,
    scalar,
    timeline_history,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_files import (
    conninfo_string,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_local import (
    CLEAN_STATES,
    LocalInstance,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._report import Report

APPLICATION_NAME = "failsafe.standby"

# Reported timings: (name, from mark, to mark); None is the start of the module.
TIMED_STEPS = (
    ("stop", None, "stopped"),
    ("sync", "stopped", "synced"),
    ("start", "synced", "started"),
    ("streaming", "started", "streaming"),
)


# What is found ------------------------------------------------------------------------------

def node_state(peer, instance):
    """The node through SQL when it answers, else from its files (pg_controldata)."""
    state = dict(data_dir_present=instance.present(), process_running=instance.running(),
                 running=False, role=None, read_only=None, system_identifier=None,
                 timeline=None, upstream=None, receiver_status=None, slot=None, end_lsn=None,
                 clean_shutdown=None)
    conn, reason = try_connect(peer, APPLICATION_NAME)
    if conn is not None:
        with conn:
            with doing("reading the node", peer):
                facts = replication_facts(conn)
        receiver = facts["wal_receiver"] or {}
        state.update(
            running=True, role=facts["role"], read_only=facts["read_only"],
            system_identifier=facts["system_identifier"], timeline=facts["timeline"],
            upstream=("%s:%s" % (receiver.get("sender_host"), receiver.get("sender_port"))
                      if receiver else None),
            receiver_status=receiver.get("status"), slot=receiver.get("slot_name"),
            end_lsn=furthest_lsn(facts["received_lsn"], facts["replayed_lsn"]))
        return state
    state["unreachable_reason"] = reason
    if state["data_dir_present"] and not state["process_running"]:
        state.update(stopped_state(instance))
    return state


def stopped_state(instance):
    """What pg_controldata says of a stopped node."""
    control = instance.control_data()
    cluster_state = control.get("Database cluster state")
    return dict(system_identifier=control.get("Database system identifier"),
                timeline=int(control.get("Latest checkpoint's TimeLineID") or 0) or None,
                end_lsn=control.get("Latest checkpoint location"),
                cluster_state=cluster_state, clean_shutdown=cluster_state in CLEAN_STATES)


def primary_state(conn, peer):
    with doing("reading the primary", peer):
        if in_recovery(conn):
            raise PostgresError("%s is in recovery, not a primary: point primary= at the "
                                "current primary" % describe(peer))
        facts = replication_facts(conn)
        checkpoint_tli = scalar(conn, "SELECT timeline_id FROM pg_control_checkpoint()")
        return dict(address=describe(peer), system_identifier=facts["system_identifier"],
                    timeline=facts["timeline"], major=facts["server_version_num"] // 10000,
                    history=timeline_history(conn, facts["timeline"]),
                    # pg_rewind reads the timeline from the last checkpoint: until the new
                    # primary's first one it sees no divergence (docs/field-notes.md).
                    checkpointed=checkpoint_tli == facts["timeline"])


def follows(state, primary_address, slot_name):
    return (state["running"] and state["role"] == "standby"
            and state.get("receiver_status") == "streaming"
            and state.get("upstream") == primary_address
            and (slot_name is None or state.get("slot") == slot_name))


# The plan -------------------------------------------------------------------------------------

def plan(node, primary, options):
    """How to make the node a standby of the primary: dict(method, why, steps).

    node: what was found (node_state), with `rewind_check`, the outcome of pg_rewind --dry-run
    when it ran. primary: dict(address, system_identifier, timeline, history, checkpointed).
    options: force, basebackup_fallback, slot_name, address (the node's) and rebuild (clone
    anew with pg_basebackup, also a node that streams).
    A refusal raises PostgresError (nothing was changed then).
    """
    rebuild = options.get("rebuild")
    if follows(node, primary["address"], options["slot_name"]) and not rebuild:
        return dict(method="none", why="it already streams from %s" % primary["address"],
                    steps=[])
    if node["running"] and node["role"] == "primary" and not node["read_only"] \
            and not options["force"]:
        raise PostgresError(
            "%s is running as a writable primary: making it a standby discards what it "
            "accepted since it diverged. Nothing was changed. Fence it first "
            "(postgresql_read_only read_only=true) or set force=true (in the playbook: -e "
            "postgresql_rejoin_force=true)" % options["address"])
    if rebuild:
        method, why = "basebackup", "a rebuild was asked (rebuild=true)"
    else:
        method, why = choose_method(node, primary)
    fallback = options["basebackup_fallback"] or rebuild
    if method == "basebackup" and not fallback:
        raise PostgresError("%s, so only pg_basebackup could make it a standby, and "
                            "basebackup_fallback is false. Nothing was changed" % why)
    steps = []
    if node["running"] or node.get("process_running"):
        steps.append("stop the node")
    elif node["data_dir_present"] and not node.get("clean_shutdown"):
        steps.append("finish crash recovery in single-user mode (no network)")
    if method != "basebackup":
        steps.append("CHECKPOINT on the primary")
    if method == "rewind":
        steps.append("keep the node's WAL past the divergence point in "
                     "DATA_DIR.failsafe-discarded-wal-TIMESTAMP and count its commits")
        steps.append("pg_rewind from the primary" + (" (pg_basebackup if it fails)"
                                                     if fallback else ""))
    if method == "basebackup":
        steps.append("move the data directory aside to DATA_DIR.failsafe-TIMESTAMP (unless empty)")
        steps.append("pg_basebackup from the primary")
    if options["slot_name"]:
        steps.append("create replication slot %s on the primary if missing"
                     % options["slot_name"])
    steps += ["write standby.signal and primary_conninfo", "start the node",
              "wait until it streams from %s" % primary["address"]]
    return dict(method=method, why=why, steps=steps)


def choose_method(node, primary):
    """(method, why) for a node that does not follow the primary yet."""
    check = node.get("rewind_check")
    if not node["data_dir_present"]:
        return "basebackup", "its data directory holds no cluster"
    if node["system_identifier"] not in (None, primary["system_identifier"]):
        return "basebackup", ("it belongs to another cluster (system identifier %s, the "
                              "primary's is %s)" % (node["system_identifier"],
                                                    primary["system_identifier"]))
    if check is not None:
        if check["needed"] is False:
            return "reconfigure", "pg_rewind --dry-run found no rewind required"
        if check["needed"] and check["rc"] == 0:
            return "rewind", ("pg_rewind --dry-run: the servers diverged at %s on timeline %s"
                              % (check["diverged_at"], check["diverged_timeline"]))
        return "basebackup", "pg_rewind --dry-run failed (%s)" % " / ".join(check["output"])
    if node["running"] and node["role"] == "primary":
        return "rewind", ("it runs as a primary: its shutdown checkpoint goes past the point "
                          "where the primary's timeline left it")
    if not node["running"] and not node.get("clean_shutdown"):
        return "rewind", "it was not shut down cleanly (pg_rewind decides after the recovery)"
    needed = rewind_needed(node["timeline"], node["end_lsn"], primary["timeline"],
                           primary["history"])
    if needed is False:
        return "reconfigure", ("its WAL (up to %s on timeline %s) ends before the primary's "
                               "timeline left it" % (node["end_lsn"], node["timeline"]))
    if needed:
        return "rewind", ("its WAL (up to %s on timeline %s) went past the point where the "
                          "primary's timeline left it" % (node["end_lsn"], node["timeline"]))
    return "rewind", "pg_rewind decides (the primary's timeline history is not readable)"


# Doing it -------------------------------------------------------------------------------------

class Rejoin:
    """One run: the node, the primary, the connection strings, the report."""

    def __init__(self, module, report, result):
        self.module, self.report, self.result = module, report, result
        params = module.params
        self.params = params
        self.peer, self.primary = params["node"], params["primary"]
        self.address, self.primary_address = describe(self.peer), describe(self.primary)
        self.repl_user = params["replication_user"] or self.primary["user"]
        self.repl_password = params["replication_password"]
        if self.repl_password is None:
            self.repl_password = self.primary["password"]
        self.app_name = params["application_name"] or params["slot_name"] or "failsafe_standby"
        self.options = dict(force=params["force"], slot_name=params["slot_name"],
                            basebackup_fallback=params["basebackup_fallback"],
                            address=self.address, rebuild=params["rebuild"])
        self.instance = None

    def conninfo(self, user, password, **extra):
        """A libpq connection string to the primary, with its TLS settings."""
        return conninfo_string(host=self.primary["host"], port=self.primary["port"], user=user,
                               password=password, sslmode=self.primary["ssl_mode"],
                               sslrootcert=self.primary["ca_cert"], **extra)

    def password_env(self, password):
        return {"PGPASSWORD": password} if password is not None else {}

    def run(self):
        params, result, report = self.params, self.result, self.report
        result["primary_conninfo"] = self.conninfo(
            self.repl_user, "********" if self.repl_password else None,
            application_name=self.app_name)
        if not os.path.isdir(params["data_dir"]):
            raise PostgresError("data_dir %s does not exist: check it (an existing empty "
                                "directory is cloned with pg_basebackup)" % params["data_dir"])
        with connect(self.primary, APPLICATION_NAME) as pconn:
            primary = primary_state(pconn, self.primary)
            self.instance = LocalInstance(
                self.module, params["data_dir"], config_dir=params["config_dir"],
                bin_dir=params["bin_dir"], service_name=params["service_name"],
                log_file=self.peer["log_file"], os_user=params["os_user"],
                version=str(primary["major"]))
            node = node_state(self.peer, self.instance)
            result["node"] = node
            result["streaming"] = follows(node, primary["address"], None)
            report.changes(dict(role=node["role"], upstream=node["upstream"]),
                           dict(role="standby", upstream=primary["address"]))
            if node["running"] and not node["process_running"]:
                raise PostgresError("the server at %s does not use data_dir %s: check the node "
                                    "option and data_dir" % (self.address, params["data_dir"]))
            if self.dry_run_tells(node, primary):
                node["rewind_check"] = self.rewind_dry_run()
            decision = plan(node, primary, self.options)
            result.update(method=decision["method"], changed=decision["method"] != "none")
            if decision["method"] == "none":
                result["msg"] = "%s already streams from %s." % (
                    self.address, self.primary_address)
                return
            if self.module.check_mode:
                report.plan(decision["steps"])
                result["msg"] = ("Check mode: would make %s a standby of %s by %s, because %s."
                                 % (self.address, self.primary_address, decision["method"],
                                    decision["why"]))
                return
            method, why = self.synchronise(pconn, node, primary, decision)
            self.configure_and_start(pconn)
        result["msg"] = ("%s streams from %s (%s, because %s)."
                         % (self.address, self.primary_address, method, why))

    def dry_run_tells(self, node, primary):
        """pg_rewind --dry-run reads a stopped, cleanly shut down node of the same cluster."""
        return (node["data_dir_present"] and not node["running"]
                and not node["process_running"] and node.get("clean_shutdown")
                and node["system_identifier"] == primary["system_identifier"]
                and primary["checkpointed"])

    def rewind_dry_run(self):
        check = self.instance.rewind(self.rewind_source(), self.password_env(
            self.primary["password"]), dry_run=True)
        self.result["rewind_dry_run"] = check
        return check

    def rewind_source(self):
        return self.conninfo(self.primary["user"], None, dbname=self.primary["db"],
                             application_name=APPLICATION_NAME)

    def synchronise(self, pconn, node, primary, decision):
        """Stop the node and bring its data in line with the primary; returns (method, why)."""
        report, instance = self.report, self.instance
        if instance.running():
            instance.stop()
            report.done("stopped the node")
        report.mark("stopped")
        report.leaves("The node %s is stopped, its data directory unchanged: run the task "
                      "again, or start it as it was." % self.address)
        method, why = decision["method"], decision["why"]
        if method != "basebackup":
            # pg_rewind reads the primary's timeline from its last checkpoint (pg_basebackup
            # checkpoints by itself).
            with doing("CHECKPOINT on the primary", self.primary):
                pconn.execute("CHECKPOINT")
            report.done("CHECKPOINT on the primary")
            # Stopped (and recovered), the node can be asked: pg_rewind --dry-run decides.
            if instance.ensure_clean_shutdown():
                report.done("finished crash recovery in single-user mode")
            stopped = dict(node, running=False, process_running=False, role=None,
                           **stopped_state(instance))
            stopped["rewind_check"] = check = self.rewind_dry_run()
            decision = plan(stopped, dict(primary, checkpointed=True), self.options)
            method, why = decision["method"], decision["why"]
            if method == "rewind":
                method = self.rewind(check)
        if method == "basebackup":
            self.clone()
        self.result["method"] = method
        report.mark("synced")
        return method, why

    def rewind(self, check):
        """Keep the WAL the rewind discards, then pg_rewind; returns the method used."""
        report, instance = self.report, self.instance
        kept = keep_discarded_wal(instance, check["diverged_at"])
        self.result["discarded_wal"] = kept
        report.done("kept the WAL past %s in %s (%s)"
                    % (kept["from_lsn"], kept["kept_in"], kept["summary"]))
        report.leaves("The node %s is stopped; the WAL a rewind discards is kept in %s." % (
            self.address, kept["kept_in"]))
        outcome = instance.rewind(self.rewind_source(), self.password_env(
            self.primary["password"]))
        self.result["rewind_output"] = outcome["output"]
        if outcome["rc"] == 0:
            report.done("pg_rewind from %s" % self.primary_address)
            return "rewind"
        if not self.params["basebackup_fallback"]:
            raise PostgresError("pg_rewind failed and basebackup_fallback is false: %s"
                                % " / ".join(outcome["output"]))
        report.done("pg_rewind failed: %s" % " / ".join(outcome["output"]))
        return "basebackup"

    def clone(self):
        report, instance = self.report, self.instance
        aside = instance.move_aside()
        if aside:
            self.result["moved_aside"] = aside
            report.done("moved the data directory aside to %s" % aside)
        report.leaves("The node %s is stopped with an empty data directory%s: run the task "
                      "again to clone it." % (self.address, " (its old one is %s)" % aside
                                              if aside else ""))
        instance.basebackup(self.conninfo(self.repl_user, None, application_name=self.app_name),
                            self.password_env(self.repl_password))
        report.done("pg_basebackup from %s" % self.primary_address)

    def configure_and_start(self, pconn):
        params, report = self.params, self.report
        report.leaves("The node %s is stopped, its data in line with the primary but not yet "
                      "configured as a standby: run the task again." % self.address)
        if params["slot_name"]:
            with doing("creating replication slot %s" % params["slot_name"], self.primary):
                if ensure_slot(pconn, params["slot_name"]):
                    report.done("created replication slot %s on the primary"
                                % params["slot_name"])
        self.instance.make_standby(self.conninfo(self.repl_user, self.repl_password,
                                                 application_name=self.app_name),
                                   params["slot_name"])
        report.done("wrote standby.signal and primary_conninfo")
        self.instance.start()
        report.done("started the node")
        report.mark("started")
        report.leaves("The node %s runs as a standby." % self.address)
        ok, status = wait_streaming(self.peer, params["wait_timeout"])
        report.mark("streaming")
        self.result["streaming"] = ok
        if not ok:
            raise PostgresError("the node started but does not stream from %s after %ss (WAL "
                                "receiver: %s): check its log" % (self.primary_address,
                                                                  params["wait_timeout"], status))
        report.done("streams from %s" % self.primary_address)


def keep_discarded_wal(instance, diverged_at):
    """Copy the node's WAL past the divergence point aside and count the commits in it."""
    control = instance.control_data()
    tli = int(control["Latest checkpoint's TimeLineID"])
    kept_in, files = instance.keep_wal(diverged_at, int(control["Bytes per WAL segment"]))
    stats = instance.waldump_stats(kept_in, tli, diverged_at)
    kept = dict(from_lsn=diverged_at, timeline=tli, kept_in=kept_in, files=len(files),
                to_lsn=stats["end_lsn"] if stats else control.get("Latest checkpoint location"),
                committed_transactions=stats["committed"] if stats else None,
                aborted_transactions=stats["aborted"] if stats else None)
    if stats is None:
        kept["summary"] = "pg_waldump could not read it: the number of commits is not known"
    elif stats["committed"] == 0:
        kept["summary"] = "0 committed transactions: nothing was lost"
    else:
        kept["summary"] = ("%d committed transaction(s) the primary never had: they are "
                           "discarded from the node (the WAL holding them is kept)"
                           % stats["committed"])
    return kept


def ensure_slot(pconn, slot_name):
    exists = scalar(pconn, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s",
                    (slot_name,))
    if not exists:
        pconn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot_name,))
    return not exists


def main():
    module = AnsibleModule(
        argument_spec=dict(
            node=peer_option(required=True),
            primary=peer_option(required=True),
            data_dir=dict(type="path", required=True),
            config_dir=dict(type="path"),
            bin_dir=dict(type="path"),
            service_name=dict(type="str"),
            os_user=dict(type="str"),
            replication_user=dict(type="str"),
            replication_password=dict(type="str", no_log=True),
            slot_name=dict(type="str"),
            application_name=dict(type="str"),
            basebackup_fallback=dict(type="bool", default=True),
            force=dict(type="bool", default=False),
            rebuild=dict(type="bool", default=False),
            wait_timeout=dict(type="float", default=60),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    report = Report(module, TIMED_STEPS)
    result = dict(changed=False, method="none", streaming=False, node={})
    rejoin = Rejoin(module, report, result)
    report.run(rejoin.run, result, explain_error)


if __name__ == "__main__":
    main()
