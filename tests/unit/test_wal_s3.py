# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WAL archiver's hand-written S3 Signature Version 4 equals botocore's, and its layout."""

from __future__ import annotations

import datetime
import hashlib
from unittest import mock

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from ansible_collections.failsafe.datastores.plugins.module_utils import _wal_s3

NOW = datetime.datetime(2025, 1, 30, 2, 0, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("method, body, extra", [
    ("PUT", b"wal bytes" * 1000, {"x-amz-meta-sha256": "ab" * 32,
                                  "content-type": "application/octet-stream"}),
    ("GET", b"", {}),
    ("HEAD", b"", {}),
])
def test_signature_equals_botocore(method, body, extra):
    url = "http://127.1.1.2:19000/backups/prod/wal/postgresql/7312/000000010000000000000003"
    digest = hashlib.sha256(body).hexdigest()
    ours = _wal_s3.signed_headers(method, url, "us-east-1", "AKID", "SECRET", digest, now=NOW,
                                  extra=extra)
    request = AWSRequest(method=method, url=url, data=body or None,
                         headers=dict(extra, **{"x-amz-content-sha256": digest}))
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        S3SigV4Auth(Credentials("AKID", "SECRET"), "s3", "us-east-1").add_auth(request)
    theirs = request.headers["Authorization"]
    assert ours["authorization"].split("Signature=")[1] == theirs.split("Signature=")[1]


def test_layout():
    assert _wal_s3.wal_key("prod/", "7312", "000000010000000000000003") == \
        "prod/wal/postgresql/7312/000000010000000000000003"
    assert _wal_s3.wal_prefix("", 1) == "wal/postgresql/1/"


def test_usage_error_is_exit_2(capsys):
    assert _wal_s3.main(["push", "only-one"]) == 2
    assert "usage" in capsys.readouterr().err
