# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""failsafe WAL archiver: PostgreSQL's archive_command and restore_command for S3.

    archive_command = '/usr/bin/python3 .../failsafe_wal_s3.py push %p %f --config .../wal-s3.json'
    restore_command = '/usr/bin/python3 .../failsafe_wal_s3.py fetch %f %p --config .../wal-s3.json'

It runs as the database server's user, often without the collection's virtualenv: the standard
library only (S3 Signature Version 4 by hand, HTTP(S) with urllib). Each WAL file goes to
`<prefix>/wal/postgresql/<system identifier>/<file name>` with its SHA-256 as the signed payload
hash (the server checks the bytes it received) and as metadata; `fetch` compares the digest
before it hands the file to PostgreSQL. `push` of a file already archived with the same digest
succeeds (PostgreSQL retries), with another digest it fails: an archive is never overwritten.

The config file (JSON, mode 0600, owned by the server's user) holds endpoint_url, region,
bucket, prefix, system_identifier, access_key, secret_key and optionally ca_cert. The backup
modules import this file for the key layout and the signing (module_utils), and write it onto
the database host as the script.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import hmac
import json
import os
import ssl
import sys

try:
    import http.client as http_client
    from urllib.parse import quote, urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported by the script
    http_client = quote = urlsplit = None

WAL_DIR = "wal/postgresql"


def wal_prefix(prefix, system_identifier):
    parts = [p.strip("/") for p in (prefix or "", WAL_DIR, str(system_identifier)) if p and p.strip("/")]
    return "/".join(parts) + "/"


def wal_key(prefix, system_identifier, name):
    return wal_prefix(prefix, system_identifier) + name


def _sign(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signed_headers(method, url, region, access_key, secret_key, payload_sha256, now=None,
                   extra=None):
    """Headers of an S3 request signed with AWS Signature Version 4 (path-style URL)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = now.strftime("%Y%m%d")
    parts = urlsplit(url)
    headers = {"host": parts.netloc, "x-amz-content-sha256": payload_sha256,
               "x-amz-date": amz_date}
    for name, value in (extra or {}).items():
        headers[name.lower()] = value
    names = sorted(headers)
    canonical_query = "&".join(sorted(
        "%s=%s" % (quote(k, safe="-_.~"), quote(v, safe="-_.~"))
        for k, _sep, v in (item.partition("=") for item in parts.query.split("&") if item)))
    canonical = "\n".join([
        method, quote(parts.path or "/", safe="/-_.~"), canonical_query,
        "".join("%s:%s\n" % (n, " ".join(str(headers[n]).split())) for n in names),
        ";".join(names), payload_sha256])
    scope = "%s/%s/s3/aws4_request" % (date, region)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    key = _sign(_sign(_sign(_sign(("AWS4" + secret_key).encode("utf-8"), date), region), "s3"),
                "aws4_request")
    signature = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    headers["authorization"] = ("AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, "
                                "Signature=%s" % (access_key, scope, ";".join(names), signature))
    return headers


class HTTPError(Exception):
    def __init__(self, code, reason):
        super(HTTPError, self).__init__("HTTP %s %s" % (code, reason))
        self.code = code
        self.reason = reason


class Response(object):
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = dict((k.lower(), v) for k, v in headers)
        self.body = body


class S3Client(object):
    """One S3 request at a time over http.client (standard library only)."""

    def __init__(self, config):
        self.config = config
        self.endpoint = (config.get("endpoint_url") or
                         "https://s3.%s.amazonaws.com" % config.get("region", "us-east-1")).rstrip("/")
        self.parts = urlsplit(self.endpoint)
        self.context = None
        if self.parts.scheme == "https":
            self.context = ssl.create_default_context(cafile=config.get("ca_cert"))

    def url(self, key):
        return "%s/%s/%s" % (self.endpoint, self.config["bucket"], quote(key, safe="/-_.~"))

    def request(self, method, key, body=b"", extra=None):
        """Send one request; a status >= 300 raises HTTPError, a network failure OSError."""
        digest = hashlib.sha256(body).hexdigest()
        url = self.url(key)
        headers = signed_headers(method, url, self.config.get("region") or "us-east-1",
                                 self.config["access_key"], self.config["secret_key"], digest,
                                 extra=extra)
        del headers["host"]
        timeout = float(self.config.get("timeout", 60))
        if self.context is not None:
            conn = http_client.HTTPSConnection(self.parts.netloc, timeout=timeout,
                                               context=self.context)
        else:
            conn = http_client.HTTPConnection(self.parts.netloc, timeout=timeout)
        try:
            conn.request(method, urlsplit(url).path, body=body if method == "PUT" else None,
                         headers=headers)
            response = conn.getresponse()
            data = response.read()
            if response.status >= 300:
                raise HTTPError(response.status, response.reason)
            return Response(response.status, response.reason, response.getheaders(), data)
        finally:
            conn.close()


def push(config, path, name):
    """Archive one WAL file; 0 on success (also when already archived with the same bytes)."""
    with open(path, "rb") as handle:
        data = handle.read()
    digest = hashlib.sha256(data).hexdigest()
    client = S3Client(config)
    key = wal_key(config.get("prefix"), config["system_identifier"], name)
    try:
        existing = client.request("HEAD", key).headers.get("x-amz-meta-sha256")
        if existing == digest:
            return 0
        sys.stderr.write("failsafe-wal: %s is already archived with other content (SHA-256 %s, "
                         "this file %s): refusing to overwrite\n" % (key, existing, digest))
        return 1
    except HTTPError as exc:
        if exc.code != 404:
            sys.stderr.write("failsafe-wal: HEAD %s: HTTP %s %s\n" % (key, exc.code, exc.reason))
            return 1
    except OSError as exc:
        sys.stderr.write("failsafe-wal: cannot reach S3 at %s: %s\n" % (client.endpoint, exc))
        return 1
    try:
        client.request("PUT", key, data, extra={"x-amz-meta-sha256": digest,
                                                "content-type": "application/octet-stream"})
    except HTTPError as exc:
        sys.stderr.write("failsafe-wal: PUT %s: HTTP %s %s\n" % (key, exc.code, exc.reason))
        return 1
    except OSError as exc:
        sys.stderr.write("failsafe-wal: cannot reach S3 at %s: %s\n" % (client.endpoint, exc))
        return 1
    return 0


def fetch(config, name, path):
    """Fetch one archived file to `path`, SHA-256 checked; 1 when it is not in the archive."""
    client = S3Client(config)
    key = wal_key(config.get("prefix"), config["system_identifier"], name)
    try:
        response = client.request("GET", key)
        data = response.body
        expected = response.headers.get("x-amz-meta-sha256")
    except HTTPError as exc:
        if exc.code != 404:
            sys.stderr.write("failsafe-wal: GET %s: HTTP %s %s\n" % (key, exc.code, exc.reason))
        return 1
    except OSError as exc:
        sys.stderr.write("failsafe-wal: cannot reach S3 at %s: %s\n" % (client.endpoint, exc))
        return 1
    if expected and hashlib.sha256(data).hexdigest() != expected:
        sys.stderr.write("failsafe-wal: %s does not match its SHA-256 %s: not restored\n"
                         % (key, expected))
        return 1
    partial = path + ".failsafe-partial"
    with open(partial, "wb") as handle:
        handle.write(data)
    os.rename(partial, path)
    return 0


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 5 or argv[0] not in ("push", "fetch") or argv[3] != "--config":
        sys.stderr.write("usage: failsafe_wal_s3.py push %p %f --config FILE | "
                         "fetch %f %p --config FILE\n")
        return 2
    with open(argv[4]) as handle:
        config = json.load(handle)
    if argv[0] == "push":
        return push(config, argv[1], argv[2])
    return fetch(config, argv[1], argv[2])


if __name__ == "__main__":
    raise SystemExit(main())
