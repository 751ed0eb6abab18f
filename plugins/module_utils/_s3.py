# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""S3 helpers of the backup modules (boto3): connection options, error mapping, and streaming
transfers that hash SHA-256 in-process while the bytes pass.

- `upload_stream` feeds a multipart upload from a pipe (a dump's stdout) in fixed-size parts,
  hashing each part before it is handed to an upload thread: memory is bounded by
  part_size x (workers + 1) whatever the size of the backup, and no local copy is made.
  On any failure the multipart upload is aborted, so nothing is left that looks like an object.
- `download_stream` reads an object in chunks, hashing as it goes, into any writer.
- `S3Error` messages say what was found and what to do: S3 unreachable, credentials refused,
  bucket missing, object missing.

Private to the collection (leading underscore).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import threading
import traceback

BOTO3_IMPORT_ERROR = None
try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ReadTimeoutError,
    )

    HAS_BOTO3 = True
except ImportError:  # pragma: no cover - exercised by missing_required_lib
    boto3 = None
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = traceback.format_exc()

    class BotoCoreError(Exception):
        pass

    class ClientError(Exception):
        pass

    ConnectionClosedError = ConnectTimeoutError = EndpointConnectionError = BotoCoreError
    NoCredentialsError = ReadTimeoutError = BotoCoreError

from ansible.module_utils.basic import missing_required_lib

MiB = 1024 * 1024

# The `store` option of every backup module (doc fragment failsafe.datastores.s3).
STORE_SPEC = dict(
    endpoint_url=dict(type="str"),
    region=dict(type="str", default="us-east-1"),
    bucket=dict(type="str", required=True),
    prefix=dict(type="str", default=""),
    access_key=dict(type="str", no_log=True),
    secret_key=dict(type="str", no_log=True),
    ca_cert=dict(type="path"),
    connect_timeout=dict(type="int", default=5),
    read_timeout=dict(type="int", default=60),
    sign_payload=dict(type="bool", default=False),
)


def store_option():
    return dict(type="dict", required=True, options=dict(STORE_SPEC))


def ensure_boto3(module):
    if not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"), exception=BOTO3_IMPORT_ERROR)


class S3Error(Exception):
    """A failure already phrased for the operator: what was found and what to do."""


def describe(store):
    where = store.get("endpoint_url") or "AWS S3 (region %s)" % store.get("region")
    return "s3://%s at %s" % (store["bucket"], where)


def client(store, max_pool=10):
    """A boto3 S3 client for the store (path-style addressing, one attempt: errors surface)."""
    kwargs = dict(
        region_name=store.get("region") or "us-east-1",
        # The modules hash every byte with SHA-256 themselves and every restore and verification
        # checks it: signing each part's body too (SigV4) is a second pass, off unless asked.
        config=Config(s3={"addressing_style": "path",
                          "payload_signing_enabled": bool(store.get("sign_payload"))},
                      connect_timeout=store.get("connect_timeout") or 5,
                      read_timeout=store.get("read_timeout") or 60,
                      retries={"max_attempts": 2, "mode": "standard"},
                      # The modules hash every byte with SHA-256 themselves: no CRC per part.
                      request_checksum_calculation="when_required",
                      response_checksum_validation="when_required",
                      max_pool_connections=max_pool),
    )
    if store.get("endpoint_url"):
        kwargs["endpoint_url"] = store["endpoint_url"]
    if store.get("access_key"):
        kwargs["aws_access_key_id"] = store["access_key"]
        kwargs["aws_secret_access_key"] = store.get("secret_key")
    if store.get("ca_cert"):
        kwargs["verify"] = store["ca_cert"]
    return boto3.session.Session().client("s3", **kwargs)


_CREDENTIAL_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken",
                     "ExpiredToken", "AuthorizationHeaderMalformed")


def error_code(exc):
    if isinstance(exc, ClientError):
        error = exc.response.get("Error") or {}
        return str(error.get("Code") or exc.response.get("ResponseMetadata", {}).get(
            "HTTPStatusCode") or "")
    return ""


def explain(store, exc, doing):
    """An operator's message for a boto3/botocore exception raised while `doing` something."""
    where = describe(store)
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError,
                        ReadTimeoutError)):
        return ("cannot reach S3 at %s while %s: %s. Check that the S3 service runs and the "
                "endpoint_url" % (store.get("endpoint_url") or "AWS", doing, exc))
    if isinstance(exc, NoCredentialsError):
        return ("no S3 credentials for %s while %s: set access_key and secret_key "
                "(inventory failsafe_s3_access_key / failsafe_s3_secret_key)" % (where, doing))
    code = error_code(exc)
    if code in _CREDENTIAL_CODES:
        return ("S3 refused the credentials for %s while %s (%s): check access_key and "
                "secret_key (the secret was not shown)" % (where, doing, code))
    if code in ("AccessDenied", "403", "Forbidden"):
        return ("S3 denied access to %s while %s (%s): the credentials lack a permission for "
                "this bucket or prefix" % (where, doing, code))
    if code in ("NoSuchBucket",):
        return ("bucket %s does not exist at %s while %s: create it, or fix the bucket name"
                % (store["bucket"], store.get("endpoint_url") or "AWS", doing))
    if code in ("NoSuchKey", "404", "NotFound"):
        return "not found in %s while %s (%s)" % (where, doing, code)
    return "S3 error at %s while %s: %s" % (where, doing, exc)


def call(store, doing, function, *args, **kwargs):
    """function(*args, **kwargs), mapping S3 failures to S3Error(explain(...))."""
    try:
        return function(*args, **kwargs)
    except (BotoCoreError, ClientError) as exc:
        raise S3Error(explain(store, exc, doing))


def check_bucket(store, s3):
    """Fail clearly unless the bucket exists and these credentials may use it.

    head_bucket answers 404 without a code body, so a missing bucket is told apart from a
    refused credential by the status code.
    """
    try:
        s3.head_bucket(Bucket=store["bucket"])
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 404:
            raise S3Error("bucket %s does not exist at %s: create it, or fix the bucket name. "
                          "Nothing was uploaded" % (store["bucket"],
                                                    store.get("endpoint_url") or "AWS"))
        if status in (400, 401, 403):
            # HEAD has no body: ask once more with a request whose error has a code.
            try:
                s3.list_objects_v2(Bucket=store["bucket"], MaxKeys=1)
            except (BotoCoreError, ClientError) as inner:
                raise S3Error(explain(store, inner, "checking the bucket"))
        raise S3Error(explain(store, exc, "checking the bucket"))
    except BotoCoreError as exc:
        raise S3Error(explain(store, exc, "checking the bucket"))


def join_key(*parts):
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def list_keys(store, s3, prefix):
    """Every (key, size, last_modified) under prefix."""
    found = []
    token = None
    while True:
        kwargs = dict(Bucket=store["bucket"], Prefix=prefix)
        if token:
            kwargs["ContinuationToken"] = token
        page = call(store, "listing %s" % prefix, s3.list_objects_v2, **kwargs)
        for item in page.get("Contents") or []:
            found.append((item["Key"], item["Size"], item["LastModified"]))
        if not page.get("IsTruncated"):
            return found
        token = page.get("NextContinuationToken")


def head(store, s3, key):
    """Object metadata (lowercase keys), size and ETag; None when the object does not exist."""
    try:
        response = s3.head_object(Bucket=store["bucket"], Key=key)
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
            return None
        raise S3Error(explain(store, exc, "reading %s" % key))
    except BotoCoreError as exc:
        raise S3Error(explain(store, exc, "reading %s" % key))
    return dict(metadata=dict((k.lower(), v) for k, v in (response.get("Metadata") or {}).items()),
                size=response.get("ContentLength"), etag=response.get("ETag"),
                last_modified=response.get("LastModified"))


def replace_metadata(store, s3, key, metadata):
    """Set an object's metadata (a server-side copy onto itself; no data moves on SeaweedFS
    and AWS up to 5 GB; larger objects need a multipart copy, see copy_onto_itself)."""
    info = head(store, s3, key)
    if info is None:
        raise S3Error("%s vanished from %s before its metadata was written" % (key, describe(store)))
    if info["size"] is not None and info["size"] > 5 * 1024 * MiB:
        return copy_onto_itself(store, s3, key, metadata, info["size"])
    call(store, "writing the metadata of %s" % key, s3.copy_object,
         Bucket=store["bucket"], Key=key, CopySource={"Bucket": store["bucket"], "Key": key},
         Metadata=metadata, MetadataDirective="REPLACE")


def copy_onto_itself(store, s3, key, metadata, size, part=1024 * MiB):
    doing = "writing the metadata of %s" % key
    upload = call(store, doing, s3.create_multipart_upload, Bucket=store["bucket"], Key=key,
                  Metadata=metadata)
    parts = []
    try:
        for number, start in enumerate(range(0, size, part), 1):
            end = min(start + part, size) - 1
            result = call(store, doing, s3.upload_part_copy, Bucket=store["bucket"], Key=key,
                          UploadId=upload["UploadId"], PartNumber=number,
                          CopySource={"Bucket": store["bucket"], "Key": key},
                          CopySourceRange="bytes=%d-%d" % (start, end))
            parts.append(dict(PartNumber=number, ETag=result["CopyPartResult"]["ETag"]))
        call(store, doing, s3.complete_multipart_upload, Bucket=store["bucket"], Key=key,
             UploadId=upload["UploadId"], MultipartUpload=dict(Parts=parts))
    except BaseException:
        abort_quietly(s3, store, key, upload["UploadId"])
        raise


def abort_quietly(s3, store, key, upload_id):
    try:
        s3.abort_multipart_upload(Bucket=store["bucket"], Key=key, UploadId=upload_id)
    except Exception:  # the original failure matters more; stale uploads are listed by retention
        pass


def put_bytes(store, s3, key, data, metadata=None, content_type="application/json"):
    call(store, "writing %s" % key, s3.put_object, Bucket=store["bucket"], Key=key, Body=data,
         Metadata=metadata or {}, ContentType=content_type)


def get_bytes(store, s3, key):
    response = call(store, "reading %s" % key, s3.get_object, Bucket=store["bucket"], Key=key)
    return response["Body"].read()


def delete(store, s3, keys):
    """Delete keys (batches of 1000); returns the keys deleted. Errors raise S3Error."""
    deleted = []
    for start in range(0, len(keys), 1000):
        batch = keys[start:start + 1000]
        result = call(store, "deleting %d objects" % len(batch), s3.delete_objects,
                      Bucket=store["bucket"],
                      Delete=dict(Objects=[dict(Key=k) for k in batch], Quiet=False))
        errors = result.get("Errors") or []
        if errors:
            raise S3Error("S3 refused to delete %s: %s" % (
                ", ".join(e.get("Key", "?") for e in errors),
                "; ".join("%s %s" % (e.get("Code"), e.get("Message")) for e in errors[:3])))
        deleted.extend(d["Key"] for d in result.get("Deleted") or [])
    return deleted


def read_full(stream, size):
    """Up to `size` bytes from a pipe/file (fewer only at the end)."""
    buf = bytearray(size)
    view = memoryview(buf)
    filled = 0
    while filled < size:
        count = stream.readinto(view[filled:])
        if not count:
            break
        filled += count
    del view
    if filled < size:
        del buf[filled:]
    return bytes(buf)


class UploadResult(object):
    def __init__(self, sha256, size, parts):
        self.sha256 = sha256
        self.size = size
        self.parts = parts


# S3 allows 10,000 parts: the part size doubles every PARTS_PER_SIZE parts, so that small parts
# (fast on a local S3 server) never cap the size of a backup (8 MiB parts reach 80 TB).
PARTS_PER_SIZE = 1000
MAX_PART = 5 * 1024 * MiB


def part_size_for(number, part_size):
    """Size of part `number` (1-based)."""
    return min(MAX_PART, part_size * 2 ** ((number - 1) // PARTS_PER_SIZE))


def upload_stream(store, s3, key, stream, metadata, part_size=8 * MiB, workers=4,
                  before_complete=None, tee=None):
    """Multipart upload of everything `stream` yields, hashing SHA-256 in-process.

    Parts are read in order, hashed, and uploaded by `workers` threads; at most `workers` parts
    are in flight, so memory stays at about part_size x (workers + 2). `before_complete()` runs
    after the stream ended and before the upload is completed (check the producer's exit status
    there: raising aborts the upload). `tee` (a binary file) receives a local copy if given.
    On any failure the upload is aborted and nothing becomes visible under `key`.
    """
    doing = "uploading %s" % key
    sha = hashlib.sha256()
    first = read_full(stream, part_size)
    sha.update(first)
    if tee is not None:
        tee.write(first)
    if len(first) < part_size:
        # Small: one PUT (a multipart upload needs parts of >= 5 MiB but the last).
        if before_complete:
            before_complete()
        call(store, doing, s3.put_object, Bucket=store["bucket"], Key=key, Body=first,
             Metadata=metadata)
        return UploadResult(sha.hexdigest(), len(first), 1)
    upload = call(store, doing, s3.create_multipart_upload, Bucket=store["bucket"], Key=key,
                  Metadata=metadata)
    upload_id = upload["UploadId"]
    parts = {}
    errors = []
    slots = threading.Semaphore(workers)
    threads = []

    def send(number, data):
        try:
            if not errors:
                result = s3.upload_part(Bucket=store["bucket"], Key=key, UploadId=upload_id,
                                        PartNumber=number, Body=data)
                parts[number] = result["ETag"]
        except BaseException as exc:  # surfaced by the main thread
            errors.append(exc)
        finally:
            slots.release()

    size = 0
    number = 0
    try:
        data = first
        while data:
            number += 1
            size += len(data)
            slots.acquire()
            if errors:
                break
            thread = threading.Thread(target=send, args=(number, data))
            thread.daemon = True
            thread.start()
            threads.append(thread)
            data = None
            data = read_full(stream, part_size_for(number + 1, part_size))
            if data:
                sha.update(data)
                if tee is not None:
                    tee.write(data)
        for thread in threads:
            thread.join()
        if errors:
            exc = errors[0]
            if isinstance(exc, (BotoCoreError, ClientError)):
                raise S3Error(explain(store, exc, doing))
            raise exc
        if before_complete:
            before_complete()
        call(store, doing, s3.complete_multipart_upload, Bucket=store["bucket"], Key=key,
             UploadId=upload_id, MultipartUpload=dict(
                 Parts=[dict(PartNumber=n, ETag=parts[n]) for n in sorted(parts)]))
    except BaseException:
        errors.append(None)  # tells running threads to stop sending
        for thread in threads:
            thread.join(timeout=60)
        abort_quietly(s3, store, key, upload_id)
        raise
    return UploadResult(sha.hexdigest(), size, number)


def download_stream(store, s3, key, writer=None, chunk=4 * MiB, prefetch=8):
    """Read an object, hashing SHA-256 as it goes; write each chunk to `writer` if given.

    A reader thread fetches up to `prefetch` chunks ahead, so that the network, the hashing and
    the writer (a decompressor's pipe) work at the same time; memory stays at about
    chunk x prefetch. Returns (sha256 hex, bytes read).
    """
    try:
        import queue
    except ImportError:  # pragma: no cover - Python 2
        import Queue as queue

    doing = "reading %s" % key
    response = call(store, doing, s3.get_object, Bucket=store["bucket"], Key=key)
    body = response["Body"]
    chunks = queue.Queue(maxsize=prefetch)
    stop = threading.Event()

    def read():
        try:
            while not stop.is_set():
                data = body.read(chunk)
                chunks.put(data)
                if not data:
                    return
        except BaseException as exc:  # handed to the consumer
            chunks.put(exc)

    reader = threading.Thread(target=read)
    reader.daemon = True
    reader.start()
    sha = hashlib.sha256()
    size = 0
    try:
        while True:
            data = chunks.get()
            if isinstance(data, BaseException):
                if isinstance(data, (BotoCoreError, ClientError)):
                    raise S3Error(explain(store, data, doing))
                raise data
            if not data:
                break
            sha.update(data)
            size += len(data)
            if writer is not None:
                writer(data)
    finally:
        stop.set()
        while reader.is_alive():  # unblock a reader waiting on a full queue
            try:
                chunks.get_nowait()
            except queue.Empty:
                reader.join(0.01)
        body.close()
    return sha.hexdigest(), size
