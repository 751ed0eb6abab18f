# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DNS helpers without a server: names and values, the change plan, the rights probe's
decisions, and how each library error becomes a message that says what was wrong."""

from __future__ import annotations

import dns.message
import dns.rcode
import dns.tsig
import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils import _dns
from ansible_collections.failsafe.datastores.plugins.module_utils._dns import (
    DnsError,
    absolute_name,
    answer_matches,
    canonical_values,
    describe_change,
    infer_type,
    parse_server,
    plan_changes,
    probe_value,
    wanted_records,
)

ZONE = "failsafe.lab"
SECRET = "ZmFpbHNhZmUtbGFiLXRzaWctdXBkYXRlLWtleS0wMDE="


# Names, types, values ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("postgresql", "postgresql.failsafe.lab."),
    ("PostgreSQL", "postgresql.failsafe.lab."),
    ("postgresql.failsafe.lab", "postgresql.failsafe.lab."),
    ("postgresql.failsafe.lab.", "postgresql.failsafe.lab."),
    ("a.b", "a.b.failsafe.lab."),
    ("@", "failsafe.lab."),
])
def test_names_become_absolute_names_of_the_zone(name, expected):
    assert absolute_name(name, ZONE) == expected


def test_a_name_outside_the_zone_is_refused():
    with pytest.raises(DnsError) as info:
        absolute_name("api.example.com.", ZONE)
    assert info.value.kind == "input" and "not in zone failsafe.lab." in str(info.value)


@pytest.mark.parametrize("values, rdtype", [
    (["127.0.2.1"], "A"),
    (["10.0.0.1", "10.0.0.2"], "A"),
    (["2001:db8::1"], "AAAA"),
    (["lb-us-west.example.com"], "CNAME"),
])
def test_the_type_follows_from_the_values(values, rdtype):
    assert infer_type(values) == rdtype


@pytest.mark.parametrize("values", [["10.0.0.1", "2001:db8::1"], ["a.example.", "b.example."],
                                    ["10.0.0.1", "a.example."]])
def test_mixed_values_need_an_explicit_type(values):
    with pytest.raises(DnsError, match="cannot tell the record type"):
        infer_type(values)


def test_values_are_compared_in_one_spelling():
    assert canonical_values("AAAA", ["2001:DB8:0:0::1", "2001:db8::1"]) == ["2001:db8::1"]
    assert canonical_values("A", ["10.0.0.2", "10.0.0.1"]) == ["10.0.0.1", "10.0.0.2"]
    assert canonical_values("CNAME", ["LB.Example.com"]) == ["lb.example.com."]


@pytest.mark.parametrize("rdtype, values", [("A", ["2001:db8::1"]), ("AAAA", ["10.0.0.1"]),
                                            ("A", ["not-an-address"]),
                                            ("CNAME", ["a.example.", "b.example."])])
def test_values_that_do_not_fit_the_type_are_refused(rdtype, values):
    with pytest.raises(DnsError):
        canonical_values(rdtype, values)


def test_wanted_records_are_normalised_and_checked():
    wanted = wanted_records([{"name": "api", "values": ["10.0.0.1"]},
                             {"name": "redis", "type": "A"}], ZONE)
    assert wanted == [
        {"name": "api.failsafe.lab.", "type": "A", "ttl": None, "values": ["10.0.0.1"]},
        {"name": "redis.failsafe.lab.", "type": "A", "ttl": None, "values": None}]
    with pytest.raises(DnsError, match="listed twice"):
        wanted_records([{"name": "api", "values": ["10.0.0.1"]},
                        {"name": "api.failsafe.lab.", "values": ["10.0.0.2"]}], ZONE)
    with pytest.raises(DnsError, match="values is empty"):
        wanted_records([{"name": "api", "values": []}], ZONE)
    with pytest.raises(DnsError, match="give values or type"):
        wanted_records([{"name": "api"}], ZONE)


# The plan ---------------------------------------------------------------------------------------

def current(values, ttl=5):
    return {"ttl": ttl, "values": values}


def wanted(name="api", values=("10.20.0.1",), ttl=None):
    return {"name": "%s.failsafe.lab." % name, "type": "A", "ttl": ttl,
            "values": list(values) if values is not None else None}


def test_a_record_with_other_values_changes_and_keeps_its_ttl():
    changes, unchanged = plan_changes([wanted()], {("api.failsafe.lab.", "A"): current(["10.10.0.1"])})
    assert unchanged == []
    assert changes == [{"name": "api.failsafe.lab.", "type": "A",
                        "before": {"ttl": 5, "values": ["10.10.0.1"]},
                        "after": {"ttl": 5, "values": ["10.20.0.1"]}}]


def test_a_record_already_right_is_left_alone():
    changes, unchanged = plan_changes([wanted()], {("api.failsafe.lab.", "A"): current(["10.20.0.1"])})
    assert changes == [] and [u["name"] for u in unchanged] == ["api.failsafe.lab."]


def test_ttl_order_record_then_option_then_current_then_default():
    state = {("api.failsafe.lab.", "A"): current(["10.10.0.1"], 300),
             ("new.failsafe.lab.", "A"): None}
    changes = plan_changes([wanted(ttl=30), wanted("new")], state, ttl=120)[0]
    assert [c["after"]["ttl"] for c in changes] == [30, 120]
    changes = plan_changes([wanted(), wanted("new")], state, default_ttl=60)[0]
    assert [c["after"]["ttl"] for c in changes] == [300, 60]
    assert changes[1]["before"] is None


def test_max_ttl_lowers_and_never_raises():
    state = {("api.failsafe.lab.", "A"): current(["10.10.0.1"], 3600),
             ("db.failsafe.lab.", "A"): current(["10.10.0.2"], 30)}
    changes, unchanged = plan_changes([wanted(values=None), wanted("db", values=None)], state,
                                      max_ttl=60)
    assert changes == [{"name": "api.failsafe.lab.", "type": "A",
                        "before": {"ttl": 3600, "values": ["10.10.0.1"]},
                        "after": {"ttl": 60, "values": ["10.10.0.1"]}}]
    assert [u["after"]["ttl"] for u in unchanged] == [30]


def test_a_missing_record_without_values_cannot_be_planned():
    with pytest.raises(DnsError) as info:
        plan_changes([wanted(values=None)], {("api.failsafe.lab.", "A"): None})
    assert info.value.kind == "record"


def test_changes_read_as_one_line_each():
    assert describe_change({"name": "api.failsafe.lab.", "type": "A",
                            "before": {"ttl": 5, "values": ["10.10.0.1"]},
                            "after": {"ttl": 5, "values": ["10.20.0.1"]}}) == \
        "api.failsafe.lab. A 10.10.0.1 -> 10.20.0.1 (ttl 5)"
    assert describe_change({"name": "api.failsafe.lab.", "type": "A",
                            "before": {"ttl": 300, "values": ["10.10.0.1"]},
                            "after": {"ttl": 60, "values": ["10.10.0.1"]}}) == \
        "api.failsafe.lab. A 10.10.0.1 (ttl 300 -> 60)"
    assert describe_change({"name": "api.failsafe.lab.", "type": "A", "before": None,
                            "after": {"ttl": 60, "values": ["10.20.0.1"]}}) == \
        "api.failsafe.lab. A (none) -> 10.20.0.1 (ttl 60)"


# Servers and answers ----------------------------------------------------------------------------

@pytest.mark.parametrize("entry, expected", [
    ("10.0.0.1", ("10.0.0.1", 53)), ("10.0.0.1:5353", ("10.0.0.1", 5353)),
    ("ns1.example.com", ("ns1.example.com", 53)), ("[2001:db8::1]:5353", ("2001:db8::1", 5353)),
    ("[2001:db8::1]", ("2001:db8::1", 53)),
])
def test_servers_are_host_and_optional_port(entry, expected):
    assert parse_server(entry, 53) == expected


def test_an_answer_matches_only_with_the_same_values_and_ttl():
    change = {"after": {"ttl": 5, "values": ["10.20.0.1"]}}
    assert answer_matches({"ttl": 5, "values": ["10.20.0.1"]}, change)
    assert not answer_matches({"ttl": 300, "values": ["10.20.0.1"]}, change)
    assert not answer_matches({"ttl": 5, "values": ["10.10.0.1"]}, change)
    assert not answer_matches({"error": "nothing listens"}, change)
    assert not answer_matches(None, change)


def test_the_probe_deletes_a_value_the_record_does_not_hold():
    assert probe_value("A", ["10.0.0.1"]) == "192.0.2.254"
    assert probe_value("A", ["192.0.2.254"]) == "192.0.2.253"
    assert probe_value("AAAA", None) == "2001:db8::fe"
    assert probe_value("CNAME", ["failsafe-rights-probe.invalid."]) != \
        "failsafe-rights-probe.invalid."


# RFC 2136: library errors and answers -> what the operator reads --------------------------------

def provider(**over):
    args = dict(zone=ZONE, server="127.0.0.1", port=15353, key_name="failsafe-lab-update",
                key_secret=SECRET)
    args.update(over)
    return _dns.Rfc2136Provider(**args)


@pytest.mark.parametrize("exception, kind, words", [
    (dns.tsig.PeerBadKey, "key", "does not know TSIG key failsafe-lab-update"),
    (dns.tsig.PeerBadSignature, "key", "key_secret is wrong"),
    (dns.tsig.PeerBadTime, "key", "clocks differ"),
    (ConnectionRefusedError, "unreachable", "connection refused"),
    (dns.exception.Timeout, "unreachable", "no answer from 127.0.0.1:15353"),
])
def test_transport_errors_say_what_was_wrong(monkeypatch, exception, kind, words):
    def fail(*args, **kwargs):
        raise exception()
    monkeypatch.setattr(_dns.dns.query, "tcp", fail)
    with pytest.raises(DnsError) as info:
        provider().read("api.failsafe.lab.", "A")
    assert info.value.kind == kind and words in str(info.value)
    assert "Nothing was changed" in str(info.value)
    assert SECRET not in str(info.value)


def test_a_secret_that_is_not_base64_is_refused_without_showing_it():
    with pytest.raises(DnsError) as info:
        provider(key_secret="not base64 !!")
    assert info.value.kind == "input" and "not base64 !!" not in str(info.value)


def answering(monkeypatch, rcode):
    """dns.query.tcp answers every message with `rcode` (no TSIG on the answer)."""
    sent = []

    def answer(message, *args, **kwargs):
        sent.append(message)
        response = dns.message.make_response(message)
        response.set_rcode(rcode)
        return response
    monkeypatch.setattr(_dns.dns.query, "tcp", answer)
    return sent


@pytest.mark.parametrize("rcode, kind, words", [
    (dns.rcode.REFUSED, "rights", "does not grant it this name and type"),
    (dns.rcode.NOTAUTH, "zone", "not the primary"),
    (dns.rcode.NXRRSET, "changed", "changed at 127.0.0.1:15353 while it was being checked"),
    (dns.rcode.SERVFAIL, "rights", "SERVFAIL"),
])
def test_probe_answers_become_refusals(monkeypatch, rcode, kind, words):
    answering(monkeypatch, rcode)
    with pytest.raises(DnsError) as info:
        provider(key_name=None, key_secret=None).probe(
            "api.failsafe.lab.", "A", {"ttl": 5, "values": ["10.0.0.1"]})
    assert info.value.kind == kind and words in str(info.value)


def test_the_probe_is_a_no_op_update_guarded_by_the_record_as_read(monkeypatch):
    sent = answering(monkeypatch, dns.rcode.NOERROR)
    result = provider(key_name=None, key_secret=None).probe(
        "api.failsafe.lab.", "A", {"ttl": 5, "values": ["10.0.0.1"]})
    assert result == "update allowed"
    text = sent[0].to_text()
    # Prerequisite: the RRset exactly as read; update: delete a value it does not hold.
    prerequisite, update = text.split(";UPDATE")
    assert "api.failsafe.lab. 0 IN A 10.0.0.1" in prerequisite
    assert "api.failsafe.lab. 0 NONE A 192.0.2.254" in update
    assert "10.0.0.1" not in update


def test_the_probe_of_a_missing_record_requires_its_absence(monkeypatch):
    sent = answering(monkeypatch, dns.rcode.NOERROR)
    provider(key_name=None, key_secret=None).probe("new.failsafe.lab.", "A", None)
    prerequisite = sent[0].to_text().split(";UPDATE")[0]
    assert "new.failsafe.lab. NONE A" in prerequisite


@pytest.mark.parametrize("rcode, words", [
    (dns.rcode.REFUSED, "refuses queries for zone failsafe.lab."),
    (dns.rcode.NOTAUTH, "not authoritative for zone failsafe.lab."),
    (dns.rcode.NXDOMAIN, "not authoritative for zone failsafe.lab."),
])
def test_a_missing_zone_is_told_apart(monkeypatch, rcode, words):
    answering(monkeypatch, rcode)
    with pytest.raises(DnsError) as info:
        provider(key_name=None, key_secret=None).zone_info()
    assert info.value.kind == "zone" and words in str(info.value)


# Route 53: API errors -> what the operator reads --------------------------------------------------

class FakeClient:
    def __init__(self, error=None, exception=None):
        self.error, self.exception = error, exception

    def __getattr__(self, operation):
        import botocore.exceptions

        def call(**kwargs):
            if self.exception:
                raise self.exception
            raise botocore.exceptions.ClientError({"Error": {"Code": self.error,
                                                             "Message": "from AWS"}}, operation)
        return call


@pytest.mark.parametrize("code, kind, words", [
    ("InvalidClientTokenId", "key", "rejected the AWS credentials"),
    ("SignatureDoesNotMatch", "key", "rejected the AWS credentials"),
    ("AccessDenied", "rights", "may not call get_hosted_zone"),
    ("NoSuchHostedZone", "zone", "NoSuchHostedZone"),
    ("Throttling", "unreachable", "throttled"),
])
def test_route53_errors_say_what_was_wrong(code, kind, words):
    r53 = _dns.Route53Provider(ZONE, hosted_zone_id="Z123", endpoint_url="http://127.0.0.1:1",
                               access_key="a", secret_key="s")
    r53.client = FakeClient(code)
    with pytest.raises(DnsError) as info:
        r53.zone_info()
    assert info.value.kind == kind and words in str(info.value)


def test_route53_unreachable_endpoint():
    import botocore.exceptions

    r53 = _dns.Route53Provider(ZONE, endpoint_url="http://127.0.0.1:1", access_key="a",
                               secret_key="s")
    r53.client = FakeClient(exception=botocore.exceptions.EndpointConnectionError(
        endpoint_url="http://127.0.0.1:1"))
    with pytest.raises(DnsError) as info:
        r53.zone_info()
    assert info.value.kind == "unreachable" and "cannot reach http://127.0.0.1:1" in str(info.value)


class Listing:
    def __init__(self, sets):
        self.sets = sets

    def list_resource_record_sets(self, **kwargs):
        return {"ResourceRecordSets": self.sets}


def r53_with(sets):
    r53 = _dns.Route53Provider(ZONE, hosted_zone_id="/hostedzone/Z123", access_key="a",
                               secret_key="s")
    r53.client = Listing(sets)
    return r53


def test_route53_reads_only_the_asked_record():
    r53 = r53_with([{"Name": "api.failsafe.lab.", "Type": "A", "TTL": 60,
                     "ResourceRecords": [{"Value": "10.0.0.1"}]}])
    assert r53.zone_id() == "Z123"
    assert r53.read("api.failsafe.lab.", "A") == {"ttl": 60, "values": ["10.0.0.1"]}
    # The listing starts at the name: the next record is not the one asked for.
    assert r53_with([{"Name": "b.failsafe.lab.", "Type": "A", "TTL": 5,
                      "ResourceRecords": [{"Value": "10.0.0.9"}]}]).read("a.failsafe.lab.", "A") \
        is None


@pytest.mark.parametrize("record, words", [
    ({"SetIdentifier": "east", "Weight": 10, "TTL": 5, "ResourceRecords": [{"Value": "10.0.0.1"}]},
     "routing policy"),
    ({"AliasTarget": {"DNSName": "lb.example.com.", "HostedZoneId": "Z1",
                      "EvaluateTargetHealth": False}}, "alias record"),
])
def test_route53_records_it_cannot_switch_are_refused(record, words):
    record = dict(record, Name="api.failsafe.lab.", Type="A")
    with pytest.raises(DnsError) as info:
        r53_with([record]).read("api.failsafe.lab.", "A")
    assert info.value.kind == "record" and words in str(info.value)


# The change: one RFC 2136 UPDATE message, one Route 53 change batch ------------------------------

CHANGES = [
    {"name": "postgresql.failsafe.lab.", "type": "A", "before": {"ttl": 5, "values": ["10.0.1.1"]},
     "after": {"ttl": 5, "values": ["10.0.2.1"]}},
    {"name": "api.failsafe.lab.", "type": "A",
     "before": {"ttl": 300, "values": ["10.0.1.8", "10.0.1.9"]},
     "after": {"ttl": 60, "values": ["10.0.2.8"]}},
    {"name": "new.failsafe.lab.", "type": "CNAME", "before": None,
     "after": {"ttl": 30, "values": ["lb.example.com."]}},
]


def sections(message):
    """(prerequisite lines, update lines) of an UPDATE message's text."""
    text = message.to_text()
    prerequisite, update = text.split(";PREREQ")[1].split(";UPDATE")
    return _record_lines(prerequisite), _record_lines(update)


def _record_lines(part):
    return sorted(line for line in part.splitlines() if line and not line.startswith(";"))


def test_one_update_message_carries_every_change_guarded_by_the_records_as_read():
    message = provider(key_name=None, key_secret=None).update_message(CHANGES)
    prerequisite, update = sections(message)
    # Each record exactly as read (value-dependent "RRset exists"), or its absence.
    assert prerequisite == sorted([
        "postgresql.failsafe.lab. 0 IN A 10.0.1.1",
        "api.failsafe.lab. 0 IN A 10.0.1.8", "api.failsafe.lab. 0 IN A 10.0.1.9",
        "new.failsafe.lab. NONE CNAME",
    ])
    # Per record: delete the RRset, add the new one with its TTL.
    assert update == sorted([
        "postgresql.failsafe.lab. ANY A", "postgresql.failsafe.lab. 5 IN A 10.0.2.1",
        "api.failsafe.lab. ANY A", "api.failsafe.lab. 60 IN A 10.0.2.8",
        "new.failsafe.lab. ANY CNAME", "new.failsafe.lab. 30 IN CNAME lb.example.com.",
    ])


def test_the_update_message_is_signed_with_the_key():
    import dns.tsigkeyring

    wire = provider().update_message(CHANGES[:1]).to_wire()
    keyring = dns.tsigkeyring.from_text({"failsafe-lab-update": SECRET})
    parsed = dns.message.from_wire(wire, keyring=keyring)  # verifies the signature
    assert parsed.had_tsig and parsed.keyname.to_text() == "failsafe-lab-update."


def test_apply_sends_one_message_for_every_change_and_none_without_changes(monkeypatch):
    sent = answering(monkeypatch, dns.rcode.NOERROR)
    rfc = provider(key_name=None, key_secret=None)
    assert rfc.apply(CHANGES) is None  # RFC 2136 has no change ID
    assert len(sent) == 1 and sent[0].opcode() == dns.opcode.UPDATE
    assert rfc.apply([]) is None and len(sent) == 1


@pytest.mark.parametrize("rcode, kind, words", [
    (dns.rcode.NXRRSET, "changed", "refused the whole update (NXRRSET): a record changed after it was read"),
    (dns.rcode.YXRRSET, "changed", "refused the whole update (YXRRSET)"),
    (dns.rcode.REFUSED, "rights", "the key is refused for these names"),
    (dns.rcode.NOTAUTH, "zone", "not authoritative for zone failsafe.lab. (NOTAUTH)"),
    (dns.rcode.SERVFAIL, "error", "answered SERVFAIL to the update"),
])
def test_update_answers_become_refusals_that_say_nothing_changed(monkeypatch, rcode, kind, words):
    answering(monkeypatch, rcode)
    with pytest.raises(DnsError) as info:
        provider(key_name=None, key_secret=None).apply(CHANGES)
    assert info.value.kind == kind and words in str(info.value)
    assert "No record was changed" in str(info.value)


@pytest.mark.parametrize("exception", [dns.exception.Timeout, EOFError])
def test_an_update_without_an_answer_is_not_called_unchanged(monkeypatch, exception):
    def fail(*args, **kwargs):
        raise exception()
    monkeypatch.setattr(_dns.dns.query, "tcp", fail)
    with pytest.raises(DnsError) as info:
        provider().apply(CHANGES)
    assert info.value.kind == "unreachable"
    assert "may have been applied or not" in str(info.value)
    assert "Nothing was changed" not in str(info.value)


def test_a_refused_key_says_so_and_that_nothing_changed(monkeypatch):
    def fail(*args, **kwargs):
        raise dns.tsig.PeerBadSignature()
    monkeypatch.setattr(_dns.dns.query, "tcp", fail)
    with pytest.raises(DnsError) as info:
        provider().apply(CHANGES)
    assert info.value.kind == "key" and "the key is refused" in str(info.value)
    assert "Nothing was changed" in str(info.value)


class Changing:
    """A Route 53 client that records change_resource_record_sets calls."""

    def __init__(self, error=None):
        self.calls, self.error = [], error

    def change_resource_record_sets(self, **kwargs):
        import botocore.exceptions

        self.calls.append(kwargs)
        if self.error:
            raise botocore.exceptions.ClientError({"Error": {"Code": self.error,
                                                             "Message": "from AWS"}},
                                                  "ChangeResourceRecordSets")
        return {"ChangeInfo": {"Id": "/change/C0123", "Status": "PENDING"}}


def r53_changing(error=None):
    r53 = _dns.Route53Provider(ZONE, hosted_zone_id="Z123", access_key="a", secret_key="s")
    r53.client = Changing(error)
    return r53


def test_route53_one_change_batch_of_upserts():
    batch = r53_changing().change_batch(CHANGES)
    assert [c["Action"] for c in batch["Changes"]] == ["UPSERT"] * 3
    assert batch["Changes"][1]["ResourceRecordSet"] == {
        "Name": "api.failsafe.lab.", "Type": "A", "TTL": 60,
        "ResourceRecords": [{"Value": "10.0.2.8"}]}
    assert batch["Changes"][2]["ResourceRecordSet"]["Type"] == "CNAME"


def test_route53_apply_makes_one_call_and_returns_the_change_id():
    r53 = r53_changing()
    assert r53.apply(CHANGES) == "C0123"
    assert len(r53.client.calls) == 1
    assert r53.client.calls[0]["HostedZoneId"] == "Z123"
    assert len(r53.client.calls[0]["ChangeBatch"]["Changes"]) == 3
    assert r53.apply([]) is None and len(r53.client.calls) == 1


@pytest.mark.parametrize("code, kind, words", [
    ("InvalidChangeBatch", "record", "refused the change batch (InvalidChangeBatch"),
    ("AccessDenied", "rights", "may not call change_resource_record_sets"),
    ("InvalidClientTokenId", "key", "rejected the AWS credentials"),
])
def test_route53_change_refusals(code, kind, words):
    with pytest.raises(DnsError) as info:
        r53_changing(code).apply(CHANGES)
    assert info.value.kind == kind and words in str(info.value)


# Agreement: waiting for every server -------------------------------------------------------------

class Answers:
    """A stand-in provider whose servers answer from a script: answers[n] for round n."""

    name = "rfc2136"

    def __init__(self, rounds):
        self.rounds, self.asked = rounds, 0

    def authoritative_servers(self, explicit=None):
        return [("primary:53", "10.0.0.1", 53), ("secondary:53", "10.0.0.2", 53)]

    def answer_of(self, address, port, name, rdtype):
        self.asked += 1
        round_ = min((self.asked - 1) // 2, len(self.rounds) - 1)
        return self.rounds[round_][address]

    def serial_at(self, address, port):
        return 7


def test_agreement_waits_until_every_server_answers_the_new_values():
    new, old = {"ttl": 5, "values": ["10.0.2.1"]}, {"ttl": 5, "values": ["10.0.1.1"]}
    stand_in = Answers([{"10.0.0.1": new, "10.0.0.2": old}, {"10.0.0.1": new, "10.0.0.2": new}])
    agreement = _dns.Agreement(stand_in, CHANGES[:1])
    seconds = agreement.wait(5, interval=0.001)
    assert seconds is not None and stand_in.asked == 4
    assert [r["agreed_after"] is not None for r in agreement.reports()] == [True, True]


def test_agreement_fails_with_what_the_late_server_answers():
    new, old = {"ttl": 5, "values": ["10.0.2.1"]}, {"ttl": 5, "values": ["10.0.1.1"]}
    agreement = _dns.Agreement(Answers([{"10.0.0.1": new, "10.0.0.2": old}]), CHANGES[:1])
    with pytest.raises(DnsError) as info:
        agreement.wait(0, interval=0.001)
    assert info.value.kind == "disagree"
    assert "secondary:53 answers postgresql.failsafe.lab. A: 10.0.1.1 (ttl 5)" in str(info.value)
    assert "primary:53 answers" not in str(info.value)
