#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postgresql_sessions
short_description: Count PostgreSQL connections by state and end idle or long-running sessions
version_added: 0.4.0
description:
  - Reads the connection use of one server against C(max_connections) - the client sessions by
    state with the oldest age in each state, the top clients (user, C(application_name),
    client address) - and ends the sessions the connection-exhaustion runbook ends - idle for
    longer than O(idle_seconds) (10 minutes by default) and running one query for longer than
    O(active_seconds) (5 minutes) - with C(pg_terminate_backend).
  - Only client backends are ever ended. Never the module's own session, never a replication
    connection (walsender), autovacuum or another background process.
  - The selection is checked again inside the terminating statement, so a session that changed
    in between (an idle session that started a query) is left alone.
  - Ages are measured by the server's clock, idle from C(state_change), active from
    C(query_start).
  - C(community.postgresql.postgresql_info) and C(postgresql_query) can do neither the
    counting by state and age nor the guarded termination, which is why this module exists.
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
      - Lists the sessions that would be ended (RV(terminated)) and ends none; runs only
        read-only queries.
  diff_mode:
    support: full
  idempotent:
    description: Once no session is older than the thresholds, changed=false.
    support: full
options:
  terminate:
    description:
      - V(false) only reads and reports (RV(selected) lists the sessions past the thresholds;
        nothing is ended, changed=false).
    type: bool
    default: true
  kinds:
    description:
      - Which sessions may be ended - V(idle) (past O(idle_seconds)), V(active) (a query running
        for longer than O(active_seconds)), V(idle_in_transaction) (past
        O(idle_in_transaction_seconds); the runbook does not end these).
    type: list
    elements: str
    choices: [idle, active, idle_in_transaction]
    default: [idle, active]
  idle_seconds:
    description: End sessions whose state is C(idle) since more than this many seconds.
    type: float
    default: 600
  active_seconds:
    description:
      - End sessions whose current query (state C(active)) started more than this many seconds
        ago.
    type: float
    default: 300
  idle_in_transaction_seconds:
    description:
      - End sessions C(idle in transaction) (or aborted) for longer than this many seconds,
        when O(kinds) names them.
    type: float
    default: 600
  databases:
    description: Only sessions connected to these databases; empty for every database.
    type: list
    elements: str
    default: []
  users:
    description: Only sessions of these roles; empty for every role.
    type: list
    elements: str
    default: []
  applications:
    description: Only sessions with one of these C(application_name)s; empty for all.
    type: list
    elements: str
    default: []
  exclude_users:
    description: Never end sessions of these roles.
    type: list
    elements: str
    default: []
  exclude_applications:
    description: Never end sessions with one of these C(application_name)s.
    type: list
    elements: str
    default: []
  top:
    description: How many clients RV(top_clients) lists.
    type: int
    default: 10
  exit_timeout:
    description: Seconds to wait until every ended session has exited.
    type: float
    default: 10
'''

EXAMPLES = r'''
- name: Diagnose connection use (ends nothing)
  failsafe.datastores.postgresql_sessions:
    node: "{{ hostvars['pg-us-east'] | failsafe.datastores.pg_conn }}"
    terminate: false
  register: sessions

- name: Show the use against max_connections
  ansible.builtin.debug:
    msg: "{{ sessions.connections }} of {{ sessions.max_connections }}: {{ sessions.by_state }}"

- name: The runbook's mitigation - idle > 10 min, active > 5 min, in database intelgraph
  failsafe.datastores.postgresql_sessions:
    node:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"
    idle_seconds: 600
    active_seconds: 300
    databases: [intelgraph]
    exclude_users: [replicator]
'''

RETURN = r'''
max_connections:
  description: The server's C(max_connections).
  returned: always
  type: int
reserved_connections:
  description: The server's C(superuser_reserved_connections).
  returned: always
  type: int
connections:
  description: Client connections when the module read them, its own included.
  returned: always
  type: int
usage_ratio:
  description: RV(connections) divided by RV(max_connections) (C(0.8) = 80 %).
  returned: always
  type: float
available:
  description: Connection slots left for ordinary roles (max minus reserved minus used).
  returned: always
  type: int
by_state:
  description: Per state (C(active), C(idle), C(idle in transaction), ...) the number of other
    client sessions (C(count)) and the longest time one has been in it (C(oldest_seconds)).
  returned: always
  type: dict
  sample: {"idle": {"count": 12, "oldest_seconds": 812.4}, "active": {"count": 2, "oldest_seconds": 0.3}}
top_clients:
  description: The clients with the most sessions - C(usename), C(application_name),
    C(client_addr), C(count) and the count per state (C(states)).
  returned: always
  type: list
  elements: dict
other_backends:
  description: Processes that are not client sessions, by C(backend_type) (walsender,
    autovacuum launcher, ...); never ended.
  returned: always
  type: dict
selected:
  description: The client sessions past a threshold and within the filters when the module
    read them - pid, usename, datname, application_name, client_addr, state, backend_start,
    backend_seconds, state_seconds, query_seconds and C(reason) (V(idle), V(active),
    V(idle_in_transaction)).
  returned: always
  type: list
  elements: dict
terminated:
  description: The sessions ended (in check mode, that would be ended), in the shape of
    RV(selected). Empty when O(terminate=false).
  returned: always
  type: list
  elements: dict
thresholds:
  description: The thresholds in seconds that applied (C(idle), C(active),
    C(idle_in_transaction)); null means that kind is kept.
  returned: always
  type: dict
steps:
  description: What the module did (in check mode, would do).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds to read the sessions (C(read)), to end them and see them exit
    (C(terminate)), and in total.
  returned: always
  type: dict
diff:
  description: The selected sessions before, and those left after.
  returned: when diff mode is on
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_actions import (
    terminate_sessions,
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
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_sessions import (
    ACTIVE_SECONDS,
    IDLE_SECONDS,
    label,
    read_usage,
    select_sessions,
    thresholds_problem,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._report import Report

APPLICATION_NAME = "failsafe.sessions"

TIMED_STEPS = (
    ("read", None, "read"),
    ("terminate", "read", "terminated"),
)

FILTERS = ("databases", "users", "applications", "exclude_users", "exclude_applications")


def run(module, report, result):
    params = module.params
    peer = params["node"]
    thresholds = dict((kind, params["%s_seconds" % kind] if kind in params["kinds"] else None)
                      for kind in ("idle", "active", "idle_in_transaction"))
    result["thresholds"] = thresholds
    problem = thresholds_problem(thresholds)
    if problem:
        raise PostgresError(problem)
    filters = dict((name, params[name]) for name in FILTERS)
    with connect(peer, APPLICATION_NAME) as conn:
        with doing("reading the sessions", peer):
            result.update(read_usage(conn, params["top"]))
            selected, condition, values = select_sessions(conn, thresholds, filters)
        result["selected"] = selected
        report.mark("read")
        labels = [label(s) for s in selected]
        if not params["terminate"]:
            report.mark("terminated")
            return
        report.changes(dict(sessions=labels), dict(sessions=[]))
        if module.check_mode:
            result.update(changed=bool(selected), terminated=selected)
            report.plan(["pg_terminate_backend %s" % text for text in labels])
            report.mark("terminated")
            return
        with doing("terminating the selected sessions", peer):
            ended = terminate_sessions(conn, selected, timeout=params["exit_timeout"],
                                       still=condition, still_params=values)
        report.mark("terminated")
        for session in ended:
            report.done("pg_terminate_backend %s" % label(session))
        if ended:
            report.leaves("%d session(s) on %s were ended." % (len(ended), describe(peer)))
        kept = [label(s) for s in selected if s not in ended]
        report.changes(dict(sessions=labels), dict(sessions=kept))
        result.update(changed=bool(ended), terminated=ended)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            node=peer_option(required=True),
            terminate=dict(type="bool", default=True),
            kinds=dict(type="list", elements="str", default=["idle", "active"],
                       choices=["idle", "active", "idle_in_transaction"]),
            idle_seconds=dict(type="float", default=IDLE_SECONDS),
            active_seconds=dict(type="float", default=ACTIVE_SECONDS),
            idle_in_transaction_seconds=dict(type="float", default=IDLE_SECONDS),
            databases=dict(type="list", elements="str", default=[]),
            users=dict(type="list", elements="str", default=[]),
            applications=dict(type="list", elements="str", default=[]),
            exclude_users=dict(type="list", elements="str", default=[]),
            exclude_applications=dict(type="list", elements="str", default=[]),
            top=dict(type="int", default=10),
            exit_timeout=dict(type="float", default=10),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    report = Report(module, TIMED_STEPS)
    result = dict(changed=False, selected=[], terminated=[])
    report.run(lambda: run(module, report, result), result, explain_error)


if __name__ == "__main__":
    main()
