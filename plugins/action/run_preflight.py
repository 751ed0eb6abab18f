# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_preflight: the checks of a run before its first change, on the controller.

It reads what only the controller knows: the -e variables as given (not merged with the
inventory), the limit and the hosts it left, and the controller's file system for the report
directory.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os

import yaml

from ansible.errors import AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.vars import load_extra_vars

from ansible_collections.failsafe.datastores.plugins.module_utils._preflight import (
    PreflightError,
    describe_unknown,
    resolve_target,
    unknown_variables,
)
from ansible_collections.failsafe.datastores.plugins.module_utils._variables import (
    ARTIFACT_VARIABLES,
    INVENTORY_VARIABLES,
    RUN_VARIABLES,
)

ROLES_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "roles")

ARGUMENT_SPEC = dict(
    target=dict(type="str", default="none", choices=["required", "optional", "none"]),
    target_variables=dict(type="list", elements="str", default=[]),
    group=dict(type="str", default="all"),
    report_dir=dict(type="str", default=""),
)


def role_options():
    """{role name: option names} from the collection's roles' meta/argument_specs.yml."""
    found = {}
    for path in glob.glob(os.path.join(ROLES_DIR, "*", "meta", "argument_specs.yml")):
        role = os.path.basename(os.path.dirname(os.path.dirname(path)))
        with open(path) as handle:
            specs = (yaml.safe_load(handle) or {}).get("argument_specs") or {}
        names = set()
        for entry in specs.values():
            names.update((entry or {}).get("options") or {})
        found[role] = names
    return found


def prepare_report_dir(path, check_mode):
    """Create the report directory now (before any change), or say why it cannot be."""
    if not path:
        return None
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(path):
        if not os.access(path, os.W_OK | os.X_OK):
            raise PreflightError("the report directory %s is not writable by this user: "
                                 "fix it or choose another. Nothing was changed" % path)
        return dict(path=path, created=False)
    if os.path.exists(path):
        raise PreflightError("the report directory %s is a file, not a directory. Nothing "
                             "was changed" % path)
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise PreflightError("the report directory %s does not exist and %s is not writable, "
                             "so it cannot be created: create it or choose another. Nothing "
                             "was changed" % (path, parent))
    if not check_mode:
        try:
            os.makedirs(path, 0o755)
        except OSError as exc:
            raise PreflightError("cannot create the report directory %s: %s. Nothing was "
                                 "changed" % (path, exc.strerror or exc))
    return dict(path=path, created=True)


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        task_vars = task_vars or {}
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleError("run_preflight: %s" % "; ".join(validation.error_messages))
        args = validation.validated_parameters
        hostvars = task_vars.get("hostvars") or {}
        groups = task_vars.get("groups") or {}
        result.update(changed=False, warnings=[])
        try:
            options = role_options()
            known = set(INVENTORY_VARIABLES) | set(RUN_VARIABLES) | set(ARTIFACT_VARIABLES)
            for names in options.values():
                known.update(names)
            refused, reported = unknown_variables(load_extra_vars(self._loader), known, options)
            result["unknown_variables"] = [name for name, _hint in refused + reported]
            if refused:
                raise PreflightError(
                    "unknown variable given with -e: %s. It looks like a variable that chooses "
                    "the target, and the run would otherwise choose one itself. Correct it. "
                    "Nothing was changed" % describe_unknown(refused))
            if reported:
                result["warnings"].append(
                    "unknown variable given with -e, nothing reads it: %s"
                    % describe_unknown(reported))
            target_hosts = dict((name, task_vars.get(name)) for name in args["target_variables"])
            target = resolve_target(
                required=args["target"] == "required",
                limit=task_vars.get("ansible_limit"),
                play_hosts=task_vars.get("ansible_play_hosts_all") or [],
                group_hosts=groups.get(args["group"]) or [],
                hostvars=hostvars, groups=groups,
                target_region=task_vars.get("failsafe_target_region") or None,
                target_hosts=target_hosts)
            result.update(target_region=target["region"], target_source=target["source"],
                          regions=target["regions"])
            result["report_dir"] = prepare_report_dir(args["report_dir"], self._task.check_mode)
            if result["report_dir"] and result["report_dir"]["created"]:
                result["changed"] = not self._task.check_mode
        except PreflightError as exc:
            result.update(failed=True, msg=str(exc))
        return result
