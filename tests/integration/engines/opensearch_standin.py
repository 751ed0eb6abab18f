"""A protocol-level stand-in of OpenSearch's snapshot and cluster REST API (no OpenSearch can
run here).

NOT an OpenSearch: a scripted HTTP server on loopback implementing the endpoints the backup and
cluster modules use, with response bodies shaped as OpenSearch documents them (recorded shapes,
not a cluster), and checking every request: basic authentication, `wait_for_completion=true`,
`include_global_state: false` on snapshot and restore, and a restore over an open index of the
same name is refused as OpenSearch refuses it. Documents are just counts; a snapshot copies them.

The cluster side: .nodes (names), .shards (rows of `_cat/shards`), `_cluster/health` computed
from them, `_cluster/allocation/explain` from .explanations (or OpenSearch's answer for a
primary no node holds), `GET /_snapshot/REPO/_all`, and `POST /_cluster/reroute`: with
`dry_run=true` it only explains; otherwise the shard becomes INITIALIZING, and is STARTED when
_cat/shards is read next. A primary command without `accept_data_loss: true` is refused as OpenSearch refuses
it. Every request is recorded; .writes() are those that change state.

opensearch_standin (function)
    An `OpenSearchStandIn`: .url, .user, .password, .indices {name: {"docs": n, "state": ...}},
    .repositories, .snapshots {(repo, name): {...}}, .nodes, .shards, .explanations,
    .requests, .writes(), .server().
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
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
        self.nodes: list[str] = []
        self.shards: list[dict] = []
        self.explanations: dict[tuple, dict] = {}
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
                    (r"^/_cluster/health$", self.health),
                    (r"^/_cat/shards(?:/([^/]+))?$", self.cat_shards),
                    (r"^/_cat/nodes$", self.cat_nodes),
                    (r"^/_cluster/allocation/explain$", self.allocation_explain),
                    (r"^/_cluster/reroute$", self.reroute),
                    (r"^/_snapshot/([^/]+)/_all$", self.all_snapshots),
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
                            "end_time_in_millis": int(time.time() * 1000),
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

            def health(self, method, query, body, *groups):
                return self.reply(200, standin.health())

            def cat_shards(self, method, query, body, index=None):
                if query.get("format") != ["json"]:
                    standin.errors.append("_cat/shards without format=json")
                for row in standin.shards:
                    if row["state"] == "INITIALIZING":  # recovered by the next read
                        row["state"] = "STARTED"
                rows = [dict(r) for r in standin.shards if index is None or r["index"] == index]
                return self.reply(200, rows)

            def cat_nodes(self, method, query, body):
                return self.reply(200, [{"name": n, "node.role": "dimr", "ip": "10.0.0.%d" % i}
                                        for i, n in enumerate(standin.nodes)])

            def allocation_explain(self, method, query, body):
                if method != "POST":
                    standin.errors.append("allocation explain without POST")
                key = (body.get("index"), body.get("shard"), body.get("primary"))
                found = standin.explanations.get(key) or {
                    "index": key[0], "shard": key[1], "primary": key[2],
                    "current_state": "unassigned",
                    "unassigned_info": {"reason": "NODE_LEFT", "last_allocation_status":
                                        "no_valid_shard_copy"},
                    "can_allocate": "no_valid_shard_copy",
                    "allocate_explanation": "cannot allocate because a previous copy of the "
                    "primary shard existed but can no longer be found on the nodes in the "
                    "cluster"}
                return self.reply(200, found)

            def all_snapshots(self, method, query, body, repo):
                if repo not in standin.repositories:
                    return self.error(404, "repository_missing_exception", f"[{repo}] missing")
                return self.reply(200, {"snapshots": [
                    {k: v for k, v in snap.items() if k != "docs"}
                    for (r, _n), snap in standin.snapshots.items() if r == repo]})

            def reroute(self, method, query, body):
                dry_run = query.get("dry_run") == ["true"]
                explanations = []
                for command in body.get("commands") or []:
                    (name, args), = command.items()
                    row = next((r for r in standin.shards if r["index"] == args.get("index")
                                and r["shard"] == str(args.get("shard"))
                                and r["prirep"] == ("r" if name == "allocate_replica" else "p")
                                and r["state"] == "UNASSIGNED"), None)
                    if name in ("allocate_empty_primary", "allocate_stale_primary") \
                            and args.get("accept_data_loss") is not True:
                        return self.error(400, "illegal_argument_exception",
                                          f"[{name}] allocating an empty primary for "
                                          f"[{args.get('index')}][{args.get('shard')}] can "
                                          "result in data loss. Please confirm by setting the "
                                          "accept_data_loss parameter to true")
                    if args.get("node") not in standin.nodes:
                        return self.error(400, "illegal_argument_exception",
                                          f"failed to resolve [{args.get('node')}]")
                    if row is None:
                        return self.error(400, "illegal_argument_exception",
                                          f"[{name}] failed to find "
                                          f"[{args.get('index')}][{args.get('shard')}] among "
                                          "unassigned shards")
                    explanations.append({"command": name, "parameters": args, "decisions": [
                        {"decider": name, "decision": "YES",
                         "explanation": "ignoring the data loss: accept_data_loss is true"
                         if "primary" in name else "allocating the replica"}]})
                    if not dry_run:
                        row.update(state="INITIALIZING", node=args["node"])
                        row.pop("unassigned.reason", None)
                return self.reply(200, {"acknowledged": True, "state": {},
                                        "explanations": explanations})

            def do_GET(self):
                self.handle_any("GET")

            def do_PUT(self):
                self.handle_any("PUT")

            def do_POST(self):
                self.handle_any("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def health(self) -> dict:
        primaries = [r for r in self.shards if r["prirep"] == "p"]
        unassigned = [r for r in self.shards if r["state"] == "UNASSIGNED"]
        status = "red" if any(r["state"] != "STARTED" for r in primaries) else (
            "yellow" if unassigned else "green")
        return {"cluster_name": "standin", "status": status, "timed_out": False,
                "number_of_nodes": len(self.nodes), "number_of_data_nodes": len(self.nodes),
                "active_primary_shards": sum(r["state"] == "STARTED" for r in primaries),
                "active_shards": sum(r["state"] == "STARTED" for r in self.shards),
                "relocating_shards": 0,
                "initializing_shards": sum(r["state"] == "INITIALIZING" for r in self.shards),
                "unassigned_shards": len(unassigned),
                "active_shards_percent_as_number": round(100.0 * sum(
                    r["state"] == "STARTED" for r in self.shards) / max(1, len(self.shards)), 1)}

    def add_shard(self, index, shard, prirep, state, node=None, reason=None) -> None:
        row = {"index": index, "shard": str(shard), "prirep": prirep, "state": state,
               "node": node}
        if reason:
            row["unassigned.reason"] = reason
        self.shards.append(row)

    def writes(self) -> list[tuple]:
        """Requests that change state (explain and a dry-run reroute change nothing)."""
        return [(m, p, q) for m, p, q, _b in self.requests if m != "GET"
                and p != "/_cluster/allocation/explain"
                and not (p == "/_cluster/reroute" and q.get("dry_run") == ["true"])]

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
