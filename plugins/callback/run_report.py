# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: run_report
type: aggregate
short_description: A timed report of every run, as JSON and as one HTML page with a timeline
version_added: 0.2.0
author: Failsafe Datastores maintainers (@failsafe-datastores)
description:
  - Records each task's start and end, groups tasks into phases by their phase tag
    (C(preflight), C(lock), C(fence), C(change), C(promote), C(dns), C(traffic), C(verify),
    C(rejoin), C(report)) or their role, and keeps the step timings and data-loss figures the
    collection's modules return (never their arguments).
  - At the end it writes C(run-<playbook>-<UTC time>.json) and C(.html) into the report directory
    the run, its phases and tasks, per store the write outage and the data lost (from the
    roles' C(set_stats) records, so both agree), the application downtime, the time the run
    took against the RTO target, and the post-incident checklist as the last section.
    Check-mode runs are reported too, marked as such.
  - The directory is the O(report_dir) option, or the C(failsafe_report_dir) record a run
    sets with C(set_stats) (the playbooks do, from the variable of the same name). Without
    either, nothing is written. A report that cannot be written is a warning, never a failure.
options:
  report_dir:
    description: Directory for the reports.
    type: path
    env:
      - name: FAILSAFE_REPORT_DIR
    ini:
      - section: callback_run_report
        key: report_dir
requirements:
  - enable it in ansible.cfg (C(callbacks_enabled = failsafe.datastores.run_report))
'''

import atexit
import getpass
import json
import os
import socket
import time

from ansible import context
from ansible.plugins.callback import CallbackBase

from ansible_collections.failsafe.datastores.plugins.plugin_utils.run_report import (
    RunRecorder,
    build_report,
    render_html,
)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "failsafe.datastores.run_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.recorder = None
        self.written = []
        self.finished = False

    # Events ------------------------------------------------------------------------------------
    def v2_playbook_on_start(self, playbook):
        args = context.CLIARGS
        self.recorder = RunRecorder(
            playbook=os.path.basename(playbook._file_name), started=time.time(),
            check_mode=args.get("check", False), limit=args.get("subset"),
            controller=socket.gethostname(), user=getpass.getuser())
        atexit.register(self._interrupted)

    def v2_playbook_on_play_start(self, play):
        if self.recorder:
            self.recorder.play(play.get_name(), time.time())

    def v2_playbook_on_task_start(self, task, is_conditional):
        if self.recorder:
            role = task._role.get_name(include_role_fqcn=False) if task._role else None
            self.recorder.task_start(task._uuid, task.get_name(), role, list(task.tags or []),
                                     time.time())

    def v2_playbook_on_handler_task_start(self, task):
        self.v2_playbook_on_task_start(task, False)

    def _result(self, result, status):
        if self.recorder:
            self.recorder.task_result(result._task._uuid, result._host.get_name(), status,
                                      result._result, time.time())

    def v2_runner_on_ok(self, result):
        self._result(result, "changed" if result._result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if ignore_errors:
            result._result["_ansible_ignore_errors"] = True
        self._result(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        if not self.recorder:
            return
        self.finished = True
        custom = dict((stats.custom or {}).get("_run") or {})
        self.recorder.finish(time.time(), custom)
        directory = (self.get_option("report_dir") or custom.get("failsafe_report_dir")
                     or self.recorder.report_dir)
        if directory:
            self.write(directory)

    def _interrupted(self):
        """Ctrl-C or a fatal error ended the run before its stats: report what happened."""
        if self.finished or not self.recorder:
            return
        self.recorder.finish(time.time(), {}, interrupted=True)
        directory = self.get_option("report_dir") or self.recorder.report_dir
        if directory:
            self.write(directory)

    # Output ------------------------------------------------------------------------------------
    def write(self, directory):
        report = build_report(self.recorder)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.recorder.run["started"]))
        name = os.path.splitext(self.recorder.run["playbook"] or "run")[0]
        base = os.path.join(directory, "run-%s-%s%s" % (
            name, stamp, "-check" if self.recorder.run["check_mode"] else ""))
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
            with open(base + ".json", "w") as handle:
                json.dump(report, handle, indent=2, sort_keys=True, default=str)
                handle.write("\n")
            with open(base + ".html", "w") as handle:
                handle.write(render_html(report))
        except (IOError, OSError) as exc:
            self._display.warning("run_report: cannot write the report into %s: %s"
                                  % (directory, exc))
            return
        self.written = [base + ".json", base + ".html"]
        self._display.display("Run report: %s.html (and .json): %s in %s s" % (
            base, report["summary"]["status"], report["summary"]["rto_seconds"]))
