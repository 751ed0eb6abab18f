"""A Route 53 API EMULATOR in the lab: moto_server (PyPI `moto[server]`), not AWS.

It answers the Route 53 API (hosted zones, record sets, changes) on a non-region site of its
own; at start it holds the hosted zone ZONE with the same records as the lab's BIND zone. It
serves no DNS (its name servers are invented), it applies every change at once (INSYNC
immediately) and it accepts things AWS rejects (CREATE of an existing record): the tests use it
to drive amazon.aws.route53 and the collection's modules through the API, never to prove AWS's
behaviour. It records every request it receives (moto's recorder, /moto-api/recorder/), which
is how the tests prove that check mode sends no change.

It runs as the user who starts the lab, not as the lab's user: it is the virtualenv's Python,
which the lab's user may not be able to execute (a virtualenv under /root). Bound to loopback.
"""

from __future__ import annotations

import os
import sys
import time

from lab.bind import RECORD_TTL, STATIC_NAME, SWITCHED_NAMES, ZONE
from lab.core import Component, InventoryHost, LabError

ACCESS_KEY = "failsafe-lab-access"
SECRET_KEY = "failsafe-lab-route53-secret"


class Route53Emulator(Component):
    """moto_server with the lab's hosted zone."""

    kind = "route53_emulator"
    default_ports = {"api": 15380}
    secrets = (SECRET_KEY,)
    stop_grace = 5.0

    @property
    def name(self) -> str:
        return "route53-emulator"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def recording(self):
        return self.home / "requests.jsonl"

    def client(self, attempts: int = 3):
        import boto3
        from botocore.config import Config

        return boto3.client("route53", endpoint_url=self.endpoint_url, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            config=Config(retries={"max_attempts": attempts}))

    def up(self) -> None:
        try:
            import moto.server  # noqa: F401  (only to say what is missing)
        except ImportError:
            raise LabError(f"{self.name} needs moto_server: pip install 'moto[server]' "
                           "(requirements-dev.txt)")
        for path in (self.home, self.log_file.parent):
            path.mkdir(parents=True, exist_ok=True)
        env = {"MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(self.recording),
               # No AWS credentials of the shell reach it, nor any other endpoint.
               "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        self.spawn_as_invoker([sys.executable, "-m", "moto.server", "-H", self.host,
                               "-p", str(self.port)], env)
        self.wait_listening(timeout=30)
        self.create_zone_when_serving()

    def create_zone_when_serving(self, timeout: float = 30.0) -> None:
        """Create the zone once the emulator answers (a loaded machine can accept connections
        before the application serves); a server that exited is reported with its log."""
        from botocore.exceptions import EndpointConnectionError

        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise LabError(f"{self.name} exited while starting; see {self.log_file}:\n"
                               + self.log_tail())
            try:
                self.create_zone()
                return
            except EndpointConnectionError:
                if time.monotonic() > deadline:
                    raise LabError(f"{self.name} does not answer on {self.endpoint_url}; "
                                   f"see {self.log_file}")
                time.sleep(0.2)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def spawn_as_invoker(self, argv: list[str], env: dict) -> int:
        import subprocess

        with open(self.log_file, "ab") as log:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                    stderr=subprocess.STDOUT, cwd=str(self.home),
                                    env=dict(os.environ, **env), start_new_session=True)
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def create_zone(self) -> str:
        client = self.client(attempts=1)
        zones = [z for z in client.list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"]
                 if z["Name"] == ZONE]  # a retried start finds the zone it made
        zone_id = zones[0]["Id"] if zones else client.create_hosted_zone(
            Name=ZONE, CallerReference=f"failsafe-lab-{time.time()}")["HostedZone"]["Id"]
        first = next(iter(self.lab.config.regions.values()))
        client.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
            {"Action": "UPSERT", "ResourceRecordSet": {
                "Name": f"{name}.{ZONE}", "Type": "A", "TTL": RECORD_TTL,
                "ResourceRecords": [{"Value": first}]}}
            for name in SWITCHED_NAMES + (STATIC_NAME,)]})
        return zone_id

    def describe(self) -> dict:
        zones = self.client().list_hosted_zones_by_name(DNSName=ZONE)["HostedZones"]
        return {"role": "emulator",
                "detail": f"Route 53 emulator, zones: {', '.join(z['Id'] for z in zones)}"}

    def inventory_host(self) -> InventoryHost:
        return InventoryHost("route53-emulator", {
            "failsafe_dns_provider": "route53",
            "failsafe_dns_zone": ZONE,
            "failsafe_route53_endpoint_url": self.endpoint_url,
            "failsafe_route53_access_key": ACCESS_KEY,
            "failsafe_route53_secret_key": SECRET_KEY,
            # The emulator serves no DNS: verify through the API only.
            "failsafe_route53_query_nameservers": False,
        }, ("dns",))

    def inventory_vars(self) -> dict:
        from lab.bind import region_records

        return {"failsafe_dns_records": region_records(self.lab)}
