"""Route 53 through the lab's API EMULATOR (moto_server, not AWS): dns_update in four steps
(one change batch for every record) with every API request recorded (check mode must send no
change), dns_preflight and dns_verify through the API, and refusals. Every state is read back
with boto3 (list_resource_record_sets), not with the modules. The emulator applies changes at
once and is lenient where AWS is strict: no assertion here depends on either."""

from __future__ import annotations

from lab.bind import SWITCHED_NAMES


def rrset_changes(requests):
    return [r for r in requests if r["method"] == "POST" and r["path"].endswith("/rrset/")]


def test_update_four_steps_one_change_batch_check_mode_sends_none(route53_emulator, run_module):
    west, east = route53_emulator.address("us-west"), route53_emulator.address("us-east")
    args = route53_emulator.conn(records=route53_emulator.records("us-west"),
                                 query_nameservers=False, wait_timeout=20)

    # 1. check mode: would change every record, shows the diff, sends no mutating request.
    check = run_module("dns_update", args, check=True, diff=True)
    assert not check.failed, check.msg
    assert check.changed is True and len(check["changes"]) == len(SWITCHED_NAMES)
    key = f"{route53_emulator.fqdn('postgresql')} A"
    assert check["diff"]["before"][key] == {"ttl": 5, "values": [east]}
    assert check["diff"]["after"][key] == {"ttl": 5, "values": [west]}
    assert check["change_id"] is None
    assert route53_emulator.mutating() == [], "check mode sent a change to the API"
    for name in route53_emulator.names:
        assert route53_emulator.read(name) == {"ttl": 5, "values": [east]}, name

    # 2. real: exactly ONE change request for every record, and every record holds the
    # new value; the module waited for INSYNC and the API read-back.
    real = run_module("dns_update", args)
    assert not real.failed, real.msg
    assert real.changed is True and real["change_id"] and real["agreed"] is True
    assert len(rrset_changes(route53_emulator.mutating())) == 1, route53_emulator.mutating()
    for name in route53_emulator.names:
        assert route53_emulator.read(name) == {"ttl": 5, "values": [west]}, name
    assert route53_emulator.read("www")["values"] == [east], "a name not asked for changed"
    assert [s["server"] for s in real["servers"]] == [f"api ({route53_emulator.endpoint_url})"]
    assert set(real["timings"]) == {"read", "update", "agree", "total"}

    # 3. check and 4. real again: nothing to do, no further change request.
    route53_emulator.forget_requests()
    assert run_module("dns_update", args, check=True).changed is False
    again = run_module("dns_update", args)
    assert not again.failed and again.changed is False and again["change_id"] is None, again.msg
    assert route53_emulator.mutating() == []


def test_update_refuses_an_unreachable_api_changing_nothing(route53_emulator, run_module,
                                                            closed_port):
    down_url = f"http://127.0.0.1:{closed_port()}"
    down = run_module("dns_update", route53_emulator.conn(
        endpoint_url=down_url, records=route53_emulator.records("us-west")))
    assert down.failed and down["error_kind"] == "unreachable", down.msg
    assert down_url in down.msg and "Nothing was changed" in down.msg
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
    real = run_module("dns_update", route53_emulator.conn(
        records=route53_emulator.records("us-west", ["api"]), wait=False))
    assert real.changed and real["servers"] == [], real.msg
    result = run_module("dns_verify", route53_emulator.conn(
        records=[{"name": "api", "values": [west], "ttl": 5}], change_ids=[real["change_id"]],
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
