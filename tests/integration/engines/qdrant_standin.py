"""A protocol-level stand-in of Qdrant's snapshot API (no Qdrant server can run here).

NOT a Qdrant: a scripted HTTP server on loopback that implements the few endpoints the backup
modules use, as Qdrant documents them, and checks every request: the `api-key` header, the
methods and paths, `wait=true`, and on recovery the multipart body, the `priority` and the
`checksum` (SHA-256 of the uploaded file: a mismatch is refused with HTTP 400, as Qdrant does).
Every request is recorded for the tests' assertions.

qdrant_standin (function)
    A `QdrantStandIn`: .url, .api_key, .collections {name: bytes of its "data"},
    .snapshots {name: bytes}, .requests [(method, path, query)], .server() (the modules'
    `server` option), .points(name).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

SNAPSHOT_PATH = re.compile(r"^/collections/([^/]+)/snapshots(?:/([^/]+))?$")
UPLOAD_PATH = re.compile(r"^/collections/([^/]+)/snapshots/upload$")
COLLECTION_PATH = re.compile(r"^/collections/([^/]+)$")
# A snapshot of this stand-in: a header, the collection's name and its points, random bytes.
MAGIC = b"FAILSAFE-QDRANT-STANDIN\n"


class QdrantStandIn:
    def __init__(self) -> None:
        self.api_key = "standin-api-key"
        self.collections: dict[str, int] = {}
        self.snapshots: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.errors: list[str] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, result=None, body=None, content_type="application/json"):
                data = body if body is not None else json.dumps(
                    {"result": result, "status": "ok" if status < 300 else "error",
                     "time": 0.001}).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self, method):
                parts = urlsplit(self.path)
                path, query = unquote(parts.path), parse_qs(parts.query)
                standin.requests.append((method, path, query))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.headers.get("api-key") != standin.api_key:
                    return self.reply(401, body=b'{"status": {"error": "Invalid api-key"}}')
                match = UPLOAD_PATH.match(path)
                if match and method == "POST":
                    return self.upload(match.group(1), query, body)
                match = SNAPSHOT_PATH.match(path)
                if match:
                    return self.snapshot(method, match.group(1), match.group(2), query)
                match = COLLECTION_PATH.match(path)
                if match and method == "GET":
                    name = match.group(1)
                    if name not in standin.collections:
                        return self.reply(404, body=b'{"status": {"error": "Not found"}}')
                    return self.reply(200, {"status": "green",
                                            "points_count": standin.collections[name]})
                standin.errors.append(f"unexpected {method} {path}")
                return self.reply(404)

            def snapshot(self, method, collection, name, query):
                if collection not in standin.collections:
                    return self.reply(404, body=b'{"status": {"error": "Not found"}}')
                if method == "POST" and name is None:
                    if query.get("wait") != ["true"]:
                        standin.errors.append("snapshot creation without wait=true")
                    data = (MAGIC + json.dumps({"collection": collection,
                                                "points": standin.collections[collection]})
                            .encode() + b"\n" + os.urandom(3 * 1024 * 1024 + 12345))
                    snap = f"{collection}-{len(standin.snapshots)}.snapshot"
                    standin.snapshots[snap] = data
                    return self.reply(200, {"name": snap, "creation_time": "2025-01-30T02:00:00",
                                            "size": len(data),
                                            "checksum": hashlib.sha256(data).hexdigest()})
                if method == "GET" and name in standin.snapshots:
                    return self.reply(200, body=standin.snapshots[name],
                                      content_type="application/octet-stream")
                if method == "DELETE" and name in standin.snapshots:
                    del standin.snapshots[name]
                    return self.reply(200, True)
                standin.errors.append(f"unexpected {method} snapshot {name}")
                return self.reply(404)

            def upload(self, collection, query, body):
                boundary = re.search(r"boundary=(\S+)", self.headers.get("Content-Type", ""))
                if not boundary:
                    return self.reply(400, body=b'{"status": {"error": "not multipart"}}')
                marker = b"--" + boundary.group(1).encode()
                sections = body.split(marker)
                part = next((p for p in sections if b'name="snapshot"' in p), None)
                if part is None or not body.rstrip().endswith(marker + b"--"):
                    return self.reply(400, body=b'{"status": {"error": "no snapshot part"}}')
                data = part.split(b"\r\n\r\n", 1)[1][:-2]
                if query.get("checksum") != [hashlib.sha256(data).hexdigest()]:
                    return self.reply(400, body=b'{"status": {"error": "Checksum mismatch"}}')
                if query.get("priority") not in (["snapshot"], ["replica"], ["no_sync"]):
                    standin.errors.append(f"recovery without a valid priority: {query}")
                if not data.startswith(MAGIC):
                    return self.reply(400, body=b'{"status": {"error": "not a snapshot"}}')
                header = json.loads(data[len(MAGIC):].split(b"\n", 1)[0])
                standin.collections[collection] = header["points"]
                return self.reply(200, True)

            def do_GET(self):
                self.handle_any("GET")

            def do_POST(self):
                self.handle_any("POST")

            def do_DELETE(self):
                self.handle_any("DELETE")

            def do_PUT(self):
                self.handle_any("PUT")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def server(self, **overrides) -> dict:
        return dict(dict(url=self.url, api_key=self.api_key, timeout=30), **overrides)

    def points(self, name):
        return self.collections.get(name)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def qdrant_standin():
    standin = QdrantStandIn()
    yield standin
    standin.stop()
    assert not standin.errors, standin.errors
