#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: run_lock
short_description: Take, release or read the run lock of a datastore scope
version_added: 0.2.0
description:
  - One state-changing run per scope at a time (C(postgresql), C(redis), C(regional), ...). The
    playbooks take it before their first change and release it at the end, also on failure.
  - The holder is one C(ansible-playbook) process, identified by controller, process id and
    process start time, which the action plugin of the same name fills in. A run may take a
    lock it already holds (nested roles); RV(acquired) is then false, so it does not release
    what an outer role holds.
  - A second run is refused with who holds the lock (controller, user, playbook) and since
    when. A dead run does not block the next forever, the lock is taken over when it has
    expired (O(ttl)), when its holder ran on this controller and its process is gone, or when
    O(break_lock=true).
  - "Stores: C(postgresql), a table C(failsafe_run_locks) in a database every controller can
    reach (several controllers, such as AWX nodes); C(file), JSON files in a directory (one
    controller, or a directory shared by all of them)."
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the lock and reports what would happen; a lock held by another run is a warning,
        not a failure, since a check-mode run changes nothing.
  diff_mode:
    support: full
  idempotent:
    description: Taking a lock this run holds, or releasing one nobody holds, changes nothing.
    support: full
options:
  name:
    description: Name of the lock (the scope it protects). One of O(name) and O(names) is required.
    type: str
  names:
    description:
      - Several locks in one call, in this order (C(regional), C(postgresql), C(redis)), all or
        none - when one is held by another run, those this call took are given back before it
        fails. RV(locks) has the result of each.
    type: list
    elements: str
  state:
    description:
      - V(present) takes the lock (or fails with its holder), V(absent) releases it when this
        run holds it, V(query) only reads it.
    type: str
    choices: [present, absent, query]
    default: present
  store:
    description: Where the lock lives.
    type: dict
    default: {}
    suboptions:
      backend:
        description: Kind of store.
        type: str
        choices: [file, postgresql]
        default: file
      path:
        description: Directory of the V(file) store.
        type: path
        default: /var/tmp/failsafe-locks
      connection:
        description:
          - Connection to the database of the V(postgresql) store, as the C(pg_conn) filter
            builds it from an inventory host.
        type: dict
        suboptions:
          host:
            description: Host name or address of the server.
            type: str
            required: true
          port:
            description: TCP port of the server.
            type: int
            default: 5432
          user:
            description: Role to connect as; it needs C(CREATE) on the database the first time.
            type: str
            default: postgres
          password:
            description: Password of O(store.connection.user). Never returned or logged.
            type: str
          db:
            description: Database that holds the C(failsafe_run_locks) table.
            type: str
            default: postgres
          connect_timeout:
            description: Seconds to wait for a connection.
            type: int
            default: 5
          ssl_mode:
            description: libpq C(sslmode).
            type: str
            default: prefer
            choices: [allow, disable, prefer, require, verify-ca, verify-full]
          ca_cert:
            description: CA certificate file for O(store.connection.ssl_mode=verify-ca) and O(store.connection.ssl_mode=verify-full).
            type: path
          log_file:
            description: The server's log file (C(failsafe_pg_log_file)); not used here, accepted so that the C(pg_conn) dict passes unchanged.
            type: path
  ttl:
    description: Seconds after which a held lock counts as abandoned. Make it longer than the longest run.
    type: int
    default: 3600
  break_lock:
    description: Take the lock from whatever run holds it. Only for a holder known to be dead.
    type: bool
    default: false
  owner:
    description:
      - Who takes the lock (controller, machine_id, user, pid, pid_start, playbook). Filled in by the action
        plugin on the controller; set it only when calling the module without it.
    type: dict
    default: {}
'''

EXAMPLES = r'''
- name: Take the PostgreSQL run lock
  failsafe.datastores.run_lock:
    name: postgresql
    store:
      backend: postgresql
      connection: "{{ hostvars['witness'] | failsafe.datastores.pg_conn }}"
  delegate_to: localhost
  run_once: true
  register: lock

- name: Release it
  failsafe.datastores.run_lock:
    name: postgresql
    state: absent
  delegate_to: localhost
  run_once: true
  when: lock.acquired

- name: Take every lock of a regional failover at once (all or none)
  failsafe.datastores.run_lock:
    names: [regional, postgresql, redis]
  delegate_to: localhost
  run_once: true
'''

RETURN = r'''
locked:
  description: Whether this run holds the lock after the task (would, in check mode).
  returned: always
  type: bool
acquired:
  description: Whether this task took the lock (false when the run held it already); release it only then.
  returned: always
  type: bool
released:
  description: Whether this task released the lock.
  returned: always
  type: bool
holder:
  description:
    - The lock record after the task, or the other run's record when refused (name, token,
      controller, machine_id, user, pid, pid_start, playbook, acquired_at, expires_at); null when free.
  returned: always
  type: dict
took_over:
  description: The record of a dead, expired or broken holder this task replaced, with C(reason).
  returned: when a lock was taken over
  type: dict
locks:
  description:
    - With O(names) - per lock name, its own C(locked), C(acquired), C(released), C(holder)
      and C(took_over); the top-level values then say whether all are locked (RV(locked)),
      whether any was acquired or released (RV(acquired), RV(released)).
  returned: with O(names)
  type: dict
store:
  description: Which store was used.
  returned: always
  type: str
diff:
  description: Holder token before and after.
  returned: when diff mode is on
  type: dict
'''

import getpass
import os
import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._lock import (
    FileStore,
    LockError,
    PostgresStore,
    acquire,
    describe_holder,
    machine_id,
    process_start,
    release,
    run_token,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    PEER_SPEC,
    PostgresError,
    connect,
    describe,
    ensure_driver,
)


def owner_of(params):
    """The owner given by the action plugin, or this process's parent as a fallback."""
    owner = dict(params["owner"] or {})
    if not owner.get("pid"):
        owner["pid"] = os.getppid()
        owner["pid_start"] = process_start(owner["pid"])
    owner.setdefault("controller", socket.gethostname())
    owner.setdefault("machine_id", machine_id())
    owner.setdefault("user", getpass.getuser())
    owner.setdefault("playbook", None)
    owner.setdefault("pid_start", None)
    return owner


def open_store(module, store):
    if store["backend"] == "file":
        return FileStore(store["path"]), None
    ensure_driver(module)
    if not store.get("connection"):
        raise LockError("store.connection is required for the postgresql store")
    peer = store["connection"]
    conn = connect(peer, application_name="failsafe.run_lock")
    return PostgresStore(conn, describe(peer)), conn


def refusal(name, record, store):
    return ("another run holds the %s lock: %s (store: %s). Nothing was changed. Wait for it "
            "to finish; if that run is dead (its controller crashed, or it was killed on "
            "another controller), run again with -e failsafe_lock_break=true "
            "(run_lock break_lock=true)" % (name, describe_holder(record), store.describe()))


def one_lock(module, store, name, owner, token, taken_here):
    """Take, release or read one lock; returns its result. A refusal raises LockRefused after
    giving back what this call took (taken_here)."""
    params = module.params
    result = dict(changed=False, locked=False, acquired=False, released=False, holder=None)
    before = None
    if params["state"] == "query":
        record = store.read(name)
        result.update(holder=record, locked=bool(record and record.get("token") == token))
    elif params["state"] == "present":
        outcome = acquire(store, name, token, owner, params["ttl"], params["break_lock"],
                          module.check_mode)
        if outcome["verdict"] == "held":
            result["holder"] = outcome["record"]
            if not module.check_mode:
                for other in reversed(taken_here):
                    release(store, other, token, False, False)
                raise LockRefused(refusal(name, outcome["record"], store), outcome["record"])
            module.warn(refusal(name, outcome["record"], store))
        else:
            taken = outcome["verdict"] in ("free", "take_over")
            result.update(changed=taken, acquired=taken, locked=True, holder=outcome["record"])
            if taken:
                taken_here.append(name)
        if outcome["verdict"] == "take_over":
            previous = dict(outcome["previous"])
            previous["reason"] = outcome["reason"]
            result["took_over"] = previous
            module.warn("took over the %s lock, %s: %s"
                        % (name, describe_holder(outcome["previous"]), outcome["reason"]))
        before = outcome["previous"]
    else:
        outcome = release(store, name, token, params["break_lock"], module.check_mode)
        if outcome["verdict"] == "held_by_other":
            module.warn("the %s lock is %s, not by this run: left alone"
                        % (name, describe_holder(outcome["record"])))
            result["holder"] = outcome["record"]
        released = outcome["verdict"] == "released"
        result.update(changed=released, released=released)
        before = outcome["record"]
    if module._diff and params["state"] != "query":
        result["diff"] = lock_diff(result, before)
    return result


class LockRefused(Exception):
    def __init__(self, msg, holder):
        super(LockRefused, self).__init__(msg)
        self.holder = holder


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str"),
            names=dict(type="list", elements="str"),
            state=dict(type="str", default="present", choices=["present", "absent", "query"]),
            store=dict(type="dict", default={}, options=dict(
                backend=dict(type="str", default="file", choices=["file", "postgresql"]),
                path=dict(type="path", default="/var/tmp/failsafe-locks"),
                connection=dict(type="dict", options=dict(PEER_SPEC)),
            )),
            ttl=dict(type="int", default=3600),
            break_lock=dict(type="bool", default=False),
            owner=dict(type="dict", default={}),
        ),
        required_one_of=[("name", "names")],
        mutually_exclusive=[("name", "names")],
        supports_check_mode=True,
    )
    params = module.params
    if params["ttl"] <= 0:
        module.fail_json(msg="ttl must be a positive number of seconds, got %d" % params["ttl"])
    names = params["names"] if params["names"] is not None else [params["name"]]
    if not names or not all(names) or len(set(names)) != len(names):
        module.fail_json(msg="names must list distinct, non-empty lock names, got %r" % (names,))
    label = ", ".join(names)
    owner = owner_of(params)
    token = run_token(owner["machine_id"], owner["pid"], owner["pid_start"])
    result = dict(changed=False, locked=False, acquired=False, released=False, holder=None)
    conn = None
    try:
        store, conn = open_store(module, params["store"])
        result["store"] = store.describe()
        if params["names"] is None:
            result.update(one_lock(module, store, names[0], owner, token, []))
        else:
            taken_here, locks = [], {}
            # Released in the reverse order of taking.
            order = names if params["state"] != "absent" else list(reversed(names))
            for name in order:
                locks[name] = one_lock(module, store, name, owner, token, taken_here)
            result.update(
                locks=locks,
                changed=any(r["changed"] for r in locks.values()),
                locked=all(r["locked"] for r in locks.values()),
                acquired=any(r["acquired"] for r in locks.values()),
                released=any(r["released"] for r in locks.values()))
            if module._diff and params["state"] != "query":
                result["diff"] = dict(before=dict((n, r["diff"]["before"]) for n, r in locks.items()),
                                      after=dict((n, r["diff"]["after"]) for n, r in locks.items()))
        module.exit_json(**result)
    except LockRefused as exc:
        result["holder"] = exc.holder
        module.fail_json(msg=str(exc), **result)
    except (LockError, PostgresError) as exc:
        module.fail_json(msg="run lock %s: %s" % (label, exc), **result)
    except Exception as exc:  # a store error must never look like a traceback to the operator
        module.fail_json(msg="run lock %s: the store failed: %s: %s"
                         % (label, exc.__class__.__name__, str(exc).strip()), **result)
    finally:
        if conn is not None:
            conn.close()


def lock_diff(result, before_record):
    after = None if result["released"] else result["holder"]
    return dict(before=dict(holder=(before_record or {}).get("token")),
                after=dict(holder=(after or {}).get("token")))


if __name__ == "__main__":
    main()
