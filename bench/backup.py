"""python -m bench --only backup: backup, restore and checksum verification throughput, the
collection against the runbook's hand pipeline, in the same run on the same database.

A bench lab of its own (FAILSAFE_LAB_DIR=/var/tmp/failsafe-bench-backup-lab, regions
127.0.9.1/127.0.10.1, ports +500, only the PostgreSQL pair and SeaweedFS) with a database of poorly
compressible rows (random bytea + md5 text, as in the field notes; pgbench data compresses 56x
and would hide the cost of compression). For each of two sizes (default ~1 GB and ~250 MB):

  backup   hand: pg_dump -Fc | upload from stdin (boto3 upload_fileobj, as `aws s3 cp -`)
           collection: backup_postgresql (pg_dump -Fc -Z0 | zstd -T2 -1 | multipart, SHA-256
           in-process)
  restore  hand: download the dump to a file (boto3 download_file, as `aws s3 cp`), then
           pg_restore -j 2 into a new database
           collection: restore_postgresql (download + SHA-256 + zstd -d into a file,
           pg_restore -j 2 into a staging database, rename), and again with stream: true
           (S3 -> zstd -d -> pg_restore in one stream, one job, no file)
  verify   sha256sum of the dump file (local, the runbook's tool), download + sha256sum, and
           backup_verify (re-read from S3, SHA-256 in-process); also hashlib alone on the same
           local file (the hash engine the modules use, without the S3 read), then the S3 read
           alone (GET, bytes thrown away: the server's ceiling) and backup_verify once more

Before each measured step: CHECKPOINT and sync, so that no step pays for the writeback of the
previous one. Throughput is database bytes (pg_database_size) per second for backup and
restore, object bytes per second for verification. Peak RSS: the largest process of the
collection's backup (module Python, pg_dump or zstd; os.wait4 on the module process), for both
sizes.
The modules run as the playbooks run them (their own process, arguments as JSON), without the
ansible-playbook start-up, which is the same for both sides and not what is compared.
JSON: bench/results/backup.json (no absolute paths of this machine).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.common import loadavg, log, now_iso, write_json

LAB_DIR = "/var/tmp/failsafe-bench-backup-lab"
LAB_REGIONS = "us-east=127.0.9.1,us-west=127.0.10.1"
REPO = Path(__file__).resolve().parent.parent
ROW_PAYLOAD = 1000  # random bytes per row

TARGETS = {"backup_ratio_at_least": 5.0, "restore_ratio_at_least": 1.0,
           "verify_ratio_over_sha256sum_at_least": 3.0}


def configure_env() -> None:
    os.environ["FAILSAFE_LAB_DIR"] = LAB_DIR
    os.environ["FAILSAFE_LAB_REGIONS"] = LAB_REGIONS
    # SeaweedFS names its gRPC unix sockets in /tmp by port only: ports of no other lab.
    os.environ["FAILSAFE_LAB_PORT_OFFSET"] = "500"
    os.environ["FAILSAFE_LAB_PORT_SCAN"] = "1"


def fill(conninfo: str, rows: int) -> None:
    """rows of (id, random bytea, md5 text), by COPY; then a primary key and ANALYZE."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS items")
        conn.execute("CREATE TABLE items (id bigint, payload bytea, note text)")
        with conn.cursor() as cur:
            with cur.copy("COPY items (id, payload, note) FROM STDIN") as copy:
                batch = []
                for number in range(rows):
                    payload = os.urandom(ROW_PAYLOAD)
                    note = hashlib.md5(payload).hexdigest()
                    batch.append("%d\t\\\\x%s\t%s\n" % (number, payload.hex(), note))
                    if len(batch) == 2000:
                        copy.write("".join(batch))
                        batch = []
                if batch:
                    copy.write("".join(batch))
        conn.execute("ALTER TABLE items ADD PRIMARY KEY (id)")
        conn.execute("VACUUM ANALYZE items")


def quiesce(admin: str) -> None:
    """Flush PostgreSQL's dirty buffers and the kernel's dirty pages before a measurement."""
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
    os.sync()


def run_module(name: str, args: dict) -> tuple[dict, float, int]:
    """Run a collection module in its own process; (result, seconds, peak RSS bytes)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    code = ("import sys, runpy; sys.path.insert(0, %r); "
            "runpy.run_module('ansible_collections.failsafe.datastores.plugins.modules.%s', "
            "run_name='__main__')" % (str(REPO / "collections"), name))
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", code, handle.name], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    out, err = b"", b""
    # communicate, then wait4 for the rusage (the process is waited for once, here).
    out = proc.stdout.read()
    err = proc.stderr.read()
    _pid, _status, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    seconds = time.monotonic() - started
    os.unlink(handle.name)
    try:
        result = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"{name} printed no result: {out[-2000:]!r} {err[-2000:]!r}")
    if result.get("failed"):
        raise RuntimeError(f"{name} failed: {result.get('msg')}")
    return result, seconds, usage.ru_maxrss * 1024


def timed(argv, env=None, shell_pipe=None) -> float:
    started = time.monotonic()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - started


HAND_UPLOAD = """
import sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id=sys.argv[2],
                  aws_secret_access_key=sys.argv[3], region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}))
if sys.argv[4] == "up":
    s3.upload_fileobj(sys.stdin.buffer, sys.argv[5], sys.argv[6])
elif sys.argv[4] == "down":
    s3.download_file(sys.argv[5], sys.argv[6], sys.argv[7])
else:  # read: GET and discard, no hashing; prints the seconds after start-up
    import time
    started = time.monotonic()
    body = s3.get_object(Bucket=sys.argv[5], Key=sys.argv[6])["Body"]
    while body.read(4 << 20):
        pass
    print(time.monotonic() - started)
"""


def measure_size(lab, rows: int, work: Path) -> dict:
    import psycopg

    from lab.postgresql import ADMIN_PASSWORD

    primary = lab.component("postgresql-us-east")
    s3c = lab.of_kind("seaweedfs")[0]
    keys = s3c.inventory_vars()
    store = dict(endpoint_url=s3c.endpoint_url, bucket=keys["failsafe_s3_bucket"],
                 prefix=f"bench-{rows}", access_key=keys["failsafe_s3_access_key"],
                 secret_key=keys["failsafe_s3_secret_key"], read_timeout=300)
    db = "bench_backup"
    admin = primary.conninfo()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {db}")
    log(f"filling {db} with {rows} rows of {ROW_PAYLOAD} random bytes + md5 text")
    t0 = time.monotonic()
    fill(primary.conninfo(dbname=db), rows)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        db_bytes = conn.execute("SELECT pg_database_size(%s)", (db,)).fetchone()[0]
    log(f"database {db_bytes / 1e6:.0f} MB in {time.monotonic() - t0:.0f} s")
    peer = dict(host=primary.host, port=primary.port, user="postgres", password=ADMIN_PASSWORD,
                db=db, ssl_mode="verify-full", ca_cert=str(primary.ca_cert))
    env = dict(os.environ, PGHOST=primary.host, PGPORT=str(primary.port), PGUSER="postgres",
               PGPASSWORD=ADMIN_PASSWORD, PGSSLMODE="verify-full",
               PGSSLROOTCERT=str(primary.ca_cert))
    pg_bin = primary.bindir
    hand_key = f"bench-{rows}/hand/{db}.dump"
    up = [sys.executable, "-c", HAND_UPLOAD, s3c.endpoint_url, store["access_key"],
          store["secret_key"]]

    # Backup: hand pipeline
    log("backup, hand pipeline: pg_dump -Fc | upload")
    started = time.monotonic()
    dump = subprocess.Popen([str(pg_bin / "pg_dump"), "-Fc", "-d", db], stdout=subprocess.PIPE,
                            env=env)
    subprocess.run(up + ["up", store["bucket"], hand_key], stdin=dump.stdout, check=True)
    dump.stdout.close()
    if dump.wait() != 0:
        raise RuntimeError("hand pg_dump failed")
    hand_backup_s = time.monotonic() - started
    hand_bytes = s3c.client().head_object(Bucket=store["bucket"], Key=hand_key)["ContentLength"]

    # Backup: the collection
    quiesce(admin)
    log("backup, the collection: backup_postgresql")
    ours, ours_backup_s, ours_rss = run_module("backup_postgresql", dict(
        source=peer, store=store, record_counts=False))
    ours_bytes = ours["backup"]["size_bytes"]

    # Restore, hand: download to a file, then (after the verification below, which needs the
    # file) pg_restore -j 2 into a new database; its time is the download plus the pg_restore.
    dump_file = work / f"{db}.dump"
    log("restore, hand: download")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db}_hand WITH (FORCE)")
    started = time.monotonic()
    subprocess.run(up + ["down", store["bucket"], hand_key, str(dump_file)], check=True)
    download_s = time.monotonic() - started

    # Verification: sha256sum of the local dump; download + sha256sum; backup_verify. All three
    # on a quiet machine: the writeback of the backups and of the download is done first (a
    # restore's checkpoint running beside one of them, and not the others, skewed the ratio).
    log("verify: sha256sum, download + sha256sum, backup_verify")
    quiesce(admin)
    sha_local_s = timed(["sha256sum", str(dump_file)])
    # The hash engine alone, on the same file (page cache): hashlib as the modules use it.
    started = time.monotonic()
    digest = hashlib.sha256()
    with open(dump_file, "rb") as handle:
        for block in iter(lambda: handle.read(4 << 20), b""):
            digest.update(block)
    hashlib_local_s = time.monotonic() - started
    hand_verify_s = download_s + sha_local_s
    verified, ours_verify_s, _rss = run_module("backup_verify", dict(
        store=store, engines=["postgresql"]))
    module_verify_s = verified["timings"]["verify"]
    # The S3 server's ceiling: the same object read and thrown away (no hashing, no writing),
    # then backup_verify once more, so that the two reads compare under the same conditions.
    read_only = subprocess.run(up + ["read", store["bucket"], ours["backup"]["key"]],
                               check=True, capture_output=True, text=True)
    read_only_s = float(read_only.stdout.strip().splitlines()[-1])
    verified_again, _s, _rss = run_module("backup_verify", dict(
        store=store, engines=["postgresql"]))
    module_verify_again_s = verified_again["timings"]["verify"]

    quiesce(admin)
    log("restore, hand: pg_restore -j 2")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}_hand")
    started = time.monotonic()
    subprocess.run([str(pg_bin / "pg_restore"), "-j", "2", "-d", f"{db}_hand", str(dump_file)],
                   env=env, check=True)
    hand_restore_s = download_s + time.monotonic() - started
    dump_file.unlink()

    # Restore: the collection
    quiesce(admin)
    log("restore, the collection: restore_postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db}_ours WITH (FORCE)")
    restored, ours_restore_s, _rss = run_module("restore_postgresql", dict(
        target=dict(peer, db="postgres"), store=store, database=f"{db}_ours", jobs=2,
        work_dir=str(work)))

    # Restore: the collection, streamed (stream: true, one pg_restore job, no local copy)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db}_ours WITH (FORCE)")
    quiesce(admin)
    log("restore, the collection streamed: restore_postgresql stream=true")
    streamed, ours_stream_s, _rss = run_module("restore_postgresql", dict(
        target=dict(peer, db="postgres"), store=store, database=f"{db}_ours", stream=True))
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in (f"{db}_hand", f"{db}_ours", db):
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    s3 = s3c.client()
    for item in s3.list_objects_v2(Bucket=store["bucket"], Prefix=store["prefix"] + "/").get(
            "Contents") or []:
        s3.delete_object(Bucket=store["bucket"], Key=item["Key"])

    def mbs(size, seconds):
        return round(size / 1e6 / seconds, 1)

    return {
        "rows": rows,
        "database_bytes": db_bytes,
        "backup": {
            "hand": {"seconds": round(hand_backup_s, 2), "stored_bytes": hand_bytes,
                     "database_mb_s": mbs(db_bytes, hand_backup_s)},
            "collection": {"seconds": round(ours_backup_s, 2), "stored_bytes": ours_bytes,
                           "database_mb_s": mbs(db_bytes, ours_backup_s),
                           "module_timings": ours["timings"],
                           "peak_rss_bytes": ours_rss},
            "ratio": round(hand_backup_s / ours_backup_s, 2),
        },
        "restore": {
            "hand": {"seconds": round(hand_restore_s, 2), "download_seconds": round(download_s, 2),
                     "database_mb_s": mbs(db_bytes, hand_restore_s)},
            "collection": {"seconds": round(ours_restore_s, 2),
                           "database_mb_s": mbs(db_bytes, ours_restore_s),
                           "options": "jobs: 2 (the default: a local file, pg_restore -j 2)",
                           "module_timings": restored["timings"]},
            "ratio": round(hand_restore_s / ours_restore_s, 2),
            "collection_streamed": {"seconds": round(ours_stream_s, 2),
                                    "database_mb_s": mbs(db_bytes, ours_stream_s),
                                    "options": "stream: true (no local copy, one pg_restore job)",
                                    "module_timings": streamed["timings"]},
            "ratio_streamed": round(hand_restore_s / ours_stream_s, 2),
        },
        "verify": {
            "object_bytes": ours_bytes,
            "sha256sum_local_file": {"seconds": round(sha_local_s, 3), "bytes": hand_bytes,
                                     "mb_s": mbs(hand_bytes, sha_local_s)},
            "hashlib_local_file": {"seconds": round(hashlib_local_s, 3),
                                   "mb_s": mbs(hand_bytes, hashlib_local_s)},
            "ratio_hashlib_over_sha256sum": round(sha_local_s / hashlib_local_s, 2),
            "hand_download_and_sha256sum": {"seconds": round(hand_verify_s, 3),
                                            "mb_s": mbs(hand_bytes, hand_verify_s)},
            "collection_backup_verify": {"seconds": round(module_verify_s, 3),
                                         "process_seconds": round(ours_verify_s, 3),
                                         "mb_s": mbs(ours_bytes, module_verify_s)},
            "ratio_over_sha256sum": round(mbs(ours_bytes, module_verify_s)
                                          / mbs(hand_bytes, sha_local_s), 2),
            "s3_read_only": {"seconds": round(read_only_s, 3),
                             "mb_s": mbs(ours_bytes, read_only_s),
                             "what": "GET of the same object, bytes thrown away: the S3 "
                                     "server's ceiling for any verification"},
            "s3_read_only_ratio_over_sha256sum": round(
                mbs(ours_bytes, read_only_s) / mbs(hand_bytes, sha_local_s), 2),
            "collection_backup_verify_again": {"seconds": round(module_verify_again_s, 3),
                                               "mb_s": mbs(ours_bytes, module_verify_again_s)},
            "verify_again_share_of_s3_read_only": round(read_only_s / module_verify_again_s, 2),
            "ratio_over_download_and_sha256sum": round(
                mbs(ours_bytes, module_verify_s) / mbs(hand_bytes, hand_verify_s), 2),
        },
    }


def run(args) -> int:
    configure_env()
    from lab.topology import make_lab

    started_at = now_iso()
    lab = make_lab()
    work = Path(tempfile.mkdtemp(prefix="failsafe-bench-backup-", dir="/var/tmp"))
    sizes = [args.backup_rows, args.backup_rows // 4]
    ok = False
    result = {"benchmark": "backup and restore throughput, collection vs hand pipeline",
              "timestamp": started_at, "status": "incomplete"}
    try:
        log(f"fresh backup bench lab in {LAB_DIR} ({LAB_REGIONS})")
        lab.down()
        lab.up(["postgresql", "seaweedfs"])
        result["loadavg_1_5_15_at_start"] = loadavg()
        runs = [measure_size(lab, rows, work) for rows in sizes]
        big, small = runs
        result.update({
            "status": "complete",
            "data": f"table items(id bigint primary key, payload bytea of {ROW_PAYLOAD} random "
                    "bytes, note text md5 of it)",
            "lab": {"regions": LAB_REGIONS, "components": ["postgresql pair", "seaweedfs"]},
            "runs": runs,
            "targets": dict(TARGETS, **{
                "backup_ratio": big["backup"]["ratio"],
                "backup_met": big["backup"]["ratio"] >= TARGETS["backup_ratio_at_least"],
                "restore_ratio": big["restore"]["ratio"],
                "restore_met": big["restore"]["ratio"] >= TARGETS["restore_ratio_at_least"],
                "restore_ratio_streamed": big["restore"]["ratio_streamed"],
                "restore_streamed_met": big["restore"]["ratio_streamed"]
                >= TARGETS["restore_ratio_at_least"],
                "verify_ratio_over_sha256sum": big["verify"]["ratio_over_sha256sum"],
                "verify_met": big["verify"]["ratio_over_sha256sum"]
                >= TARGETS["verify_ratio_over_sha256sum_at_least"],
                "verify_ratio_over_download_and_sha256sum": big["verify"][
                    "ratio_over_download_and_sha256sum"],
                "verify_s3_read_only_ratio_over_sha256sum": big["verify"][
                    "s3_read_only_ratio_over_sha256sum"],
                "peak_rss_bytes": {str(r["database_bytes"]): r["backup"]["collection"][
                    "peak_rss_bytes"] for r in runs},
                "peak_rss_ratio_large_over_small": round(
                    big["backup"]["collection"]["peak_rss_bytes"]
                    / small["backup"]["collection"]["peak_rss_bytes"], 2),
            }),
            "loadavg_1_5_15_at_end": loadavg(),
        })
        write_json(args.results_dir / "backup.json", result)
        log(f"wrote {args.results_dir / 'backup.json'}")
        ok = True
    except Exception:  # noqa: BLE001 - report, stop the lab
        traceback.print_exc()
    finally:
        log("stopping the backup bench lab")
        try:
            lab.down()
        except Exception as exc:  # noqa: BLE001
            log(f"lab down failed: {exc}")
        shutil.rmtree(work, ignore_errors=True)
    if ok:
        print_table(result)
    return 0 if ok else 1


def print_table(result: dict) -> None:
    print("\nBackup / restore / verify (MB/s of database; verify: MB/s of object)")
    for r in result["runs"]:
        b, s, v = r["backup"], r["restore"], r["verify"]
        print(f"  database {r['database_bytes'] / 1e6:.0f} MB")
        print(f"    backup   hand {b['hand']['database_mb_s']:>7}  collection "
              f"{b['collection']['database_mb_s']:>7}  ratio {b['ratio']}  "
              f"(peak RSS {b['collection']['peak_rss_bytes'] / 1e6:.0f} MB)")
        print(f"    restore  hand {s['hand']['database_mb_s']:>7}  collection "
              f"{s['collection']['database_mb_s']:>7}  ratio {s['ratio']}; streamed "
              f"{s['collection_streamed']['database_mb_s']:>7}  ratio {s['ratio_streamed']}")
        print(f"    verify   sha256sum {v['sha256sum_local_file']['mb_s']:>7}  download+sha256sum "
              f"{v['hand_download_and_sha256sum']['mb_s']:>7}  collection "
              f"{v['collection_backup_verify']['mb_s']:>7}  ratio/sha256sum "
              f"{v['ratio_over_sha256sum']} (hash engine alone: hashlib "
              f"{v['hashlib_local_file']['mb_s']}, {v['ratio_hashlib_over_sha256sum']}x)")
        print(f"             S3 read alone (the server's ceiling) {v['s3_read_only']['mb_s']:>7} "
              f"= {v['s3_read_only_ratio_over_sha256sum']}x sha256sum; collection again "
              f"{v['collection_backup_verify_again']['mb_s']:>7} "
              f"({v['verify_again_share_of_s3_read_only']:.0%} of the read alone)")
    t = result["targets"]
    print(f"  targets: backup >= 5x {'MET' if t['backup_met'] else 'NOT MET'}, restore >= 1x "
          f"{'MET' if t['restore_met'] else 'NOT MET'} (streamed "
          f"{'MET' if t['restore_streamed_met'] else 'NOT MET'}), verify >= 3x sha256sum "
          f"{'MET' if t['verify_met'] else 'NOT MET'}; peak RSS large/small "
          f"{t['peak_rss_ratio_large_over_small']}")
