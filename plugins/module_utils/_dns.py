# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared DNS helpers: one interface for two providers (RFC 2136 servers such as BIND, and
Route 53), record normalisation, change planning, the no-change rights probe and the check that
every authoritative server answers the new values.

Private to the collection (leading underscore): modules import it, users do not.

Providers: `Rfc2136Provider` (dnspython) and `Route53Provider` (boto3) both offer
`zone_info()`, `read(name, rdtype)`, `probe(name, rdtype, current)`, `apply(changes)` (every
change in one atomic step: one RFC 2136 UPDATE message, one Route 53 ChangeBatch) and
`describe()`; `provider_from_params()` builds the one the module's `provider` option names.
`Agreement` asks every authoritative server until all answer the new records (dns_verify and
dns_update).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import socket
import time
import traceback

DNSPYTHON_IMPORT_ERROR = None
try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdatatype
    import dns.tsig
    import dns.tsigkeyring
    import dns.update

    HAS_DNSPYTHON = True
except ImportError:  # pragma: no cover - exercised by missing_required_lib
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_ERROR = traceback.format_exc()

BOTO3_IMPORT_ERROR = None
try:
    import boto3
    import botocore.config
    import botocore.exceptions

    HAS_BOTO3 = True
except ImportError:  # pragma: no cover - exercised by missing_required_lib
    HAS_BOTO3 = False
    BOTO3_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import missing_required_lib

PROVIDERS = ("rfc2136", "route53")
TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1",
                   "hmac-md5")
RECORD_TYPES = ("A", "AAAA", "CNAME")

# Options shared by the DNS modules (doc fragment failsafe.datastores.dns).
CONNECTION_SPEC = dict(
    provider=dict(type="str", default="rfc2136", choices=list(PROVIDERS)),
    zone=dict(type="str", required=True),
    server=dict(type="str"),
    port=dict(type="int", default=53),
    key_name=dict(type="str"),
    key_secret=dict(type="str", no_log=True),
    key_algorithm=dict(type="str", default="hmac-sha256", choices=list(TSIG_ALGORITHMS)),
    protocol=dict(type="str", default="tcp", choices=["tcp", "udp"]),
    timeout=dict(type="float", default=5),
    hosted_zone_id=dict(type="str"),
    endpoint_url=dict(type="str"),
    access_key=dict(type="str", no_log=True),
    secret_key=dict(type="str", no_log=True),
    session_token=dict(type="str", no_log=True),
    aws_region=dict(type="str", default="us-east-1"),
)

RECORD_SPEC = dict(
    name=dict(type="str", required=True),
    type=dict(type="str", choices=list(RECORD_TYPES)),
    values=dict(type="list", elements="str"),
    ttl=dict(type="int"),
)

# The records and how to plan them (doc fragment failsafe.datastores.dns.PLAN): dns_preflight
# and dns_update.
PLAN_SPEC = dict(
    records=dict(type="list", elements="dict", required=True, options=dict(RECORD_SPEC)),
    ttl=dict(type="int"),
    max_ttl=dict(type="int"),
    default_ttl=dict(type="int", default=60),
    keep_values=dict(type="bool", default=False),
)

# Which servers must agree, and how long to wait (doc fragment failsafe.datastores.dns.WAIT):
# dns_verify and dns_update.
WAIT_SPEC = dict(
    nameservers=dict(type="list", elements="str", default=[]),
    query_nameservers=dict(type="bool", default=True),
    wait_timeout=dict(type="float", default=60),
)

CONNECTION_REQUIRED_IF = [("provider", "rfc2136", ["server"])]
CONNECTION_REQUIRED_TOGETHER = [("key_name", "key_secret"), ("access_key", "secret_key")]


class DnsError(Exception):
    """A failure already phrased for the operator: what was found and what to do.

    `kind` says what went wrong, so that callers and tests never parse the text: `unreachable`
    (no server answers there), `key` (the server rejected the TSIG key or the credentials),
    `rights` (a live server refused the change for this name), `zone` (the zone is not there),
    `changed` (the records changed while we looked), `record` (a record we cannot handle),
    `input` (bad arguments).
    """

    def __init__(self, msg, kind="error"):
        super(DnsError, self).__init__(msg)
        self.kind = kind


def ensure_libraries(module):
    provider = module.params.get("provider") or "rfc2136"
    if not HAS_DNSPYTHON:
        module.fail_json(msg=missing_required_lib("dnspython"), exception=DNSPYTHON_IMPORT_ERROR)
    if provider == "route53" and not HAS_BOTO3:
        module.fail_json(msg=missing_required_lib("boto3"), exception=BOTO3_IMPORT_ERROR)


# Names, values, types (pure) ------------------------------------------------------------------

def absolute_zone(zone):
    zone = (zone or "").strip().lower()
    if not zone or zone == ".":
        raise DnsError("zone must name a zone, such as failsafe.lab", "input")
    return zone if zone.endswith(".") else zone + "."


def absolute_name(name, zone):
    """`postgresql` or `postgresql.failsafe.lab[.]` -> `postgresql.failsafe.lab.`; a name outside
    the zone is refused (it cannot be changed through this zone)."""
    zone = absolute_zone(zone)
    name = (name or "").strip().lower()
    if not name:
        raise DnsError("a record has an empty name", "input")
    if name in ("@", zone, zone.rstrip(".")):
        return zone
    if name.endswith("."):
        fqdn = name
    elif name.endswith("." + zone.rstrip(".")):
        fqdn = name + "."
    else:
        fqdn = "%s.%s" % (name, zone)
    if fqdn != zone and not fqdn.endswith("." + zone):
        raise DnsError("%s is not in zone %s: only names of the zone can be switched"
                       % (fqdn, zone), "input")
    return fqdn


def relative_name(fqdn, zone):
    zone = absolute_zone(zone)
    if fqdn == zone:
        return "@"
    return fqdn[:-len(zone) - 1] if fqdn.endswith("." + zone) else fqdn


def _ip_version(value):
    try:
        return ipaddress.ip_address(value).version
    except ValueError:
        return None


def infer_type(values):
    """A for IPv4 addresses, AAAA for IPv6, CNAME for one host name."""
    versions = set(_ip_version(v) for v in values)
    if versions == {4}:
        return "A"
    if versions == {6}:
        return "AAAA"
    if versions == {None} and len(values) == 1:
        return "CNAME"
    raise DnsError("cannot tell the record type of %s: give IPv4 addresses (A), IPv6 addresses "
                   "(AAAA) or one host name (CNAME), or set type" % ", ".join(values), "input")


def canonical_value(rdtype, value):
    """One spelling per value, so that comparisons never see a change that is not one."""
    value = str(value).strip()
    if rdtype in ("A", "AAAA"):
        try:
            address = ipaddress.ip_address(value)
        except ValueError:
            raise DnsError("%s is not an %s address" % (value, "IPv4" if rdtype == "A" else "IPv6"),
                           "input")
        if (address.version == 4) != (rdtype == "A"):
            raise DnsError("%s is not an %s address" % (value, "IPv4" if rdtype == "A" else "IPv6"),
                           "input")
        return str(address)
    value = value.lower()
    return value if value.endswith(".") else value + "."


def canonical_values(rdtype, values):
    result = sorted(set(canonical_value(rdtype, v) for v in values))
    if rdtype == "CNAME" and len(result) > 1:
        raise DnsError("a CNAME has exactly one value, not %s" % ", ".join(result), "input")
    return result


def wanted_records(records, zone):
    """The module's `records` option as [{name (absolute), type, values or None, ttl}]."""
    wanted, seen = [], set()
    for record in records:
        fqdn = absolute_name(record["name"], zone)
        values = record.get("values")
        if values is not None and not values:
            raise DnsError("%s: values is empty; removing a record is not a failover step"
                           % fqdn, "input")
        rdtype = (record.get("type") or "").upper() or (infer_type(values) if values else None)
        if rdtype is None:
            raise DnsError("%s: give values or type" % fqdn, "input")
        key = (fqdn, rdtype)
        if key in seen:
            raise DnsError("%s %s is listed twice" % key, "input")
        seen.add(key)
        wanted.append(dict(name=fqdn, type=rdtype, ttl=record.get("ttl"),
                           values=canonical_values(rdtype, values) if values else None))
    return wanted


def plan_changes(wanted, current, ttl=None, max_ttl=None, default_ttl=60):
    """What must change: [{name, type, before, after}] with before/after {ttl, values} (before
    None for a missing record), and the names already right.

    Values: the wanted ones, or the current ones when a record gives none (a TTL-only change).
    TTL: the record's own ttl, else `ttl`, else the current TTL (default_ttl for a new record);
    `max_ttl` then caps it (lowering TTLs before a planned failover never raises one).
    """
    changes, unchanged = [], []
    for record in wanted:
        key = (record["name"], record["type"])
        before = current.get(key)
        values = record["values"] if record["values"] is not None else (before or {}).get("values")
        if values is None:
            raise DnsError("%s %s does not exist, and no values were given for it" % key, "record")
        new_ttl = record.get("ttl")
        if new_ttl is None:
            new_ttl = ttl
        if new_ttl is None:
            new_ttl = before["ttl"] if before else default_ttl
        if max_ttl is not None:
            new_ttl = min(new_ttl, max_ttl)
        after = dict(ttl=new_ttl, values=list(values))
        entry = dict(name=record["name"], type=record["type"], before=before, after=after)
        if before == after:
            unchanged.append(entry)
        else:
            changes.append(entry)
    return changes, unchanged


def plan_from_params(provider, wanted, params):
    """Read the `wanted` records (from wanted_records(), so that bad input is refused before
    any question) and plan them with the PLAN_SPEC options: (wanted, current, changes,
    unchanged).

    With keep_values, the given values only tell the type: each record keeps its current values
    (lowering TTLs before a planned failover)."""
    current = read_current(provider, wanted)
    if params.get("keep_values"):
        wanted = [dict(record, values=None) for record in wanted]
    changes, unchanged = plan_changes(wanted, current, params.get("ttl"), params.get("max_ttl"),
                                      params.get("default_ttl") or 60)
    return wanted, current, changes, unchanged


def record_list(current):
    """{(name, type): state} as [{name, type, ttl, values}] ([] values for a missing record)."""
    return [dict(name=name, type=rdtype, ttl=(state or {}).get("ttl"),
                 values=(state or {}).get("values") or [])
            for (name, rdtype), state in sorted(current.items())]


def describe_change(change):
    """'postgresql.failsafe.lab. A 127.0.1.1 -> 127.0.2.1 (ttl 5)', for the operator."""
    before, after = change["before"], change["after"]
    old = " ".join(before["values"]) if before else "(none)"
    new = " ".join(after["values"])
    if before and before["ttl"] != after["ttl"]:
        ttl = "ttl %s -> %s" % (before["ttl"], after["ttl"])
    else:
        ttl = "ttl %s" % after["ttl"]
    values = "%s -> %s" % (old, new) if old != new else new
    return "%s %s %s (%s)" % (change["name"], change["type"], values, ttl)


def parse_server(entry, default_port):
    """'10.0.0.1', '10.0.0.1:5353', '[2001:db8::1]:53', 'ns1.example.com' -> (host, port)."""
    entry = str(entry).strip()
    if entry.startswith("["):
        host, _sep, rest = entry[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if entry.count(":") == 1:
        host, port = entry.split(":")
        try:
            return host, int(port)
        except ValueError:
            raise DnsError("%s: the port must be a number" % entry, "input")
    return entry, default_port


def server_label(host, port):
    return "[%s]:%s" % (host, port) if ":" in host else "%s:%s" % (host, port)


def answer_matches(answer, change):
    """Whether one server's answer {rcode, ttl, values} is the wanted state of `change`."""
    if answer is None or answer.get("error"):
        return False
    return answer.get("values") == change["after"]["values"] and \
        answer.get("ttl") == change["after"]["ttl"]


def describe_answer(answer):
    if answer is None:
        return "no answer yet"
    if answer.get("error"):
        return answer["error"]
    if not answer.get("values"):
        return "no such record (%s)" % answer.get("rcode")
    return "%s (ttl %s)" % (" ".join(answer["values"]), answer.get("ttl"))


# RFC 2136 -------------------------------------------------------------------------------------

# Values that no record of the type holds in practice; the probe deletes one that the zone does
# not have (the prerequisite proves it), which RFC 2136 3.4.2.4 makes a no-op.
PROBE_VALUES = {
    "A": ["192.0.2.254", "192.0.2.253"],
    "AAAA": ["2001:db8::fe", "2001:db8::fd"],
    "CNAME": ["failsafe-rights-probe.invalid.", "failsafe-rights-probe-2.invalid."],
}


def probe_value(rdtype, values):
    for candidate in PROBE_VALUES[rdtype]:
        if candidate not in (values or []):
            return candidate
    raise DnsError("no probe value for %s" % rdtype, "record")  # pragma: no cover


class DirectQuery:
    """Questions to one DNS server at a time, asked directly (no resolver, no recursion)."""

    def __init__(self, zone, server, port=53, protocol="tcp", timeout=5.0):
        self.zone = absolute_zone(zone)
        self.server = server
        self.port = port
        self.protocol = protocol
        self.timeout = timeout
        self.key_name = None
        self.algorithm = None
        self.keyring = None
        self.address = resolve_host(server)

    def send(self, message, host=None, port=None, protocol=None, update=False):
        """Send one message and return the answer; library errors become DnsError.

        `update`: the message changes the zone. A refusal of the key still means nothing
        changed, but once the message may have reached the server (no answer, a broken
        connection, an answer we cannot verify) nobody knows whether the update was applied:
        the error says so instead of "Nothing was changed"."""
        host = host or self.address
        port = port or self.port
        where = server_label(host, port)
        unknown = (" The update was sent: it may have been applied or not (all of its records or "
                   "none, it is one atomic update). Run again: it reads every record first and "
                   "changes only what still differs") if update else " Nothing was changed"
        try:
            if (protocol or self.protocol) == "udp":
                return dns.query.udp(message, host, port=port, timeout=self.timeout)
            return dns.query.tcp(message, host, port=port, timeout=self.timeout)
        except dns.tsig.PeerBadKey:
            raise DnsError(
                "the DNS server %s does not know TSIG key %s with algorithm %s (BADKEY): the key "
                "is refused; check key_name and key_algorithm against the server's key "
                "statement. Nothing was changed" % (where, self.key_name, self.algorithm), "key")
        except dns.tsig.PeerBadSignature:
            raise DnsError(
                "the DNS server %s rejected the signature of TSIG key %s (BADSIG): the key is "
                "refused, its key_secret is wrong (it was not shown). Nothing was changed"
                % (where, self.key_name), "key")
        except dns.tsig.PeerBadTime:
            raise DnsError(
                "the DNS server %s rejected TSIG key %s because the clocks differ (BADTIME): the "
                "key is refused; synchronise this controller's clock. Nothing was changed"
                % (where, self.key_name), "key")
        except (dns.tsig.BadSignature, dns.message.UnknownTSIGKey, dns.tsig.BadAlgorithm) as exc:
            raise DnsError(
                "the answer of %s is not signed with TSIG key %s (%s): another server answers "
                "at that address, or the key differs.%s"
                % (where, self.key_name, exc.__class__.__name__, unknown), "key")
        except ConnectionRefusedError:
            raise DnsError(
                "nothing listens at %s (connection refused): the DNS server is down or the port "
                "is wrong. Nothing was changed" % where, "unreachable")
        except dns.exception.Timeout:
            raise DnsError(
                "no answer from %s within %ss: the DNS server is down, overloaded or filtered.%s"
                % (where, self.timeout, unknown), "unreachable")
        except (OSError, EOFError) as exc:
            raise DnsError("cannot talk to the DNS server %s: %s.%s" % (where, exc, unknown),
                           "unreachable")

    def query(self, name, rdtype, host=None, port=None, signed=True):
        message = dns.message.make_query(name, rdtype)
        message.flags &= ~dns.flags.RD
        if signed and self.keyring:
            message.use_tsig(keyring=self.keyring, keyname=self.key_name,
                             algorithm=self.algorithm)
        return self.send(message, host, port)

    def answer_of(self, address, port, name, rdtype):
        """One server's authoritative answer: {rcode, ttl, values} or {error}."""
        try:
            response = self.query(name, rdtype, host=address, port=port, signed=False)
        except DnsError as exc:
            return dict(error=str(exc).replace(" Nothing was changed", ""), kind=exc.kind)
        rcode = dns.rcode.to_text(response.rcode())
        if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return dict(error="answers %s" % rcode, kind="refused")
        if not response.flags & dns.flags.AA:
            return dict(error="answers without authority (AA flag unset): not authoritative for "
                              "%s" % self.zone, kind="zone")
        found = parse_answer(response, name, rdtype, address, port)
        if found is None:
            return dict(rcode=rcode, ttl=None, values=[])
        return dict(rcode=rcode, ttl=found["ttl"], values=found["values"])

    def serial_at(self, address, port):
        try:
            response = self.query(self.zone, "SOA", host=address, port=port, signed=False)
        except DnsError:
            return None
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset[0].serial
        return None


class Rfc2136Provider(DirectQuery):
    """A primary server that takes RFC 2136 updates signed with a TSIG key (BIND, Knot, ...)."""

    name = "rfc2136"

    def __init__(self, zone, server, port=53, key_name=None, key_secret=None,
                 key_algorithm="hmac-sha256", protocol="tcp", timeout=5.0):
        DirectQuery.__init__(self, zone, server, port, protocol, timeout)
        self.key_name = key_name
        self.algorithm = key_algorithm
        if key_name:
            try:
                self.keyring = dns.tsigkeyring.from_text({key_name: key_secret})
            except Exception:  # binascii.Error, ValueError: never show the secret
                raise DnsError("key_secret of TSIG key %s is not valid base64 (the secret was not "
                               "shown). Nothing was changed" % key_name, "input")

    def describe(self):
        return "%s (RFC 2136 server %s)" % (self.zone, server_label(self.server, self.port))

    # Reading
    def zone_info(self):
        response = self.query(self.zone, "SOA")
        where = server_label(self.server, self.port)
        rcode = response.rcode()
        if rcode == dns.rcode.REFUSED:
            raise DnsError("the DNS server %s refuses queries for zone %s: the zone is not "
                           "configured there, or its allow-query does not admit this controller. "
                           "Nothing was changed" % (where, self.zone), "zone")
        if rcode in (dns.rcode.NOTAUTH, dns.rcode.NXDOMAIN) or not response.flags & dns.flags.AA:
            raise DnsError("the DNS server %s is not authoritative for zone %s (%s): check the "
                           "zone name and the server. Nothing was changed"
                           % (where, self.zone, dns.rcode.to_text(rcode)), "zone")
        if rcode != dns.rcode.NOERROR:
            raise DnsError("the DNS server %s answers %s for the SOA of %s. Nothing was changed"
                           % (where, dns.rcode.to_text(rcode), self.zone), "zone")
        soa = [rrset for rrset in response.answer if rrset.rdtype == dns.rdatatype.SOA]
        if not soa:
            raise DnsError("the DNS server %s has no SOA for %s: %s is not a zone there. "
                           "Nothing was changed" % (where, self.zone, self.zone), "zone")
        return dict(name=self.zone, id=None, serial=soa[0][0].serial,
                    primary=soa[0][0].mname.to_text().lower(), nameservers=self.nameservers())

    def nameservers(self):
        """The zone's NS names as the server holds them."""
        response = self.query(self.zone, "NS")
        names = []
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.NS:
                names.extend(rdata.target.to_text().lower() for rdata in rrset)
        return sorted(names)

    def addresses(self, ns_name):
        """Addresses of a name server: from the zone itself (glue or in-zone), else the system."""
        found = []
        for rdtype in ("A", "AAAA"):
            try:
                response = self.query(ns_name, rdtype, signed=False)
            except DnsError:
                continue
            for rrset in response.answer:
                if rrset.rdtype == dns.rdatatype.from_text(rdtype):
                    found.extend(rdata.address for rdata in rrset)
        if found:
            return sorted(set(found))
        try:
            return sorted(set(info[4][0] for info in socket.getaddrinfo(ns_name.rstrip("."), None)))
        except socket.gaierror:
            return []

    def read(self, name, rdtype):
        """{ttl, values} of the RRset at the primary, or None when there is none."""
        return parse_answer(self.query(name, rdtype), name, rdtype, self.server, self.port)

    # Rights, without a change
    def probe(self, name, rdtype, current):
        """Prove that the key may change name/rdtype, changing nothing.

        One update whose prerequisite is the RRset exactly as just read (or its absence) and
        whose only operation deletes a value the prerequisite proves absent: NOERROR means the
        server checked the key, the prerequisite and the rights and had nothing to do. (A
        failing prerequisite would not prove the rights: RFC 2136 lets a server test
        prerequisites before permissions.)
        """
        update = dns.update.Update(self.zone, keyring=self.keyring, keyname=self.key_name,
                                   keyalgorithm=self.algorithm)
        if current:
            update.present(name, dns.rdatatype.from_text(rdtype), *current["values"])
        else:
            update.absent(name, rdtype)
        update.delete(name, rdtype, probe_value(rdtype, (current or {}).get("values")))
        response = self.send(update)
        rcode = response.rcode()
        where = server_label(self.server, self.port)
        key = ("TSIG key %s" % self.key_name) if self.key_name else "an unsigned update"
        if rcode == dns.rcode.NOERROR:
            return "update allowed"
        if rcode in (dns.rcode.NXRRSET, dns.rcode.YXRRSET, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN):
            raise DnsError("%s %s changed at %s while it was being checked (%s): run again"
                           % (name, rdtype, where, dns.rcode.to_text(rcode)), "changed")
        if rcode == dns.rcode.REFUSED:
            raise DnsError(
                "the DNS server %s refused %s for %s %s (REFUSED): the key is valid but the "
                "zone's update-policy (or allow-update) does not grant it this name and type. "
                "Nothing was changed" % (where, key, name, rdtype), "rights")
        if rcode == dns.rcode.NOTAUTH:
            raise DnsError("the DNS server %s is not the primary of zone %s (NOTAUTH): send "
                           "updates to the primary. Nothing was changed" % (where, self.zone),
                           "zone")
        if rcode == dns.rcode.NOTZONE:
            raise DnsError("%s is outside zone %s (NOTZONE). Nothing was changed"
                           % (name, self.zone), "input")
        raise DnsError("the DNS server %s answered %s to the rights check for %s %s. Nothing "
                       "was changed" % (where, dns.rcode.to_text(rcode), name, rdtype), "rights")

    # The change: one message, applied whole or not at all
    def update_message(self, changes):
        """One signed UPDATE carrying every change of the plan (RFC 2136 section 3.7: the server
        applies it atomically).

        Prerequisites (section 2.4): each record exactly as it was read (value-dependent RRset
        exists), or its absence; if any no longer holds, the server refuses the whole message.
        Updates: per record, delete the RRset and add the new one (new values and TTL)."""
        update = dns.update.Update(self.zone, keyring=self.keyring, keyname=self.key_name,
                                   keyalgorithm=self.algorithm)
        for change in changes:
            rdtype = dns.rdatatype.from_text(change["type"])
            if change["before"]:
                update.present(change["name"], rdtype, *change["before"]["values"])
            else:
                update.absent(change["name"], rdtype)
        for change in changes:
            update.replace(change["name"], change["after"]["ttl"], change["type"],
                           *change["after"]["values"])
        return update

    def apply(self, changes):
        """Send every change in one UPDATE; None (RFC 2136 has no change ID). Every refusal
        says that no record changed: the server applies the message whole or not at all."""
        if not changes:
            return None
        response = self.send(self.update_message(changes), update=True)
        rcode = response.rcode()
        if rcode == dns.rcode.NOERROR:
            return None
        where = server_label(self.server, self.port)
        text = dns.rcode.to_text(rcode)
        key = ("TSIG key %s" % self.key_name) if self.key_name else "an unsigned update"
        names = ", ".join("%s %s" % (c["name"], c["type"]) for c in changes)
        if rcode in (dns.rcode.NXRRSET, dns.rcode.YXRRSET, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN):
            raise DnsError(
                "the DNS server %s refused the whole update (%s): a record changed after it was "
                "read (%s), so the update's prerequisites no longer hold. No record was changed. "
                "Run again: it reads the records again and plans from them"
                % (where, text, self.changed_since(changes)), "changed")
        if rcode == dns.rcode.REFUSED:
            raise DnsError(
                "the DNS server %s refused the update of %s (REFUSED): the key is refused for "
                "these names: %s is valid, but the zone's update-policy (or allow-update) does "
                "not grant it every one of these names and types, or the server is not the "
                "zone's primary. No record was changed" % (where, names, key), "rights")
        if rcode == dns.rcode.NOTAUTH:
            raise DnsError(
                "the DNS server %s is not authoritative for zone %s (NOTAUTH): send updates to "
                "the zone's primary. No record was changed" % (where, self.zone), "zone")
        if rcode == dns.rcode.NOTZONE:
            raise DnsError("a record is outside zone %s (NOTZONE). No record was changed"
                           % self.zone, "input")
        raise DnsError("the DNS server %s answered %s to the update of %s. No record was "
                       "changed (an update is applied whole or not at all)"
                       % (where, text, names), "error")

    def changed_since(self, changes):
        """Which records no longer hold the values read, for the refusal message."""
        moved = []
        for change in changes:
            try:
                now = self.read(change["name"], change["type"])
            except DnsError:
                return "which one could not be read again"
            if (now or {}).get("values") != (change["before"] or {}).get("values"):
                moved.append("%s %s now %s" % (change["name"], change["type"],
                                               " ".join((now or {}).get("values") or ["(none)"])))
        return "; ".join(moved) or "the record has its old values again"

    def authoritative_servers(self, port=None, explicit=None):
        """[(label, address, port)] of every server that must answer: the primary, the zone's
        NS servers, and the `explicit` host[:port] list, which must cover every NS address."""
        port = port or self.port
        servers = [(server_label(self.server, self.port), self.address, self.port)]
        explicit_servers = [parse_server(entry, port) for entry in (explicit or [])]
        explicit_by_address = {}
        for host, host_port in explicit_servers:
            for address in resolve_all(host):
                explicit_by_address[address] = host_port
                servers.append((server_label(host, host_port), address, host_port))
        for ns_name in self.nameservers():
            addresses = self.addresses(ns_name)
            if not addresses:
                raise DnsError("the zone names %s as a name server, but it has no address: fix "
                               "the zone or give nameservers. Nothing was changed" % ns_name,
                               "zone")
            for address in addresses:
                if explicit_servers and address not in explicit_by_address:
                    raise DnsError(
                        "the zone names %s (%s) as a name server, but nameservers does not list "
                        "it: every authoritative server must be checked. Add it. Nothing was "
                        "changed" % (ns_name, address), "input")
                if not explicit_servers:
                    servers.append(("%s (%s)" % (server_label(address, port), ns_name.rstrip(".")),
                                    address, port))
        unique, seen = [], set()
        for label, address, host_port in servers:
            if (address, host_port) not in seen:
                seen.add((address, host_port))
                unique.append((label, address, host_port))
        return unique


def parse_answer(response, name, rdtype, host, port):
    """The RRset of name/rdtype in a response: {ttl, values}, or None (NXDOMAIN / no data)."""
    rcode = response.rcode()
    where = server_label(host, port)
    if rcode == dns.rcode.NXDOMAIN:
        return None
    if rcode == dns.rcode.REFUSED:
        raise DnsError("the DNS server %s refuses to answer for %s. Nothing was changed"
                       % (where, name), "zone")
    if rcode != dns.rcode.NOERROR:
        raise DnsError("the DNS server %s answers %s for %s %s. Nothing was changed"
                       % (where, dns.rcode.to_text(rcode), name, rdtype), "zone")
    wanted_type = dns.rdatatype.from_text(rdtype)
    qname = dns.name.from_text(name)
    for rrset in response.answer:
        if rrset.name != qname:
            continue
        if rrset.rdtype == wanted_type:
            return dict(ttl=rrset.ttl, values=canonical_values(rdtype, [r.to_text() for r in rrset]))
        if rrset.rdtype == dns.rdatatype.CNAME and wanted_type != dns.rdatatype.CNAME:
            raise DnsError("%s is a CNAME (to %s) at %s, not an %s record: switch it as a CNAME "
                           "(type: CNAME). Nothing was changed"
                           % (name, rrset[0].target, where, rdtype), "record")
    return None


def resolve_host(host):
    """The first address of a host name (an address stays as it is)."""
    return resolve_all(host)[0]


def resolve_all(host):
    if _ip_version(host):
        return [host]
    try:
        return sorted(set(info[4][0] for info in socket.getaddrinfo(host, None)))
    except socket.gaierror as exc:
        raise DnsError("cannot resolve the DNS server name %s: %s. Nothing was changed"
                       % (host, exc), "unreachable")


# Route 53 -------------------------------------------------------------------------------------

_CREDENTIAL_CODES = ("InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch",
                     "AuthFailure", "ExpiredToken", "InvalidAccessKeyId", "IncompleteSignature")
_ZONE_CODES = ("NoSuchHostedZone", "HostedZoneNotFound", "InvalidInput")


class Route53Provider:
    """A Route 53 hosted zone, through the AWS API (or an emulator at endpoint_url)."""

    name = "route53"

    def __init__(self, zone, hosted_zone_id=None, endpoint_url=None, access_key=None,
                 secret_key=None, session_token=None, aws_region="us-east-1", timeout=5.0):
        self.zone = absolute_zone(zone)
        self.hosted_zone_id = hosted_zone_id
        self.endpoint_url = endpoint_url
        self.timeout = timeout
        config = botocore.config.Config(connect_timeout=timeout, read_timeout=max(timeout, 10),
                                        retries=dict(max_attempts=3, mode="standard"))
        session = boto3.session.Session(aws_access_key_id=access_key,
                                        aws_secret_access_key=secret_key,
                                        aws_session_token=session_token,
                                        region_name=aws_region)
        self.client = session.client("route53", endpoint_url=endpoint_url or None, config=config)
        self._zone_id = None

    def describe(self):
        where = " at %s" % self.endpoint_url if self.endpoint_url else ""
        return "%s (Route 53%s)" % (self.zone, where)

    def call(self, operation, mutating=False, **kwargs):
        """One API call; errors become DnsError. `mutating`: once the request may have reached
        Route 53 (a read timeout), whether it was applied is unknown, and the error says so."""
        where = self.endpoint_url or "the Route 53 API"
        try:
            return getattr(self.client, operation)(**kwargs)
        except botocore.exceptions.NoCredentialsError:
            raise DnsError("no AWS credentials: give access_key/secret_key, or set them in the "
                           "environment or an AWS profile. Nothing was changed", "key")
        except (botocore.exceptions.EndpointConnectionError,
                botocore.exceptions.ConnectTimeoutError) as exc:
            raise DnsError("cannot reach %s: %s. Nothing was changed" % (where, exc),
                           "unreachable")
        except botocore.exceptions.ReadTimeoutError as exc:
            if mutating:
                raise DnsError("%s did not answer the change request in time: %s. The batch may "
                               "have been applied or not (all of it or nothing). Run again: it "
                               "reads the records first and changes only what still differs"
                               % (where, exc), "unreachable")
            raise DnsError("%s did not answer in time: %s. Nothing was changed" % (where, exc),
                           "unreachable")
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error") or {}
            code, text = error.get("Code", ""), error.get("Message", "")
            if code in _CREDENTIAL_CODES:
                raise DnsError("%s rejected the AWS credentials (%s: %s): check access_key, "
                               "secret_key and session_token (not shown). Nothing was changed"
                               % (where, code, text), "key")
            if code in ("AccessDenied", "AccessDeniedException"):
                raise DnsError("the AWS credentials may not call %s on %s (AccessDenied): grant "
                               "it in the IAM policy (docs/dns.md). Nothing was changed"
                               % (operation, self.zone), "rights")
            if code in ("InvalidChangeBatch", "InvalidInput") and mutating:
                raise DnsError("%s refused the change batch (%s: %s). No record was changed (a "
                               "batch is applied whole or not at all)" % (where, code, text),
                               "record")
            if code in _ZONE_CODES:
                raise DnsError("%s: %s (%s). Nothing was changed" % (where, text, code), "zone")
            if code in ("Throttling", "PriorRequestNotComplete"):
                raise DnsError("%s throttled the request (%s): retry in a minute. Nothing was "
                               "changed" % (where, code), "unreachable")
            raise DnsError("%s answered %s: %s. Nothing was changed" % (where, code, text), "error")
        except botocore.exceptions.BotoCoreError as exc:
            if mutating:
                raise DnsError("the AWS client failed during the change request: %s. The batch "
                               "may have been applied or not (all of it or nothing). Run again: "
                               "it reads the records first and changes only what still differs"
                               % exc, "error")
            raise DnsError("the AWS client failed: %s. Nothing was changed" % exc, "error")

    def zone_id(self):
        if self._zone_id:
            return self._zone_id
        if self.hosted_zone_id:
            self._zone_id = self.hosted_zone_id.split("/")[-1]
            return self._zone_id
        found = self.call("list_hosted_zones_by_name", DNSName=self.zone, MaxItems="10")
        matches = [z for z in found.get("HostedZones", []) if z["Name"].lower() == self.zone]
        public = [z for z in matches if not z.get("Config", {}).get("PrivateZone")]
        if not matches:
            raise DnsError("no hosted zone named %s in this AWS account%s: check the zone name "
                           "or give hosted_zone_id. Nothing was changed"
                           % (self.zone, " (%s)" % self.endpoint_url if self.endpoint_url else ""),
                           "zone")
        if len(matches) > 1 and len(public) != 1:
            raise DnsError("%d hosted zones are named %s (public and private ones): give "
                           "hosted_zone_id. Nothing was changed" % (len(matches), self.zone),
                           "zone")
        chosen = public[0] if len(matches) > 1 else matches[0]
        self._zone_id = chosen["Id"].split("/")[-1]
        return self._zone_id

    def zone_info(self):
        zone_id = self.zone_id()
        found = self.call("get_hosted_zone", Id=zone_id)
        hosted = found["HostedZone"]
        if hosted["Name"].lower() != self.zone:
            raise DnsError("hosted zone %s is %s, not %s: check hosted_zone_id. Nothing was "
                           "changed" % (zone_id, hosted["Name"], self.zone), "zone")
        return dict(name=self.zone, id=zone_id, serial=None, primary=None,
                    private=bool(hosted.get("Config", {}).get("PrivateZone")),
                    nameservers=sorted(n.lower() for n in
                                       (found.get("DelegationSet") or {}).get("NameServers", [])))

    def read(self, name, rdtype):
        found = self.call("list_resource_record_sets", HostedZoneId=self.zone_id(),
                          StartRecordName=name, StartRecordType=rdtype, MaxItems="2")
        sets = [s for s in found.get("ResourceRecordSets", [])
                if s["Name"].lower() == name and s["Type"] == rdtype]
        if not sets:
            return None
        record = sets[0]
        if len(sets) > 1 or record.get("SetIdentifier"):
            raise DnsError("%s %s has a routing policy (SetIdentifier %s): this role switches "
                           "simple records only. Nothing was changed"
                           % (name, rdtype, record.get("SetIdentifier")), "record")
        if record.get("AliasTarget"):
            raise DnsError("%s %s is an alias record (to %s): this role switches simple records "
                           "only. Nothing was changed"
                           % (name, rdtype, record["AliasTarget"].get("DNSName")), "record")
        return dict(ttl=record.get("TTL"),
                    values=canonical_values(rdtype, [r["Value"] for r in
                                                     record.get("ResourceRecords", [])]))

    def probe(self, name, rdtype, current):
        """Route 53 cannot prove a right to change without a change: reading the zone is the
        check (docs/dns.md says how to check the IAM policy)."""
        return "readable (Route 53 rights to change are not probed)"

    def change_batch(self, changes):
        """One ChangeBatch with an UPSERT per change: Route 53 applies a batch whole or not at
        all. (UPSERT has no prerequisite: a record changed by someone else since it was read
        is overwritten with the planned values.)"""
        return dict(Comment="failsafe.datastores dns_update: %d record(s)" % len(changes),
                    Changes=[dict(Action="UPSERT", ResourceRecordSet=dict(
                        Name=change["name"], Type=change["type"], TTL=change["after"]["ttl"],
                        ResourceRecords=[dict(Value=value) for value in change["after"]["values"]]))
                        for change in changes])

    def apply(self, changes):
        """Send every change in one ChangeBatch; the change ID, or None when nothing changes."""
        if not changes:
            return None
        found = self.call("change_resource_record_sets", mutating=True,
                          HostedZoneId=self.zone_id(), ChangeBatch=self.change_batch(changes))
        return found["ChangeInfo"]["Id"].split("/")[-1]

    def change_status(self, change_id):
        found = self.call("get_change", Id=change_id.split("/")[-1])
        return found["ChangeInfo"]["Status"]


def provider_from_params(params):
    if params["provider"] == "route53":
        return Route53Provider(params["zone"], params.get("hosted_zone_id"),
                               params.get("endpoint_url"), params.get("access_key"),
                               params.get("secret_key"), params.get("session_token"),
                               params.get("aws_region") or "us-east-1", params["timeout"])
    if not params.get("server"):
        raise DnsError("provider rfc2136 needs server", "input")
    return Rfc2136Provider(params["zone"], params["server"], params["port"],
                           params.get("key_name"), params.get("key_secret"),
                           params["key_algorithm"], params["protocol"], params["timeout"])


def read_current(provider, wanted):
    """{(name, type): {ttl, values} or None} for every wanted record."""
    return dict(((r["name"], r["type"]), provider.read(r["name"], r["type"])) for r in wanted)


# Agreement: every authoritative server answers the new records --------------------------------

def matches(answer, record):
    """Whether an answer is record's `after` state; a record without a TTL compares values only."""
    wanted = record["after"]
    if wanted.get("ttl") is None:
        return answer_matches(answer, dict(after=dict(values=wanted["values"],
                                                      ttl=(answer or {}).get("ttl"))))
    return answer_matches(answer, record)


class Server:
    """One authoritative server (or the Route 53 API) and what it last answered."""

    def __init__(self, label, ask, serial=None):
        self.label = label
        self.ask = ask  # ask(name, rdtype) -> {ttl, values} or {error}
        self.serial_of = serial
        self.answers = {}
        self.agreed_after = None

    def poll(self, records, elapsed):
        agreed = True
        for record in records:
            key = "%s %s" % (record["name"], record["type"])
            answer = self.ask(record["name"], record["type"])
            self.answers[key] = answer
            agreed = matches(answer, record) and agreed
        if agreed and self.agreed_after is None:
            self.agreed_after = elapsed
        elif not agreed:
            self.agreed_after = None
        return agreed

    def report(self):
        return dict(server=self.label, agreed_after=self.agreed_after,
                    serial=self.serial_of() if self.serial_of else None,
                    answers=dict((k, describe_answer(v)) for k, v in sorted(self.answers.items())))


def _bound_ask(querier, address, port):
    return lambda name, rdtype: querier.answer_of(address, port, name, rdtype)


def _bound_serial(querier, address, port):
    return lambda: querier.serial_at(address, port)


def _api_server(provider):
    def ask(name, rdtype):
        try:
            found = provider.read(name, rdtype)
        except DnsError as exc:
            return dict(error=str(exc), kind=exc.kind)
        return dict(ttl=found["ttl"], values=found["values"]) if found else \
            dict(ttl=None, values=[])
    return Server("api (%s)" % (provider.endpoint_url or "Route 53"), ask)


def wait_insync(provider, change_ids, deadline, interval):
    """Until Route 53 reports every change INSYNC (polling GetChange)."""
    pending = [c for c in change_ids if c]
    while pending:
        pending = [c for c in pending if provider.change_status(c) != "INSYNC"]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise DnsError("Route 53 still reports changes %s PENDING: the records are changed "
                           "but not yet on every Route 53 server; check again later"
                           % ", ".join(pending), "pending")
        time.sleep(max(interval, 1.0))


class Agreement:
    """Ask every authoritative server directly (no resolver, no cache, recursion off) until all
    answer `records` ([{name, type, after: {values, ttl}}], as plan_changes() returns them).

    RFC 2136: the primary plus the zone's NS servers (or `nameservers`, which must cover every
    NS server). Route 53: the changes `change_ids` INSYNC, the API read-back, and with
    `query_nameservers` the delegation set's servers (or `nameservers`) on port 53."""

    def __init__(self, provider, records, nameservers=None, query_nameservers=True,
                 protocol="tcp"):
        self.provider = provider
        self.records = records
        self.nameservers = list(nameservers or [])
        self.query_nameservers = query_nameservers
        self.protocol = protocol
        self.servers = []

    def _dns_servers(self):
        provider = self.provider
        if provider.name == "rfc2136":
            return [Server(label, _bound_ask(provider, address, port),
                           _bound_serial(provider, address, port))
                    for label, address, port in
                    provider.authoritative_servers(explicit=self.nameservers)]
        if not self.query_nameservers:
            return []
        servers = []
        for entry in self.nameservers or provider.zone_info()["nameservers"]:
            host, port = parse_server(entry, 53)
            for address in resolve_all(host.rstrip(".")):
                asker = DirectQuery(provider.zone, address, port, self.protocol, provider.timeout)
                servers.append(Server("%s (%s)" % (server_label(address, port), host),
                                      _bound_ask(asker, address, port)))
        return servers

    def wait(self, wait_timeout, interval=0.2, change_ids=(), since=None, timer=None):
        """Seconds from `since` (monotonic; default now) until every server agreed. Marks
        `insync` and `agreed` on `timer`. Raises DnsError (kind `disagree`, `pending`, or what
        finding the servers hit) at the deadline; `reports()` then says what each answered."""
        since = time.monotonic() if since is None else since
        deadline = time.monotonic() + wait_timeout
        if self.provider.name == "route53":
            wait_insync(self.provider, change_ids, deadline, interval)
            self.servers.append(_api_server(self.provider))
        if timer:
            timer.mark("insync")
        self.servers.extend(self._dns_servers())
        while True:
            elapsed = round(time.monotonic() - since, 6)
            agreed = [server.poll(self.records, elapsed) for server in self.servers]
            if all(agreed):
                if timer:
                    timer.mark("agreed")
                return elapsed
            if time.monotonic() > deadline:
                late = [s for s, ok in zip(self.servers, agreed) if not ok]
                raise DnsError(
                    "after %ss not every authoritative server answers the new records: %s"
                    % (wait_timeout, "; ".join(self._disagreement(s) for s in late)), "disagree")
            time.sleep(interval)

    def _disagreement(self, server):
        by_key = dict(("%s %s" % (r["name"], r["type"]), r) for r in self.records)
        return "%s answers %s" % (server.label, ", ".join(
            "%s: %s" % (key, describe_answer(answer))
            for key, answer in sorted(server.answers.items())
            if not matches(answer, by_key[key])))

    def reports(self):
        return [server.report() for server in self.servers]
