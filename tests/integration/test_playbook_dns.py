"""playbooks/dns_failover.yml through ansible-runner (AWX's interface) against the test lab's two
DNS providers: the BIND pair and the Route 53 API emulator.

Assertions read ansible-runner's events (task results, set_stats artifacts); the real state is
checked with fresh dnspython questions to each BIND server and boto3 reads of the emulator, and
the emulator's request recording proves what was (not) sent.
"""

from __future__ import annotations

import json
from pathlib import Path

from lab.bind import SWITCHED_NAMES

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = "playbooks/dns_failover.yml"
CHANGE_TASKS = ("Switch the records of every DNS provider in one atomic update each",)
VERIFY_TASK = "Wait until every authoritative server answers the new records"
WRONG_SECRET = "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC13cm9uZy0wMDA="


def stats(runner):
    return next(e["event_data"] for e in runner.events if e.get("event") == "playbook_on_stats")


def changed_tasks(runner):
    return [e["event_data"]["task"] for e in runner.events
            if e.get("event") == "runner_on_ok" and e["event_data"]["res"].get("changed")]


def item_results(runner, task):
    """Per-item results of a looped task."""
    return [e["event_data"]["res"] for e in runner.events
            if e.get("event") in ("runner_item_on_ok", "runner_item_on_failed")
            and e["event_data"].get("task") == task]


def failures(runner):
    return [e["event_data"]["res"].get("msg", "") for e in runner.events
            if e.get("event") in ("runner_on_failed", "runner_item_on_failed")]


def all_answer(dns_zone, route53_emulator, region):
    address = dns_zone.address(region)
    for name in dns_zone.names:
        dns_zone.wait_all(name, [address], ttl=5, timeout=5)
        assert route53_emulator.read(name) == {"ttl": 5, "values": [address]}, name
    assert dns_zone.answer("www")["values"] == [dns_zone.address("us-east")]


def assert_secrets_absent(runner, secrets):
    for secret in secrets:
        assert secret not in runner.stdout_text


def test_check_then_switch_then_idempotent_then_back(dns_zone, route53_emulator, run_playbook,
                                                     tmp_path, lab_secrets):
    extravars = {"failsafe_lock_backend": "file", "failsafe_lock_path": str(tmp_path / "locks"),
                 "dns_failover_report_dir": str(tmp_path / "reports")}
    serials = dns_zone.serials()

    # Check mode: the plan for both providers, no change anywhere, no change request sent.
    check = run_playbook(PLAYBOOK, limit="us-west", extravars=extravars, check=True, diff=True)
    assert check.status == "successful", check.stdout_text
    assert dns_zone.serials() == serials
    assert route53_emulator.mutating() == [], "check mode sent a change to the Route 53 API"
    all_answer(dns_zone, route53_emulator, "us-east")
    planned = stats(check)["artifact_data"]["failsafe_dns_failover"]
    assert planned["check_mode"] is True and planned["region"] == "us-west"
    assert {p["host"] for p in planned["providers"]} == {"dns-primary", "route53-emulator"}
    assert all(len(p["changes"]) == len(SWITCHED_NAMES) and not p["changed"] for p in planned["providers"])

    # Real: every server of both providers answers us-west; the report says how long it took.
    real = run_playbook(PLAYBOOK, limit="us-west", extravars=extravars)
    assert real.status == "successful", real.stdout_text
    all_answer(dns_zone, route53_emulator, "us-west")
    record = stats(real)["artifact_data"]["failsafe_dns_failover"]
    bind = next(p for p in record["providers"] if p["host"] == "dns-primary")
    assert bind["changed"] and bind["seconds_to_agree"] is not None
    assert len(bind["servers"]) == 2 and bind["max_old_ttl"] == 5
    route53 = next(p for p in record["providers"] if p["host"] == "route53-emulator")
    assert route53["changed"] and route53["change_id"] and route53["seconds_to_agree"] is not None
    # One change call per provider: one change batch reached the emulator for every record,
    # and the change step's own wait made the separate verification unnecessary.
    assert len([r for r in route53_emulator.mutating() if r["path"].endswith("/rrset/")]) == 1
    assert len(item_results(real, CHANGE_TASKS[0])) == 2
    assert all(r.get("skipped") for r in item_results(real, VERIFY_TASK)), \
        item_results(real, VERIFY_TASK)
    written = json.loads(next((tmp_path / "reports").glob("dns_failover_records-*.json")).read_text())
    assert written["providers"] == record["providers"]
    # The run_report callback's timeline of the run lies beside it.
    assert list((tmp_path / "reports").glob("run-dns_failover-*.html"))
    assert_secrets_absent(real, lab_secrets)

    # Again: nothing to change, no update sent, no change request.
    route53_emulator.forget_requests()
    serials = dns_zone.serials()
    again = run_playbook(PLAYBOOK, limit="us-west", extravars=extravars)
    assert again.status == "successful", again.stdout_text
    assert not set(changed_tasks(again)) & set(CHANGE_TASKS), changed_tasks(again)
    assert dns_zone.serials() == serials
    assert route53_emulator.mutating() == []

    # Failback with the old spelling of the region group.
    back = run_playbook(PLAYBOOK, limit="us_east", extravars=extravars)
    assert back.status == "successful", back.stdout_text
    all_answer(dns_zone, route53_emulator, "us-east")


def test_no_target_region_is_refused_before_anything(dns_zone, route53_emulator, run_playbook,
                                                     tmp_path):
    serials = dns_zone.serials()
    runner = run_playbook(PLAYBOOK, extravars={"failsafe_lock_backend": "file", "failsafe_lock_path": str(tmp_path)})
    assert runner.status == "failed"
    assert any("no target region named" in msg for msg in failures(runner)), failures(runner)
    assert dns_zone.serials() == serials and route53_emulator.mutating() == []


def test_a_wrong_key_stops_every_provider_before_any_change(dns_zone, route53_emulator, run_playbook,
                                                            tmp_path, lab_secrets):
    serials = dns_zone.serials()
    runner = run_playbook(PLAYBOOK, limit="us-west", verbosity=3, extravars={
        "failsafe_lock_backend": "file", "failsafe_lock_path": str(tmp_path), "failsafe_dns_tsig_key_secret": WRONG_SECRET})
    assert runner.status == "failed"
    assert any("BADSIG" in msg for msg in failures(runner)), failures(runner)
    # The emulator's records were correct to change, but nothing changes until all are checked.
    assert dns_zone.serials() == serials and route53_emulator.mutating() == []
    all_answer(dns_zone, route53_emulator, "us-east")
    assert_secrets_absent(runner, list(lab_secrets) + [WRONG_SECRET])


def test_a_mistyped_name_is_refused_not_ignored(dns_zone, route53_emulator, run_playbook, tmp_path):
    serials = dns_zone.serials()
    runner = run_playbook(PLAYBOOK, limit="us-west", extravars={
        "failsafe_lock_backend": "file", "failsafe_lock_path": str(tmp_path), "dns_failover_names": ["postgres"]})
    assert runner.status == "failed"
    assert any("dns_failover_names names records it does not have: postgres" in msg
               for msg in failures(runner)), failures(runner)
    assert dns_zone.serials() == serials and route53_emulator.mutating() == []


def test_the_lock_is_released_after_a_failure(dns_zone, run_playbook, run_module, tmp_path):
    runner = run_playbook(PLAYBOOK, limit="us-west", extravars={
        "failsafe_lock_backend": "file", "failsafe_lock_path": str(tmp_path), "failsafe_dns_tsig_key_secret": WRONG_SECRET})
    assert runner.status == "failed"
    store = {"backend": "file", "path": str(tmp_path)}
    taken = run_module("run_lock", {"name": "dns", "store": store})
    assert not taken.failed, taken.msg
    assert taken["acquired"] and "took_over" not in taken, taken


def run_tagged(lab_env, tmp_path, tags, **kwargs):
    """ansible-runner with --tags (run_playbook has no tags)."""
    import ansible_runner

    private = tmp_path / "runner"
    private.mkdir()
    runner = ansible_runner.run(
        private_data_dir=str(private), playbook=str(REPO / PLAYBOOK),
        inventory=str(lab_env.inventory), envvars=dict(lab_env.envvars), tags=tags, quiet=True,
        cancel_callback=lambda: False, **kwargs)
    runner.stdout_text = "\n".join(e.get("stdout", "") for e in runner.events)
    return runner


def test_preflight_tag_checks_only(dns_zone, route53_emulator, lab_env, tmp_path):
    serials = dns_zone.serials()
    runner = run_tagged(lab_env, tmp_path, "preflight", limit="us-west",
                        extravars={"failsafe_lock_backend": "file", "failsafe_lock_path": str(tmp_path)})
    assert runner.status == "successful", runner.stdout_text
    assert any(e.get("event") == "runner_on_ok"
               and e["event_data"].get("task") == "Plan the records of every DNS provider"
               for e in runner.events), "the preflight did not run"
    assert not set(changed_tasks(runner)) & set(CHANGE_TASKS)
    assert dns_zone.serials() == serials and route53_emulator.mutating() == []
    all_answer(dns_zone, route53_emulator, "us-east")


def test_verify_tag_alone_asks_every_server(dns_zone, route53_emulator, lab_env, tmp_path):
    """--tags verify: no change step ran, so dns_verify asks every server itself."""
    serials = dns_zone.serials()
    runner = run_tagged(lab_env, tmp_path, "verify", limit="us-east",
                        extravars={"failsafe_lock_backend": "file", "failsafe_lock_path": str(tmp_path)})
    assert runner.status == "successful", runner.stdout_text
    verified = [r for r in item_results(runner, VERIFY_TASK) if not r.get("skipped")]
    assert len(verified) == 2 and all(r["agreed"] for r in verified), verified
    assert not item_results(runner, CHANGE_TASKS[0])
    record = stats(runner)["artifact_data"]["failsafe_dns_failover"]
    bind = next(p for p in record["providers"] if p["host"] == "dns-primary")
    assert bind["seconds_to_agree"] is not None and len(bind["servers"]) == 2
    assert not bind["changed"]
    assert dns_zone.serials() == serials and route53_emulator.mutating() == []


def test_lower_ttl_mode_keeps_the_addresses(dns_zone, route53_emulator, run_playbook, tmp_path):
    runner = run_playbook(PLAYBOOK, extravars={
        "failsafe_lock_backend": "file", "failsafe_lock_path": str(tmp_path), "dns_failover_mode": "lower_ttl",
        "dns_failover_lower_ttl": 2})
    assert runner.status == "successful", runner.stdout_text
    east = dns_zone.address("us-east")
    for name in dns_zone.names:
        dns_zone.wait_all(name, [east], ttl=2, timeout=5)
        assert route53_emulator.read(name) == {"ttl": 2, "values": [east]}
