# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenSearch's snapshot API over http.client (standard library): snapshot repository,
snapshot create and restore, index close, document counts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import ssl

try:
    import http.client as http_client
    from urllib.parse import quote, urlencode, urlsplit
except ImportError:  # pragma: no cover - Python 2
    http_client = quote = urlencode = urlsplit = None

OPENSEARCH_SPEC = dict(
    url=dict(type="str", required=True),
    user=dict(type="str"),
    password=dict(type="str", no_log=True),
    ca_cert=dict(type="path"),
    timeout=dict(type="float", default=600),
)


class OpenSearchError(Exception):
    """A failure phrased for the operator."""


class OpenSearch(object):
    def __init__(self, server):
        self.server = server
        parts = urlsplit(server["url"].rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise OpenSearchError("url %s is not http(s)://host:port" % server["url"])
        self.parts = parts

    def describe(self):
        return self.server["url"]

    def request(self, method, path, doing, body=None, query=None, missing_ok=False):
        """JSON in, JSON out; None for a 404 when missing_ok."""
        timeout = self.server.get("timeout") or 600
        if self.parts.scheme == "https":
            context = ssl.create_default_context(cafile=self.server.get("ca_cert"))
            conn = http_client.HTTPSConnection(self.parts.netloc, timeout=timeout,
                                               context=context)
        else:
            conn = http_client.HTTPConnection(self.parts.netloc, timeout=timeout)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.server.get("user"):
            token = "%s:%s" % (self.server["user"], self.server.get("password") or "")
            headers["Authorization"] = "Basic " + base64.b64encode(token.encode()).decode()
        target = self.parts.path + path + ("?" + urlencode(query) if query else "")
        try:
            conn.request(method, target, body=data, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        except (OSError, http_client.HTTPException) as exc:
            raise OpenSearchError("cannot reach OpenSearch at %s while %s: %s"
                                  % (self.describe(), doing, exc))
        finally:
            conn.close()
        if response.status in (401, 403):
            raise OpenSearchError("OpenSearch at %s refused the credentials while %s (HTTP %s): "
                                  "check user and password (the password was not shown)"
                                  % (self.describe(), doing, response.status))
        if response.status == 404 and missing_ok:
            return None
        if response.status >= 300:
            raise OpenSearchError("OpenSearch at %s answered HTTP %s while %s: %s"
                                  % (self.describe(), response.status, doing, text[:500]))
        return json.loads(text) if text else {}

    def repository(self, name):
        found = self.request("GET", "/_snapshot/%s" % quote(name, safe=""),
                             "reading repository %s" % name, missing_ok=True)
        return (found or {}).get(name)

    def put_repository(self, name, definition):
        return self.request("PUT", "/_snapshot/%s" % quote(name, safe=""),
                            "registering repository %s" % name, body=definition)

    def create_snapshot(self, repo, snapshot, indices):
        return self.request(
            "PUT", "/_snapshot/%s/%s" % (quote(repo, safe=""), quote(snapshot, safe="")),
            "creating snapshot %s" % snapshot, query={"wait_for_completion": "true"},
            body={"indices": ",".join(indices), "include_global_state": False,
                  "ignore_unavailable": False})

    def snapshot(self, repo, snapshot):
        found = self.request("GET", "/_snapshot/%s/%s" % (quote(repo, safe=""),
                                                          quote(snapshot, safe="")),
                             "reading snapshot %s" % snapshot, missing_ok=True)
        snapshots = (found or {}).get("snapshots") or []
        return snapshots[0] if snapshots else None

    def index_state(self, index):
        """'open', 'close' or None when the index does not exist."""
        found = self.request("GET", "/_cluster/state/metadata/%s" % quote(index, safe=""),
                             "reading index %s" % index, missing_ok=True)
        meta = ((found or {}).get("metadata") or {}).get("indices") or {}
        return (meta.get(index) or {}).get("state")

    def close(self, index):
        return self.request("POST", "/%s/_close" % quote(index, safe=""),
                            "closing index %s" % index)

    def restore(self, repo, snapshot, indices, rename_prefix=None):
        body = {"indices": ",".join(indices), "include_global_state": False,
                "include_aliases": False}
        if rename_prefix:
            body.update(rename_pattern="(.+)", rename_replacement=rename_prefix + "$1")
        return self.request(
            "POST", "/_snapshot/%s/%s/_restore" % (quote(repo, safe=""), quote(snapshot, safe="")),
            "restoring snapshot %s" % snapshot, query={"wait_for_completion": "true"}, body=body)

    def count(self, index):
        found = self.request("GET", "/%s/_count" % quote(index, safe=""),
                             "counting documents of %s" % index, missing_ok=True)
        return None if found is None else found.get("count")
