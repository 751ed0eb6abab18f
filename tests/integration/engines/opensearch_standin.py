"""A protocol-level stand-in of OpenSearch's snapshot REST API (no OpenSearch can run here).

NOT an OpenSearch: a scripted HTTP server on loopback implementing the endpoints the backup
modules use, as OpenSearch documents them, and checking every request: basic authentication,
`wait_for_completion=true`, `include_global_state: false` on snapshot and restore, and a
restore over an open index of the same name is refused as OpenSearch refuses it. Documents are
just counts; a snapshot copies them. Every request is recorded.

opensearch_standin (function)
    An `OpenSearchStandIn`: .url, .user, .password, .indices {name: {"docs": n, "state": ...}},
    .repositories, .snapshots {(repo, name): {...}}, .requests, .server().
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

import pytest


class OpenSearchStandIn:
    def __init__(self) -> None:
        self.user, self.password = "admin", "standin-admin-password"
        self.indices: dict[str, dict] = {}
        self.repositories: dict[str, dict] = {}
        self.snapshots: dict[tuple, dict] = {}
        self.requests: list[tuple[str, str, dict, dict]] = []
        self.errors: list[str] = []
        standin = self
        auth = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def error(self, status, kind, reason):
                self.reply(status, {"error": {"type": kind, "reason": reason}, "status": status})

            def handle_any(self, method):
                parts = urlsplit(self.path)
                path, query = unquote(parts.path), parse_qs(parts.query)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else {}
                standin.requests.append((method, path, query, body))
                if self.headers.get("Authorization") != auth:
                    return self.error(401, "security_exception", "missing authentication")
                routes = (
                    (r"^/_snapshot/([^/]+)$", self.repository),
                    (r"^/_snapshot/([^/]+)/([^/]+)/_restore$", self.restore),
                    (r"^/_snapshot/([^/]+)/([^/]+)$", self.snapshot),
                    (r"^/_cluster/state/metadata/([^/]+)$", self.state),
                    (r"^/([^/_][^/]*)/_close$", self.close),
                    (r"^/([^/_][^/]*)/_count$", self.count),
                )
                for pattern, handler in routes:
                    match = re.match(pattern, path)
                    if match:
                        return handler(method, query, body, *match.groups())
                standin.errors.append(f"unexpected {method} {path}")
                return self.error(400, "invalid", "not in the stand-in")

            def repository(self, method, query, body, repo):
                if method == "GET":
                    if repo not in standin.repositories:
                        return self.error(404, "repository_missing_exception", f"[{repo}] missing")
                    return self.reply(200, {repo: standin.repositories[repo]})
                if method == "PUT":
                    if body.get("type") != "s3" or not body.get("settings", {}).get("bucket"):
                        standin.errors.append(f"repository without s3 type or bucket: {body}")
                    standin.repositories[repo] = body
                    return self.reply(200, {"acknowledged": True})
                standin.errors.append(f"unexpected {method} repository")
                return self.error(400, "invalid", "method")

            def snapshot(self, method, query, body, repo, name):
                if repo not in standin.repositories:
                    return self.error(404, "repository_missing_exception", f"[{repo}] missing")
                if method == "PUT":
                    if query.get("wait_for_completion") != ["true"]:
                        standin.errors.append("snapshot without wait_for_completion=true")
                    if body.get("include_global_state") is not False:
                        standin.errors.append("snapshot with the global state")
                    wanted = [i for i in body.get("indices", "").split(",") if i]
                    unknown = [i for i in wanted if i not in standin.indices]
                    if unknown:
                        return self.error(404, "index_not_found_exception", f"no such index {unknown}")
                    snap = {"snapshot": name, "uuid": uuid.uuid4().hex, "state": "SUCCESS",
                            "indices": wanted, "include_global_state": False,
                            "shards": {"total": len(wanted), "failed": 0,
                                       "successful": len(wanted)},
                            "docs": {i: standin.indices[i]["docs"] for i in wanted}}
                    standin.snapshots[(repo, name)] = snap
                    return self.reply(200, {"snapshot": {k: v for k, v in snap.items()
                                                         if k != "docs"}})
                if method == "GET":
                    snap = standin.snapshots.get((repo, name))
                    if snap is None:
                        return self.error(404, "snapshot_missing_exception", f"[{repo}:{name}] missing")
                    return self.reply(200, {"snapshots": [{k: v for k, v in snap.items()
                                                           if k != "docs"}]})
                standin.errors.append(f"unexpected {method} snapshot")
                return self.error(400, "invalid", "method")

            def restore(self, method, query, body, repo, name):
                snap = standin.snapshots.get((repo, name))
                if method != "POST" or snap is None:
                    return self.error(404, "snapshot_missing_exception", f"[{repo}:{name}] missing")
                if query.get("wait_for_completion") != ["true"]:
                    standin.errors.append("restore without wait_for_completion=true")
                if body.get("include_global_state") is not False:
                    standin.errors.append("restore with the global state")
                wanted = [i for i in body.get("indices", "").split(",") if i]
                renamed = {}
                for index in wanted:
                    target = index
                    if body.get("rename_pattern"):
                        target = re.sub(body["rename_pattern"],
                                        body["rename_replacement"].replace("$1", r"\1"), index)
                    if standin.indices.get(target, {}).get("state") == "open":
                        return self.error(500, "snapshot_restore_exception",
                                          f"cannot restore index [{target}] because an open index "
                                          "with same name already exists in the cluster")
                    renamed[target] = snap["docs"][index]
                for target, docs in renamed.items():
                    standin.indices[target] = {"docs": docs, "state": "open"}
                return self.reply(200, {"snapshot": {"snapshot": name, "indices": list(renamed),
                                                     "shards": {"failed": 0}}})

            def state(self, method, query, body, index):
                if index not in standin.indices:
                    return self.error(404, "index_not_found_exception", f"no such index [{index}]")
                return self.reply(200, {"metadata": {"indices": {
                    index: {"state": standin.indices[index]["state"]}}}})

            def close(self, method, query, body, index):
                if index not in standin.indices:
                    return self.error(404, "index_not_found_exception", f"no such index [{index}]")
                standin.indices[index]["state"] = "close"
                return self.reply(200, {"acknowledged": True})

            def count(self, method, query, body, index):
                found = standin.indices.get(index)
                if found is None or found["state"] != "open":
                    return self.error(404, "index_not_found_exception", f"no such index [{index}]")
                return self.reply(200, {"count": found["docs"]})

            def do_GET(self):
                self.handle_any("GET")

            def do_PUT(self):
                self.handle_any("PUT")

            def do_POST(self):
                self.handle_any("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def server(self, **overrides) -> dict:
        return dict(dict(url=self.url, user=self.user, password=self.password, timeout=30),
                    **overrides)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def opensearch_standin():
    standin = OpenSearchStandIn()
    yield standin
    standin.stop()
    assert not standin.errors, standin.errors
