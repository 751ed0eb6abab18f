"""Backups in the integration tests: the lab's SeaweedFS (S3) and a database to back up.

A pytest plugin (loaded by conftest.py, like every module of engines/).

s3_store (function)
    Starts the lab's SeaweedFS on first use. An `S3Store` whose catalog lives under a prefix of
    its own (tests never see each other's backups):
      .store            the modules' `store` option (endpoint, bucket, prefix, keys)
      .client           a boto3 client, independent of the modules under test
      .keys(under="")   keys under the prefix (optionally under a sub-path)
      .head(key)        metadata of an object (lowercase keys) or None
      .sha256(key)      SHA-256 of an object's bytes, computed here
      .flip_byte(key)   corrupt one byte of a stored object, keeping its metadata
      .set_created(key, when)  make a backup look created at `when` (its metadata)
      .uploads()        multipart uploads in progress under the prefix
      .bad(**over)      the store with some fields replaced (wrong secret, closed port)
backup_db (function)
    A database on the pair's primary with tables `customers` and `orders` (a reference between
    them) and known row counts; dropped afterwards. A `BackupDb`: .name, .counts, .peer(),
    .insert_orders(n), .count(table).
"""

from __future__ import annotations

import datetime
import hashlib
import uuid

import psycopg
import pytest
from psycopg import sql

from lab.seaweedfs import SeaweedS3

KINDS = (SeaweedS3.kind,)


def component(env):
    return env.lab.of_kind(SeaweedS3.kind)[0]


class S3Store:
    def __init__(self, env, prefix: str) -> None:
        env.ensure_started(KINDS)
        self.component = component(env)
        self.client = self.component.client()
        self.bucket = "backups"
        self.prefix = prefix
        self.store = dict(endpoint_url=self.component.endpoint_url, region="us-east-1",
                          bucket=self.bucket, prefix=prefix,
                          access_key=self.component.inventory_vars()["failsafe_s3_access_key"],
                          secret_key=self.component.inventory_vars()["failsafe_s3_secret_key"],
                          connect_timeout=2, read_timeout=30)

    def keys(self, under: str = "") -> list[str]:
        found, token = [], None
        while True:
            kwargs = dict(Bucket=self.bucket, Prefix=f"{self.prefix}/{under}".rstrip("/") + "/")
            if token:
                kwargs["ContinuationToken"] = token
            page = self.client.list_objects_v2(**kwargs)
            found += [item["Key"] for item in page.get("Contents") or []]
            if not page.get("IsTruncated"):
                return sorted(found)
            token = page["NextContinuationToken"]

    def head(self, key: str):
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.ClientError:
            return None
        return dict((k.lower(), v) for k, v in response["Metadata"].items())

    def body(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def sha256(self, key: str) -> str:
        return hashlib.sha256(self.body(key)).hexdigest()

    def flip_byte(self, key: str, offset: int = 1000) -> None:
        data = bytearray(self.body(key))
        data[offset % len(data)] ^= 0xFF
        self.client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data),
                               Metadata=self.head(key))

    def set_created(self, key: str, when: datetime.datetime) -> None:
        meta = self.head(key)
        meta["created"] = when.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.client.copy_object(Bucket=self.bucket, Key=key, Metadata=meta,
                                CopySource={"Bucket": self.bucket, "Key": key},
                                MetadataDirective="REPLACE")

    def uploads(self) -> list[dict]:
        response = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=self.prefix + "/")
        return response.get("Uploads") or []

    def bad(self, **overrides) -> dict:
        return dict(self.store, **overrides)

    def cleanup(self) -> None:
        keys = self.keys()
        for start in range(0, len(keys), 1000):
            self.client.delete_objects(Bucket=self.bucket, Delete=dict(
                Objects=[dict(Key=k) for k in keys[start:start + 1000]]))
        for upload in self.uploads():
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                               UploadId=upload["UploadId"])


@pytest.fixture
def s3_store(lab_env, request):
    name = request.node.name.split("[")[0].replace("test_", "")[:30]
    store = S3Store(lab_env, f"it-{name}-{uuid.uuid4().hex[:6]}")
    yield store
    store.cleanup()


class BackupDb:
    def __init__(self, pair, name: str) -> None:
        self.pair = pair
        self.node = pair.east
        self.name = name
        with psycopg.connect(self.node.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with psycopg.connect(self.node.conninfo(dbname=name), autocommit=True) as conn:
            conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)")
            conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, customer_id int "
                         "REFERENCES customers(id), amount numeric NOT NULL, note text)")
            conn.execute("INSERT INTO customers SELECT i, 'customer ' || i "
                         "FROM generate_series(1, 50) i")
        self.insert_orders(200)

    def peer(self, **overrides) -> dict:
        return self.node.peer(db=self.name, **overrides)

    def insert_orders(self, count: int) -> None:
        with psycopg.connect(self.node.conninfo(dbname=self.name), autocommit=True) as conn:
            conn.execute("INSERT INTO orders (customer_id, amount, note) SELECT 1 + i %% 50, i, "
                         "md5(i::text) FROM generate_series(1, %s) i", (count,))

    def count(self, table: str, dbname: str | None = None) -> int:
        with psycopg.connect(self.node.conninfo(dbname=dbname or self.name),
                             autocommit=True) as conn:
            return conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                sql.Identifier(table))).fetchone()[0]

    def exists(self, dbname: str) -> bool:
        return bool(self.pair.scalar(self.node, "SELECT count(*) FROM pg_database WHERE datname = %s",
                                     (dbname,)))

    def drop(self, dbname: str) -> None:
        with psycopg.connect(self.node.conninfo(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(dbname)))


@pytest.fixture
def backup_db(pg_pair):
    db = BackupDb(pg_pair, f"bk_{uuid.uuid4().hex[:8]}")
    created = [db.name]
    db.created = created
    yield db
    names = pg_pair.query(pg_pair.east, "SELECT datname FROM pg_database WHERE datname LIKE %s",
                          (db.name + "%",))
    for (name,) in names or []:
        db.drop(name)


class BackupEngine:
    kinds = KINDS
    helpers: dict = {}

    @staticmethod
    def problems(env) -> list[str]:
        try:
            component(env).client().head_bucket(Bucket="backups")
        except Exception as exc:  # any failure: the S3 server is not canonical
            return [f"S3 bucket not reachable: {exc.__class__.__name__}: {exc}"]
        return []


LAB_ENGINE = BackupEngine()
