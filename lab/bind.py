"""BIND 9 in the lab: the authoritative primary of the lab zone, and a secondary fed by NOTIFY
and zone transfer, each on a non-region site of its own.

The primary takes dynamic updates (RFC 2136) signed with the TSIG key TSIG_KEY_NAME
(hmac-sha256), and only for the names the collection switches (update-policy grants exactly
SWITCHED_NAMES, types A, AAAA, CNAME); other names, such as `www`, are refused. At start every
switched name points at the first region (us-east) with TTL RECORD_TTL. The secondary transfers
the zone with a key of its own and listens on the same port at its own address, so that the
zone's NS records (ns1, ns2) lead to both: "every authoritative server answers" is a real check.

named runs as the lab's unprivileged user, in the foreground (`-g`), one worker thread, no
recursion, answering loopback only. It listens only on addresses that an interface carries, so
the lab adds the site address to `lo` (as root; `ip addr add ADDR/32 dev lo`) and removes it
when it stops the server. Lab-only secrets (servers bound to loopback).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from lab.core import Component, DebianPackage, InventoryHost, LabError

ZONE = "failsafe.lab."
# The names a failover switches (postgresql-read: where read-only clients go, moved alone by
# playbooks/postgresql_replication_lag.yml); the TSIG key may update these and nothing else.
SWITCHED_NAMES = ("postgresql", "redis", "api", "postgresql-read")
# A name of the zone the key may not update (the refusal test uses it).
STATIC_NAME = "www"
RECORD_TTL = 5
TSIG_KEY_NAME = "failsafe-lab-update"
TSIG_ALGORITHM = "hmac-sha256"
# base64 of 32 bytes; lab-only, like every lab secret.
TSIG_SECRET = "ZmFpbHNhZmUtbGFiLXRzaWctdXBkYXRlLWtleS0wMDE="
XFR_KEY_NAME = "failsafe-lab-transfer"
XFR_SECRET = "ZmFpbHNhZmUtbGFiLXpvbmUtdHJhbnNmZXIta2V5LTAwMQ=="
NAMED = "/usr/sbin/named"


def region_records(lab) -> dict:
    """failsafe_dns_records: per region, the value each switched name takes when it serves."""
    return {region: {name: address for name in SWITCHED_NAMES}
            for region, address in lab.config.regions.items()}


def bind_pair(lab) -> list["BindServer"]:
    """The primary on site dns-primary, its secondary on site dns-secondary."""
    primary = BindServer(lab, "dns-primary")
    secondary = BindServer(lab, "dns-secondary", primary=primary)
    primary.secondaries.append(secondary)
    return [primary, secondary]


def interface_addresses() -> set[str]:
    proc = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True,
                          check=False)
    return {line.split()[3].split("/")[0] for line in proc.stdout.splitlines()
            if len(line.split()) > 3}


class BindServer(Component):
    """One named; `primary` makes it a secondary of that server."""

    kind = "bind"
    default_ports = {"dns": 15353}
    packages = (DebianPackage("bind9", path=NAMED),
                DebianPackage("iproute2", path="/usr/sbin/ip"))
    secrets = (TSIG_SECRET, XFR_SECRET)
    stop_grace = 5.0

    def __init__(self, lab, site: str, instance: int = 0,
                 primary: "BindServer | None" = None) -> None:
        super().__init__(lab, site, instance)
        self.primary = primary
        self.secondaries: list[BindServer] = []

    # Paths -----------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.home / "named.conf"

    @property
    def zone_file(self) -> Path:
        return self.home / "zones" / (ZONE.rstrip(".") + ".zone")

    @property
    def address_marker(self) -> Path:
        return self.home / "address-added"

    @property
    def log_file(self) -> Path:
        return self.home / "log" / "named.log"

    # Configuration ---------------------------------------------------------------------------
    def named_conf(self) -> str:
        keys = f"""key "{XFR_KEY_NAME}" {{ algorithm hmac-sha256; secret "{XFR_SECRET}"; }};
"""
        options = f"""options {{
  directory "{self.home}";
  listen-on port {self.port} {{ {self.host}; }};
  listen-on-v6 {{ none; }};
  recursion no;
  allow-recursion {{ none; }};
  allow-query {{ 127.0.0.0/8; }};
  allow-transfer {{ none; }};
  pid-file none;
  session-keyfile none;
  dnssec-validation no;
  notify-source {self.host};
  transfer-source {self.host};
  query-source address {self.host};
  min-refresh-time 5;
  min-retry-time 5;
}};
controls {{ }};
"""
        if self.primary is None:
            grants = "\n".join(
                f"    grant {TSIG_KEY_NAME} name {name}.{ZONE} A AAAA CNAME;"
                for name in SWITCHED_NAMES)
            notify = " ".join(f"{s.host} port {s.port};" for s in self.secondaries)
            keys = f"""key "{TSIG_KEY_NAME}" {{ algorithm {TSIG_ALGORITHM}; secret "{TSIG_SECRET}"; }};
""" + keys
            zone = f"""zone "{ZONE}" {{
  type primary;
  file "{self.zone_file}";
  notify explicit;
  also-notify {{ {notify} }};
  # NOTIFY at once after every update (BIND waits up to 5 s after the previous one otherwise):
  # the secondary answers a switched name within milliseconds.
  notify-delay 0;
  allow-transfer {{ key {XFR_KEY_NAME}; }};
  update-policy {{
{grants}
  }};
}};
"""
        else:
            zone = f"""zone "{ZONE}" {{
  type secondary;
  file "{self.zone_file}";
  primaries {{ {self.primary.host} port {self.primary.port} key {XFR_KEY_NAME}; }};
  allow-notify {{ {self.primary.host}; }};
}};
"""
        return f"# Written by the failsafe lab for {self.name}.\n" + keys + options + zone

    def zone_text(self) -> str:
        first = next(iter(self.lab.config.regions.values()))
        servers = [self] + self.secondaries
        lines = [f"$ORIGIN {ZONE}", f"$TTL {RECORD_TTL}",
                 f"@ IN SOA ns1.{ZONE} hostmaster.{ZONE} 1 5 5 600 {RECORD_TTL}"]
        lines += [f"@ IN NS ns{n}.{ZONE}" for n in range(1, len(servers) + 1)]
        lines += [f"ns{n} IN A {server.host}" for n, server in enumerate(servers, 1)]
        lines += [f"{name} IN A {first}" for name in SWITCHED_NAMES + (STATIC_NAME,)]
        return "\n".join(lines) + "\n"

    # Life cycle ------------------------------------------------------------------------------
    def ensure_address(self) -> None:
        """named binds only addresses an interface carries: put the site's on lo."""
        if self.host in interface_addresses():
            return
        if not self.lab.runner.as_root:
            raise LabError(f"{self.name}: named listens only on addresses of an interface, and "
                           f"{self.host} is on none. As root the lab adds it; otherwise run "
                           f"`sudo ip addr add {self.host}/32 dev lo` once")
        subprocess.run(["ip", "addr", "add", f"{self.host}/32", "dev", "lo"], check=True,
                       capture_output=True)
        self.address_marker.write_text(self.host + "\n")

    def remove_address(self) -> None:
        if not self.address_marker.exists():
            return
        subprocess.run(["ip", "addr", "del", f"{self.host}/32", "dev", "lo"], check=False,
                       capture_output=True)
        self.address_marker.unlink(missing_ok=True)

    def up(self) -> None:
        runner = self.lab.runner
        for path in (self.home, self.zone_file.parent, self.log_file.parent):
            runner.make_dir(path)
        self.ensure_address()
        runner.write_file(self.config_file, self.named_conf())
        if self.primary is None:
            runner.write_file(self.zone_file, self.zone_text())
            for stale in self.zone_file.parent.glob("*.jnl"):
                stale.unlink()
        check = runner.run(["named-checkconf", str(self.config_file)], check=False)
        if check.returncode != 0:
            raise LabError(f"{self.name}: named-checkconf: {check.stdout}{check.stderr}")
        self.spawn([NAMED, "-g", "-4", "-n", "1", "-c", str(self.config_file)])
        self.wait_listening(timeout=20)
        self.wait_serving()

    def wait_serving(self, timeout: float = 20.0) -> None:
        """Until the zone is loaded here (a secondary: transferred from its primary)."""
        deadline = time.monotonic() + timeout
        wanted = None if self.primary is None else self.primary.serial()
        while time.monotonic() < deadline and self.running():
            serial = self.serial()
            if serial is not None and (wanted is None or serial >= wanted):
                return
            time.sleep(0.1)
        raise LabError(f"{self.name} does not serve {ZONE} after {timeout}s; see {self.log_file}")

    def serial(self) -> int | None:
        """The zone's SOA serial as this server answers it (None: no answer)."""
        import dns.exception
        import dns.message
        import dns.query

        try:
            response = dns.query.tcp(dns.message.make_query(ZONE, "SOA"), self.host,
                                     port=self.port, timeout=2)
        except (OSError, dns.exception.DNSException):
            return None
        for rrset in response.answer:
            return rrset[0].serial
        return None

    def down(self, *args, **kwargs) -> None:
        """Stop named as every component stops, then take the site address off lo."""
        try:
            super().down(*args, **kwargs)
        finally:
            self.remove_address()

    # What it shows ---------------------------------------------------------------------------
    def describe(self) -> dict:
        role = "primary" if self.primary is None else "secondary"
        return {"role": role, "serial": self.serial(),
                "detail": f"{ZONE} serial {self.serial()}"}

    def inventory_host(self) -> InventoryHost | None:
        if self.primary is not None:
            return None  # reached through the zone's NS records and failsafe_dns_nameservers
        servers = [self] + self.secondaries
        return InventoryHost("dns-primary", {
            "failsafe_dns_provider": "rfc2136",
            "failsafe_dns_server": self.host,
            "failsafe_dns_port": self.port,
            "failsafe_dns_zone": ZONE,
            "failsafe_dns_tsig_key_name": TSIG_KEY_NAME,
            "failsafe_dns_tsig_key_secret": TSIG_SECRET,
            "failsafe_dns_tsig_algorithm": TSIG_ALGORITHM,
            "failsafe_dns_nameservers": [f"{s.host}:{s.port}" for s in servers],
        }, ("dns",))

    def inventory_vars(self) -> dict:
        return {"failsafe_dns_records": region_records(self.lab)}
