"""BIND in the integration tests: the lab zone on a primary and a secondary, and independent
checks of what every server answers.

A pytest plugin (loaded by conftest.py, like every module of engines/).

dns_zone (function)
    The lab's BIND pair (kind bind) in its canonical state: every switched name (postgresql,
    redis, api, postgresql-read) and www answer the first region's address with TTL 5 on the primary and on the
    secondary. A test may leave any state: the next dns_zone restores the records with a
    dynamic update of its own (not the modules under test), or resets the servers when one does
    not answer. A `DnsZone`:
      .zone, .names, .key_name, .key_secret, .algorithm, .primary, .secondary (components)
      .conn(**over)       the modules' connection options (provider rfc2136)
      .records(region)    the records option that points every switched name at a region
      .address(region)    the region's address
      verification        (fresh dnspython questions, unsigned, recursion off, one server at a
                          time) answer(name, server) -> {ttl, values, aa}, answers(name) for
                          every server, serials(), wait_all(name, values, ttl)
      preconditions       set_records({name: address}, ttl) (a signed update of its own),
                          restore(), stop(component) (the fixture restarts it next time)
"""

from __future__ import annotations

import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.tsigkeyring
import dns.update
import pytest

from lab import bind as lab_bind

KINDS = (lab_bind.BindServer.kind,)
ZONE = lab_bind.ZONE


def components(env):
    primary, secondary = env.lab.of_kind(lab_bind.BindServer.kind)
    return primary, secondary


def label(comp) -> str:
    return f"{comp.host}:{comp.port}"


def ask(comp, name, rdtype="A", timeout=2.0):
    """What one server answers, asked directly: {ttl, values, aa, rcode} or {error}."""
    query = dns.message.make_query(name, rdtype)
    query.flags &= ~dns.flags.RD
    try:
        response = dns.query.tcp(query, comp.host, port=comp.port, timeout=timeout)
    except (OSError, dns.exception.DNSException) as exc:
        return {"error": f"{exc.__class__.__name__}: {exc}"}
    values, ttl = [], None
    for rrset in response.answer:
        if rrset.rdtype == dns.rdatatype.from_text(rdtype):
            values = sorted(r.to_text() for r in rrset)
            ttl = rrset.ttl
    return {"ttl": ttl, "values": values, "aa": bool(response.flags & dns.flags.AA),
            "rcode": dns.rcode.to_text(response.rcode())}


def canonical(env) -> dict:
    first = next(iter(env.config.regions.values()))
    return {name: first for name in lab_bind.SWITCHED_NAMES + (lab_bind.STATIC_NAME,)}


def canonical_problems(env) -> list[str]:
    problems = []
    for comp in components(env):
        if not comp.running():
            problems.append(f"{comp.name} does not run")
            continue
        for name, address in canonical(env).items():
            found = ask(comp, f"{name}.{ZONE}")
            if found.get("values") != [address] or found.get("ttl") != lab_bind.RECORD_TTL:
                problems.append(f"{comp.name}: {name} answers {found}")
    return problems


class DnsZone:
    """The lab zone and its two servers, seen and set without the modules under test."""

    def __init__(self, env) -> None:
        env.ensure_started(KINDS)
        self.env = env
        self.primary, self.secondary = components(env)
        self.zone = ZONE
        self.names = lab_bind.SWITCHED_NAMES
        self.key_name = lab_bind.TSIG_KEY_NAME
        self.key_secret = lab_bind.TSIG_SECRET
        self.algorithm = lab_bind.TSIG_ALGORITHM

    @property
    def servers(self):
        return [self.primary, self.secondary]

    def conn(self, **over) -> dict:
        args = {"provider": "rfc2136", "server": self.primary.host, "port": self.primary.port,
                "zone": self.zone, "key_name": self.key_name, "key_secret": self.key_secret,
                "key_algorithm": self.algorithm, "timeout": 3}
        args.update(over)
        return args

    def address(self, region: str) -> str:
        return self.env.config.regions[region]

    def records(self, region: str, names=None) -> list[dict]:
        return [{"name": name, "values": [self.address(region)]} for name in names or self.names]

    def fqdn(self, name: str) -> str:
        return name if name.endswith(".") else f"{name}.{self.zone}"

    # Verification
    def answer(self, name, server=None, rdtype="A") -> dict:
        return ask(server or self.primary, self.fqdn(name), rdtype)

    def answers(self, name, rdtype="A") -> dict:
        return {label(comp): ask(comp, self.fqdn(name), rdtype) for comp in self.servers}

    def serials(self) -> dict:
        result = {}
        for comp in self.servers:
            found = ask(comp, self.zone, "SOA")
            result[label(comp)] = (found.get("values") or [""])[0].split()[2:3]
        return result

    def wait_all(self, name, values, ttl=None, timeout=10.0) -> dict:
        """Until every server answers `values` (and `ttl`); returns the answers."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.answers(name)
            if all(a.get("values") == sorted(values) and (ttl is None or a.get("ttl") == ttl)
                   for a in found.values()):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"not every server answers {name} {values}: {found}")
            time.sleep(0.05)

    # Preconditions
    def set_records(self, addresses: dict, ttl: int = lab_bind.RECORD_TTL) -> None:
        """Replace records with a signed update of our own, then wait for the secondary."""
        keyring = dns.tsigkeyring.from_text({self.key_name: self.key_secret})
        update = dns.update.Update(self.zone, keyring=keyring, keyname=self.key_name,
                                   keyalgorithm=self.algorithm)
        for name, address in addresses.items():
            update.replace(self.fqdn(name), ttl, "A", address)
        response = dns.query.tcp(update, self.primary.host, port=self.primary.port, timeout=5)
        assert response.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(response.rcode())
        for name, address in addresses.items():
            self.wait_all(name, [address], ttl)

    def restore(self) -> None:
        """Every switched name back at the first region (www is never changed by updates)."""
        first = next(iter(self.env.config.regions.values()))
        self.set_records({name: first for name in self.names})

    def stop(self, comp) -> None:
        """Stop one server; the next dns_zone fixture starts it again."""
        comp.down()
        assert not comp.running()


@pytest.fixture
def dns_zone(lab_env):
    """The lab zone in its canonical state (restored by an update, or the servers reset)."""
    zone = DnsZone(lab_env)
    if canonical_problems(lab_env):
        if all(comp.running() for comp in zone.servers):
            try:
                zone.restore()
            except (AssertionError, OSError, dns.exception.DNSException):
                pass
        lab_env.ensure_canonical()
    return zone


class DnsEngine:
    """What conftest.py's LabEnv needs to know about BIND (see its docstring)."""

    kinds = KINDS
    problems = staticmethod(canonical_problems)
    helpers = {"dns_zone": DnsZone}


LAB_ENGINE = DnsEngine()
