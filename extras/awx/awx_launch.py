# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What AWX would run for a job template of extras/awx/awx_objects.yml, without AWX.

The tests use it to run each template's playbook through ansible-runner exactly as AWX would
(tests/integration/test_awx_job_templates.py) and to check the surveys against AWX's own rules
(tests/unit/test_awx_objects.py). Operators use it when AWX itself is down:

    python3 extras/awx/awx_launch.py "Failsafe regional failover" -a failsafe_target_region=us-west
    python3 extras/awx/awx_launch.py --list

prints the ansible-playbook command line with the template's job type, diff mode, limit, tags and
the extra variables the template, its survey defaults and the answers give. Credentials are not
read: pass their variables with `-e @secrets.yml` (docs/awx.md lists them per credential type).

The rules copied here are AWX's, as its API applies them (awx/api/views: JobTemplateSurveySpec;
awx/main/models/mixins.py: SurveyJobTemplateMixin):
  - a survey spec has `name` and `description` (strings) and a non-empty `spec` list; each
    question has `type`, `question_name`, `variable` (strings) and `required` (boolean); a type
    is one of text, textarea, password, integer, float, multiplechoice, multiselect; a
    variable appears once; a non-empty default has the type's Python type (str; int for
    integer; float for float); `min`/`max` are integers or null (lengths for text types,
    values for numbers); choice questions list `choices`, and their defaults are among them
    (multiplechoice: one; multiselect: newline-separated);
  - at launch, extra vars are the template's `extra_vars`, then each survey default that passes
    the question's own validation, then the answers; a required question without a value, or
    a value of the wrong type, out of min/max or not among the choices, refuses the launch;
  - credentials of custom types render their `injectors.extra_vars` with Jinja over the
    credential's inputs (a missing input renders empty) and add them to the extra vars;
  - AWX adds its job metadata (awx_job_id, awx_job_template_name, ...) to the extra vars.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from copy import deepcopy
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
OBJECTS_FILE = HERE / "awx_objects.yml"

SURVEY_TYPES = {
    "text": str,
    "textarea": str,
    "password": str,
    "multiplechoice": str,
    "multiselect": str,
    "integer": int,
    "float": float,
}
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LaunchError(ValueError):
    """AWX would refuse to launch the job (the message says why)."""


def load_objects(path=OBJECTS_FILE) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def job_template(objects: dict, name: str) -> dict:
    """A job template of the file with the common settings filled in."""
    for entry in objects["job_templates"]:
        if entry["name"] == name:
            merged = deepcopy(objects.get("job_template_defaults") or {})
            merged.update(deepcopy(entry))
            return merged
    known = ", ".join(entry["name"] for entry in objects["job_templates"])
    raise KeyError(f"no job template named {name!r} (known: {known})")


def credential_type(objects: dict, name: str) -> dict:
    for entry in objects["credential_types"]:
        if entry["name"] == name:
            return entry
    raise KeyError(f"no credential type named {name!r}")


def credential(objects: dict, name: str) -> dict:
    for entry in objects["credentials"]:
        if entry["name"] == name:
            return entry
    raise KeyError(f"no credential named {name!r}")


def _choices(question) -> list:
    choices = question.get("choices", [])
    if isinstance(choices, str):
        return [choice for choice in choices.splitlines() if choice.strip()]
    return list(choices)


def survey_spec_errors(survey) -> list[str]:
    """AWX's checks when a survey spec is saved (an empty list: AWX accepts it)."""
    errors = []
    if not isinstance(survey, dict):
        return ["the survey spec is not a mapping"]
    for field, kind, label in (("name", str, "string"), ("description", str, "string"),
                               ("spec", list, "list of items")):
        if field not in survey:
            errors.append(f"field {field!r} is missing from the survey spec")
        elif not isinstance(survey[field], kind):
            errors.append(f"expected {label} for field {field!r}")
    if errors:
        return errors
    if not survey["spec"]:
        return ["'spec' doesn't contain any items"]
    seen = set()
    for idx, item in enumerate(survey["spec"]):
        where = f"survey question {idx}"
        if not isinstance(item, dict):
            errors.append(f"{where} is not a mapping")
            continue
        missing = [key for key in ("type", "question_name", "variable", "required") if key not in item]
        if missing:
            errors.append(f"{where}: {', '.join(missing)} missing")
            continue
        for key in ("type", "question_name", "variable"):
            if not isinstance(item[key], str):
                errors.append(f"{where}: {key!r} expected to be a string")
        if not isinstance(item["required"], bool):
            errors.append(f"{where}: 'required' expected to be a boolean")
        variable = item["variable"]
        where = f"survey question {idx} ({variable})"
        if variable in seen:
            errors.append(f"{where}: variable duplicated")
        seen.add(variable)
        qtype = item["type"]
        if qtype not in SURVEY_TYPES:
            errors.append(f"{where}: type {qtype!r} is not one of {', '.join(SURVEY_TYPES)}")
            continue
        default = item.get("default")
        if "default" in item and default != "" and not isinstance(default, SURVEY_TYPES[qtype]):
            errors.append(f"{where}: default {default!r} expected to be {SURVEY_TYPES[qtype].__name__}")
        for key in ("min", "max"):
            value = item.get(key)
            if key in item and value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                errors.append(f"{where}: the {key} limit expected to be an integer")
        if qtype in ("multiplechoice", "multiselect"):
            if "choices" not in item:
                errors.append(f"{where}: a {qtype} question must list choices")
                continue
            choices = _choices(item)
            if "default" in item:
                defaults = [d for d in default.splitlines() if d.strip()] if isinstance(default, str) else default
                if qtype == "multiplechoice" and len(defaults) > 1:
                    errors.append(f"{where}: a multiplechoice question can only have one default")
                if any(choice not in choices for choice in defaults):
                    errors.append(f"{where}: default {default!r} is not among the choices {choices}")
        if isinstance(default, str) and default.startswith("$encrypted$"):
            errors.append(f"{where}: $encrypted$ is reserved")
    return errors


def survey_element_errors(question: dict, data: dict, validate_required=True) -> list[str]:
    """AWX's check of one answer (or default) at launch."""
    variable = question["variable"]
    qtype = question["type"]
    if variable not in data:
        if question["required"] and validate_required:
            return [f"{variable!r} value missing"]
        return []
    value = data[variable]
    low, high = question.get("min"), question.get("max")
    low = None if low in ("", None) else low
    high = None if high in ("", None) else high
    if qtype in ("text", "textarea", "password"):
        if not isinstance(value, str):
            return [f"value {value!r} for {variable!r} expected to be a string"]
        errors = []
        if low is not None and len(value) < int(low):
            errors.append(f"{variable!r} value {value!r} is too short (at least {low})")
        if high is not None and len(value) > int(high):
            errors.append(f"{variable!r} value {value!r} is too long (at most {high})")
        return errors
    if qtype in ("integer", "float"):
        numeric = (int,) if qtype == "integer" else (int, float)
        if type(value) not in numeric:
            return [f"value {value!r} for {variable!r} expected to be {qtype}"]
        errors = []
        if low is not None and value < low:
            errors.append(f"{variable!r} value {value} is too small (at least {low})")
        if high is not None and value > high:
            errors.append(f"{variable!r} value {value} is too large (at most {high})")
        return errors
    choices = _choices(question)
    if qtype == "multiselect":
        if not isinstance(value, list):
            return [f"{variable!r} value is expected to be a list"]
        return [f"value {item!r} for {variable!r} expected to be one of {choices}"
                for item in value if item not in choices]
    if value not in choices:
        return [f"value {value!r} for {variable!r} expected to be one of {choices}"]
    return []


def ui_default(question):
    """The answer the AWX UI pre-fills from a survey default (a multiselect default is a
    newline-separated string in the spec, a list in the form)."""
    default = question["default"]
    if question["type"] == "multiselect" and isinstance(default, str):
        return [item for item in default.splitlines() if item.strip()]
    return default


def survey_extra_vars(template: dict, answers: dict | None = None, prefill: bool = True,
                      validate_required: bool = True) -> dict:
    """Template extra vars -> survey defaults -> answers; LaunchError when AWX refuses.

    prefill=True is a launch from the UI, whose form starts from every default; prefill=False
    is a launch by the API or a schedule, where only the server applies defaults: each default
    that passes its own question's validation (so a multiselect default, a string in the spec,
    is not applied and the playbook's own default takes over).
    """
    answers = dict(answers or {})
    extra_vars = deepcopy(template.get("extra_vars") or {})
    survey = template.get("survey")
    if not survey:
        if answers and not template.get("ask_variables_on_launch"):
            raise LaunchError(f"variables {sorted(answers)} are not allowed on launch: the "
                              "template has no survey and does not prompt for variables")
        extra_vars.update(answers)
        return extra_vars
    if prefill:
        filled = {}
        for question in survey["spec"]:
            default = question.get("default")
            if default is None or (default == "" and question["type"] not in ("text", "textarea")):
                continue
            filled[question["variable"]] = ui_default(question)
        answers = {**filled, **answers}
    defaults = {}
    for question in survey["spec"]:
        default = question.get("default")
        if default is not None and not survey_element_errors(question, {question["variable"]: default}):
            defaults[question["variable"]] = default
    extra_vars.update(defaults)
    errors = []
    for question in survey["spec"]:
        errors += survey_element_errors(question, {**defaults, **answers}, validate_required)
    unknown = set(answers) - {question["variable"] for question in survey["spec"]}
    if unknown and not template.get("ask_variables_on_launch"):
        errors.append(f"variables {sorted(unknown)} are not allowed on launch")
    if errors:
        raise LaunchError("; ".join(errors))
    extra_vars.update(answers)
    return extra_vars


def render_injectors(ctype: dict, inputs: dict) -> dict:
    """The extra vars a credential of this custom type injects (AWX renders them with Jinja in
    a sandbox over the inputs; an input that is not set renders empty)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment()
    namespace = dict(inputs)
    for field in ctype["inputs"].get("fields", []):
        if field.get("type") == "boolean" and field["id"] not in namespace:
            namespace[field["id"]] = False
    unknown = set(inputs) - {field["id"] for field in ctype["inputs"].get("fields", [])}
    if unknown:
        raise LaunchError(f"credential type {ctype['name']!r} has no input {sorted(unknown)}")
    missing = [name for name in ctype["inputs"].get("required", []) if not inputs.get(name)]
    if missing:
        raise LaunchError(f"a {ctype['name']!r} credential needs {missing}")
    return {name: env.from_string(template).render(**namespace)
            for name, template in (ctype.get("injectors") or {}).get("extra_vars", {}).items()}


def credential_extra_vars(objects: dict, template: dict, inputs_by_credential: dict) -> dict:
    """The extra vars of every credential of the template, from {credential name: inputs}."""
    extra_vars = {}
    for name in template.get("credentials") or []:
        cred = credential(objects, name)
        extra_vars.update(render_injectors(credential_type(objects, cred["credential_type"]),
                                           inputs_by_credential.get(name) or {}))
    return extra_vars


def job_metadata(template: dict, job_id: int = 1, user: str = "admin") -> dict:
    """The job metadata AWX adds to every job's extra vars."""
    meta = {
        "job_id": job_id,
        "job_launch_type": "manual",
        "job_template_id": 1,
        "job_template_name": template["name"],
        "user_id": 1,
        "user_name": user,
        "inventory_id": 1,
        "inventory_name": template.get("inventory", ""),
        "project_revision": "",
        "project_scm_branch": "",
    }
    out = {f"awx_{key}": value for key, value in meta.items()}
    out.update({f"tower_{key}": value for key, value in meta.items()})
    return out


def launch(objects: dict, name: str, answers: dict | None = None,
           credential_inputs: dict | None = None, job_id: int = 1, prefill: bool = True,
           job_type: str | None = None, skip_required: bool = False) -> dict:
    """Everything AWX gives ansible-playbook for one launch of a job template (prefill: from
    the UI; False: by the API or a schedule, see survey_extra_vars; job_type: the job type
    chosen at launch, which the template must prompt for)."""
    template = job_template(objects, name)
    if job_type is not None:
        if job_type not in ("run", "check"):
            raise LaunchError(f"job type {job_type!r} is not run or check")
        if job_type != template.get("job_type") and not template.get("ask_job_type_on_launch"):
            raise LaunchError(f"{name!r} does not prompt for the job type on launch")
        template["job_type"] = job_type
    extra_vars = job_metadata(template, job_id)
    extra_vars.update(survey_extra_vars(template, answers, prefill=prefill,
                                        validate_required=not skip_required))
    if credential_inputs is not None:  # None: credentials are left out (the command line tool)
        extra_vars.update(credential_extra_vars(objects, template, credential_inputs))
    return {
        "playbook": template["playbook"],
        "extravars": extra_vars,
        "limit": template.get("limit") or None,
        "check": template.get("job_type") == "check",
        "diff": bool(template.get("diff_mode")),
        "verbosity": int(template.get("verbosity") or 0),
        "tags": template.get("job_tags") or None,
        "skip_tags": template.get("skip_tags") or None,
    }


def workflow(objects: dict, name: str) -> dict:
    for entry in objects["workflow_job_templates"]:
        if entry["name"] == name:
            return entry
    raise KeyError(f"no workflow job template named {name!r}")


def launch_in_workflow(objects: dict, workflow_name: str, node: str, answers: dict | None = None,
                       credential_inputs: dict | None = None, artifacts: dict | None = None,
                       job_id: int = 1) -> dict:
    """A node's job of a workflow: the workflow's survey (defaults from the UI form, then the
    answers) gives extra vars to every job, whatever the job template prompts for; the job
    template's own extra vars and valid survey defaults come first; the artifacts (set_stats)
    of the jobs before it are added (AWX: WorkflowJobNode.get_job_kwargs)."""
    flow = workflow(objects, workflow_name)
    flow_vars = survey_extra_vars({"name": flow["name"], "extra_vars": flow.get("extra_vars") or {},
                                   "survey": flow.get("survey")}, answers, prefill=True)
    entry = next(n for n in flow["nodes"] if n["identifier"] == node)
    run = launch(objects, entry["unified_job_template"], None, credential_inputs, job_id,
                 prefill=False, skip_required=True)
    extra_vars = dict(run["extravars"])
    extra_vars.update(artifacts or {})
    extra_vars.update(flow_vars)
    extra_vars.update(awx_workflow_job_id=job_id, awx_workflow_job_name=flow["name"],
                      tower_workflow_job_id=job_id, tower_workflow_job_name=flow["name"])
    template = job_template(objects, entry["unified_job_template"])
    missing = [q["variable"] for q in (template.get("survey") or {}).get("spec", [])
               if q["required"] and q["variable"] not in extra_vars]
    if missing:
        raise LaunchError(f"node {node!r}: {missing} value missing (neither the workflow nor "
                          "the template gives it)")
    run["extravars"] = extra_vars
    return run


def command_line(run: dict, inventory: str = "inventories/production") -> list[str]:
    argv = ["ansible-playbook", run["playbook"], "-i", inventory]
    if run["limit"]:
        argv += ["-l", run["limit"]]
    if run["check"]:
        argv.append("--check")
    if run["diff"]:
        argv.append("--diff")
    if run["tags"]:
        argv += ["--tags", run["tags"]]
    if run["skip_tags"]:
        argv += ["--skip-tags", run["skip_tags"]]
    if run["verbosity"]:
        argv.append("-" + "v" * run["verbosity"])
    user_vars = {key: value for key, value in run["extravars"].items()
                 if not key.startswith(("awx_", "tower_"))}
    if user_vars:
        argv += ["-e", json.dumps(user_vars, sort_keys=True)]
    return argv


def _answer(text: str):
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"{text!r}: use VARIABLE=VALUE")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("template", nargs="?", help="job template name")
    parser.add_argument("-a", "--answer", action="append", type=_answer, default=[],
                        help="survey answer VARIABLE=VALUE (JSON values: 60, [\"redis\"])")
    parser.add_argument("-i", "--inventory", default="inventories/production")
    parser.add_argument("--objects", default=str(OBJECTS_FILE))
    parser.add_argument("--check", action="store_true", help="launch with job type check")
    parser.add_argument("--list", action="store_true", help="list the job templates")
    args = parser.parse_args(argv)
    objects = load_objects(args.objects)
    if args.list or not args.template:
        for entry in objects["job_templates"]:
            print(f"{entry['name']}: {entry['playbook']}")
        return 0
    try:
        run = launch(objects, args.template, dict(args.answer),
                     job_type="check" if args.check else None)
    except (KeyError, LaunchError) as exc:
        print(f"AWX would refuse this launch: {exc}", file=sys.stderr)
        return 2
    print(shlex.join(command_line(run, args.inventory)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
