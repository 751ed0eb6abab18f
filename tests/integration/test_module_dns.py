"""DNS against the lab's BIND pair: dns_update (one atomic UPDATE per call) in four steps,
dns_preflight and dns_verify for real, a record changed between the read and the update, and
every refusal changing nothing. Every state is checked with a fresh dnspython question to each
server, never with the modules under test."""

from __future__ import annotations

import pytest

from lab.bind import SWITCHED_NAMES

WRONG_SECRET = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZy0wMDA="
ELSEWHERE = "192.0.2.77"  # a third address: the "someone else" of the concurrent change


def serial_numbers(zone):
    return {server: int(found[0]) for server, found in zone.serials().items()}


def answers_now(zone, name):
    """What each server answers right now (no waiting): {server: (values, ttl)}."""
    return {server: (tuple(a.get("values") or ()), a.get("ttl"))
            for server, a in zone.answers(name).items()}


def assert_unchanged(zone, serials, region="us-east"):
    """Every server still answers the canonical records and no serial moved."""
    assert zone.serials() == serials, "a serial moved: something was changed"
    for name in zone.names:
        for server, answer in zone.answers(name).items():
            assert answer["values"] == [zone.address(region)], (server, name, answer)


def test_update_switches_every_record_in_one_update_four_steps(dns_zone, run_module):
    west, east = dns_zone.address("us-west"), dns_zone.address("us-east")
    serials = dns_zone.serials()
    args = dns_zone.conn(records=dns_zone.records("us-west"), wait_timeout=20)

    # 1. check mode: would change every name, shows the diff, sends no update (no serial moves).
    check = run_module("dns_update", args, check=True, diff=True)
    assert not check.failed, check.msg
    assert check.changed is True and len(check["changes"]) == len(SWITCHED_NAMES)
    key = f"postgresql.{dns_zone.zone} A"
    assert check["diff"]["before"][key] == {"ttl": 5, "values": [east]}
    assert check["diff"]["after"][key] == {"ttl": 5, "values": [west]}
    assert check["servers"] == [] and check["seconds_to_agree"] is None
    assert_unchanged(dns_zone, serials)

    # 2. real: one UPDATE message (the primary's serial moves by exactly one for all
    # the records), and the module returns only once both servers answer the new records: asked
    # right after it, without waiting, both already do.
    before = serial_numbers(dns_zone)
    real = run_module("dns_update", args)
    assert not real.failed, real.msg
    assert real.changed is True and real["agreed"] is True
    assert real["seconds_to_agree"] is not None and real["change_id"] is None
    for name in dns_zone.names:
        assert set(answers_now(dns_zone, name).values()) == {((west,), 5)}, name
    assert dns_zone.answer("www")["values"] == [east], "a name that was not asked for changed"
    after = serial_numbers(dns_zone)
    primary = f"{dns_zone.primary.host}:{dns_zone.primary.port}"
    assert after[primary] == before[primary] + 1, (before, after)
    servers = [s["server"] for s in real["servers"]]
    assert servers[0] == primary and any(dns_zone.secondary.host in s for s in servers), servers
    assert all(s["serial"] == after[primary] for s in real["servers"]), real["servers"]
    assert set(real["timings"]) == {"read", "update", "agree", "total"}
    assert all(real["timings"][step] is not None for step in ("read", "update", "agree"))

    # 3. check and 4. real again: nothing to do, no update sent, the wait still confirms.
    check2 = run_module("dns_update", args, check=True)
    assert not check2.failed and check2.changed is False and check2["changes"] == [], check2
    real2 = run_module("dns_update", args)
    assert not real2.failed and real2.changed is False, real2.msg
    assert real2["agreed"] is True and len(real2["unchanged"]) == len(SWITCHED_NAMES)
    assert serial_numbers(dns_zone) == after


def test_a_record_changed_between_read_and_update_refuses_the_whole_update(dns_zone):
    """The module's own code path, driven step by step: read and plan, then somebody else changes
    one record, then the one UPDATE built from the stale read is sent. The server must refuse it
    whole: no record of the plan changes."""
    from ansible_collections.failsafe.datastores.plugins.module_utils import _dns

    params = dns_zone.conn(records=dns_zone.records("us-west"), protocol="tcp")
    provider = _dns.provider_from_params(params)
    wanted = _dns.wanted_records(params["records"], params["zone"])
    _wanted, _current, changes, _unchanged = _dns.plan_from_params(provider, wanted, params)
    assert len(changes) == len(SWITCHED_NAMES)

    dns_zone.set_records({"redis": ELSEWHERE})  # the concurrent change, after the read
    serials = dns_zone.serials()
    with pytest.raises(_dns.DnsError) as refused:
        provider.apply(changes)
    assert refused.value.kind == "changed", str(refused.value)
    assert "refused the whole update (NXRRSET)" in str(refused.value)
    assert f"redis.{dns_zone.zone} A now {ELSEWHERE}" in str(refused.value)
    assert "No record was changed" in str(refused.value)
    # Nothing of the update was applied, on either server.
    assert dns_zone.serials() == serials
    east = dns_zone.address("us-east")
    for name, value in (("postgresql", east), ("api", east), ("redis", ELSEWHERE)):
        assert set(answers_now(dns_zone, name).values()) == {((value,), 5)}, name


def test_a_name_the_key_may_not_update_refuses_the_whole_update(dns_zone, run_module):
    serials = dns_zone.serials()
    west = dns_zone.address("us-west")
    result = run_module("dns_update", dns_zone.conn(records=[
        {"name": "postgresql", "values": [west]}, {"name": "www", "values": [west]}]))
    assert result.failed and result["error_kind"] == "rights", result.msg
    assert "(REFUSED)" in result.msg and "update-policy" in result.msg
    assert "No record was changed" in result.msg and result.changed is False
    # postgresql was allowed, but it travels in the same message: it did not change either.
    assert_unchanged(dns_zone, serials)
    assert dns_zone.answer("www")["values"] == [dns_zone.address("us-east")]


@pytest.mark.parametrize("over, words", [
    ({"key_secret": WRONG_SECRET}, "BADSIG"),
    ({"key_name": "no-such-key"}, "BADKEY"),
])
def test_update_with_a_refused_key_changes_nothing(dns_zone, run_module, over, words):
    serials = dns_zone.serials()
    result = run_module("dns_update", dns_zone.conn(records=dns_zone.records("us-west"), **over))
    assert result.failed and result["error_kind"] == "key", result.msg
    assert "the key is refused" in result.msg and words in result.msg
    assert "Nothing was changed" in result.msg
    assert dns_zone.key_secret not in result.stdout and WRONG_SECRET not in result.stdout
    assert_unchanged(dns_zone, serials)


def test_update_tells_a_server_that_is_down_from_one_that_refuses(dns_zone, run_module,
                                                                  closed_port):
    down = run_module("dns_update", dns_zone.conn(records=dns_zone.records("us-west"),
                                                  port=closed_port(dns_zone.primary.host)))
    assert down.failed and down["error_kind"] == "unreachable", down.msg
    assert "connection refused" in down.msg and "the DNS server is down" in down.msg
    assert_unchanged(dns_zone, dns_zone.serials())


def test_update_lowers_ttls_and_keeps_the_values(dns_zone, run_module):
    east = dns_zone.address("us-east")
    records = [{"name": n, "type": "A"} for n in dns_zone.names]
    result = run_module("dns_update", dns_zone.conn(records=records, keep_values=True, max_ttl=2))
    assert not result.failed and result.changed is True, result.msg
    for name in dns_zone.names:
        assert set(answers_now(dns_zone, name).values()) == {((east,), 2)}, name
    again = run_module("dns_update", dns_zone.conn(records=records, keep_values=True, max_ttl=60))
    assert not again.failed and again.changed is False, again.msg


def test_preflight_proves_the_rights_and_plans_without_a_change(dns_zone, run_module):
    serials = dns_zone.serials()
    dns_zone.set_records({"api": dns_zone.address("us-west")})  # one name already switched
    serials = dns_zone.serials()
    result = run_module("dns_preflight", dns_zone.conn(records=dns_zone.records("us-west")))
    assert not result.failed, result.msg
    assert result.changed is False
    assert result["zone"]["name"] == dns_zone.zone
    assert result["zone"]["nameservers"] == [f"ns1.{dns_zone.zone}", f"ns2.{dns_zone.zone}"]
    assert sorted(c["name"] for c in result["changes"]) == sorted(
        f"{n}.{dns_zone.zone}" for n in SWITCHED_NAMES if n != "api")
    assert result["unchanged"] == [f"api.{dns_zone.zone}"]
    for change in result["changes"]:
        assert change["before"] == {"ttl": 5, "values": [dns_zone.address("us-east")]}
        assert change["after"] == {"ttl": 5, "values": [dns_zone.address("us-west")]}
    assert set(result["rights"].values()) == {"update allowed"}
    assert len(result["rights"]) == len(SWITCHED_NAMES)
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
    changed = run_module("dns_update", dns_zone.conn(records=dns_zone.records("us-west"),
                                                     wait=False))
    assert changed.changed and changed["servers"] == [], changed.msg
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
    args = dns_zone.conn(records=dns_zone.records("us-west", ["postgresql"]))
    # dns_update's own wait fails the same way, after the change was made.
    waited = run_module("dns_update", dict(args, wait_timeout=1))
    assert waited.failed and waited["error_kind"] == "disagree", waited.msg
    assert waited.changed is True and f"{dns_zone.secondary.host}:{dns_zone.secondary.port}" in waited.msg
    assert dns_zone.answer("postgresql")["values"] == [west]
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
        [{"ttl": 2, "values": [dns_zone.address("us-east")]}] * len(SWITCHED_NAMES)
    # A cap above the current TTL raises nothing.
    same = run_module("dns_preflight", dns_zone.conn(
        records=[{"name": n, "type": "A"} for n in dns_zone.names], max_ttl=60))
    assert same["changes"] == [] and len(same["unchanged"]) == len(SWITCHED_NAMES)
