# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_lock on the controller: names the ansible-playbook process that takes the lock.

Task workers are forked from the ansible-playbook process, so the worker's parent is the run:
its pid and start time identify the run across every task and nested role of one playbook.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import getpass
import os
import socket

from ansible import context
from ansible.plugins.action import ActionBase

from ansible_collections.failsafe.datastores.plugins.module_utils._lock import (
    machine_id,
    process_start,
)


def controller_owner():
    pid = os.getppid()
    playbooks = list(context.CLIARGS.get("args") or [])
    return dict(controller=socket.gethostname(), machine_id=machine_id(), user=getpass.getuser(),
                pid=pid,
                pid_start=process_start(pid),
                playbook=" ".join(os.path.basename(p) for p in playbooks) or None)


class ActionModule(ActionBase):

    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        if not args.get("owner"):
            args["owner"] = controller_owner()
        result.update(self._execute_module(module_name="failsafe.datastores.run_lock",
                                           module_args=args, task_vars=task_vars))
        return result
