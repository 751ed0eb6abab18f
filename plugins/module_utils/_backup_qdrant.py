# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Qdrant's snapshot API over http.client (standard library): collection info, create, stream
down and delete a collection snapshot, and recover a collection from an uploaded snapshot
(streamed multipart, with Qdrant's own `checksum` and `priority`)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import ssl
import uuid

try:
    import http.client as http_client
    from urllib.parse import quote, urlencode, urlsplit
except ImportError:  # pragma: no cover - Python 2
    http_client = quote = urlencode = urlsplit = None

QDRANT_SPEC = dict(
    url=dict(type="str", required=True),
    api_key=dict(type="str", no_log=True),
    ca_cert=dict(type="path"),
    timeout=dict(type="float", default=600),
)


class QdrantError(Exception):
    """A failure phrased for the operator."""


class Qdrant(object):
    def __init__(self, server):
        self.server = server
        parts = urlsplit(server["url"].rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise QdrantError("url %s is not http(s)://host:port" % server["url"])
        self.parts = parts
        self.base = parts.path

    def describe(self):
        return self.server["url"]

    def _connection(self):
        timeout = self.server.get("timeout") or 600
        if self.parts.scheme == "https":
            context = ssl.create_default_context(cafile=self.server.get("ca_cert"))
            return http_client.HTTPSConnection(self.parts.netloc, timeout=timeout, context=context)
        return http_client.HTTPConnection(self.parts.netloc, timeout=timeout)

    def _headers(self, extra=None):
        headers = {"Accept": "application/json"}
        if self.server.get("api_key"):
            headers["api-key"] = self.server["api_key"]
        headers.update(extra or {})
        return headers

    def _check(self, response, doing):
        if response.status in (401, 403):
            response.read()
            raise QdrantError("Qdrant at %s refused the API key while %s (HTTP %s): check api_key "
                              "(it was not shown)" % (self.describe(), doing, response.status))
        if response.status >= 300:
            body = response.read().decode("utf-8", "replace")[:500]
            raise QdrantError("Qdrant at %s answered HTTP %s while %s: %s"
                              % (self.describe(), response.status, doing, body))

    def request(self, method, path, doing, body=None, query=None):
        conn = self._connection()
        target = self.base + path + ("?" + urlencode(query) if query else "")
        try:
            data = json.dumps(body).encode("utf-8") if body is not None else None
            headers = self._headers({"Content-Type": "application/json"} if data else None)
            conn.request(method, target, body=data, headers=headers)
            response = conn.getresponse()
            self._check(response, doing)
            text = response.read().decode("utf-8")
            return json.loads(text).get("result") if text else None
        except (OSError, http_client.HTTPException) as exc:
            raise QdrantError("cannot reach Qdrant at %s while %s: %s" % (self.describe(), doing, exc))
        finally:
            conn.close()

    @staticmethod
    def collection_path(collection):
        return "/collections/%s" % quote(collection, safe="")

    def points(self, collection):
        """points_count of a collection, or None when it does not exist."""
        try:
            info = self.request("GET", self.collection_path(collection),
                                "reading collection %s" % collection)
        except QdrantError as exc:
            if "HTTP 404" in str(exc):
                return None
            raise
        return (info or {}).get("points_count")

    def create_snapshot(self, collection):
        return self.request("POST", self.collection_path(collection) + "/snapshots",
                            "creating a snapshot of %s" % collection, query={"wait": "true"})

    def delete_snapshot(self, collection, name):
        return self.request("DELETE", "%s/snapshots/%s" % (self.collection_path(collection),
                                                           quote(name, safe="")),
                            "deleting snapshot %s" % name, query={"wait": "true"})

    def open_snapshot(self, collection, name):
        """(connection, response) streaming a snapshot; close the connection after reading."""
        conn = self._connection()
        try:
            path = "%s/snapshots/%s" % (self.collection_path(collection), quote(name, safe=""))
            conn.request("GET", self.base + path,
                         headers=self._headers({"Accept": "application/octet-stream"}))
            response = conn.getresponse()
            self._check(response, "downloading snapshot %s" % name)
            return conn, response
        except (OSError, http_client.HTTPException) as exc:
            conn.close()
            raise QdrantError("cannot reach Qdrant at %s while downloading snapshot %s: %s"
                              % (self.describe(), name, exc))
        except QdrantError:
            conn.close()
            raise

    def upload_recover(self, collection, path, checksum, priority="snapshot", chunk=4 << 20):
        """POST the snapshot file as multipart (streamed) to .../snapshots/upload."""
        boundary = "failsafe-%s" % uuid.uuid4().hex
        head = ("--%s\r\nContent-Disposition: form-data; name=\"snapshot\"; filename=\"%s\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n"
                % (boundary, os.path.basename(path))).encode("utf-8")
        tail = ("\r\n--%s--\r\n" % boundary).encode("utf-8")
        length = len(head) + os.path.getsize(path) + len(tail)
        query = urlencode({"wait": "true", "priority": priority, "checksum": checksum})
        doing = "recovering %s from an uploaded snapshot" % collection
        conn = self._connection()
        try:
            conn.putrequest("POST", self.base + self.collection_path(collection)
                            + "/snapshots/upload?" + query)
            for name, value in self._headers({
                    "Content-Type": "multipart/form-data; boundary=%s" % boundary,
                    "Content-Length": str(length)}).items():
                conn.putheader(name, value)
            conn.endheaders()
            conn.send(head)
            with open(path, "rb") as handle:
                while True:
                    data = handle.read(chunk)
                    if not data:
                        break
                    conn.send(data)
            conn.send(tail)
            response = conn.getresponse()
            self._check(response, doing)
            text = response.read().decode("utf-8")
            return json.loads(text).get("result") if text else None
        except (OSError, http_client.HTTPException) as exc:
            raise QdrantError("cannot reach Qdrant at %s while %s: %s" % (self.describe(), doing, exc))
        finally:
            conn.close()


class ResponseReader(object):
    """A file-like view of an HTTP response for _s3.upload_stream (readinto in a loop)."""

    def __init__(self, response):
        self.response = response

    def readinto(self, buffer):
        return self.response.readinto(buffer)
