# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report every module of the collection returns, whatever the engine.

One shape for PostgreSQL, Redis, DNS, S3, ...:

- ``timings``: seconds per step, measured between named marks of one `Timer`, and ``total``;
- ``steps``: what the run did, in order; in check mode, what it would do;
- ``diff`` (in diff mode, when the module declared its changes): the state before and after;
- on failure, the message ends with the state the run leaves behind ("Nothing was changed."
  until the first change), and no Python traceback ever reaches the operator.

Typical use::

    report = Report(module, TIMED_STEPS)
    result = dict(changed=False, ...)
    report.run(lambda: work(module, report, result), result, explain_error)

where ``work`` calls ``report.mark()``, ``report.done()`` or ``report.plan()``,
``report.leaves()`` after each change and ``report.changes(before, after)``, and returns (or
raises an exception whose message ``explain_error`` turns into words).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.failsafe.datastores.plugins.module_utils._timer import Timer

NOTHING_CHANGED = "Nothing was changed."


def describe_exception(exc):
    """Last-resort wording of an exception nobody mapped: its class and first line."""
    text = str(exc).strip().splitlines()
    return "unexpected %s: %s" % (exc.__class__.__name__, text[0] if text else "(no message)")


def with_state(msg, state):
    """The message, then the state a failure leaves behind (unless the message says it)."""
    msg = msg.strip()
    if not state or state.lower() in msg.lower():
        return msg
    if msg.lower().endswith(state.lower().rstrip(".")):  # said, without its full stop
        return msg + state[len(state.rstrip(".")):]
    return "%s%s %s" % (msg, "" if msg.endswith(".") else ".", state)


class Report:
    """Timings, steps, changes and the state left behind, for one module run."""

    def __init__(self, module, timed_steps=()):
        self.module = module
        self.timer = Timer()
        self.timed_steps = tuple(timed_steps)
        self.steps = []
        self.before = None
        self.after = None
        self.state = NOTHING_CHANGED

    def mark(self, name):
        """A timing mark (see `Timer`)."""
        return self.timer.mark(name)

    def done(self, step):
        """A step the run has just taken."""
        self.steps.append(step)

    def plan(self, steps):
        """Check mode: the steps the run would take."""
        self.steps = list(steps)

    def leaves(self, state):
        """What a failure from now on leaves behind, in a sentence for the operator."""
        self.state = state

    def changes(self, before, after):
        """The state before and after, returned as ``diff`` in diff mode."""
        self.before, self.after = before, after

    def completed(self, result):
        """`result` with the report's keys added."""
        full = dict(result, steps=list(self.steps), timings=self.timer.report(self.timed_steps))
        if self.module._diff and self.before is not None:
            full["diff"] = dict(before=self.before, after=self.after)
        return full

    def exit(self, result):
        self.module.exit_json(**self.completed(result))

    def fail(self, msg, result):
        full = dict(result, steps=list(self.steps), timings=self.timer.report(self.timed_steps))
        full.pop("msg", None)  # a success message set before the failure
        self.module.fail_json(msg=with_state(msg, self.state), **full)

    def run(self, work, result, explain=describe_exception):
        """Run `work()`, then exit with `result`; any exception fails the task with
        `explain(exception)` and the state left behind, never with a traceback."""
        failure = None
        try:
            work()
        except Exception as exc:  # pylint: disable=broad-except  # the last resort
            failure = explain(exc)
        # Outside the except block: the failure is the message, not the exception being
        # handled (fail_json would attach that one).
        if failure is not None:
            self.fail(failure, result)
        self.exit(result)
