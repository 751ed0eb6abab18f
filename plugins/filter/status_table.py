# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""status_table: the status of every engine as the lines an operator reads."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

COLUMNS = (("engine", 11), ("region", 9), ("host", 16), ("role", 15), ("lag", 11),
           ("health", 16))


def _lag(value):
    return "-" if value is None else "%d B" % value


def status_table(status):
    """Lines: a header, one line per node, then per engine its diagnosis and command."""
    if not hasattr(status, "get") or not hasattr(status.get("engines"), "items"):
        raise AnsibleFilterError("status_table expects the failsafe_status record")
    lines = ["".join(name.ljust(width) for name, width in COLUMNS) + "detail"]
    for engine in sorted(status["engines"]):
        for row in status["engines"][engine].get("rows") or []:
            values = (row.get("engine") or engine, row.get("region") or "-", row.get("host"),
                      row.get("role") or "-", _lag(row.get("lag_bytes")), row.get("health"))
            lines.append("".join(str(v).ljust(width) for v, (_n, width) in zip(values, COLUMNS))
                         + str(row.get("detail") or ""))
    for engine in sorted(status["engines"]):
        diagnosis = status["engines"][engine].get("diagnosis") or {}
        lines.append("%s: %s" % (engine, diagnosis.get("summary", "no diagnosis")))
        for problem in diagnosis.get("problems") or []:
            lines.append("  - %s" % problem)
        if diagnosis.get("command"):
            lines.append("  run: %s" % diagnosis["command"])
    return lines


class FilterModule(object):
    def filters(self):
        return {"status_table": status_table}
