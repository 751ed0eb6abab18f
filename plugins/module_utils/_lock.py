# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run lock: one state-changing run per datastore scope at a time, for every engine.

A lock is a named record (`postgresql`, `redis`, `regional`) in a store that every controller
can reach: a table in a PostgreSQL database (several controllers, e.g. AWX nodes) or a
directory (one controller, or a shared mount). The holder is one ansible-playbook process,
identified by a token `<controller>:<pid>:<pid start time>`; the same run may take a lock it
already holds (nested roles) without releasing it early.

A run that died does not block the next one forever: a lock expires (`expires_at`), a lock
whose holder ran on this controller and whose process is gone is taken over at once, and
any lock can be broken explicitly (`break_lock`), which the refusal message names.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import fcntl
import json
import os
import re
import socket
import tempfile


class LockError(Exception):
    """The store could not be used; the message says what to fix."""


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def iso(value):
    return value.isoformat() if value is not None else None


def parse_iso(text):
    return datetime.datetime.fromisoformat(text) if text else None


def process_start(pid):
    """Start time of a process in clock ticks since boot (tells a reused pid apart), or None."""
    try:
        with open("/proc/%d/stat" % int(pid)) as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (IOError, OSError, ValueError, IndexError):
        return None


def run_token(machine, pid, start):
    return "%s:%s:%s" % (machine, pid, start)


def machine_id():
    """This machine's identity: /etc/machine-id where there is one (host names are often just
    'localhost' in containers), else the host name."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            with open(path) as handle:
                value = handle.read().strip()
            if value:
                return value
        except (IOError, OSError):
            continue
    return socket.gethostname()


def holder_is_dead(holder, machine=None):
    """True when the holder ran on this machine and its process no longer runs."""
    machine = machine or machine_id()
    if not holder or holder.get("machine_id") != machine or not holder.get("pid"):
        return False
    start = process_start(holder["pid"])
    return start is None or (holder.get("pid_start") is not None and start != holder["pid_start"])


def expired(holder, now=None):
    expires = parse_iso(holder.get("expires_at")) if holder else None
    return expires is not None and expires <= (now or utcnow())


def describe_holder(holder):
    """One sentence: who holds it (controller, user, playbook) and since when."""
    return ("held by %s@%s (pid %s, playbook %s) since %s, until %s" % (
        holder.get("user") or "?", holder.get("controller") or "?", holder.get("pid") or "?",
        holder.get("playbook") or "?", holder.get("acquired_at") or "?",
        holder.get("expires_at") or "?"))


def decide(current, token, now, break_lock, machine=None):
    """What acquiring does, given the current holder: (verdict, reason).

    verdict: 'free' (take it), 'ours' (this run holds it already), 'take_over' (take it from a
    holder that expired, died, or is broken explicitly) or 'held' (refuse).
    """
    if not current:
        return "free", None
    if current.get("token") == token:
        return "ours", None
    if expired(current, now):
        return "take_over", "expired at %s" % current.get("expires_at")
    if holder_is_dead(current, machine):
        return "take_over", "its run (pid %s on %s) no longer runs" % (
            current.get("pid"), current.get("controller"))
    if break_lock:
        return "take_over", "broken on request (break_lock)"
    return "held", None


def new_record(name, token, owner, ttl, now):
    record = dict(owner)
    record.update(name=name, token=token, acquired_at=iso(now),
                  expires_at=iso(now + datetime.timedelta(seconds=ttl)))
    return record


# Stores ---------------------------------------------------------------------------------------

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


class FileStore(object):
    """Lock records as JSON files in a directory; a flock'd mutex makes each decision atomic."""

    kind = "file"

    def __init__(self, directory):
        self.directory = directory

    def describe(self):
        return "directory %s" % self.directory

    def _path(self, name):
        return os.path.join(self.directory, _SAFE_NAME.sub("_", name) + ".lock")

    def _prepare(self):
        try:
            os.makedirs(self.directory, mode=0o755)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise LockError("cannot create the lock directory %s: %s" % (self.directory, exc))
        if not os.access(self.directory, os.W_OK):
            raise LockError("the lock directory %s is not writable by this user" % self.directory)

    def read(self, name):
        try:
            with open(self._path(name)) as handle:
                return json.load(handle)
        except (IOError, OSError) as exc:
            if exc.errno == errno.ENOENT:
                return None
            raise LockError("cannot read %s: %s" % (self._path(name), exc))
        except ValueError:
            # A torn file from a killed writer: nobody can hold a lock through it.
            return None

    def transaction(self, name, decide_write):
        """Run decide_write(current) -> (record or None to delete, result) under the mutex."""
        self._prepare()
        mutex = os.path.join(self.directory, ".mutex")
        with open(mutex, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                record, result = decide_write(self.read(name))
                if record is False:
                    return result
                path = self._path(name)
                if record is None:
                    if os.path.exists(path):
                        os.unlink(path)
                    return result
                fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".lock-")
                with os.fdopen(fd, "w") as out:
                    json.dump(record, out, sort_keys=True)
                os.chmod(tmp, 0o644)
                os.rename(tmp, path)
                return result
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class PostgresStore(object):
    """Lock records in a table of a PostgreSQL database; SELECT ... FOR UPDATE makes each
    decision atomic across controllers. `conn` is an open psycopg connection (autocommit)."""

    kind = "postgresql"
    TABLE = "failsafe_run_locks"

    def __init__(self, conn, address):
        self.conn = conn
        self.address = address

    def describe(self):
        return "table %s at %s" % (self.TABLE, self.address)

    def table_exists(self):
        row = self.conn.execute("SELECT to_regclass(%s) IS NOT NULL AS present",
                                (self.TABLE,)).fetchone()
        return bool(_first(row))

    def _prepare(self):
        self.conn.execute(
            "CREATE TABLE IF NOT EXISTS %s (name text PRIMARY KEY, record jsonb NOT NULL)"
            % self.TABLE)

    def read(self, name):
        if not self.table_exists():
            return None
        row = self.conn.execute("SELECT record FROM %s WHERE name = %%s" % self.TABLE,
                                (name,)).fetchone()
        value = _first(row)
        return json.loads(value) if isinstance(value, str) else value

    def transaction(self, name, decide_write):
        self._prepare()
        with self.conn.transaction():
            # Serialise deciders, also for a name that has no row yet.
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ("failsafe:" + name,))
            current = self.read(name)
            record, result = decide_write(current)
            if record is False:
                return result
            if record is None:
                self.conn.execute("DELETE FROM %s WHERE name = %%s" % self.TABLE, (name,))
            else:
                self.conn.execute(
                    "INSERT INTO %s (name, record) VALUES (%%s, %%s::jsonb) ON CONFLICT (name)"
                    " DO UPDATE SET record = EXCLUDED.record" % self.TABLE,
                    (name, json.dumps(record, sort_keys=True)))
            return result


def _first(row):
    if row is None:
        return None
    if isinstance(row, dict):
        return list(row.values())[0]
    return row[0]


# Operations -----------------------------------------------------------------------------------

def acquire(store, name, token, owner, ttl, break_lock=False, check_mode=False, now=None):
    """Take the lock or say who holds it. Returns a dict for the module result:
    acquired (this call took it), held_by_this_run, previous (the record taken over or refused),
    reason, record."""
    now = now or utcnow()

    def decide_write(current):
        verdict, reason = decide(current, token, now, break_lock)
        result = dict(verdict=verdict, reason=reason, previous=current, record=current)
        if verdict == "held" or check_mode:
            return False, result
        record = new_record(name, token, owner, ttl, now)
        if verdict == "ours":
            # Keep the first acquisition time; extend the expiry.
            record["acquired_at"] = current.get("acquired_at") or record["acquired_at"]
        result["record"] = record
        return record, result

    if check_mode:
        return decide_write(store.read(name))[1]
    return store.transaction(name, decide_write)


def release(store, name, token, break_lock=False, check_mode=False):
    """Release the lock if this run holds it (or any holder with break_lock).
    Returns dict(verdict=released|not_held|held_by_other, record)."""

    def decide_write(current):
        if not current:
            return False, dict(verdict="not_held", record=None)
        if current.get("token") != token and not break_lock:
            return False, dict(verdict="held_by_other", record=current)
        if check_mode:
            return False, dict(verdict="released", record=current)
        return None, dict(verdict="released", record=current)

    if check_mode:
        return decide_write(store.read(name))[1]
    return store.transaction(name, decide_write)
