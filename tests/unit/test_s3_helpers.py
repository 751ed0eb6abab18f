# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_s3: error messages for the operator, and the streaming upload against a scripted client
(every call recorded; a failing part aborts the upload and nothing is completed)."""

from __future__ import annotations

import hashlib
import io

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from ansible_collections.failsafe.datastores.plugins.module_utils import _s3

STORE = dict(endpoint_url="http://127.0.0.1:9", bucket="backups", prefix="p", region="us-east-1",
             access_key="AK", secret_key="very-secret")


def client_error(code, status=400):
    return ClientError({"Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize("exc, expected", [
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:9/backups"),
     "cannot reach S3 at http://127.0.0.1:9 while uploading"),
    (client_error("InvalidAccessKeyId", 403), "S3 refused the credentials"),
    (client_error("SignatureDoesNotMatch", 403), "S3 refused the credentials"),
    (client_error("AccessDenied", 403), "S3 denied access"),
    (client_error("NoSuchBucket", 404), "bucket backups does not exist"),
    (NoCredentialsError(), "no S3 credentials"),
])
def test_errors_say_what_is_wrong(exc, expected):
    message = _s3.explain(STORE, exc, "uploading")
    assert expected in message
    assert "very-secret" not in message


class FakeS3:
    """Records calls; fails upload_part number `fail_part` if set."""

    def __init__(self, fail_part=None):
        self.calls = []
        self.parts = {}
        self.fail_part = fail_part

    def create_multipart_upload(self, **kw):
        self.calls.append(("create", kw["Key"], dict(kw["Metadata"])))
        return {"UploadId": "U1"}

    def upload_part(self, **kw):
        self.calls.append(("part", kw["PartNumber"]))
        if kw["PartNumber"] == self.fail_part:
            raise client_error("InternalError", 500)
        self.parts[kw["PartNumber"]] = bytes(kw["Body"])
        return {"ETag": "e%d" % kw["PartNumber"]}

    def complete_multipart_upload(self, **kw):
        self.calls.append(("complete", [p["PartNumber"] for p in kw["MultipartUpload"]["Parts"]]))

    def abort_multipart_upload(self, **kw):
        self.calls.append(("abort", kw["UploadId"]))

    def put_object(self, **kw):
        self.calls.append(("put", kw["Key"], bytes(kw["Body"])))


def test_stream_is_uploaded_in_parts_and_hashed():
    data = bytes(range(256)) * 4096 * 11  # 11 MiB: parts of 5, 5, 1
    fake = FakeS3()
    result = _s3.upload_stream(STORE, fake, "k", io.BytesIO(data), {"status": "uploading"},
                               part_size=5 * _s3.MiB, workers=2)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.size == len(data) and result.parts == 3
    assert b"".join(fake.parts[n] for n in sorted(fake.parts)) == data
    assert fake.calls[-1] == ("complete", [1, 2, 3])


def test_a_small_stream_is_one_put():
    fake = FakeS3()
    result = _s3.upload_stream(STORE, fake, "k", io.BytesIO(b"tiny"), {}, part_size=5 * _s3.MiB)
    assert fake.calls == [("put", "k", b"tiny")]
    assert result.sha256 == hashlib.sha256(b"tiny").hexdigest()


def test_a_failed_part_aborts_and_never_completes():
    fake = FakeS3(fail_part=2)
    with pytest.raises(_s3.S3Error, match="S3 error"):
        _s3.upload_stream(STORE, fake, "k", io.BytesIO(b"x" * (16 * _s3.MiB)), {},
                          part_size=5 * _s3.MiB, workers=1)
    kinds = [c[0] for c in fake.calls]
    assert "abort" in kinds and "complete" not in kinds


def test_a_producer_failure_aborts_before_completion():
    fake = FakeS3()

    def producer_failed():
        raise RuntimeError("pg_dump exited with 1")

    with pytest.raises(RuntimeError, match="pg_dump"):
        _s3.upload_stream(STORE, fake, "k", io.BytesIO(b"x" * (11 * _s3.MiB)), {},
                          part_size=5 * _s3.MiB, before_complete=producer_failed)
    kinds = [c[0] for c in fake.calls]
    assert kinds[-1] == "abort" and "complete" not in kinds


def sent_payload_hash(store):
    """The X-Amz-Content-SHA256 header of an upload_part as the real client signs it (the
    request is answered by a hook before it leaves the process)."""
    from botocore.awsrequest import AWSResponse

    seen = {}

    def answer(request, **_kw):
        seen["hash"] = request.headers["X-Amz-Content-SHA256"]
        response = AWSResponse(request.url, 200, {"ETag": '"e1"'}, None)
        response._content = b""
        return response

    s3 = _s3.client(store)
    s3.meta.events.register("before-send.s3.UploadPart", answer)
    s3.upload_part(Bucket="backups", Key="k", UploadId="U1", PartNumber=1, Body=b"part one")
    value = seen["hash"]
    return value.decode() if isinstance(value, bytes) else value


def test_part_bodies_are_not_signed_unless_asked():
    # Over plain HTTP too: the module's own SHA-256 covers every byte once.
    assert sent_payload_hash(STORE) == "UNSIGNED-PAYLOAD"
    assert sent_payload_hash(dict(STORE, sign_payload=True)) == \
        hashlib.sha256(b"part one").hexdigest()


def test_read_full_reads_across_short_reads():
    class Trickle(io.RawIOBase):
        def __init__(self, data):
            self.data = data

        def readable(self):
            return True

        def readinto(self, buf):
            if not self.data:
                return 0
            n = min(3, len(buf), len(self.data))
            buf[:n] = self.data[:n]
            self.data = self.data[n:]
            return n

    stream = Trickle(b"abcdefghij")
    assert _s3.read_full(stream, 8) == b"abcdefgh"
    assert _s3.read_full(stream, 8) == b"ij"
    assert _s3.read_full(stream, 8) == b""


def test_part_size_doubles_every_1000_parts():
    assert _s3.part_size_for(1, 8 * _s3.MiB) == 8 * _s3.MiB
    assert _s3.part_size_for(1000, 8 * _s3.MiB) == 8 * _s3.MiB
    assert _s3.part_size_for(1001, 8 * _s3.MiB) == 16 * _s3.MiB
    assert _s3.part_size_for(10000, 8 * _s3.MiB) == 4096 * _s3.MiB
    total = sum(_s3.part_size_for(n, 8 * _s3.MiB) for n in range(1, 10001))
    assert total > 8 * 10 ** 12  # 8 MiB parts never cap a backup below 8 TB


class FakeBody:
    def __init__(self, data, fail_at=None):
        self.stream = io.BytesIO(data)
        self.fail_at = fail_at
        self.closed = False

    def read(self, size):
        if self.fail_at is not None and self.stream.tell() >= self.fail_at:
            raise client_error("InternalError", 500)
        return self.stream.read(size)

    def close(self):
        self.closed = True


class FakeGet:
    def __init__(self, body):
        self.body = body

    def get_object(self, **kw):
        return {"Body": self.body}


def test_download_hashes_in_order_and_writes_everything():
    data = bytes(range(256)) * 40000
    out = []
    body = FakeBody(data)
    digest, size = _s3.download_stream(STORE, FakeGet(body), "k", out.append, chunk=4096,
                                       prefetch=3)
    assert digest == hashlib.sha256(data).hexdigest() and size == len(data)
    assert b"".join(out) == data and body.closed


def test_a_read_error_mid_download_is_an_s3_error():
    body = FakeBody(b"x" * 100000, fail_at=50000)
    with pytest.raises(_s3.S3Error, match="while reading k"):
        _s3.download_stream(STORE, FakeGet(body), "k", chunk=10000)
    assert body.closed
