# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL side of the backups: client binaries, libpq environment, process pipelines
(pg_dump -> zstd -> upload, download -> zstd -d -> file), the backup_history table.

Commands are argv lists, never a shell; passwords go through the environment (PGPASSWORD),
never the command line.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import glob
import os
import shutil
import subprocess
import tempfile

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    connect,
    PostgresError,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._backup import (
    HISTORY_DDL,
    HISTORY_UPSERT,
    history_row,
)


class PipelineError(Exception):
    """A command of a pipeline failed; the message names it and quotes its stderr."""


def find_bin(name, bin_dir=None):
    """A PostgreSQL client binary: from bin_dir, the newest /usr/lib/postgresql/*/bin, or PATH."""
    if bin_dir:
        path = os.path.join(bin_dir, name)
        if os.access(path, os.X_OK):
            return path
        raise PipelineError("%s not found in bin_dir %s" % (name, bin_dir))
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/%s" % name),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if candidates:
        return candidates[-1]
    found = shutil.which(name)
    if found:
        return found
    raise PipelineError("%s not found: install the PostgreSQL client (postgresql-client-15 or "
                        "newer) or set bin_dir" % name)


def find_tool(name):
    found = shutil.which(name)
    if not found:
        raise PipelineError("%s not found on PATH: install it (Debian package %s)" % (name, name))
    return found


def libpq_env(peer, dbname=None, inherit=True):
    """Environment for libpq tools: where and how to connect, the password included."""
    env = dict(os.environ) if inherit else {}
    env.update(PGHOST=peer["host"], PGPORT=str(peer["port"]), PGUSER=peer["user"],
               PGDATABASE=dbname or peer.get("db") or "postgres",
               PGCONNECT_TIMEOUT=str(peer.get("connect_timeout") or 5),
               PGSSLMODE=peer.get("ssl_mode") or "prefer", PGAPPNAME="failsafe.backup")
    if peer.get("password") is not None:
        env["PGPASSWORD"] = peer["password"]
    if peer.get("ca_cert"):
        env["PGSSLROOTCERT"] = peer["ca_cert"]
    return env


# Linux: a pipe of 1 MiB instead of 64 KiB, so that the stages of a pipeline wake each other up
# sixteen times less often.
F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20


def widen(pipe):
    try:
        fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
    except (OSError, ValueError):  # not Linux, or above /proc/sys/fs/pipe-max-size
        pass


class Pipeline(object):
    """Processes chained stdout -> stdin; stderr of each goes to a temporary file.

    `stdin` of the first may be subprocess.PIPE (the caller writes) and `stdout` of the last may
    be subprocess.PIPE (the caller reads) or a file.
    """

    def __init__(self, commands, env=None, stdin=None, stdout=subprocess.PIPE):
        self.commands = commands
        self.procs = []
        self.errs = []
        previous = stdin
        for number, argv in enumerate(commands):
            err = tempfile.TemporaryFile()
            last = number == len(commands) - 1
            proc = subprocess.Popen(argv, stdin=previous, stdout=stdout if last else subprocess.PIPE,
                                    stderr=err, env=env, close_fds=True)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    widen(pipe)
            if number > 0 and self.procs[-1].stdout is not None:
                self.procs[-1].stdout.close()  # only the next process holds the pipe
            self.procs.append(proc)
            self.errs.append(err)
            previous = proc.stdout
        self.stdin = self.procs[0].stdin
        self.stdout = self.procs[-1].stdout

    def stderr(self, number, limit=2000):
        err = self.errs[number]
        err.seek(0)
        return err.read().decode("utf-8", "replace").strip()[-limit:]

    def wait(self, timeout=None):
        """Wait for every process; raise PipelineError naming the first that failed."""
        codes = [proc.wait(timeout=timeout) for proc in self.procs]
        self.check(codes)
        return codes

    def check(self, codes):
        for number, code in enumerate(codes):
            if code != 0:
                name = os.path.basename(self.commands[number][0])
                message = self.stderr(number) or "(no message)"
                raise PipelineError("%s exited with %s: %s" % (name, code, message))

    def kill(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def close(self):
        for err in self.errs:
            err.close()


def pipeline_upload(store, s3, key, metadata, commands, env, part_size, workers, tee_path=None):
    """Run commands as a pipeline and upload its output by multipart, SHA-256 in-process.

    The producers' exit status is checked before the upload is completed: a failed command
    aborts the upload. Returns (UploadResult, [stderr of each command]).
    """
    from ansible_collections.failsafe.datastores.plugins.module_utils import _s3

    pipeline = Pipeline(commands, env=env)
    tee = open(tee_path, "wb") if tee_path else None
    try:
        def producers_done():
            pipeline.wait(timeout=3600)

        upload = _s3.upload_stream(store, s3, key, pipeline.stdout, metadata,
                                   part_size=part_size, workers=workers,
                                   before_complete=producers_done, tee=tee)
        return upload, [pipeline.stderr(n) for n in range(len(commands))]
    except BaseException:
        pipeline.kill()
        failed = [n for n, proc in enumerate(pipeline.procs)
                  if proc.returncode not in (0, None, -9) and "Broken pipe" not in pipeline.stderr(n)]
        if failed:
            name = os.path.basename(commands[failed[0]][0])
            raise PipelineError("%s exited with %s: %s" % (
                name, pipeline.procs[failed[0]].returncode, pipeline.stderr(failed[0])))
        raise
    finally:
        if tee is not None:
            tee.close()
        if pipeline.stdout is not None:
            pipeline.stdout.close()
        pipeline.close()


def download_decompressed(store, s3, key, path):
    """Stream an object through `zstd -d` into `path`, hashing the compressed bytes.

    Returns (sha256 hex, bytes read, zstd exit code, zstd stderr).
    """
    from ansible_collections.failsafe.datastores.plugins.module_utils import _s3

    zstd = find_tool("zstd")
    with open(path, "wb") as out:
        proc = subprocess.Popen([zstd, "-d", "-q", "-c"], stdin=subprocess.PIPE, stdout=out,
                                stderr=subprocess.PIPE)
        try:
            digest, size = _s3.download_stream(store, s3, key, proc.stdin.write)
            proc.stdin.close()
            err = proc.stderr.read().decode("utf-8", "replace").strip()
            code = proc.wait(timeout=600)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    return digest, size, code, err


def download_into(store, s3, key, command, env=None, verify=None):
    """Stream an object through `zstd -d | command` (e.g. pg_restore reading its stdin).

    `verify(digest, size)` runs once the whole object is read, while the command may still work
    on the last bytes: it raises to refuse them, and the pipeline is killed before it finishes.
    A process that fails mid-stream does not stop the reading: the object's digest is still
    computed, so a damaged object is named as such rather than as the error it caused.
    Returns (sha256 hex, bytes read); a failed process raises PipelineError.
    """
    from ansible_collections.failsafe.datastores.plugins.module_utils import _s3

    pipeline = Pipeline([[find_tool("zstd"), "-d", "-q", "-c"], command], env=env,
                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    broken = []

    def write(data):
        if not broken:
            try:
                pipeline.stdin.write(data)
            except (IOError, OSError) as exc:  # a process stopped reading: it failed
                broken.append(exc)

    try:
        digest, size = _s3.download_stream(store, s3, key, write)
        if verify is not None:
            verify(digest, size)
        try:
            pipeline.stdin.close()
        except (IOError, OSError) as exc:
            broken.append(exc)
        codes = [proc.wait(timeout=60 if broken else 24 * 3600) for proc in pipeline.procs]
        # The last process that failed is the cause: the ones before it lost their reader
        # (zstd killed by SIGPIPE when pg_restore stopped).
        for number in reversed(range(len(codes))):
            if codes[number] != 0:
                pipeline.check([0] * number + [codes[number]])
        if broken:
            raise PipelineError("%s stopped reading its input: %s" % (
                os.path.basename(command[0]), broken[0]))
        return digest, size
    except BaseException:
        pipeline.kill()
        raise
    finally:
        pipeline.close()


def download_untar(store, s3, key, directory):
    """Stream an object through `zstd -d | tar -x -C directory`, hashing the compressed bytes.

    Returns (sha256 hex, bytes read, (zstd exit code, tar exit code), their stderr).
    """
    from ansible_collections.failsafe.datastores.plugins.module_utils import _s3

    pipeline = Pipeline([[find_tool("zstd"), "-d", "-q", "-c"],
                         [find_tool("tar"), "-x", "-C", directory]],
                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        digest, size = _s3.download_stream(store, s3, key, pipeline.stdin.write)
        pipeline.stdin.close()
        codes = tuple(proc.wait(timeout=600) for proc in pipeline.procs)
        return digest, size, codes, pipeline.stderr(0) + pipeline.stderr(1)
    except BaseException:
        pipeline.kill()
        raise
    finally:
        pipeline.close()


# backup_history ------------------------------------------------------------------------------

def table_identifier(name):
    from psycopg import sql

    parts = name.split(".")
    return sql.Identifier(*parts)


def record_history(peer, table, records, messages=None):
    """Upsert records into the history table (created if missing).

    Returns dict(recorded=n, table=..., error=None) or with error set: history is a mirror, so
    its failure is reported, never raised.
    """
    from psycopg import sql

    if not peer:
        return dict(recorded=0, table=None, error=None)
    messages = messages or {}
    try:
        conn = connect(peer, application_name="failsafe.backup")
        with conn:
            ident = table_identifier(table)
            conn.execute(sql.SQL(HISTORY_DDL).format(table=ident))
            for record in records:
                conn.execute(sql.SQL(HISTORY_UPSERT).format(table=ident),
                             history_row(record, messages.get(record.get("backup_id"))))
        return dict(recorded=len(records), table=table, error=None)
    except PostgresError as exc:
        return dict(recorded=0, table=table, error=str(exc))
    except Exception as exc:  # psycopg errors: reported, never fatal
        return dict(recorded=0, table=table, error="%s: %s" % (exc.__class__.__name__, exc))
