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
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports the statements it would run and the sessions it would terminate.
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
    login_host: pg-east.example.com
    login_password: "{{ vault_pg_password }}"
    read_only: true
  register: fence

- name: Show what the fence terminated
  ansible.builtin.debug:
    msg: "{{ fence.terminated | length }} sessions terminated"

- name: Lift the fence after an aborted switchover
  failsafe.datastores.postgresql_read_only:
    login_host: pg-east.example.com
    login_password: "{{ vault_pg_password }}"
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
  description: Time the change took.
  returned: always
  type: float
diff:
  description: Setting before and after.
  returned: when diff mode is on
  type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres import (
    PostgresError,
    connect,
    ensure_driver,
    in_recovery,
    login_argument_spec,
    login_params,
    read_only_setting,
    set_read_only,
    stale_sessions,
    terminate_sessions,
)


def main():
    argument_spec = login_argument_spec()
    argument_spec.update(
        read_only=dict(type="bool", required=True),
        terminate_sessions=dict(type="bool", default=True),
        exclude_users=dict(type="list", elements="str", default=[]),
        reload_timeout=dict(type="float", default=10),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    ensure_driver(module)
    params = module.params
    wanted = params["read_only"]
    started = time.monotonic()
    try:
        with connect(login_params(params)) as conn:
            recovering = in_recovery(conn)
            before = read_only_setting(conn)
            statements = []
            if before != wanted:
                statements.append(
                    "ALTER SYSTEM SET default_transaction_read_only = on" if wanted
                    else "ALTER SYSTEM RESET default_transaction_read_only")
                statements.append("SELECT pg_reload_conf()")
            to_terminate = []
            if wanted and params["terminate_sessions"] and not recovering:
                # After the reload, sessions older than it are the ones to end; before it
                # (check mode, or a setting change still to come), all current sessions are.
                to_terminate = stale_sessions(conn, params["exclude_users"],
                                              include_all=before != wanted)
            terminated = []
            if not module.check_mode:
                if before != wanted:
                    set_read_only(conn, wanted, params["reload_timeout"])
                if wanted and params["terminate_sessions"] and not recovering:
                    to_terminate = stale_sessions(conn, params["exclude_users"])
                    terminated = terminate_sessions(conn, to_terminate)
                after = read_only_setting(conn)
            else:
                terminated = to_terminate
                after = wanted
            if terminated:
                statements.append("SELECT pg_terminate_backend(pid, 5000) -- %d session(s)"
                                  % len(terminated))
    except PostgresError as exc:
        module.fail_json(msg=str(exc))

    result = dict(
        changed=(before != after) or bool(terminated),
        read_only=after,
        in_recovery=recovering,
        statements=statements,
        terminated=terminated,
        elapsed_seconds=round(time.monotonic() - started, 6),
    )
    if module._diff:
        result["diff"] = dict(
            before=dict(default_transaction_read_only=before),
            after=dict(default_transaction_read_only=after),
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
