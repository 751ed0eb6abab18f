# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Step timings of one module run, for every engine (PostgreSQL, Redis, DNS, S3, ...)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time


class Timer:
    """Named monotonic marks, reported as seconds since the first."""

    def __init__(self):
        self.start = time.monotonic()
        self.marks = {}

    def mark(self, name):
        self.marks[name] = time.monotonic()
        return self.marks[name]

    def between(self, first, last):
        """Seconds from mark `first` (None: the start) to mark `last`; None if not reached."""
        begin = self.start if first is None else self.marks.get(first)
        if begin is None or last not in self.marks:
            return None
        return round(self.marks[last] - begin, 6)

    def report(self, steps):
        """{name: seconds} for steps given as (name, first_mark, last_mark), plus the total."""
        result = dict((name, self.between(first, last)) for name, first, last in steps)
        result["total"] = self.since_start()
        return result

    def since_start(self):
        return round(time.monotonic() - self.start, 6)
