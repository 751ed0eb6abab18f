"""The Route 53 API EMULATOR (moto_server) in the integration tests: its hosted zone, what it
holds, and every request it received.

A pytest plugin (loaded by conftest.py, like every module of engines/). The emulator is not AWS:
it applies every change at once (INSYNC) and accepts some changes AWS rejects; no test relies on
either. What it does prove: which API calls the modules made, and with what effect.

route53_emulator (function)
    The emulator (kind route53_emulator) with every switched name and www at the first region's
    address, TTL 5 (restored through the API before each test), and its request recording
    emptied. A `Route53EmulatorZone`:
      .endpoint_url, .zone, .zone_id, .names, .conn(**over) (the DNS modules' options,
      provider route53), .route53_args(**over) (amazon.aws.route53's connection options),
      .records(region), .address(region)
      .read(name) -> {ttl, values} or None (through boto3, not the modules)
      .requests() every API request since the fixture (method, path, action), without the
                  recorder's own; .mutating() those that change something (POST/DELETE/PUT)
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from lab import bind as lab_bind
from lab import route53_emulator as lab_r53

KINDS = (lab_r53.Route53Emulator.kind,)
API_PREFIX = "/2013-04-01/"


def emulator(env):
    return env.lab.of_kind(lab_r53.Route53Emulator.kind)[0]


def canonical(env) -> dict:
    first = next(iter(env.config.regions.values()))
    return {name: first for name in lab_bind.SWITCHED_NAMES + (lab_bind.STATIC_NAME,)}


class Route53EmulatorZone:
    def __init__(self, env) -> None:
        env.ensure_started(KINDS)
        self.env = env
        self.component = emulator(env)
        self.endpoint_url = self.component.endpoint_url
        self.zone = lab_bind.ZONE
        self.names = lab_bind.SWITCHED_NAMES
        self.client = self.component.client()
        zones = self.client.list_hosted_zones_by_name(DNSName=self.zone)["HostedZones"]
        self.zone_id = zones[0]["Id"].split("/")[-1]

    def conn(self, **over) -> dict:
        args = {"provider": "route53", "zone": self.zone, "endpoint_url": self.endpoint_url,
                "access_key": lab_r53.ACCESS_KEY, "secret_key": lab_r53.SECRET_KEY,
                "timeout": 3}
        args.update(over)
        return args

    def route53_args(self, **over) -> dict:
        args = {"endpoint_url": self.endpoint_url, "access_key": lab_r53.ACCESS_KEY,
                "secret_key": lab_r53.SECRET_KEY}
        args.update(over)
        return args

    def address(self, region: str) -> str:
        return self.env.config.regions[region]

    def records(self, region: str, names=None) -> list[dict]:
        return [{"name": name, "values": [self.address(region)]} for name in names or self.names]

    def fqdn(self, name: str) -> str:
        return name if name.endswith(".") else f"{name}.{self.zone}"

    def read(self, name) -> dict | None:
        found = self.client.list_resource_record_sets(
            HostedZoneId=self.zone_id, StartRecordName=self.fqdn(name), StartRecordType="A",
            MaxItems="1")["ResourceRecordSets"]
        if not found or found[0]["Name"] != self.fqdn(name) or found[0]["Type"] != "A":
            return None
        return {"ttl": found[0].get("TTL"),
                "values": sorted(r["Value"] for r in found[0]["ResourceRecords"])}

    def set_records(self, addresses: dict, ttl: int = lab_bind.RECORD_TTL) -> None:
        self.client.change_resource_record_sets(HostedZoneId=self.zone_id, ChangeBatch={
            "Changes": [{"Action": "UPSERT", "ResourceRecordSet": {
                "Name": self.fqdn(name), "Type": "A", "TTL": ttl,
                "ResourceRecords": [{"Value": address}]}} for name, address in addresses.items()]})

    def restore(self) -> None:
        self.set_records(canonical(self.env))

    # The emulator's request recording
    def _recorder(self, action: str) -> bytes:
        method = "GET" if action == "download-recording" else "POST"
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/recorder/{action}",
                                         method=method)
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.read()

    def forget_requests(self) -> None:
        self._recorder("reset-recording")

    def requests(self) -> list[dict]:
        found = []
        for line in self._recorder("download-recording").decode().splitlines():
            entry = json.loads(line)
            path = entry["url"].split("://", 1)[-1].split("/", 1)[-1]
            path = "/" + path.split("?", 1)[0]
            if not path.startswith(API_PREFIX):
                continue
            found.append({"method": entry["method"], "path": path})
        return found

    def mutating(self) -> list[dict]:
        return [r for r in self.requests() if r["method"] in ("POST", "PUT", "DELETE", "PATCH")]


def canonical_problems(env) -> list[str]:
    comp = emulator(env)
    if not comp.running():
        return [f"{comp.name} does not run"]
    try:
        zone = Route53EmulatorZone(env)
        return [f"{name} is {zone.read(name)}" for name, address in canonical(env).items()
                if zone.read(name) != {"ttl": lab_bind.RECORD_TTL, "values": [address]}]
    except Exception as exc:  # an emulator that does not answer is reset
        return [repr(exc)]


@pytest.fixture
def route53_emulator(lab_env):
    """The emulator's zone in its canonical state, with an empty request recording."""
    lab_env.ensure_started(KINDS)
    # amazon.aws modules insist on a region, even for the global Route 53 (FIELD-NOTES).
    lab_env.envvars.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if emulator(lab_env).running():
        try:
            Route53EmulatorZone(lab_env).restore()
        except Exception:  # pylint: disable=broad-except  # ensure_canonical resets it
            pass
    lab_env.ensure_canonical()
    zone = Route53EmulatorZone(lab_env)
    zone.forget_requests()
    return zone


class Route53EmulatorEngine:
    kinds = KINDS
    problems = staticmethod(canonical_problems)
    helpers = {"route53_emulator": Route53EmulatorZone}


LAB_ENGINE = Route53EmulatorEngine()
