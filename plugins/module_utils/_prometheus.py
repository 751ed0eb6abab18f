# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus text exposition format, for node_exporter's textfile collector (any engine).

`render(families)` writes metric families given as (name, type, help, samples) with samples
as (labels dict, value): booleans become 0/1, samples whose value is None are left out, and a
family without samples is left out whole.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def label_value(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def number(value):
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(value)


def unix_seconds(when):
    """An aware datetime as Unix seconds (float)."""
    return (when - EPOCH).total_seconds()


def render(families):
    lines = []
    for name, kind, help_text, samples in families:
        samples = [(labels, value) for labels, value in samples if value is not None]
        if not samples:
            continue
        lines.append("# HELP %s %s" % (name, help_text))
        lines.append("# TYPE %s %s" % (name, kind))
        for labels, value in samples:
            text = ",".join('%s="%s"' % (key, label_value(labels[key])) for key in labels)
            lines.append("%s%s %s" % (name, "{%s}" % text if text else "", number(value)))
    return "\n".join(lines) + "\n"
