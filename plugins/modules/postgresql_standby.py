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
  - Turns the local node (typically the old primary after a switchover or failover) into a
    physical streaming standby of O(primary).
  - "Steps: stop the node -> C(CHECKPOINT) on the primary (C(pg_rewind) needs the new
    timeline's checkpoint) -> C(pg_rewind) (it does nothing when the node's history is already
    part of the primary's) -> if the rewind fails and O(basebackup_fallback=true), move the data
    directory aside (never deleted) and C(pg_basebackup) -> write C(standby.signal),
    C(primary_conninfo) and C(primary_slot_name) -> create the slot on the primary -> start ->
    wait until the WAL receiver streams."
  - A node that already streams from O(primary) is left alone (changed=false).
  - A running node that is a writable primary is refused unless O(force=true); converting it
    would discard whatever it accepted since it diverged. Fence it first, or confirm.
  - Runs on the node's host. C(pg_ctl), C(pg_rewind) and C(pg_basebackup) run as the owner of
    O(data_dir) (through C(runuser) when the module runs as root).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.postgresql
  - failsafe.datastores.postgresql.PRIMARY_REQUIRED
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Inspects the node and the primary and reports the steps it would take.
  diff_mode:
    support: full
  idempotent:
    description: A node already streaming from the primary reports changed=false.
    support: full
options:
  data_dir:
    description: The node's data directory (where C(PG_VERSION) is).
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
        C(/usr/lib/postgresql/VERSION/bin) for the version in O(data_dir).
    type: path
  service_name:
    description:
      - Stop and start the node with C(systemctl stop/start) of this unit instead of C(pg_ctl).
    type: str
  log_file:
    description: Server log file for C(pg_ctl start -l).
    type: path
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
    description: Convert a running, writable primary too (its divergent writes are discarded).
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
    login_host: pg-east.example.com
    login_password: "{{ vault_pg_password }}"
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
  description: How the node was made a standby, V(none) when it already was one of O(primary),
    V(rewind), V(basebackup) or V(reconfigure) (already in sync, only the settings changed).
  returned: always
  type: str
steps:
  description: The steps taken (or planned, in check mode).
  returned: always
  type: list
  elements: str
node:
  description: What was found at the node before the task (running, role, read_only,
    system_identifier, timeline, upstream).
  returned: always
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
  description: Whether the WAL receiver streams from the primary at the end.
  returned: always
  type: bool
timings:
  description: Seconds per step (stop, rewind, basebackup, start, streaming, total).
  returned: always
  type: dict
diff:
  description: Role and upstream before and after.
  returned: when diff mode is on
  type: dict
'''

import datetime
import os
import pwd
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres import (
    PostgresError,
    Timer,
    connect,
    describe,
    ensure_driver,
    in_recovery,
    login_argument_spec,
    login_params,
    peer_option,
    replication_facts,
    scalar,
    system_identifier,
    try_connect,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._pg_files import (
    conninfo_string,
    update_auto_conf,
)


# Reported timings: (name, from mark, to mark); None is the start of the module.
STEPS = (
    ("stop", None, "stopped"),
    ("sync", "stopped", "synced"),
    ("start", "synced", "started"),
    ("streaming", "started", "streaming"),
)


class Node(object):
    """The local node's files and programs."""

    def __init__(self, module):
        self.module = module
        params = module.params
        self.data_dir = params["data_dir"]
        self.config_dir = params["config_dir"] or self.data_dir
        if not os.path.isfile(os.path.join(self.data_dir, "PG_VERSION")):
            module.fail_json(msg="%s is not a PostgreSQL data directory (no PG_VERSION): check "
                                 "data_dir" % self.data_dir)
        with open(os.path.join(self.data_dir, "PG_VERSION")) as handle:
            self.version = handle.read().strip()
        self.bin_dir = params["bin_dir"] or "/usr/lib/postgresql/%s/bin" % self.version
        if not os.path.isfile(os.path.join(self.bin_dir, "pg_ctl")):
            module.fail_json(msg="no pg_ctl in %s: set bin_dir" % self.bin_dir)
        owner = params["os_user"] or pwd.getpwuid(os.stat(self.data_dir).st_uid).pw_name
        self.os_user = owner
        self.as_other_user = os.geteuid() != pwd.getpwnam(owner).pw_uid
        if self.as_other_user and os.geteuid() != 0:
            module.fail_json(msg="%s belongs to %s: run the task as that user or as root "
                                 "(become: true)" % (self.data_dir, owner))

    def argv(self, program, *args):
        argv = [os.path.join(self.bin_dir, program)] + list(args)
        if self.as_other_user:
            argv = ["runuser", "-u", self.os_user, "--"] + argv
        return argv

    def run(self, argv, env=None, check=True):
        rc, out, err = self.module.run_command(argv, environ_update=env or {}, cwd="/")
        if check and rc != 0:
            raise PostgresError("%s failed (exit %d): %s" % (
                os.path.basename(argv[argv.index("--") + 1] if "--" in argv else argv[0]),
                rc, (err or out).strip()[-2000:]))
        return rc, out, err

    def running(self):
        pid_file = os.path.join(self.data_dir, "postmaster.pid")
        try:
            with open(pid_file) as handle:
                pid = int(handle.readline().strip())
        except (IOError, OSError, ValueError):
            return False
        try:
            os.kill(pid, 0)
        except OSError as exc:
            return exc.errno == 1  # EPERM: alive, someone else's
        return True

    def stop(self):
        if self.module.params["service_name"]:
            self.run(["systemctl", "stop", self.module.params["service_name"]])
        elif self.running():
            self.run(self.argv("pg_ctl", "-D", self.config_dir, "-m", "fast", "-w", "-t", "60",
                               "stop"))

    def start(self):
        if self.module.params["service_name"]:
            self.run(["systemctl", "start", self.module.params["service_name"]])
            return
        args = ["-D", self.config_dir, "-w", "-t", "60"]
        args += ["-l", self.module.params["log_file"] or os.devnull]
        self.run(self.argv("pg_ctl", *(args + ["start"])))

    def cluster_state(self):
        dummy, out, dummy_err = self.run(self.argv("pg_controldata", "-D", self.data_dir))
        for line in out.splitlines():
            if line.startswith("Database cluster state:"):
                return line.split(":", 1)[1].strip()
        return "unknown"

    def ensure_clean_shutdown(self):
        """Finish crash recovery in single-user mode (no network) before pg_rewind.

        pg_rewind would do it itself, but it cannot find a configuration kept outside the data
        directory; starting the node normally would let clients write to it.
        """
        if self.cluster_state() in ("shut down", "shut down in recovery"):
            return
        args = ["--single", "-F", "-D", self.data_dir]
        if self.config_dir != self.data_dir:
            args += ["-c", "config_file=%s" % os.path.join(self.config_dir, "postgresql.conf")]
        rc, out, err = self.module.run_command(self.argv("postgres", *(args + ["template1"])),
                                               data="", cwd="/")
        if rc != 0:
            raise PostgresError("crash recovery of %s in single-user mode failed (exit %d): %s"
                                % (self.data_dir, rc, (err or out).strip()[-2000:]))

    def chown(self, path):
        if self.as_other_user:
            entry = pwd.getpwnam(self.os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)


def current_state(peer):
    """The node as seen through SQL, or a stopped node."""
    conn, reason = try_connect(peer)
    if conn is None:
        return dict(running=False, role=None, reason=reason)
    with conn:
        facts = replication_facts(conn)
    receiver = facts["wal_receiver"] or {}
    return dict(running=True, role=facts["role"], read_only=facts["read_only"],
                system_identifier=facts["system_identifier"], timeline=facts["timeline"],
                upstream=("%s:%s" % (receiver.get("sender_host"), receiver.get("sender_port"))
                          if receiver else None),
                receiver_status=receiver.get("status"), slot=receiver.get("slot_name"))


def follows(state, primary_peer, slot_name):
    return (state["running"] and state["role"] == "standby"
            and state.get("receiver_status") == "streaming"
            and state.get("upstream") == describe(primary_peer)
            and (slot_name is None or state.get("slot") == slot_name))


def ensure_slot(pconn, slot_name):
    exists = scalar(pconn, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s",
                    (slot_name,))
    if not exists:
        pconn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot_name,))
    return not exists


def wait_streaming(peer, timeout):
    deadline = time.monotonic() + timeout
    last = "not started"
    while time.monotonic() < deadline:
        conn, reason = try_connect(peer)
        if conn is None:
            last = reason
        else:
            with conn:
                status = scalar(conn, "SELECT status FROM pg_stat_wal_receiver")
                if status == "streaming" and in_recovery(conn):
                    return True, status
                last = status or "no WAL receiver"
        time.sleep(0.1)
    return False, last


def main():
    argument_spec = login_argument_spec()
    argument_spec.update(
        primary=peer_option(required=True),
        data_dir=dict(type="path", required=True),
        config_dir=dict(type="path"),
        bin_dir=dict(type="path"),
        service_name=dict(type="str"),
        log_file=dict(type="path"),
        os_user=dict(type="str"),
        replication_user=dict(type="str"),
        replication_password=dict(type="str", no_log=True),
        slot_name=dict(type="str"),
        application_name=dict(type="str"),
        basebackup_fallback=dict(type="bool", default=True),
        force=dict(type="bool", default=False),
        wait_timeout=dict(type="float", default=60),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_driver(module)
    params = module.params
    primary_peer = params["primary"]
    node_peer = login_params(params)
    node = Node(module)
    timer = Timer()
    repl_user = params["replication_user"] or primary_peer["user"]
    repl_password = params["replication_password"]
    if repl_password is None:
        repl_password = primary_peer["password"]
    app_name = params["application_name"] or params["slot_name"] or "failsafe_standby"
    conninfo = conninfo_string(host=primary_peer["host"], port=primary_peer["port"],
                               user=repl_user, password=repl_password,
                               application_name=app_name)
    masked = conninfo_string(host=primary_peer["host"], port=primary_peer["port"],
                             user=repl_user, password="********" if repl_password else None,
                             application_name=app_name)
    result = dict(changed=False, method="none", steps=[], primary_conninfo=masked,
                  streaming=False)
    try:
        with connect(primary_peer, application_name="failsafe.standby") as pconn:
            if in_recovery(pconn):
                raise PostgresError("%s is in recovery, not a primary: point primary= at the "
                                    "current primary" % describe(primary_peer))
            primary_sysid = system_identifier(pconn)
            state = current_state(node_peer)
            if state["running"] and state.get("system_identifier") not in (None, primary_sysid):
                state["other_cluster"] = True
            result["node"] = state
            if follows(state, primary_peer, params["slot_name"]):
                result["streaming"] = True
                finish(module, result, timer, state)
            if state["running"] and state["role"] == "primary" and not state["read_only"] \
                    and not params["force"]:
                raise PostgresError(
                    "%s is running as a writable primary: making it a standby discards what it "
                    "accepted since it diverged. Nothing was changed. Fence it first "
                    "(postgresql_read_only read_only=true) or set force=true"
                    % describe(node_peer))
            if state["running"] and node.running() is False:
                raise PostgresError("the server at %s does not use data_dir %s: check the "
                                    "login_* options and data_dir" % (describe(node_peer),
                                                                      node.data_dir))
            steps = []
            if node.running() or state["running"]:
                steps.append("stop the node")
            steps.append("checkpoint the primary")
            if state.get("other_cluster"):
                steps.append("move the data directory aside and pg_basebackup")
            else:
                steps.append("pg_rewind from the primary (pg_basebackup if it fails)"
                             if params["basebackup_fallback"] else "pg_rewind from the primary")
            if params["slot_name"]:
                steps.append("create replication slot %s on the primary if missing"
                             % params["slot_name"])
            steps += ["write standby.signal and primary_conninfo", "start the node",
                      "wait until it streams"]
            result.update(changed=True, steps=steps, method="rewind")
            if module.check_mode:
                finish(module, result, timer, state)

            node.stop()
            timer.mark("stopped")
            pconn.execute("CHECKPOINT")
            method = rewind_or_clone(module, node, primary_peer, repl_user, repl_password,
                                     state.get("other_cluster"), result)
            result["method"] = method
            timer.mark("synced")
            if params["slot_name"]:
                ensure_slot(pconn, params["slot_name"])
            configure(node, conninfo, params["slot_name"])
            node.start()
            timer.mark("started")
        ok, status = wait_streaming(node_peer, params["wait_timeout"])
        timer.mark("streaming")
        result["streaming"] = ok
        if not ok:
            raise PostgresError("the node started but does not stream from %s after %ss (WAL "
                                "receiver: %s): check its log" % (describe(primary_peer),
                                                                  params["wait_timeout"], status))
    except PostgresError as exc:
        result["timings"] = timer.report(STEPS)
        module.fail_json(msg=str(exc), **result)
    finish(module, result, timer, result.get("node", {}))


def rewind_or_clone(module, node, primary_peer, repl_user, repl_password, other_cluster, result):
    source = conninfo_string(host=primary_peer["host"], port=primary_peer["port"],
                             user=primary_peer["user"], dbname=primary_peer["db"] or "postgres")
    env = {}
    if primary_peer["password"] is not None:
        env["PGPASSWORD"] = primary_peer["password"]
    if not other_cluster:
        node.ensure_clean_shutdown()
        rc, out, err = node.run(node.argv("pg_rewind", "--target-pgdata", node.data_dir,
                                          "--source-server", source, "--progress"),
                                env=env, check=False)
        result["rewind_output"] = (out + err).strip().splitlines()[-5:]
        if rc == 0:
            text = out + err
            return "reconfigure" if "no rewind required" in text else "rewind"
        if not module.params["basebackup_fallback"]:
            raise PostgresError("pg_rewind failed and basebackup_fallback is false: %s"
                                % " / ".join(result["rewind_output"]))
    elif not module.params["basebackup_fallback"]:
        raise PostgresError("the node belongs to another cluster than the primary and "
                            "basebackup_fallback is false: nothing was changed")
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    aside = "%s.failsafe-%s" % (node.data_dir.rstrip("/"), stamp)
    os.rename(node.data_dir, aside)
    result["moved_aside"] = aside
    os.mkdir(node.data_dir, 0o700)
    node.chown(node.data_dir)
    env = {}
    if repl_password is not None:
        env["PGPASSWORD"] = repl_password
    node.run(node.argv("pg_basebackup", "-D", node.data_dir, "-h", primary_peer["host"],
                       "-p", str(primary_peer["port"]), "-U", repl_user, "-X", "stream",
                       "-c", "fast", "--no-password"), env=env)
    return "basebackup"


def configure(node, conninfo, slot_name):
    path = os.path.join(node.data_dir, "postgresql.auto.conf")
    settings = dict(primary_conninfo=conninfo, primary_slot_name=slot_name or "")
    # A fence inherited from the old primary must not follow the node into a later promotion.
    update_auto_conf(path, settings, remove=["default_transaction_read_only"])
    node.chown(path)
    signal = os.path.join(node.data_dir, "standby.signal")
    with open(signal, "w"):
        pass
    node.chown(signal)


def finish(module, result, timer, state):
    result["timings"] = timer.report(STEPS)
    if module._diff:
        result["diff"] = dict(
            before=dict(role=state.get("role"), upstream=state.get("upstream")),
            after=dict(role="standby", upstream=describe(module.params["primary"])),
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
