# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis side of the backups, over a plain socket (RESP), without a client library.

- `Resp`: AUTH, INFO, CONFIG GET, DBSIZE, PING, SHUTDOWN NOSAVE: the few commands needed.
- `rdb_stream`: the server's RDB snapshot as a replica receives it (PSYNC ? -1 ->
  +FULLRESYNC <replid> <offset> -> $<length> -> the RDB), which gives the exact replication
  offset the snapshot corresponds to, with no file on the server to fetch (what
  `redis-cli --rdb` does, streamed).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import ssl

REDIS_SPEC = dict(
    host=dict(type="str", required=True),
    port=dict(type="int", default=6379),
    username=dict(type="str"),
    password=dict(type="str", no_log=True),
    tls=dict(type="bool", default=False),
    ca_cert=dict(type="path"),
    connect_timeout=dict(type="float", default=5),
)


class RedisError(Exception):
    """A failure phrased for the operator."""


def describe(server):
    return "%s:%s" % (server["host"], server["port"])


class Resp(object):
    """One connection speaking RESP2."""

    def __init__(self, server, timeout=None):
        self.server = server
        try:
            sock = socket.create_connection((server["host"], server["port"]),
                                            timeout=server.get("connect_timeout") or 5)
        except OSError as exc:
            raise RedisError("cannot reach Redis at %s: %s" % (describe(server), exc))
        if server.get("tls"):
            context = ssl.create_default_context(cafile=server.get("ca_cert"))
            sock = context.wrap_socket(sock, server_hostname=server["host"])
        sock.settimeout(timeout or 60)
        self.sock = sock
        self.buffer = b""
        if server.get("password"):
            args = ["AUTH"] + ([server["username"]] if server.get("username") else []) \
                + [server["password"]]
            try:
                self.command(*args)
            except RedisError as exc:
                self.close()
                raise RedisError("Redis at %s refused the credentials (%s): check the user and "
                                 "password (the password was not shown)"
                                 % (describe(server), str(exc).rsplit(":", maxsplit=1)[-1].strip()))

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self.sock.sendall(b"".join(parts))

    def _fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise RedisError("Redis at %s closed the connection" % describe(self.server))
        self.buffer += data

    def line(self):
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def exactly(self, size):
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "replace")
        if kind == b"-":
            raise RedisError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            data = self.exactly(size + 2)[:-2]
            return data.decode("utf-8", "replace")
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.reply() for _number in range(count)]
        raise RedisError("unexpected reply from Redis at %s: %r" % (describe(self.server), line[:80]))

    def command(self, *args):
        self.send(*args)
        return self.reply()

    def info(self, section=None):
        text = self.command(*(["INFO"] + ([section] if section else [])))
        info = {}
        for line in text.splitlines():
            if ":" in line and not line.startswith("#"):
                key, value = line.split(":", 1)
                info[key] = value
        return info

    def config_get(self, name):
        reply = self.command("CONFIG", "GET", name)
        return reply[1] if reply and len(reply) == 2 else None


def keyspace(info):
    """{'db0': keys, ...} from INFO keyspace."""
    counts = {}
    for key, value in info.items():
        if key.startswith("db") and key[2:].isdigit():
            fields = dict(item.split("=") for item in value.split(","))
            counts[key] = int(fields.get("keys", 0))
    return counts


class RdbStream(object):
    """The RDB of a full resynchronisation, read in chunks; .offset and .replid once started."""

    def __init__(self, server, timeout=600):
        self.conn = Resp(server, timeout=timeout)
        self.conn.command("REPLCONF", "listening-port", "0")
        self.conn.send("PSYNC", "?", "-1")
        reply = self.conn.line()
        while reply == b"":  # keep-alive newlines while the server prepares the snapshot
            reply = self.conn.line()
        text = reply.decode("utf-8", "replace")
        if not text.startswith("+FULLRESYNC"):
            self.conn.close()
            raise RedisError("Redis at %s did not start a full resync: %s" % (describe(server), text))
        _word, self.replid, offset = text.split()
        self.offset = int(offset)
        header = self.conn.line()
        while header == b"":
            header = self.conn.line()
        if not header.startswith(b"$") or header.startswith(b"$EOF:"):
            self.conn.close()
            raise RedisError("unexpected RDB transfer header from %s: %r"
                             % (describe(server), header[:60]))
        self.remaining = int(header[1:])
        self.size = self.remaining
        self.first = True

    def read(self, size=1 << 20):
        if self.remaining <= 0:
            return b""
        if self.conn.buffer:
            data = self.conn.buffer[:min(size, self.remaining)]
            self.conn.buffer = self.conn.buffer[len(data):]
        else:
            data = self.conn.sock.recv(min(size, self.remaining))
            if not data:
                raise RedisError("Redis closed the connection %d bytes before the end of the RDB"
                                 % self.remaining)
        self.remaining -= len(data)
        if self.first:
            self.first = False
            if not data.startswith(b"REDIS"):
                raise RedisError("the snapshot from Redis does not start like an RDB file")
        return data

    def close(self):
        self.conn.close()


def compress_upload(store, s3, key, metadata, stream, part_size, workers, level=1, threads=2):
    """stream.read() chunks -> zstd -> S3 multipart (SHA-256 of the compressed bytes).

    A feeder thread writes the chunks into zstd; a failure on either side aborts the upload.
    Returns the UploadResult.
    """
    import subprocess
    import threading

    from ansible_collections.failsafe.datastores.plugins.module_utils import _s3
    from ansible_collections.failsafe.datastores.plugins.module_utils._backup_pg import find_tool

    proc = subprocess.Popen([find_tool("zstd"), "-q", "-c", "-%d" % level, "-T%d" % threads],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    errors = []

    def feed():
        try:
            while True:
                data = stream.read()
                if not data:
                    break
                proc.stdin.write(data)
        except BaseException as exc:  # reported by before_complete
            errors.append(exc)
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    feeder = threading.Thread(target=feed)
    feeder.daemon = True
    feeder.start()

    def producer_done():
        feeder.join()
        code = proc.wait(timeout=600)
        if errors:
            raise errors[0]
        if code != 0:
            raise RedisError("zstd exited with %s: %s" % (
                code, proc.stderr.read().decode("utf-8", "replace")[-500:]))

    try:
        return _s3.upload_stream(store, s3, key, proc.stdout, metadata, part_size=part_size,
                                 workers=workers, before_complete=producer_done)
    except BaseException:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        raise
    finally:
        proc.stdout.close()
        proc.stderr.close()
