# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Job templates of extras/awx/awx_objects.yml, run through ansible-runner (AWX's own runner)
against the lab with exactly what AWX would give the playbook: the template's job type, diff
mode and limit, the survey defaults and answers, AWX's job metadata variables, and the secrets
as the credential types inject them (extra vars) - from an inventory that holds no secret.

No AWX server runs here: what AWX does around this (project sync, inventory import, the
approval node, schedules, notifications) is not exercised; docs/awx.md says so. A cheap subset
runs: read-only templates, check runs, and one backup (it writes only to S3).
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "extras" / "awx"))

import awx_launch  # noqa: E402

from engines.backup import KINDS as S3_KINDS, S3Store  # noqa: E402

KINDS = ("postgresql", "postgresql_witness", "redis", "redis_sentinel", "bind", "route53_emulator",
         "app") + S3_KINDS
OBJECTS = awx_launch.load_objects()

# Inventory variable -> (credential, input): what the AWX inventory must not hold.
SECRETS = {
    "failsafe_pg_password": ("Failsafe PostgreSQL", "password"),
    "failsafe_pg_replication_password": ("Failsafe PostgreSQL", "replication_password"),
    "failsafe_redis_password": ("Failsafe Redis", "password"),
    "failsafe_redis_sentinel_password": ("Failsafe Redis", "sentinel_password"),
    "failsafe_dns_tsig_key_secret": ("Failsafe DNS TSIG", "key_secret"),
    "failsafe_route53_access_key": ("Failsafe Route 53", "access_key"),
    "failsafe_route53_secret_key": ("Failsafe Route 53", "secret_key"),
    "failsafe_s3_access_key": ("Failsafe S3 backups", "access_key"),
    "failsafe_s3_secret_key": ("Failsafe S3 backups", "secret_key"),
}
# Not secret, but given to the credential too (its injector sets them for every host).
NAMES = {
    "failsafe_pg_user": ("Failsafe PostgreSQL", "username"),
    "failsafe_pg_replication_user": ("Failsafe PostgreSQL", "replication_username"),
    "failsafe_dns_tsig_key_name": ("Failsafe DNS TSIG", "key_name"),
    "failsafe_dns_tsig_algorithm": ("Failsafe DNS TSIG", "algorithm"),
}


def _split_secrets(inventory: dict):
    """The inventory without secrets, and the credential inputs that carry them."""
    inputs: dict[str, dict] = {}

    def strip(variables: dict) -> None:
        for name in list(variables):
            if name in SECRETS or name in NAMES:
                credential, field = (SECRETS | NAMES)[name]
                inputs.setdefault(credential, {})[field] = variables[name]
                if name in SECRETS:
                    del variables[name]

    def walk(group: dict) -> None:
        strip(group.get("vars") or {})
        for host_vars in (group.get("hosts") or {}).values():
            strip(host_vars or {})
        for child in (group.get("children") or {}).values():
            walk(child or {})

    walk(inventory["all"])
    return inventory, inputs


@pytest.fixture(scope="module")
def awx(lab_env, tmp_path_factory):
    """The lab as an AWX inventory (secrets removed, a backup prefix of its own) and the
    credential inputs that carry the secrets."""
    lab_env.ensure_started(KINDS)
    lab_env.ensure_canonical()
    inventory, inputs = _split_secrets(yaml.safe_load(Path(lab_env.inventory).read_text()))
    prefix = f"awx-{uuid.uuid4().hex[:8]}"
    inventory["all"]["vars"]["failsafe_s3_prefix"] = prefix
    path = tmp_path_factory.mktemp("awx-inventory") / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    secrets = [value for creds in inputs.values() for field, value in creds.items()
               if field in {pair[1] for pair in SECRETS.values()}]
    assert len(secrets) >= 7 and not any(str(s) in path.read_text() for s in secrets)
    yield path, inputs, prefix
    S3Store(lab_env, prefix).cleanup()


def run_template(run_playbook, awx, name, answers=None, prefill=True, job_type=None,
                 workflow=None, artifacts=None):
    """Run a job template (or, with workflow=(workflow name, node), a workflow node's job) as AWX
    would launch it."""
    inventory, inputs = awx[0], awx[1]
    if workflow:
        launch = awx_launch.launch_in_workflow(OBJECTS, workflow[0], workflow[1], answers,
                                               credential_inputs=inputs, artifacts=artifacts)
    else:
        launch = awx_launch.launch(OBJECTS, name, answers, credential_inputs=inputs,
                                   prefill=prefill, job_type=job_type)
    extravars = launch["extravars"]
    runner = run_playbook(launch["playbook"], inventory=inventory, extravars=extravars,
                          limit=launch["limit"], check=launch["check"], diff=launch["diff"],
                          verbosity=launch["verbosity"])
    return launch, runner


def results(runner, module):
    return [e["event_data"]["res"] for e in runner.events
            if e.get("event") in ("runner_on_ok", "runner_on_failed")
            and e["event_data"].get("task_action") in (module, f"failsafe.datastores.{module}")]


def artifacts(runner) -> dict:
    for event in runner.events:
        if event.get("event") == "playbook_on_stats":
            return event["event_data"].get("artifact_data") or {}
    return {}


def assert_clean(runner, launch, secrets):
    """Successful, every variable AWX passed is one the collection reads, no secret printed."""
    assert runner.status == "successful", runner.stdout_text
    preflights = results(runner, "run_preflight")
    if preflights:
        assert preflights[0]["unknown_variables"] == [], preflights[0]
    dumped = runner.stdout_text + json.dumps([e.get("event_data", {}) for e in runner.events],
                                             default=str)
    assert not [s for s in secrets if s and str(s) in dumped]
    return launch


def test_workflow_jobs_readiness_check_then_status(awx, pg_pair, redis_pair, run_playbook,
                                                   lab_secrets):
    """The first and the last job of the approved regional-failover workflow, as AWX runs them
    with the workflow's survey answers (the failover itself, between the approval and the
    status, is not run here)."""
    flow = "Failsafe regional failover (approved)"
    answers = {"failsafe_target_region": "us-west"}
    launch, runner = run_template(run_playbook, awx, None, answers, workflow=(flow, "readiness"))
    assert launch["check"] and launch["diff"] and launch["limit"] is None
    assert launch["extravars"]["failsafe_pg_password"]  # from the credential, not the inventory
    assert launch["extravars"]["regional_failover_accept_data_loss"] == "false"
    assert_clean(runner, launch, lab_secrets)
    preflight = results(runner, "run_preflight")[0]
    assert preflight["target_region"] == "us-west"
    assert preflight["target_source"].startswith("failsafe_target_region")
    planned = results(runner, "postgresql_switchover")
    assert any(r.get("changed") and r.get("switched") for r in planned), "the switchover is planned"
    # Check mode: nothing moved (independent queries).
    assert not pg_pair.in_recovery(pg_pair.east) and pg_pair.in_recovery(pg_pair.west)
    assert redis_pair.role(redis_pair.east) == "master"

    # A workflow hands each job's set_stats to the jobs after it, as extra vars: the status job
    # gets the readiness job's, and must not take them for unknown variables.
    handed = artifacts(runner)
    assert {"failsafe_run", "failsafe_postgresql_switchover"} <= set(handed)
    status_launch, status = run_template(run_playbook, awx, None, answers, workflow=(flow, "status"),
                                         artifacts=handed)
    assert status_launch["extravars"]["failsafe_run"] == handed["failsafe_run"]
    assert_clean(status, status_launch, lab_secrets)
    assert "us-east" in status.stdout_text and "us-west" in status.stdout_text
    assert artifacts(status)["failsafe_status"]


def test_dns_failover_launched_as_a_check_run(awx, dns_zone, run_playbook, lab_secrets):
    before = {name: dns_zone.answers(name) for name in dns_zone.names}
    launch, runner = run_template(run_playbook, awx, "Failsafe DNS failover",
                                  {"failsafe_target_region": "us-west"}, job_type="check")
    assert launch["check"]
    assert launch["extravars"]["dns_failover_mode"] == "switch"
    assert launch["extravars"]["failsafe_dns_tsig_key_secret"]
    assert_clean(runner, launch, lab_secrets)
    assert dns_zone.address("us-west") in runner.stdout_text, "the plan names us-west's address"
    # Nothing changed: every server answers as before (independent queries).
    assert {name: dns_zone.answers(name) for name in dns_zone.names} == before
    assert before[dns_zone.names[0]][f"{dns_zone.primary.host}:{dns_zone.primary.port}"]["values"] \
        == [dns_zone.address("us-east")]


def test_scheduled_backup_then_verification(awx, run_playbook, lab_secrets, lab_env):
    prefix = awx[2]
    schedules = {s["unified_job_template"]: s for s in OBJECTS["schedules"]}
    backup_launch, backup = run_template(run_playbook, awx, "Failsafe backup", prefill=False,
                                         answers=schedules["Failsafe backup"].get("extra_data"))
    assert_clean(backup, backup_launch, lab_secrets)
    assert "backup_engines" not in backup_launch["extravars"]  # the server drops a multiselect default
    keys = S3Store(lab_env, prefix).keys("postgresql")
    assert keys, "the backup wrote to the inventory's S3 prefix"

    verify_launch, verify = run_template(
        run_playbook, awx, "Failsafe backup verification", prefill=False,
        answers=schedules["Failsafe backup verification"].get("extra_data"))
    assert verify_launch["extravars"]["backup_verify_max_age_hours"] == 24.0
    assert_clean(verify, verify_launch, lab_secrets)
    verified = results(verify, "backup_verify")
    assert verified and all(not r.get("failed") for r in verified)
