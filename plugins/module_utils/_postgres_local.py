# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The local PostgreSQL instance on the module's host: its files and programs.

pg_ctl or systemd to stop and start it, pg_controldata to read it while it is stopped, the
single-user mode to finish crash recovery without network, pg_rewind (dry run and real),
pg_waldump over the WAL a rewind would discard, and pg_basebackup. Programs run as the owner
of the data directory, through runuser when the module runs as root (PostgreSQL refuses root).
Commands are argv lists, never a shell.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import pwd
import re
import shutil

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    PostgresError,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import (
    lsn_to_int,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_files import (
    update_auto_conf,
)

CLEAN_STATES = ("shut down", "shut down in recovery")
_WAL_SEGMENT = re.compile(r"^[0-9A-F]{24}$")


def timestamp():
    """A name suffix for what we move or keep (sorts by time)."""
    return datetime.datetime.now().strftime("%Y%m%dT%H%M%S")


# Program outputs ---------------------------------------------------------------------------------

def parse_controldata(text):
    """pg_controldata's 'Name: value' lines as a dict."""
    fields = {}
    for line in (text or "").splitlines():
        name, sep, value = line.partition(":")
        if sep:
            fields[name.strip()] = value.strip()
    return fields


_DIVERGED = re.compile(r"servers diverged at WAL location ([0-9A-F]+/[0-9A-F]+) on timeline (\d+)")


def parse_rewind_output(text):
    """What pg_rewind said: dict(needed, diverged_at, diverged_timeline); needed is None when
    it said neither 'no rewind required' nor where the servers diverged (it failed)."""
    match = _DIVERGED.search(text or "")
    if "no rewind required" in (text or ""):
        needed = False
    else:
        needed = True if match else None
    return dict(needed=needed, diverged_at=match.group(1) if match else None,
                diverged_timeline=int(match.group(2)) if match else None)


_STATS_RANGE = re.compile(r"WAL statistics between ([0-9A-F]+/[0-9A-F]+) and ([0-9A-F]+/[0-9A-F]+)")
_STATS_ROW = re.compile(r"^(Transaction/[A-Z_]+)\s+(\d+)\s", re.MULTILINE)


def parse_waldump_stats(text):
    """pg_waldump --stats=record: dict(start_lsn, end_lsn, committed, aborted), or None."""
    match = _STATS_RANGE.search(text or "")
    if not match:
        return None
    counts = dict((name, int(count)) for name, count in _STATS_ROW.findall(text))
    return dict(start_lsn=match.group(1), end_lsn=match.group(2),
                committed=counts.get("Transaction/COMMIT", 0)
                + counts.get("Transaction/COMMIT_PREPARED", 0),
                aborted=counts.get("Transaction/ABORT", 0)
                + counts.get("Transaction/ABORT_PREPARED", 0))


def segment_number(name, segment_size):
    """The position of a WAL segment file (any timeline) in the WAL."""
    per_id = 0x100000000 // segment_size
    return int(name[8:16], 16) * per_id + int(name[16:24], 16)


def segments_from(names, lsn, segment_size):
    """The WAL segment files holding `lsn` or later, and every timeline history file."""
    first = lsn_to_int(lsn) // segment_size
    kept = [n for n in names if _WAL_SEGMENT.match(n) and segment_number(n, segment_size) >= first]
    kept += [n for n in names if n.endswith(".history")]
    return sorted(kept)


# The instance -------------------------------------------------------------------------------------

class LocalInstance:
    """The node's files and programs on this host."""

    def __init__(self, module, data_dir, config_dir=None, bin_dir=None, service_name=None,
                 log_file=None, os_user=None, version=None):
        self.module = module
        self.data_dir = data_dir.rstrip("/")
        self.config_dir = config_dir or self.data_dir
        self.service_name = service_name
        self.log_file = log_file
        self.version = self._read_version() or version
        self.bin_dir = bin_dir or "/usr/lib/postgresql/%s/bin" % self.version
        if not os.path.isfile(os.path.join(self.bin_dir, "pg_ctl")):
            raise PostgresError("no pg_ctl in %s: set bin_dir" % self.bin_dir)
        owned = self.data_dir if os.path.exists(self.data_dir) else os.path.dirname(self.data_dir)
        self.os_user = os_user or pwd.getpwuid(os.stat(owned).st_uid).pw_name
        self.as_other_user = os.geteuid() != pwd.getpwnam(self.os_user).pw_uid
        if self.as_other_user and os.geteuid() != 0:
            raise PostgresError("%s belongs to %s: run the task as that user or as root "
                                "(become: true)" % (self.data_dir, self.os_user))

    def _read_version(self):
        try:
            with open(os.path.join(self.data_dir, "PG_VERSION")) as handle:
                return handle.read().strip()
        except (IOError, OSError):
            return None

    def present(self):
        """Whether the data directory holds a cluster."""
        return os.path.isfile(os.path.join(self.data_dir, "PG_VERSION"))

    # Programs
    def argv(self, program, *args):
        argv = [os.path.join(self.bin_dir, program)] + list(args)
        if self.as_other_user:
            argv = ["runuser", "-u", self.os_user, "--"] + argv
        return argv

    def run_program(self, argv, env=None, check=True, data=None):
        rc, out, err = self.module.run_command(argv, environ_update=env or {}, cwd="/",
                                               data=data)
        if check and rc != 0:
            program = argv[argv.index("--") + 1] if "--" in argv else argv[0]
            raise PostgresError("%s failed (exit %d): %s" % (
                os.path.basename(program), rc, (err or out).strip()[-2000:]))
        return rc, out, err

    # Life cycle
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
        if self.service_name:
            self.run_program(["systemctl", "stop", self.service_name])
        elif self.running():
            self.run_program(self.argv("pg_ctl", "-D", self.config_dir, "-m", "fast", "-w",
                                       "-t", "60", "stop"))

    def start(self):
        if self.service_name:
            self.run_program(["systemctl", "start", self.service_name])
            return
        self.run_program(self.argv("pg_ctl", "-D", self.config_dir, "-w", "-t", "60",
                                   "-l", self.log_file or os.devnull, "start"))

    # State of a stopped instance
    def control_data(self):
        dummy, out, dummy_err = self.run_program(self.argv("pg_controldata", "-D", self.data_dir))
        return parse_controldata(out)

    def ensure_clean_shutdown(self):
        """Finish crash recovery in single-user mode (no network) before pg_rewind.

        pg_rewind would do it itself, but it cannot find a configuration kept outside the data
        directory; starting the node normally would let clients write to it.
        """
        if self.control_data().get("Database cluster state") in CLEAN_STATES:
            return False
        args = ["--single", "-F", "-D", self.data_dir]
        if self.config_dir != self.data_dir:
            args += ["-c", "config_file=%s" % os.path.join(self.config_dir, "postgresql.conf")]
        rc, out, err = self.run_program(self.argv("postgres", *(args + ["template1"])),
                                        data="", check=False)
        if rc != 0:
            raise PostgresError("crash recovery of %s in single-user mode failed (exit %d): %s"
                                % (self.data_dir, rc, (err or out).strip()[-2000:]))
        return True

    # Rewind
    def rewind(self, source_conninfo, env, dry_run=False):
        """pg_rewind from the source server; dict(rc, output, needed, diverged_at, ...)."""
        args = ["--target-pgdata", self.data_dir, "--source-server", source_conninfo]
        args.append("--dry-run" if dry_run else "--progress")
        rc, out, err = self.run_program(self.argv("pg_rewind", *args), env=env, check=False)
        text = (out + err).strip()
        outcome = parse_rewind_output(text)
        outcome.update(rc=rc, output=text.splitlines()[-5:])
        return outcome

    def keep_wal(self, from_lsn, segment_size):
        """Copy the WAL segments from `from_lsn` on (and the history files) next to the data
        directory, in DATA_DIR.failsafe-discarded-wal-TIMESTAMP (never deleted by us)."""
        wal_dir = os.path.join(self.data_dir, "pg_wal")
        names = segments_from(os.listdir(wal_dir), from_lsn, segment_size)
        keep = "%s.failsafe-discarded-wal-%s" % (self.data_dir, timestamp())
        os.mkdir(keep, 0o700)
        self.chown(keep)
        for name in names:
            target = os.path.join(keep, name)
            shutil.copy2(os.path.join(wal_dir, name), target)
            self.chown(target)
        return keep, names

    def waldump_stats(self, wal_dir, tli, start_lsn):
        """Record statistics of the WAL in `wal_dir` from `start_lsn` on, or None.

        pg_waldump ends with an error at the end of the WAL (exit 1): its statistics are
        printed all the same.
        """
        dummy, out, err = self.run_program(
            self.argv("pg_waldump", "--path=%s" % wal_dir, "--timeline=%d" % tli,
                      "--start=%s" % start_lsn, "--stats=record"), check=False)
        return parse_waldump_stats(out + err)

    # Clone
    def move_aside(self):
        """Rename the data directory to DATA_DIR.failsafe-TIMESTAMP (never deleted) and make a
        new empty one; returns the new name of the old one (None: it was empty, kept)."""
        if not os.listdir(self.data_dir):
            return None
        aside = "%s.failsafe-%s" % (self.data_dir, timestamp())
        os.rename(self.data_dir, aside)
        os.mkdir(self.data_dir, 0o700)
        self.chown(self.data_dir)
        return aside

    def basebackup(self, source_conninfo, env):
        self.run_program(self.argv("pg_basebackup", "-D", self.data_dir, "-d", source_conninfo,
                                   "-X", "stream", "-c", "fast", "--no-password"), env=env)
        self.version = self._read_version()

    # Standby configuration
    def make_standby(self, primary_conninfo, slot_name):
        """Write primary_conninfo, primary_slot_name and standby.signal; drop a fence and a
        synchronous_standby_names inherited from an old primary or copied from the new one by
        pg_rewind / pg_basebackup (neither must follow the node into a later promotion: the
        names could block every commit of a primary whose standby does not stream yet)."""
        path = os.path.join(self.data_dir, "postgresql.auto.conf")
        settings = dict(primary_conninfo=primary_conninfo, primary_slot_name=slot_name or "")
        update_auto_conf(path, settings, remove=["default_transaction_read_only",
                                                 "synchronous_standby_names"])
        self.chown(path)
        signal = os.path.join(self.data_dir, "standby.signal")
        with open(signal, "w"):
            pass
        self.chown(signal)

    def chown(self, path):
        if self.as_other_user:
            entry = pwd.getpwnam(self.os_user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
