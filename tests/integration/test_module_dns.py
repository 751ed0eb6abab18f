"""DNS against the lab's BIND pair: the change module (community.general.nsupdate) in four
steps, dns_preflight and dns_verify for real, and every refusal changing nothing. Every state is
checked with a fresh dnspython question to each server, never with the modules under test."""

from __future__ import annotations

import pytest

NSUPDATE = "community.general.nsupdate"
WRONG_SECRET = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZy0wMDA="


def nsupdate_args(zone, name, address, ttl=5):
    conn = zone.conn()
    return {"server": conn["server"], "port": conn["port"], "key_name": conn["key_name"],
            "key_secret": conn["key_secret"], "key_algorithm": conn["key_algorithm"],
            "zone": zone.zone, "record": name, "type": "A", "ttl": ttl, "value": [address],
            "protocol": "tcp"}


def assert_unchanged(zone, serials, region="us-east"):
    """Every server still answers the canonical records and no serial moved."""
    assert zone.serials() == serials, "a serial moved: something was changed"
    for name in zone.names:
        for server, answer in zone.answers(name).items():
            assert answer["values"] == [zone.address(region)], (server, name, answer)


def test_nsupdate_switch_four_steps_on_every_server(dns_zone, run_module):
    west = dns_zone.address("us-west")
    serials = dns_zone.serials()
    args = nsupdate_args(dns_zone, "postgresql", west)

    # 1. check mode: would change, changes nothing on either server.
    check = run_module(NSUPDATE, args, check=True)
    assert not check.failed, check.msg
    assert check.changed is True
    assert_unchanged(dns_zone, serials)

    # 2. real: the primary and, through NOTIFY and IXFR, the secondary answer us-west.
    real = run_module(NSUPDATE, args)
    assert not real.failed, real.msg
    assert real.changed is True
    answers = dns_zone.wait_all("postgresql", [west], ttl=5)
    assert all(a["aa"] for a in answers.values()), answers
    assert dns_zone.answer("redis")["values"] == [dns_zone.address("us-east")], \
        "a name that was not asked for changed"

    # 3. check and 4. real again: nothing to do.
    check2 = run_module(NSUPDATE, args, check=True)
    assert not check2.failed and check2.changed is False, check2
    serials = dns_zone.serials()
    real2 = run_module(NSUPDATE, args)
    assert not real2.failed and real2.changed is False, real2
    assert dns_zone.serials() == serials


def test_preflight_proves_the_rights_and_plans_without_a_change(dns_zone, run_module):
    serials = dns_zone.serials()
    dns_zone.set_records({"api": dns_zone.address("us-west")})  # one name already switched
    serials = dns_zone.serials()
    result = run_module("dns_preflight", dns_zone.conn(records=dns_zone.records("us-west")))
    assert not result.failed, result.msg
    assert result.changed is False
    assert result["zone"]["name"] == dns_zone.zone
    assert result["zone"]["nameservers"] == [f"ns1.{dns_zone.zone}", f"ns2.{dns_zone.zone}"]
    assert sorted(c["name"] for c in result["changes"]) == [
        f"postgresql.{dns_zone.zone}", f"redis.{dns_zone.zone}"]
    assert result["unchanged"] == [f"api.{dns_zone.zone}"]
    for change in result["changes"]:
        assert change["before"] == {"ttl": 5, "values": [dns_zone.address("us-east")]}
        assert change["after"] == {"ttl": 5, "values": [dns_zone.address("us-west")]}
    assert set(result["rights"].values()) == {"update allowed"}
    assert len(result["rights"]) == 3
    assert result["max_old_ttl"] == 5
    assert {e["name"] for e in result["expected"]} == {f"{n}.{dns_zone.zone}" for n in dns_zone.names}
    # The rights probe is an update: it must not have changed anything.
    assert dns_zone.serials() == serials
    assert dns_zone.answer("postgresql")["values"] == [dns_zone.address("us-east")]


@pytest.mark.parametrize("over, kind, words", [
    ({"key_secret": WRONG_SECRET}, "key", "BADSIG"),
    ({"key_name": "no-such-key"}, "key", "BADKEY"),
    ({"key_algorithm": "hmac-sha512"}, "key", "BADKEY"),
    ({"zone": "other.lab"}, "zone", "refuses queries for zone other.lab."),
])
def test_preflight_refusals_say_what_was_wrong_and_change_nothing(dns_zone, run_module, over,
                                                                  kind, words):
    serials = dns_zone.serials()
    records = dns_zone.records("us-west")
    if "zone" in over:
        records = [{"name": "api.other.lab.", "values": [dns_zone.address("us-west")]}]
    result = run_module("dns_preflight", dns_zone.conn(records=records, **over))
    assert result.failed
    assert result["error_kind"] == kind, result.msg
    assert words in result.msg and "Nothing was changed" in result.msg
    assert dns_zone.key_secret not in result.stdout and WRONG_SECRET not in result.stdout
    assert_unchanged(dns_zone, serials)


def test_preflight_refuses_a_name_the_key_may_not_update(dns_zone, run_module):
    serials = dns_zone.serials()
    result = run_module("dns_preflight", dns_zone.conn(
        records=[{"name": "www", "values": [dns_zone.address("us-west")]}]))
    assert result.failed and result["error_kind"] == "rights", result.msg
    assert "refused TSIG key failsafe-lab-update for www." in result.msg
    assert "update-policy" in result.msg
    assert_unchanged(dns_zone, serials)
    assert dns_zone.answer("www")["values"] == [dns_zone.address("us-east")]


def test_a_wrong_key_is_never_taken_for_a_server_that_is_down(dns_zone, run_module, closed_port):
    bad_key = run_module("dns_preflight", dns_zone.conn(records=dns_zone.records("us-west"),
                                                        key_secret=WRONG_SECRET))
    down = run_module("dns_preflight", dns_zone.conn(records=dns_zone.records("us-west"),
                                                     port=closed_port(dns_zone.primary.host)))
    assert bad_key["error_kind"] == "key" and down["error_kind"] == "unreachable"
    assert "connection refused" in down.msg and "the DNS server is down" in down.msg


def test_preflight_refuses_when_the_primary_is_down(dns_zone, run_module):
    conn = dns_zone.conn(records=dns_zone.records("us-west"))
    dns_zone.stop(dns_zone.primary)
    result = run_module("dns_preflight", conn)
    assert result.failed and result["error_kind"] == "unreachable", result.msg
    assert f"{dns_zone.primary.host}:{dns_zone.primary.port}" in result.msg
    # The secondary kept the zone as it was.
    assert dns_zone.answer("postgresql", dns_zone.secondary)["values"] == \
        [dns_zone.address("us-east")]


def test_verify_waits_until_every_authoritative_server_answers(dns_zone, run_module):
    west = dns_zone.address("us-west")
    plan = run_module("dns_preflight", dns_zone.conn(records=dns_zone.records("us-west")))
    for change in plan["changes"]:
        changed = run_module(NSUPDATE, nsupdate_args(dns_zone, change["name"], west))
        assert changed.changed, changed.msg
    # Without nameservers: the zone's NS records lead to both servers.
    result = run_module("dns_verify", dns_zone.conn(records=plan["changes"], wait_timeout=20))
    assert not result.failed, result.msg
    assert result["agreed"] is True and result["seconds_to_agree"] is not None
    servers = [s["server"] for s in result["servers"]]
    assert servers[0] == f"{dns_zone.primary.host}:{dns_zone.primary.port}"
    assert any(dns_zone.secondary.host in s for s in servers), servers
    for server in result["servers"]:
        assert server["agreed_after"] is not None
        assert set(server["answers"].values()) == {f"{west} (ttl 5)"}
    for name in dns_zone.names:
        dns_zone.wait_all(name, [west], ttl=5, timeout=1)


def test_verify_fails_while_a_server_answers_the_old_records(dns_zone, run_module):
    west = dns_zone.address("us-west")
    dns_zone.stop(dns_zone.secondary)
    changed = run_module(NSUPDATE, nsupdate_args(dns_zone, "postgresql", west))
    assert changed.changed, changed.msg
    result = run_module("dns_verify", dns_zone.conn(
        records=[{"name": "postgresql", "values": [west], "ttl": 5}], wait_timeout=1))
    assert result.failed and result["error_kind"] == "disagree"
    assert f"{dns_zone.secondary.host}:{dns_zone.secondary.port}" in result.msg
    assert "connection refused" in result.msg
    primary = result["servers"][0]
    assert primary["agreed_after"] is not None, result["servers"]


def test_verify_refuses_a_server_list_that_leaves_out_an_ns_server(dns_zone, run_module):
    primary = f"{dns_zone.primary.host}:{dns_zone.primary.port}"
    result = run_module("dns_verify", dns_zone.conn(
        records=dns_zone.records("us-east"), nameservers=[primary], wait_timeout=1))
    assert result.failed and result["error_kind"] == "input", result.msg
    assert f"ns2.{dns_zone.zone}" in result.msg and "nameservers does not list it" in result.msg


def test_lowering_ttls_keeps_the_values(dns_zone, run_module):
    plan = run_module("dns_preflight", dns_zone.conn(
        records=[{"name": n, "type": "A"} for n in dns_zone.names], max_ttl=2))
    assert not plan.failed, plan.msg
    assert [c["after"] for c in plan["changes"]] == \
        [{"ttl": 2, "values": [dns_zone.address("us-east")]}] * 3
    # A cap above the current TTL raises nothing.
    same = run_module("dns_preflight", dns_zone.conn(
        records=[{"name": n, "type": "A"} for n in dns_zone.names], max_ttl=60))
    assert same["changes"] == [] and len(same["unchanged"]) == 3
