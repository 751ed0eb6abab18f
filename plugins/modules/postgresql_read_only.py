#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postgresql_read_only
short_description: Fence a PostgreSQL primary read-only, or lift the fence
version_added: 0.1.0
description:
  - Fencing sets C(default_transaction_read_only) with C(ALTER SYSTEM), reloads the
    configuration and waits until the new value is in force, then (by default) terminates the
    client sessions opened before the reload. Idle ones pick the new default up at their next
    command, but one inside an open transaction, or one that set the value itself, could
    still write. It reports every session it terminated.
  - Lifting the fence resets the setting and reloads.
  - The fence stops ordinary writes. A session can still opt out with
    C(SET default_transaction_read_only = off) or C(BEGIN READ WRITE); fence the application
    side too (scale writers down) where that matters.
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
      - Reports the statements it would run and the sessions it would terminate; runs only
        read-only queries.
  diff_mode:
    support: full
  idempotent:
    description: Running twice gives changed=false the second time.
    support: full
options:
  read_only:
    description:
      - V(true) fences the server (new transactions are read-only), V(false) lifts the fence.
    type: bool
    required: true
  terminate_sessions:
    description:
      - When fencing, terminate client sessions opened before the configuration reload
        (they could still write). Sessions opened after the fence are read-only and kept.
    type: bool
    default: true
  exclude_users:
    description:
      - Roles whose sessions are never terminated.
    type: list
    elements: str
    default: []
  reload_timeout:
    description: Seconds to wait for the reloaded setting to be in force.
    type: float
    default: 10
'''

EXAMPLES = r'''
- name: Fence the old primary before promoting the standby
  failsafe.datastores.postgresql_read_only:
    node:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"
    read_only: true
  register: fence

- name: Show what the fence terminated
  ansible.builtin.debug:
    msg: "{{ fence.terminated | length }} sessions terminated"

- name: Lift the fence after an aborted switchover
  failsafe.datastores.postgresql_read_only:
    node: "{{ hostvars['pg-east'] | failsafe.datastores.pg_conn }}"
    read_only: false
'''

RETURN = r'''
read_only:
  description: Whether the server defaults to read-only transactions after the task.
  returned: always
  type: bool
in_recovery:
  description: Whether the server is a standby (read-only by recovery in any case).
  returned: always
  type: bool
statements:
  description: SQL the module ran (or would run in check mode).
  returned: always
  type: list
  elements: str
terminated:
  description: Sessions terminated (or, in check mode, that would be), with pid, usename,
    datname, application_name, client_addr, state and backend_start.
  returned: always
  type: list
  elements: dict
elapsed_seconds:
  description: Time the module took (the same as C(timings.total)).
  returned: always
  type: float
steps:
  description: The steps taken (or planned, in check mode).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds to change the setting until in force (C(change)), to terminate the
    sessions (C(terminate)), and in total.
  returned: always
  type: dict
diff:
  description: Setting before and after.
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_actions import (
    FENCE,
    RELOAD,
    TERMINATE,
    UNFENCE,
    server_state,
    set_read_only,
    stale_sessions,
    terminate_sessions,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    connect,
    describe,
    doing,
    ensure_driver,
    explain_error,
    peer_option,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import (
    in_recovery,
    read_only_setting,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._report import Report

APPLICATION_NAME = "failsafe.read_only"

# Reported timings: (name, from mark, to mark); None is the start of the module.
TIMED_STEPS = (
    ("change", None, "changed"),
    ("terminate", "changed", "terminated"),
)


def terminate_statement(sessions):
    return "%s -- %d session(s)" % (TERMINATE % "ARRAY[pids]", len(sessions))


def setting(value):
    return dict(default_transaction_read_only=value)


def fence(module, report, result):
    params = module.params
    peer, wanted = params["node"], params["read_only"]
    address = describe(peer)
    with connect(peer, APPLICATION_NAME) as conn:
        with doing("reading the fence", peer):
            recovering = in_recovery(conn)
            before = read_only_setting(conn)
            terminate = wanted and params["terminate_sessions"] and not recovering
            # Before the reload (check mode, or a change still to come) every current session
            # is one to end; after it, those older than the reload.
            to_terminate = (stale_sessions(conn, params["exclude_users"],
                                           include_all=before != wanted) if terminate else [])
        statement = FENCE if wanted else UNFENCE
        statements = [statement, RELOAD] if before != wanted else []
        result.update(in_recovery=recovering, read_only=before, statements=statements,
                      terminated=[])
        if module.check_mode:
            if to_terminate:
                statements.append(terminate_statement(to_terminate))
            result.update(changed=before != wanted or bool(to_terminate), read_only=wanted,
                          terminated=to_terminate)
            report.plan(statements)
            report.changes(setting(before), setting(wanted))
            result["elapsed_seconds"] = report.timer.since_start()
            return

        if before != wanted:
            try:
                with doing("fencing" if wanted else "lifting the fence", peer):
                    set_read_only(conn, wanted, params["reload_timeout"])
            except Exception:
                report.leaves("Now: %s." % server_state(peer, APPLICATION_NAME)[1])
                raise
            report.done("%s; %s on %s" % (statement, RELOAD, address))
            report.leaves("%s on %s is in force." % (statement, address))
        report.mark("changed")
        terminated = []
        if terminate:
            with doing("terminating the client sessions opened before the fence", peer):
                terminated = terminate_sessions(conn, stale_sessions(conn, params["exclude_users"]))
            if terminated:
                statements.append(terminate_statement(terminated))
                report.done("terminated %d client session(s) opened before the fence"
                            % len(terminated))
        report.mark("terminated")
        with doing("reading the fence", peer):
            after = read_only_setting(conn)
    result.update(changed=(before != after) or bool(terminated), read_only=after,
                  terminated=terminated)
    report.changes(setting(before), setting(after))
    result["elapsed_seconds"] = report.timer.since_start()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            node=peer_option(required=True),
            read_only=dict(type="bool", required=True),
            terminate_sessions=dict(type="bool", default=True),
            exclude_users=dict(type="list", elements="str", default=[]),
            reload_timeout=dict(type="float", default=10),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    report = Report(module, TIMED_STEPS)
    result = dict(changed=False)
    report.run(lambda: fence(module, report, result), result, explain_error)


if __name__ == "__main__":
    main()
