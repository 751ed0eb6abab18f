#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postgresql_sync_replication
short_description: Make a PostgreSQL primary replicate synchronously, or asynchronously again
version_added: 0.4.0
description:
  - Sets C(synchronous_standby_names) (built from O(standby_names), O(method) and O(num_sync),
    for example C(ANY 1 (us_west))) and C(synchronous_commit) with C(ALTER SYSTEM), reloads
    the configuration and waits until a new session sees the new values.
  - An empty O(standby_names) makes the server asynchronous (C(synchronous_standby_names = '')).
  - "The trade-off: with synchronous replication a commit is acknowledged only once a named
    standby has it, so an emergency failover loses no acknowledged commit; but a primary whose
    synchronous standbys are all gone blocks every commit until one streams again or the
    setting is emptied. The module reports that state as RV(blocked) and names the standbys
    that are missing (RV(missing))."
  - On a standby the setting is written too; it applies once the standby is promoted.
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
      - Reads the settings and the connected standbys; sends no C(ALTER SYSTEM) and no
        C(pg_reload_conf()). RV(blocked) then says whether commits would block with the
        wanted value.
  diff_mode:
    support: full
  idempotent:
    description: Running twice gives changed=false the second time.
    support: full
options:
  standby_names:
    description:
      - C(application_name) of each standby that may confirm commits (in a lab or an inventory
        made by this collection, the standby's C(failsafe_pg_slot_name)). V(*) matches any
        standby.
      - An empty list makes the server asynchronous.
    type: list
    elements: str
    required: true
  method:
    description:
      - V(any) (quorum, C(ANY n (...))) waits for any O(num_sync) of the named standbys;
        V(first) (C(FIRST n (...))) for the first O(num_sync) connected in the order given.
    type: str
    choices: [any, first]
    default: any
  num_sync:
    description: How many standbys must confirm each commit; at most the number of names.
    type: int
    default: 1
  synchronous_commit:
    description:
      - C(synchronous_commit) to set with it. V(on) waits until the standby has flushed the
        commit; V(remote_apply) until it has applied it (reads on the standby see it);
        V(remote_write) until it has written it (not flushed).
    type: str
    choices: ['on', remote_apply, remote_write, local, 'off']
    default: 'on'
  require_streaming:
    description:
      - Set a non-empty value only once enough of the named standbys stream (wait up to
        O(streaming_timeout)); otherwise fail and change nothing. So that commits never block
        on a standby still catching up (the rejoin uses it).
    type: bool
    default: false
  streaming_timeout:
    description: Seconds O(require_streaming) waits for the standbys.
    type: float
    default: 30
  reload_timeout:
    description: Seconds to wait for the reloaded settings to be in force.
    type: float
    default: 10
'''

EXAMPLES = r'''
- name: us-east confirms every commit on its standby us-west
  failsafe.datastores.postgresql_sync_replication:
    node: "{{ hostvars['pg-us-east'] | failsafe.datastores.pg_conn }}"
    standby_names: [us_west]
  register: sync

- name: Say when commits block
  ansible.builtin.debug:
    msg: "commits wait for {{ sync.missing | join(', ') }}, which does not stream"
  when: sync.blocked

- name: Back to asynchronous replication (e.g. the only standby is gone for long)
  failsafe.datastores.postgresql_sync_replication:
    node:
      host: pg-east.example.com
      password: "{{ vault_pg_password }}"
    standby_names: []
'''

RETURN = r'''
synchronous_standby_names:
  description: The value after the task (in check mode, the value it would set).
  returned: always
  type: str
  sample: ANY 1 (us_west)
synchronous_commit:
  description: The C(synchronous_commit) after the task (in check mode, the one it would set).
  returned: always
  type: str
before:
  description: C(synchronous_standby_names) and C(synchronous_commit) found at the start.
  returned: always
  type: dict
in_recovery:
  description: Whether the server is a standby (the setting applies once promoted).
  returned: always
  type: bool
synchronous:
  description: Whether the value names any standby.
  returned: always
  type: bool
blocked:
  description:
    - Whether commits block now (fewer named standbys stream than O(num_sync)); a standby
      never blocks. In check mode, with the value it would set.
  returned: always
  type: bool
missing:
  description: Named standbys that do not stream (not connected, or still catching up).
  returned: always
  type: list
  elements: str
streaming:
  description: Named standbys that stream (C(pg_stat_replication.state = streaming)).
  returned: always
  type: list
  elements: str
standbys:
  description: Every connected standby (C(application_name), C(state), C(sync_state)).
  returned: always
  type: list
  elements: dict
statements:
  description: SQL the module ran (or would run in check mode).
  returned: always
  type: list
  elements: str
msg:
  description: What happened, in a sentence.
  returned: always
  type: str
steps:
  description: The steps taken (or planned, in check mode).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds reading the server (C(checks)), changing the settings until in force
    (C(change)), and in total.
  returned: always
  type: dict
diff:
  description: The two settings before and after.
  returned: when diff mode is on
  type: dict
'''

import time

from ansible.module_utils.basic import AnsibleModule

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
    in_recovery,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_sync import (
    SYNCHRONOUS_COMMIT_CHOICES,
    SyncNamesError,
    commit_wait,
    format_names,
    read_sync_settings,
    same_names,
    set_sync_settings,
    sync_statements,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._report import Report

APPLICATION_NAME = "failsafe.sync_replication"

# Reported timings: (name, from mark, to mark); None is the start of the module.
TIMED_STEPS = (
    ("checks", None, "checked"),
    ("change", "checked", "changed"),
)


def connected_standbys(conn):
    rows = conn.execute(
        "SELECT application_name, state, sync_state FROM pg_stat_replication"
        " ORDER BY application_name").fetchall()
    return [dict(row) for row in rows]


def wait_streaming(conn, wanted, timeout):
    """Wait until setting `wanted` would block no commit; returns the connected standbys."""
    deadline = time.monotonic() + timeout
    while True:
        standbys = connected_standbys(conn)
        wait = commit_wait(wanted, standbys)
        if not wait["blocked"]:
            return standbys
        if time.monotonic() > deadline:
            raise PostgresError(
                "%s do(es) not stream after streaming_timeout=%ss (connected: %s): setting "
                "synchronous_standby_names = %r now would block every commit. Nothing was "
                "changed" % (", ".join(wait["missing"]), timeout, ", ".join(
                    "%s (%s)" % (s["application_name"], s["state"]) for s in standbys)
                    or "none", wanted))
        time.sleep(0.05)


def settings(names, commit):
    return dict(synchronous_standby_names=names, synchronous_commit=commit)


def describe_wait(address, wait):
    if not wait["synchronous"]:
        return "%s replicates asynchronously." % address
    if wait["blocked"]:
        return ("COMMITS BLOCK on %s: it waits for %d synchronous standby(s) and %s do(es) not "
                "stream. Bring a standby back, or make it asynchronous (standby_names: [])."
                % (address, wait["needed"], ", ".join(wait["missing"])))
    return "%s replicates synchronously (%s stream%s)." % (
        address, ", ".join(wait["streaming"]), "s" if len(wait["streaming"]) == 1 else "")


def apply(module, report, result, wanted):
    params = module.params
    peer = params["node"]
    address = describe(peer)
    commit = params["synchronous_commit"]
    with connect(peer, APPLICATION_NAME) as conn:
        with doing("reading the synchronous replication settings", peer):
            recovering = in_recovery(conn)
            names_before, commit_before = read_sync_settings(conn)
            standbys = connected_standbys(conn)
        report.mark("checked")
        change_names = not same_names(names_before, wanted)
        change_commit = commit_before != commit
        statements = sync_statements(wanted if change_names else None,
                                     commit if change_commit else None)
        result.update(before=settings(names_before, commit_before), in_recovery=recovering,
                      standbys=standbys, statements=statements,
                      changed=bool(statements))
        if module.check_mode:
            report.plan(statements)
            after_names, after_commit = (wanted if change_names else names_before), commit
        else:
            if change_names and params["require_streaming"] and not recovering:
                with doing("waiting for the named standbys to stream", peer):
                    standbys = wait_streaming(conn, wanted, params["streaming_timeout"])
                result["standbys"] = standbys
            if statements:
                with doing("setting synchronous_standby_names and synchronous_commit", peer):
                    set_sync_settings(conn, wanted if change_names else None,
                                      commit if change_commit else None,
                                      params["reload_timeout"])
                report.done("%s on %s" % ("; ".join(statements), address))
                report.leaves("The new settings are in force on %s." % address)
            with doing("reading the synchronous replication settings", peer):
                after_names, after_commit = read_sync_settings(conn)
                standbys = connected_standbys(conn)
            result["standbys"] = standbys
        report.mark("changed")
    wait = commit_wait(after_names, standbys, recovering)
    result.update(synchronous_standby_names=after_names, synchronous_commit=after_commit,
                  synchronous=wait["synchronous"], blocked=wait["blocked"],
                  missing=wait["missing"], streaming=wait["streaming"])
    report.changes(settings(names_before, commit_before), settings(after_names, after_commit))
    note = describe_wait(address, wait)
    if recovering and wait["synchronous"]:
        note = "%s is a standby: the setting applies once it is promoted." % address
    result["msg"] = "%s%s" % ("Check mode: would set %r. " % wanted if module.check_mode
                              and statements else "", note)
    if wait["blocked"]:
        module.warn(note)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            node=peer_option(required=True),
            standby_names=dict(type="list", elements="str", required=True),
            method=dict(type="str", choices=["any", "first"], default="any"),
            num_sync=dict(type="int", default=1),
            synchronous_commit=dict(type="str", choices=list(SYNCHRONOUS_COMMIT_CHOICES),
                                    default="on"),
            require_streaming=dict(type="bool", default=False),
            streaming_timeout=dict(type="float", default=30),
            reload_timeout=dict(type="float", default=10),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        wanted = format_names(params["standby_names"], params["method"], params["num_sync"])
    except SyncNamesError as exc:
        module.fail_json(msg="%s. Nothing was changed." % exc)
    ensure_driver(module)
    report = Report(module, TIMED_STEPS)
    result = dict(changed=False, synchronous_standby_names=None, synchronous_commit=None,
                  before={}, in_recovery=None, synchronous=bool(wanted), blocked=False,
                  missing=[], streaming=[], standbys=[], statements=[], msg="")
    report.run(lambda: apply(module, report, result, wanted), result, explain_error)


if __name__ == "__main__":
    main()
