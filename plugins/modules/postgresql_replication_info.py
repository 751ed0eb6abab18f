#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: postgresql_replication_info
short_description: Gather the replication facts a PostgreSQL failover decision needs
version_added: 0.1.0
description:
  - Reads, from one server, its role (primary or standby), timeline, system identifier,
    write-ahead log positions (current, flushed, received, replayed), per-standby lag in bytes
    and seconds with the sync state, the replication slots, whether the server defaults to
    read-only transactions (fenced), its synchronous replication settings and whether its
    commits block waiting for a synchronous standby that does not stream.
  - C(community.postgresql.postgresql_info) reports neither LSNs nor lag, which is why this
    module exists.
  - Never changes anything.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.postgresql
  - failsafe.datastores.postgresql.NODE
  - failsafe.datastores.attributes
  - failsafe.datastores.attributes.INFO_MODULE
options:
  fail_on_unreachable:
    description:
      - When V(false), an unreachable server is reported as RV(reachable=false) instead of
        failing the task (authentication errors always fail). Useful in emergency failover,
        where the primary is expected to be down.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Read replication state of the standby
  failsafe.datastores.postgresql_replication_info:
    node:
      host: 10.0.2.10
      user: postgres
      password: "{{ vault_pg_password }}"
  register: standby_facts

- name: Refuse a switchover when the standby replays more than 16 MiB behind
  ansible.builtin.assert:
    that: standby_facts.replay_lag_bytes <= 16777216

- name: Probe a primary that may be down
  failsafe.datastores.postgresql_replication_info:
    node:
      host: 10.0.1.10
      password: "{{ vault_pg_password }}"
    fail_on_unreachable: false
  register: primary_facts

- name: Read every node as the inventory describes it
  failsafe.datastores.postgresql_replication_info:
    node: "{{ hostvars[item] | failsafe.datastores.pg_conn }}"
    fail_on_unreachable: false
  loop: "{{ groups['postgresql'] }}"
'''

RETURN = r'''
steps:
  description: Always empty (this module never changes anything).
  returned: always
  type: list
  elements: str
timings:
  description: Seconds the module took (C(total)).
  returned: always
  type: dict
reachable:
  description: Whether the server answered.
  returned: always
  type: bool
unreachable_reason:
  description: Why the server could not be reached (only with O(fail_on_unreachable=false)).
  returned: when not reachable
  type: str
role:
  description: V(primary) or V(standby).
  returned: when reachable
  type: str
  sample: standby
in_recovery:
  description: Result of C(pg_is_in_recovery()).
  returned: when reachable
  type: bool
server_version:
  description: Server version string.
  returned: when reachable
  type: str
server_version_num:
  description: Server version number.
  returned: when reachable
  type: int
system_identifier:
  description: Cluster system identifier; a standby and its primary share it.
  returned: when reachable
  type: str
timeline:
  description: Timeline the server writes (primary) or receives (standby).
  returned: when reachable
  type: int
read_only:
  description: Whether new sessions default to read-only transactions (the fence).
  returned: when reachable
  type: bool
cluster_name:
  description: The C(cluster_name) setting, if set.
  returned: when reachable
  type: str
current_lsn:
  description: C(pg_current_wal_lsn()) on a primary, null on a standby.
  returned: when reachable
  type: str
flush_lsn:
  description: C(pg_current_wal_flush_lsn()) on a primary, null on a standby.
  returned: when reachable
  type: str
received_lsn:
  description: Last WAL position received by a standby.
  returned: when reachable
  type: str
replayed_lsn:
  description: Last WAL position replayed by a standby.
  returned: when reachable
  type: str
replay_lag_bytes:
  description: Bytes received but not yet replayed on a standby.
  returned: when reachable
  type: int
last_replay_time:
  description: Commit time of the last transaction replayed on a standby (ISO 8601).
  returned: when reachable
  type: str
seconds_since_last_replay:
  description: Seconds since that commit time (grows on an idle primary too).
  returned: when reachable
  type: float
lag_seconds:
  description:
    - On a standby, how many seconds its replay is behind - 0 when it has replayed everything
      it received, else the time since the last transaction it replayed; null on a primary.
    - What it has not received yet shows on the primary (C(standbys[].lag_bytes)).
  returned: when reachable
  type: float
replay_paused:
  description: Whether WAL replay is paused on a standby.
  returned: when reachable
  type: bool
wal_receiver:
  description: The standby's WAL receiver (status, sender_host, sender_port, slot_name,
    received_tli, latest_end_lsn, last_msg_receipt_time, seconds_since_last_message,
    conninfo with the password masked); null when none runs.
  returned: when reachable
  type: dict
standbys:
  description: On a primary, one entry per connected standby, with C(lag_bytes) (current LSN
    minus replayed LSN), C(sent_lag_bytes), C(write_lag_seconds), C(flush_lag_seconds),
    C(replay_lag_seconds), C(sync_state), C(slot_name) and the LSNs.
  returned: when reachable
  type: list
  elements: dict
synchronous_standby_names:
  description: The server's C(synchronous_standby_names) (empty when asynchronous).
  returned: when reachable
  type: str
synchronous_commit:
  description: The server's C(synchronous_commit).
  returned: when reachable
  type: str
sync_blocked:
  description:
    - On a primary, whether its commits block now, waiting for synchronous standbys that do
      not stream (fewer than it needs); always false on a standby; null when the setting
      cannot be read.
  returned: when reachable
  type: bool
sync_missing:
  description: The standbys named in C(synchronous_standby_names) that do not stream.
  returned: when reachable
  type: list
  elements: str
slots:
  description: Replication slots with C(active), C(restart_lsn), C(wal_status) and
    C(retained_bytes) (WAL the slot holds back).
  returned: when reachable
  type: list
  elements: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    connect,
    doing,
    ensure_driver,
    explain_error,
    peer_option,
    try_connect,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import (
    replication_facts,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._report import Report

APPLICATION_NAME = "failsafe.replication_info"


def read_facts(module, result):
    peer = module.params["node"]
    if module.params["fail_on_unreachable"]:
        conn = connect(peer, APPLICATION_NAME)
    else:
        conn, reason = try_connect(peer, APPLICATION_NAME)
        if conn is None:
            result.update(reachable=False, unreachable_reason=reason)
            return
    with conn:
        with doing("reading the replication state", peer):
            facts = replication_facts(conn)
    result.update(facts)
    result["reachable"] = True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            node=peer_option(required=True),
            fail_on_unreachable=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    ensure_driver(module)
    report = Report(module)
    result = dict(changed=False)
    report.run(lambda: read_facts(module, result), result, explain_error)


if __name__ == "__main__":
    main()
