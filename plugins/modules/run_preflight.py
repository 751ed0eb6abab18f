#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: run_preflight
short_description: Checks of a run before its first change, on the controller
version_added: 0.2.0
description:
  - "Runs on the controller (action plugin). Resolves the target region: from C(-l) (the
    region of the nodes the limit leaves in O(group)), from C(failsafe_target_region), or from
    a role variable in O(target_variables) that names a host. It is never guessed: with
    O(target=required) and none of them, the run is refused with the ways to name it; two
    that disagree are refused too."
  - The target region's group must exist as spelled (C(us-west)). A controller that renamed it
    (C(us_west), Ansible's C(force_valid_group_names)) gets a message that says what to set.
  - "Variables given with C(-e) that carry the collection's prefix (C(failsafe_)) or a role's
    prefix (C(postgresql_switchover_), ...) but that nothing reads are reported as a warning,
    with the closest known name; one that resembles a variable choosing the target (such as
    C(failsafe_target_regoin)) is refused."
  - O(report_dir) is created now, before anything changes, so that a report which cannot be
    written is found before the run changes anything.
author:
  - Failsafe Datastores maintainers (@failsafe-datastores)
extends_documentation_fragment:
  - failsafe.datastores.attributes
attributes:
  check_mode:
    support: full
    details:
      - Makes every check; a missing report directory is only checked to be creatable.
  diff_mode:
    support: none
  idempotent:
    description: Only the report directory is created, once.
    support: full
  action:
    description: Runs on the controller.
    support: full
options:
  target:
    description:
      - V(required) refuses a run that names no target region; V(optional) resolves one when
        named; V(none) skips the target.
    type: str
    choices: [required, optional, none]
    default: none
  target_variables:
    description: Role variables that name the target host (for example C(postgresql_switchover_target)).
    type: list
    elements: str
    default: []
  group:
    description: Inventory group of the run's nodes; their C(failsafe_region) values are the regions.
    type: str
    default: all
  report_dir:
    description: Controller directory for the run's reports, created if missing; empty for none.
    type: str
    default: ""
'''

EXAMPLES = r'''
- name: Check the run before the first change
  failsafe.datastores.run_preflight:
    target: required
    target_variables: [postgresql_switchover_target]
    group: postgresql
    report_dir: "{{ postgresql_switchover_report_dir }}"
  run_once: true
  register: preflight
'''

RETURN = r'''
target_region:
  description: The target region, or null when none was named (and none was required).
  returned: success
  type: str
target_source:
  description: How the target was named (C(-l us-west), C(failsafe_target_region=us-west), ...).
  returned: success
  type: str
regions:
  description: The regions of the group's hosts.
  returned: success
  type: list
  elements: str
unknown_variables:
  description: Variables given with C(-e) that nothing reads.
  returned: always
  type: list
  elements: str
report_dir:
  description: C(path) and whether it was C(created); null without a report directory.
  returned: success
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(
        argument_spec=dict(
            target=dict(type="str", default="none", choices=["required", "optional", "none"]),
            target_variables=dict(type="list", elements="str", default=[]),
            group=dict(type="str", default="all"),
            report_dir=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    module.fail_json(msg="run_preflight runs on the controller as an action plugin; it needs "
                         "the inventory and the -e variables, which a module cannot see")


if __name__ == "__main__":
    main()
