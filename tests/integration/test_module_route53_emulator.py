"""Route 53 through the lab's API EMULATOR (moto_server, not AWS): amazon.aws.route53 in four
steps with every API request recorded (check mode must send no change), dns_preflight and
dns_verify through the API, and refusals. The emulator applies changes at once and is lenient
where AWS is strict: no assertion here depends on either."""

from __future__ import annotations

ROUTE53 = "amazon.aws.route53"


def change_args(zone, name, address, ttl=5):
    return zone.route53_args(state="present", zone=zone.zone, record=zone.fqdn(name), type="A",
                             ttl=ttl, value=[address], overwrite=True, wait=False)


def rrset_changes(requests):
    return [r for r in requests if r["method"] == "POST" and r["path"].endswith("/rrset/")]


def test_route53_change_four_steps_check_mode_sends_no_change(route53_emulator, run_module):
    west = route53_emulator.address("us-west")
    args = change_args(route53_emulator, "postgresql", west)

    # 1. check mode: would change, shows the diff, sends no mutating request.
    check = run_module(ROUTE53, args, check=True, diff=True)
    assert not check.failed, check.msg
    assert check.changed is True
    assert check["diff"]["before"]["values"] == [route53_emulator.address("us-east")]
    assert check["diff"]["after"]["resource_records"] == [{"value": west}]
    assert route53_emulator.mutating() == [], "check mode sent a change to the API"
    assert route53_emulator.read("postgresql")["values"] == [route53_emulator.address("us-east")]

    # 2. real: exactly one change request, and the record holds the new value.
    real = run_module(ROUTE53, args)
    assert not real.failed, real.msg
    assert real.changed is True and real["wait_id"]
    assert len(rrset_changes(route53_emulator.mutating())) == 1
    assert route53_emulator.read("postgresql") == {"ttl": 5, "values": [west]}
    assert route53_emulator.read("redis")["values"] == [route53_emulator.address("us-east")]

    # 3. check and 4. real again: nothing to do, no further change request.
    route53_emulator.forget_requests()
    assert run_module(ROUTE53, args, check=True).changed is False
    assert run_module(ROUTE53, args).changed is False
    assert route53_emulator.mutating() == []


def test_preflight_through_the_api_plans_and_reads_only(route53_emulator, run_module):
    result = run_module("dns_preflight", route53_emulator.conn(records=route53_emulator.records("us-west")))
    assert not result.failed, result.msg
    assert result["zone"]["id"] == route53_emulator.zone_id
    assert len(result["zone"]["nameservers"]) == 4
    assert sorted(c["name"] for c in result["changes"]) == sorted(
        route53_emulator.fqdn(n) for n in route53_emulator.names)
    assert all(v.startswith("readable") for v in result["rights"].values())
    assert route53_emulator.mutating() == [], "the preflight sent a change"


def test_preflight_refuses_a_missing_zone_and_an_unreachable_api(route53_emulator, run_module,
                                                                 closed_port):
    missing = run_module("dns_preflight", route53_emulator.conn(
        zone="other.lab", records=[{"name": "api", "values": ["10.0.0.1"]}]))
    assert missing.failed and missing["error_kind"] == "zone", missing.msg
    assert "no hosted zone named other.lab." in missing.msg

    down_url = f"http://127.0.0.1:{closed_port()}"
    down = run_module("dns_preflight", route53_emulator.conn(
        endpoint_url=down_url, records=route53_emulator.records("us-west")))
    assert down.failed and down["error_kind"] == "unreachable", down.msg
    assert down_url in down.msg
    assert route53_emulator.mutating() == []


def test_verify_through_the_api_waits_for_the_change(route53_emulator, run_module):
    west = route53_emulator.address("us-west")
    real = run_module(ROUTE53, change_args(route53_emulator, "api", west))
    assert real.changed, real.msg
    result = run_module("dns_verify", route53_emulator.conn(
        records=[{"name": "api", "values": [west], "ttl": 5}], change_ids=[real["wait_id"]],
        query_nameservers=False, wait_timeout=20))
    assert not result.failed, result.msg
    assert result["agreed"] is True
    assert [s["server"] for s in result["servers"]] == [f"api ({route53_emulator.endpoint_url})"]
    # A value the zone does not hold is not confirmed.
    stale = run_module("dns_verify", route53_emulator.conn(
        records=[{"name": "redis", "values": [west], "ttl": 5}], query_nameservers=False,
        wait_timeout=1))
    assert stale.failed and stale["error_kind"] == "disagree", stale.msg
    assert f"{route53_emulator.address('us-east')} (ttl 5)" in stale.msg
