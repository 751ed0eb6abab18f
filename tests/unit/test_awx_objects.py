# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""extras/awx/awx_objects.yml and extras/awx/configure.yml, without an AWX server.

- every survey passes AWX's survey-spec rules (extras/awx/awx_launch.py holds them; tests below
  show that each rule refuses what AWX refuses);
- every job template's playbook exists, every survey variable is read by that playbook or the
  roles it runs, every limit and region choice is a group of the inventory;
- the credential types inject only variables the collection reads, and mark every secret;
- every name one object gives another resolves; scheduled templates launch on their defaults;
  what loses data needs an explicit answer;
- configure.yml passes --syntax-check, and every awx.awx call it makes, rendered for every
  object of the file, passes that module's own argument spec.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
from ansible_collections.failsafe.datastores.plugins.module_utils._variables import (
    INVENTORY_VARIABLES,
    RUN_VARIABLES,
)

REPO = Path(__file__).resolve().parents[2]
AWX_DIR = REPO / "extras" / "awx"
sys.path.insert(0, str(AWX_DIR))

import awx_launch  # noqa: E402

OBJECTS = awx_launch.load_objects()
CONFIGURE = AWX_DIR / "configure.yml"
LAB_INVENTORY = REPO / "inventories" / "lab" / "hosts.yml"
TEMPLATES = [awx_launch.job_template(OBJECTS, t["name"]) for t in OBJECTS["job_templates"]]
SURVEYED = [(t["name"], t["survey"]) for t in TEMPLATES if t.get("survey")] + \
    [(w["name"], w["survey"]) for w in OBJECTS["workflow_job_templates"] if w.get("survey")]
# Questions whose answer lets a run lose data: their safe answer must be the default (or no
# default at all, so that someone has to answer).
LOSS_VARIABLES = {
    "regional_failover_accept_data_loss", "postgresql_failover_accept_data_loss",
    "redis_failover_accept_data_loss", "failback_discard_divergent_writes",
    "postgresql_rejoin_force", "restore_confirm",
}


def ids(pairs):
    return [pair[0] for pair in pairs]


# Survey specs -------------------------------------------------------------------------------

@pytest.mark.parametrize("name,survey", SURVEYED, ids=ids(SURVEYED))
def test_survey_passes_awx_rules(name, survey):
    assert awx_launch.survey_spec_errors(survey) == []
    for question in survey["spec"]:
        # AWX's API documentation asks for a description of every question.
        assert question.get("question_description"), question["variable"]
        assert re.match(r"^[a-z_][a-z0-9_]*$", question["variable"]), question["variable"]


GOOD = {"type": "text", "question_name": "Q", "question_description": "d", "variable": "v",
        "required": False}


@pytest.mark.parametrize("spec,expected", [
    ({"name": "s", "spec": [GOOD]}, "'description' is missing"),
    ({"name": "s", "description": "", "spec": []}, "doesn't contain any items"),
    ({"name": "s", "description": "", "spec": [{**GOOD, "type": "boolean"}]}, "not one of"),
    ({"name": "s", "description": "", "spec": [{k: v for k, v in GOOD.items() if k != "required"}]},
     "required missing"),
    ({"name": "s", "description": "", "spec": [{**GOOD, "required": "yes"}]}, "expected to be a boolean"),
    ({"name": "s", "description": "", "spec": [GOOD, GOOD]}, "duplicated"),
    ({"name": "s", "description": "", "spec": [{**GOOD, "type": "float", "default": 24}]},
     "expected to be float"),
    ({"name": "s", "description": "", "spec": [{**GOOD, "type": "integer", "default": "5"}]},
     "expected to be int"),
    ({"name": "s", "description": "", "spec": [{**GOOD, "min": "1"}]}, "min limit"),
    ({"name": "s", "description": "", "spec": [{**GOOD, "type": "multiplechoice"}]}, "must list choices"),
    ({"name": "s", "description": "", "spec": [{**GOOD, "type": "multiplechoice", "choices": ["a", "b"],
                                                "default": "c"}]}, "not among the choices"),
    ({"name": "s", "description": "", "spec": [{**GOOD, "type": "multiplechoice", "choices": ["a", "b"],
                                                "default": "a\nb"}]}, "only have one default"),
])
def test_survey_rules_refuse_what_awx_refuses(spec, expected):
    errors = awx_launch.survey_spec_errors(spec)
    assert any(expected in error for error in errors), errors


def test_launch_applies_awx_precedence_and_refusals():
    template = {"name": "t", "extra_vars": {"a": 1, "b": 1},
                "survey": {"name": "s", "description": "", "spec": [
                    {**GOOD, "variable": "b", "type": "integer", "default": 2, "min": 0, "max": 5},
                    {**GOOD, "variable": "c", "type": "integer", "default": "", "required": False},
                    {**GOOD, "variable": "m", "type": "multiselect", "choices": ["x", "y"],
                     "default": "x\ny"},
                    {**GOOD, "variable": "r", "type": "multiplechoice", "choices": ["p", "q"],
                     "required": True}]}}
    # UI: the form starts from the defaults; the API and schedules: only valid defaults apply.
    assert awx_launch.survey_extra_vars(template, {"r": "q"}) == {"a": 1, "b": 2, "m": ["x", "y"], "r": "q"}
    assert awx_launch.survey_extra_vars(template, {"r": "p"}, prefill=False) == {"a": 1, "b": 2, "r": "p"}
    with pytest.raises(awx_launch.LaunchError, match="'r' value missing"):
        awx_launch.survey_extra_vars(template, {})
    with pytest.raises(awx_launch.LaunchError, match="too large"):
        awx_launch.survey_extra_vars(template, {"r": "p", "b": 6})
    with pytest.raises(awx_launch.LaunchError, match="expected to be one of"):
        awx_launch.survey_extra_vars(template, {"r": "z"})
    with pytest.raises(awx_launch.LaunchError, match="not allowed on launch"):
        awx_launch.survey_extra_vars(template, {"r": "p", "other": 1})


# Playbooks, variables, groups ------------------------------------------------------------------

def _role_files(role):
    base = REPO / "roles" / role
    return [p for sub in ("tasks", "defaults", "vars", "handlers", "meta") for p in (base / sub).glob("*.yml")]


def reachable(playbook: Path):
    """The YAML files a playbook runs (itself, imported playbooks, the collection's roles it
    reaches) and the roles' option names."""
    files, roles, todo = [], set(), [playbook]
    while todo:
        path = todo.pop()
        if path in files:
            continue
        files.append(path)
        text = path.read_text()
        for name in re.findall(r"import_playbook:\s*(\S+)", text):
            todo.append(path.parent / name)
        for role in re.findall(r"failsafe\.datastores\.(\w+)", text):
            if (REPO / "roles" / role).is_dir() and role not in roles:
                roles.add(role)
                todo.extend(_role_files(role))
    options = set()
    for role in roles:
        spec = yaml.safe_load((REPO / "roles" / role / "meta" / "argument_specs.yml").read_text())
        for entry in (spec.get("argument_specs") or {}).values():
            options.update((entry or {}).get("options") or {})
    return files, options


def variable_is_read(variable, playbook: Path) -> bool:
    files, options = reachable(playbook)
    if variable in options:
        return True
    text = "\n".join(path.read_text() for path in files)
    if variable == "failsafe_target_region":
        # Read by the run_preflight action plugin of runs whose target is required or optional.
        return bool(re.search(r"run_preflight:\s*\n(\s+\w+:.*\n)*?\s+target:.*\b(required|optional)\b", text))
    return re.search(rf"\b{re.escape(variable)}\b", text) is not None


@pytest.mark.parametrize("template", TEMPLATES, ids=[t["name"] for t in TEMPLATES])
def test_template_playbook_exists_and_reads_every_survey_variable(template):
    playbook = REPO / template["playbook"]
    assert playbook.is_file(), template["playbook"]
    unread = [q["variable"] for q in (template.get("survey") or {}).get("spec", [])
              if not variable_is_read(q["variable"], playbook)]
    assert unread == [], f"{template['name']}: nothing in {template['playbook']} reads {unread}"


def test_variable_check_finds_an_unread_variable():
    playbook = REPO / "playbooks" / "regional_failover.yml"
    assert variable_is_read("regional_failover_max_data_loss_seconds", playbook)
    assert variable_is_read("redis_failover_sentinel_method", playbook)  # a role option
    assert not variable_is_read("regional_failover_max_loss", playbook)
    assert not variable_is_read("backup_verify_scope", playbook)  # another playbook's role
    assert not variable_is_read("failsafe_target_region", REPO / "playbooks" / "backup.yml")


@pytest.mark.parametrize("template", TEMPLATES, ids=[t["name"] for t in TEMPLATES])
def test_a_template_that_takes_a_run_lock_carries_the_postgresql_credential(template):
    """The AWX inventory keeps the run locks in PostgreSQL (several AWX nodes): a template
    whose playbook takes a lock needs the credential that reaches it."""
    inventory = next(i for i in OBJECTS["inventories"] if i["name"] == template["inventory"])
    assert inventory["variables"]["failsafe_lock_backend"] == "postgresql"
    files = reachable(REPO / template["playbook"])[0]
    if any("failsafe.datastores.lock" in p.read_text() or "run_lock" in p.read_text() for p in files):
        assert "Failsafe PostgreSQL" in template["credentials"], template["name"]


def test_workflow_survey_variables_are_read_by_its_jobs():
    for workflow in OBJECTS["workflow_job_templates"]:
        playbooks = [REPO / awx_launch.job_template(OBJECTS, node["unified_job_template"])["playbook"]
                     for node in workflow["nodes"] if "unified_job_template" in node]
        for question in workflow["survey"]["spec"]:
            assert any(variable_is_read(question["variable"], p) for p in playbooks), question["variable"]


def _groups(inventory: dict) -> set:
    found = set()

    def walk(children):
        for name, body in (children or {}).items():
            found.add(name)
            walk((body or {}).get("children"))

    walk(inventory["all"].get("children"))
    return found


def test_regions_and_limits_are_inventory_groups():
    groups = _groups(yaml.safe_load(LAB_INVENTORY.read_text()))
    assert set(OBJECTS["regions"]) <= groups
    for template in TEMPLATES:
        for pattern in filter(None, re.split(r"[,:]", template.get("limit") or "")):
            assert pattern.lstrip("!&") in groups, (template["name"], pattern)
        for question in (template.get("survey") or {}).get("spec", []):
            if question["variable"] in ("failsafe_target_region", "app_traffic_region"):
                assert sorted(question["choices"]) == sorted(OBJECTS["regions"]), template["name"]


# Credentials ------------------------------------------------------------------------------------

SECRET_WORDS = ("password", "secret", "token", "webhook_url", "key_secret")


@pytest.mark.parametrize("ctype", OBJECTS["credential_types"], ids=[c["name"] for c in OBJECTS["credential_types"]])
def test_credential_type_injects_known_variables_and_hides_secrets(ctype):
    known = set(INVENTORY_VARIABLES) | set(RUN_VARIABLES)
    injected = ctype["injectors"]["extra_vars"]
    assert ctype["kind"] == "cloud"
    assert set(injected) <= known, set(injected) - known
    fields = {field["id"]: field for field in ctype["inputs"]["fields"]}
    assert set(ctype["inputs"]["required"]) <= set(fields)
    for field_id, field in fields.items():
        if any(word in field_id for word in SECRET_WORDS):
            assert field.get("secret") is True, f"{ctype['name']}: {field_id} must be secret"
    # Every field reaches a variable, and every secret variable comes from a secret field.
    for variable, template in injected.items():
        used = set(re.findall(r"\b(\w+)\b", template)) & set(fields)
        assert used, variable
        if any(word in variable for word in ("password", "secret", "token", "webhook")):
            assert all(fields[f].get("secret") for f in used), variable
    assert set(fields) <= {f for t in injected.values() for f in re.findall(r"\b(\w+)\b", t)}


def test_injectors_render_like_awx():
    ctype = awx_launch.credential_type(OBJECTS, "Failsafe PostgreSQL")
    assert awx_launch.render_injectors(ctype, {"username": "postgres", "password": "pw"}) == {
        "failsafe_pg_user": "postgres", "failsafe_pg_password": "pw",
        "failsafe_pg_replication_user": "postgres", "failsafe_pg_replication_password": "pw"}
    with pytest.raises(awx_launch.LaunchError, match="needs"):
        awx_launch.render_injectors(ctype, {"username": "postgres"})
    redis = awx_launch.credential_type(OBJECTS, "Failsafe Redis")
    # Optional inputs render empty, which the connection filters ignore.
    assert awx_launch.render_injectors(redis, {"password": "pw"})["failsafe_redis_sentinel_password"] == ""


# References between objects -----------------------------------------------------------------------

def test_every_reference_resolves():
    def names(key):
        return {entry["name"] for entry in OBJECTS[key]}

    credentials, notifications = names("credentials"), names("notification_templates")
    assert {c["credential_type"] for c in OBJECTS["credentials"]} <= names("credential_types")
    template_names = [t["name"] for t in TEMPLATES]
    assert len(template_names) == len(set(template_names))
    for template in TEMPLATES:
        assert template["inventory"] in names("inventories")
        assert template["project"] == OBJECTS["project"]["name"]
        assert template["execution_environment"] == OBJECTS["execution_environment"]["name"]
        assert set(template["credentials"]) <= credentials, template["name"]
        assert set(template.get("notifications", [])) <= notifications
        assert template["use_fact_cache"] is False
    for workflow in OBJECTS["workflow_job_templates"]:
        seen = set()
        for node in workflow["nodes"]:
            assert ("unified_job_template" in node) != ("approval_node" in node), node
            if "unified_job_template" in node:
                assert node["unified_job_template"] in template_names
            # configure.yml creates the nodes in order: a node's successors exist before it.
            for key in ("success_nodes", "failure_nodes", "always_nodes"):
                assert set(node.get(key, [])) <= seen, (node["identifier"], key)
            seen.add(node["identifier"])
    for schedule in OBJECTS["schedules"]:
        assert schedule["unified_job_template"] in template_names
        assert re.match(r"^DTSTART;TZID=\S+:\d{8}T\d{6} RRULE:FREQ=(DAILY|WEEKLY|MONTHLY)", schedule["rrule"])


def test_workflow_asks_a_person_before_the_promotion():
    workflow = OBJECTS["workflow_job_templates"][0]
    nodes = {node["identifier"]: node for node in workflow["nodes"]}
    changing = [i for i, n in nodes.items()
                if n.get("unified_job_template") == "Failsafe regional failover"]
    assert len(changing) == 1
    parents = [i for i, n in nodes.items() if changing[0] in n.get("success_nodes", [])]
    assert [nodes[p].get("approval_node") is not None for p in parents] == [True]
    grandparents = [i for i, n in nodes.items() if parents[0] in n.get("success_nodes", [])]
    readiness = awx_launch.job_template(OBJECTS, nodes[grandparents[0]]["unified_job_template"])
    assert readiness["job_type"] == "check" and readiness["playbook"] == "playbooks/regional_failover.yml"


def test_every_workflow_node_launches_with_the_workflow_answers():
    for flow in OBJECTS["workflow_job_templates"]:
        answers = {q["variable"]: q["choices"][0] for q in flow["survey"]["spec"]
                   if q["required"] and "default" not in q}
        jobs = [awx_launch.launch_in_workflow(OBJECTS, flow["name"], node["identifier"], answers)
                for node in flow["nodes"] if "unified_job_template" in node]
        assert len(jobs) == 3
        assert all(job["extravars"]["failsafe_target_region"] == "us-west" for job in jobs)
        with pytest.raises(awx_launch.LaunchError, match="failsafe_target_region"):
            awx_launch.launch_in_workflow(OBJECTS, flow["name"], "readiness", {})


def test_scheduled_templates_launch_on_their_defaults():
    scheduled = {s["unified_job_template"] for s in OBJECTS["schedules"]}
    assert {"Failsafe backup verification", "Failsafe DR drill"} <= scheduled
    for schedule in OBJECTS["schedules"]:
        run = awx_launch.launch(OBJECTS, schedule["unified_job_template"],
                                schedule.get("extra_data"), prefill=False)
        assert not run["check"]


def test_losing_data_needs_an_explicit_answer():
    for name, survey in SURVEYED:
        for question in survey["spec"]:
            if question["variable"] in LOSS_VARIABLES:
                assert question.get("default") in (None, "false"), (name, question["variable"])
            if question["variable"].endswith("max_data_loss_seconds") and question["type"] == "integer":
                assert question.get("default") is None, (name, question["variable"])
    run = awx_launch.launch(OBJECTS, "Failsafe regional failover", {"failsafe_target_region": "us-west"})
    assert run["extravars"]["regional_failover_accept_data_loss"] == "false"
    assert "regional_failover_max_data_loss_seconds" not in run["extravars"]
    with pytest.raises(awx_launch.LaunchError, match="restore_confirm"):
        awx_launch.launch(OBJECTS, "Failsafe restore")


def test_ansible_cfg_carries_what_awx_needs():
    text = (REPO / "ansible.cfg").read_text()
    assert re.search(r"^force_valid_group_names\s*=\s*ignore", text, re.M)
    assert re.search(r"^callbacks_enabled\s*=.*failsafe\.datastores\.run_report", text, re.M)
    assert not re.search(r"^fact_caching\s*=\s*(?!memory)", text, re.M)
    assert not re.search(r"^gathering\s*=\s*smart", text, re.M)


# configure.yml and the awx.awx modules -----------------------------------------------------------

def test_configure_playbook_syntax():
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "--syntax-check",
                           str(CONFIGURE)], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


class _Captured(Exception):
    pass


def awx_module_spec(name, monkeypatch):
    """The argument spec an awx.awx module gives AnsibleModule (its own, plus the controller
    authentication options), and its other AnsibleModule arguments."""
    module = importlib.import_module(f"ansible_collections.awx.awx.plugins.modules.{name}")
    captured = {}

    def capture(self, argument_spec=None, **kwargs):
        captured.update(kwargs)
        captured["argument_spec"] = argument_spec
        raise _Captured()

    monkeypatch.setattr(module.ControllerAPIModule, "__init__", capture)
    with pytest.raises(_Captured):
        module.main()
    spec = dict(module.ControllerAPIModule.AUTH_ARGSPEC)
    spec.update(captured.pop("argument_spec"))
    return spec, captured


def _trust(value):
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trust(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trust(v) for v in value]
    return value


EXAMPLE_SECRETS = {
    "Failsafe PostgreSQL": {"username": "postgres", "password": "example"},
    "Failsafe Redis": {"password": "example"},
    "Failsafe DNS TSIG": {"key_name": "failover", "key_secret": "ZXhhbXBsZQ=="},
    "Failsafe Route 53": {"access_key": "AKIAEXAMPLE", "secret_key": "example"},
    "Failsafe S3 backups": {"access_key": "backup", "secret_key": "example"},
    "Failsafe notifications": {"webhook_url": "https://hooks.example.com/x"},
}


def configure_calls():
    """(task name, module, args) for every awx.awx call of configure.yml, rendered by Ansible's
    templar over the objects file (as data, the way the playbook reads it) and every loop item."""
    play = yaml.safe_load(CONFIGURE.read_text())[0]
    variables = _trust(dict(play["vars"]))
    variables.update(awx_configure_objects=awx_launch.load_objects(),
                     awx_configure_credential_inputs=EXAMPLE_SECRETS,
                     awx_configure_webhook_url="https://hooks.example.com/x",
                     awx_configure_sync_inventory=True,
                     playbook_dir=str(AWX_DIR))
    calls = []
    for task in play["tasks"]:
        module = next((key for key in task if key.startswith("awx.awx.")), None)
        if module is None:
            continue
        task_vars = dict(variables, **_trust(task.get("vars") or {}))
        templar = Templar(loader=DataLoader(), variables=task_vars)
        items = templar.template(trust_as_template(task["loop"])) if "loop" in task else [None]
        assert items, f"{task['name']}: the loop is empty"
        for item in items:
            templar = Templar(loader=DataLoader(), variables=dict(task_vars, item=item))
            if "when" in task and not templar.evaluate_conditional(trust_as_template(task["when"])):
                continue
            calls.append((task["name"], module.split(".")[-1], templar.template(_trust(task[module]))))
    return calls


def test_every_awx_call_passes_the_module_argument_spec(monkeypatch):
    calls = configure_calls()
    modules = {call[1] for call in calls}
    assert {"credential_type", "credential", "job_template", "workflow_job_template",
            "workflow_job_template_node", "schedule", "notification_template"} <= modules
    counted = {m: sum(1 for call in calls if call[1] == m) for m in modules}
    assert counted["job_template"] == len(OBJECTS["job_templates"])
    assert counted["schedule"] == len(OBJECTS["schedules"])
    assert counted["credential"] == len(OBJECTS["credentials"]) == len(EXAMPLE_SECRETS)
    specs = {module: awx_module_spec(module, monkeypatch) for module in modules}
    for task, module, args in calls:
        spec, extra = specs[module]
        validator = ArgumentSpecValidator(
            spec, mutually_exclusive=extra.get("mutually_exclusive"),
            required_together=extra.get("required_together"),
            required_one_of=extra.get("required_one_of"),
            required_if=extra.get("required_if"), required_by=extra.get("required_by"))
        result = validator.validate(args)
        assert result.error_messages == [], f"{task} ({module}): {result.error_messages} in {args}"
    surveys = [call[2]["survey_spec"] for call in calls
               if call[1] in ("job_template", "workflow_job_template") and call[2]["survey_enabled"]]
    assert len(surveys) == len(SURVEYED)
    assert all(awx_launch.survey_spec_errors(s) == [] for s in surveys)


def test_argument_check_finds_a_wrong_argument(monkeypatch):
    spec = awx_module_spec("job_template", monkeypatch)[0]
    assert ArgumentSpecValidator(spec).validate({"name": "x", "job_type": "dry-run"}).error_messages
    assert ArgumentSpecValidator(spec).validate({"name": "x", "surveyspec": {}}).error_messages
