#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: neo4j_store_info
short_description: Store information and consistency check of a Neo4j database with neo4j-admin
version_added: 0.4.0
description:
  - "Runbook 001 (Data Corruption: check consistency, store info) in Neo4j 5 terms, on the
    database host: C(neo4j-admin database info DATABASE) (store format, last committed
    transaction, whether it is in use or needs recovery) and, with O(consistency_check),
    C(neo4j-admin database check --report-path=DIR DATABASE)."
  - "The check reads a database that is not in use: the module refuses while C(database info)
    says it is in use (stop it first, C(failsafe.datastores.neo4j_database) with C(state=offline))."
  - "The runbook's C(neo4j-admin check-consistency) and C(store-info) are Neo4j 4 commands."
  - Tested against a stand-in C(neo4j-admin) script that checks its arguments, not a real Neo4j.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.attributes
  - failsafe.datastores.attributes.INFO_MODULE
options:
  database:
    description: The database.
    type: str
    default: neo4j
  neo4j_admin:
    description: Path of C(neo4j-admin).
    type: path
    default: neo4j-admin
  consistency_check:
    description: Run the consistency check too.
    type: bool
    default: false
  report_path:
    description: Directory where C(database check) writes its report of inconsistencies.
    type: path
    default: /tmp
  fail_on_inconsistency:
    description: Fail the task when the check finds inconsistencies (the report is returned either way).
    type: bool
    default: true
requirements:
  - neo4j-admin (Neo4j 5) on the host that runs the module
'''

EXAMPLES = r'''
- name: Check the graph store (the database is stopped)
  failsafe.datastores.neo4j_store_info:
    database: neo4j
    consistency_check: true
    report_path: /var/tmp/neo4j-check
  delegate_to: neo4j-core-0
'''

RETURN = r'''
info:
  description: C(database info) as a dict (its "Name - value" lines, keys in snake_case).
  returned: always
  type: dict
in_use:
  description: Whether the database is in use (running), as C(database info) says.
  returned: always
  type: bool
consistent:
  description: Result of the check; null when it did not run.
  returned: always
  type: bool
report:
  description: Paths of the inconsistency reports the check wrote.
  returned: always
  type: list
  elements: str
output:
  description: Last lines of the check's output.
  returned: always
  type: str
commands:
  description: The commands run.
  returned: always
  type: list
  elements: str
timings:
  description: Seconds for C(info), C(check) and C(total).
  returned: always
  type: dict
'''

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

STEPS = (("info", None, "info"), ("check", "info", "checked"))


def parse_info(text):
    """'Database in use:  false' lines -> {'database_in_use': 'false', ...}."""
    info = {}
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, value = line.split(":", 1)
        key = re.sub(r"[^a-z0-9]+", "_", key.strip().lower()).strip("_")
        if key:
            info[key] = value.strip()
    return info


def main():
    module = AnsibleModule(
        argument_spec=dict(
            database=dict(type="str", default="neo4j"),
            neo4j_admin=dict(type="path", default="neo4j-admin"),
            consistency_check=dict(type="bool", default=False),
            report_path=dict(type="path", default="/tmp"),
            fail_on_inconsistency=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    timer = Timer()
    result = dict(changed=False, info={}, in_use=False, consistent=None, report=[], output="",
                  commands=[])
    admin = params["neo4j_admin"]
    if os.sep not in admin:
        admin = module.get_bin_path(admin) or admin
    if not os.access(admin, os.X_OK):
        module.fail_json(msg="neo4j-admin not found or not executable at %s: give neo4j_admin "
                             "(run the module on the database host)" % params["neo4j_admin"],
                         timings=timer.report(STEPS), **result)
    argv = [admin, "database", "info", params["database"]]
    result["commands"].append(" ".join(argv))
    code, out, err = module.run_command(argv, cwd="/")
    if code != 0:
        module.fail_json(msg="neo4j-admin database info %s failed (%s): %s"
                         % (params["database"], code, (err or out).strip()[-500:]),
                         timings=timer.report(STEPS), **result)
    result["info"] = parse_info(out)
    result["in_use"] = result["info"].get("database_in_use", "").lower() == "true"
    timer.mark("info")
    if params["consistency_check"]:
        if result["in_use"]:
            module.fail_json(
                msg="database %s is in use: neo4j-admin database check needs it stopped. Stop "
                    "it (failsafe.datastores.neo4j_database state=offline) and run again. "
                    "Nothing was checked" % params["database"],
                timings=timer.report(STEPS), **result)
        before = set(os.listdir(params["report_path"])) if os.path.isdir(
            params["report_path"]) else set()
        argv = [admin, "database", "check", "--report-path=%s" % params["report_path"],
                params["database"]]
        result["commands"].append(" ".join(argv))
        code, out, err = module.run_command(argv, cwd="/")
        result["output"] = "\n".join((out + err).strip().splitlines()[-20:])
        after = set(os.listdir(params["report_path"])) if os.path.isdir(
            params["report_path"]) else set()
        result["report"] = sorted(os.path.join(params["report_path"], name)
                                  for name in after - before if name.endswith(".report"))
        result["consistent"] = code == 0
        timer.mark("checked")
        if code != 0 and params["fail_on_inconsistency"]:
            module.fail_json(
                msg="neo4j-admin database check %s found problems (exit %s)%s: restore the "
                    "database from a backup (playbooks/restore.yml with restore_engines neo4j)"
                    % (params["database"], code, ("; report " + ", ".join(result["report"]))
                       if result["report"] else ""),
                timings=timer.report(STEPS), **result)
    result["timings"] = timer.report(STEPS)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
