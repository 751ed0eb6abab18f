#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postgresql_setting
short_description: Set a PostgreSQL server setting, and restart the node when the setting needs it
version_added: 0.4.0
description:
  - Sets one setting with C(ALTER SYSTEM) and reloads the configuration. A setting that only
    takes effect at server start (C(context = postmaster), such as C(max_connections)) is then
    pending; with O(restart=true) the module restarts the local node (C(pg_ctl) or
    C(systemctl)), waits until it accepts connections (and, for a standby, until it streams
    again) and checks that the new value is in force.
  - Reads first - the value in force, the value the configuration files ask for, whether a
    restart is pending - and does only what is missing, so a second run changes nothing.
  - Refuses a value the server would reject (not an integer for an integer setting, out of
    C(min_val)..C(max_val)) before changing anything.
  - C(community.postgresql.postgresql_set) sets the value but does not restart a node, wait
    for it, or check a standby streams again, which is why this module exists; the order across
    nodes (a standby's C(max_connections) must be at least the primary's, so raise it on the
    standbys first) is the C(postgresql_connection_exhaustion) role's.
  - Runs on the node's host when it restarts the node; C(pg_ctl) runs as the owner of
    O(data_dir) (through C(runuser) when the module runs as root).
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.postgresql
  - failsafe.datastores.postgresql.NODE
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the setting and reports the statements and the restart it would do.
  diff_mode:
    support: full
  idempotent:
    description: A value in force and configured gives changed=false.
    support: full
options:
  name:
    description: Name of the setting (C(max_connections)).
    type: str
    required: true
  value:
    description:
      - The value. For an integer setting without a unit, an integer; otherwise as
        C(ALTER SYSTEM) takes it.
    type: str
    required: true
  restart:
    description:
      - Restart the node when the setting only takes effect at server start. V(false) leaves
        the change pending (RV(pending_restart)).
    type: bool
    default: false
  data_dir:
    description: The node's data directory; required to restart it.
    type: path
  config_dir:
    description: Directory given to C(pg_ctl -D); the data directory unless the configuration lives
      elsewhere.
    type: path
  bin_dir:
    description: Directory of C(pg_ctl). Default is C(/usr/lib/postgresql/VERSION/bin).
    type: path
  service_name:
    description: Restart with C(systemctl stop/start) of this unit instead of C(pg_ctl).
    type: str
  os_user:
    description: OS user to run C(pg_ctl) as. Default is the owner of O(data_dir).
    type: str
  wait_timeout:
    description: Seconds to wait, after the start, until the node accepts connections and a
      standby streams.
    type: float
    default: 60
'''

EXAMPLES = r'''
- name: Raise max_connections on the standby, restarting it
  failsafe.datastores.postgresql_setting:
    node: "{{ hostvars['pg-us-west'] | failsafe.datastores.pg_conn }}"
    name: max_connections
    value: "300"
    restart: true
    data_dir: "{{ hostvars['pg-us-west'].failsafe_pg_data_dir }}"
  become: true
'''

RETURN = r'''
name:
  description: The setting.
  returned: always
  type: str
before:
  description: The value in force before the task (C(pg_settings.setting)).
  returned: when the setting exists
  type: str
after:
  description: The value in force after the task (in check mode, that it would be).
  returned: when the setting exists
  type: str
context:
  description: When the setting takes effect (C(postmaster) = at server start, C(sighup) = on
    reload, ...).
  returned: when the setting exists
  type: str
pending_restart:
  description: Whether the node must still be restarted for the configured value to be in force.
  returned: when the setting exists
  type: bool
restarted:
  description: Whether the node was (in check mode, would be) restarted.
  returned: always
  type: bool
in_recovery:
  description: Whether the node is a standby.
  returned: when the setting exists
  type: bool
statements:
  description: SQL the module ran (or would run in check mode).
  returned: always
  type: list
  elements: str
steps:
  description: What the module did (in check mode, would do).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds to change the configuration (C(configure)), to stop and start the node
    (C(restart)), until it accepts connections and streams again (C(ready)), and in total.
  returned: always
  type: dict
diff:
  description: The value in force before and after.
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_actions import (
    RELOAD,
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
    in_recovery,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_local import (
    LocalInstance,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._report import Report

try:
    from psycopg import sql
except ImportError:  # pragma: no cover - ensure_driver fails first
    sql = None

APPLICATION_NAME = "failsafe.setting"

TIMED_STEPS = (
    ("configure", None, "configured"),
    ("restart", "configured", "restarted"),
    ("ready", "restarted", "ready"),
)


def normalise(value, row):
    """The value as the server would store it, for an integer setting without a unit; else
    the text. Raises PostgresError (nothing changed) for a value the server would refuse."""
    text = str(value).strip()
    if row["vartype"] != "integer" or row["unit"]:
        return text
    try:
        number = int(text)
    except ValueError:
        raise PostgresError("%s must be an integer, not %r" % (row["name"], text))
    low, high = int(row["min_val"]), int(row["max_val"])
    if not low <= number <= high:
        raise PostgresError("%s must be between %s and %s, not %s"
                            % (row["name"], low, high, number))
    return str(number)


def read_setting(conn, name):
    row = conn.execute(
        "SELECT name, setting, unit, vartype, context, min_val, max_val, pending_restart"
        " FROM pg_settings WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise PostgresError("the server has no setting %r: check the name" % name)
    row = dict(row)
    # The value the configuration files ask for (the last one wins), None when none does.
    files = conn.execute(
        "SELECT setting FROM pg_file_settings WHERE name = %s ORDER BY seqno DESC LIMIT 1",
        (name,)).fetchone()
    row["file_value"] = files["setting"] if files else None
    return row


def alter_statement(name, value):
    return sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value))


def wait_ready(peer, timeout, standby):
    """After a start: connections accepted, and a standby streaming again."""
    if standby:
        ok, status = wait_streaming(peer, timeout, APPLICATION_NAME)
        if not ok:
            raise PostgresError("the standby %s restarted but does not stream after %ss (WAL "
                                "receiver: %s): check its log" % (describe(peer), timeout,
                                                                  status))
        return
    conn, reason = try_connect(peer, APPLICATION_NAME)
    if conn is None:
        raise PostgresError("%s does not accept connections after the restart: %s"
                            % (describe(peer), reason))
    conn.close()


def run(module, report, result):
    params = module.params
    peer, name = params["node"], params["name"]
    address = describe(peer)
    with connect(peer, APPLICATION_NAME) as conn:
        with doing("reading setting %s" % name, peer):
            row = read_setting(conn, name)
            recovering = in_recovery(conn)
        wanted = normalise(params["value"], row)
        in_force = row["setting"] == wanted
        file_value = row["file_value"]
        configured = (normalise(file_value, row) == wanted) if file_value is not None else in_force
        needs_restart = row["context"] == "postmaster" and not in_force
        restart = needs_restart and params["restart"]
        result.update(before=row["setting"], context=row["context"], in_recovery=recovering,
                      after=row["setting"], pending_restart=bool(row["pending_restart"]))
        if restart and not params["data_dir"]:
            raise PostgresError("%s on %s takes effect only after a restart: set data_dir so "
                                "that the node can be restarted" % (name, address))
        statements = []
        if not configured:
            statements = ["ALTER SYSTEM SET %s = '%s'" % (name, wanted), RELOAD]
        elif not in_force and row["context"] != "postmaster":
            statements = [RELOAD]
        result["statements"] = statements
        after = wanted if (row["context"] != "postmaster" or restart) else row["setting"]
        report.changes(dict(value=row["setting"]), dict(value=after))
        plan = list(statements)
        if restart:
            plan.append("restart %s (%s) and wait until it %s" % (
                address, "systemctl" if params["service_name"] else "pg_ctl",
                "streams again" if recovering else "accepts connections"))
        if module.check_mode:
            report.plan(plan)
            result.update(changed=bool(plan), after=after, restarted=restart,
                          pending_restart=needs_restart and not restart)
            return
        if statements:
            with doing("setting %s" % name, peer):
                if not configured:
                    conn.execute(alter_statement(name, wanted))
                conn.execute(RELOAD)
            report.done("%s on %s" % ("; ".join(statements), address))
            report.leaves("%s = %s is configured on %s%s." % (
                name, wanted, address, ", pending a restart" if needs_restart else ""))
    report.mark("configured")
    if restart:
        instance = LocalInstance(module, params["data_dir"], config_dir=params["config_dir"],
                                 bin_dir=params["bin_dir"], service_name=params["service_name"],
                                 log_file=peer.get("log_file"), os_user=params["os_user"])
        report.leaves("%s may be stopped: start it (pg_ctl start) and look at its log."
                      % address)
        instance.stop()
        report.done("stopped %s" % address)
        instance.start()
        report.done("started %s" % address)
        report.mark("restarted")
        wait_ready(peer, params["wait_timeout"], recovering)
        report.done("%s %s" % (address, "streams again" if recovering
                               else "accepts connections"))
        report.leaves("%s was restarted with %s = %s." % (address, name, wanted))
    report.mark("ready")
    with connect(peer, APPLICATION_NAME) as conn:
        with doing("reading setting %s" % name, peer):
            row = read_setting(conn, name)
    result.update(after=row["setting"], pending_restart=bool(row["pending_restart"]),
                  restarted=restart, changed=bool(statements) or restart)
    report.changes(dict(value=result["before"]), dict(value=row["setting"]))
    if restart and row["setting"] != wanted:
        raise PostgresError("%s restarted but %s is %s, not %s: a configuration file read "
                            "after postgresql.auto.conf overrides it"
                            % (address, name, row["setting"], wanted))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            node=peer_option(required=True),
            name=dict(type="str", required=True),
            value=dict(type="str", required=True),
            restart=dict(type="bool", default=False),
            data_dir=dict(type="path"),
            config_dir=dict(type="path"),
            bin_dir=dict(type="path"),
            service_name=dict(type="str"),
            os_user=dict(type="str"),
            wait_timeout=dict(type="float", default=60),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    report = Report(module, TIMED_STEPS)
    result = dict(changed=False, name=module.params["name"], restarted=False, statements=[])
    report.run(lambda: run(module, report, result), result, explain_error)


if __name__ == "__main__":
    main()
