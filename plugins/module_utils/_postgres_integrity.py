# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signs of corruption and crashes in a PostgreSQL server (runbook 001 "Database
Crash/Corruption"): the server log's markers, and amcheck's verdicts on indexes and tables.

Pure functions over text and error codes, so that the decisions are unit-tested; the queries
live in the postgresql_corruption_info module.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

# Lines that mean data is damaged (runbook 001 greps "corrupt|panic|fatal"; FATAL alone is
# every refused login, so it is not a marker here).
CORRUPTION_MARKERS = (
    r"invalid page in block",
    r"page verification failed",
    r"could not read block \d+",
    r"unexpected zero page",
    r"index \".+\" contains ",
    r"corrupt",
    r"missing chunk number",
    r"could not access status of transaction",
    r"found xmin \d+ from before relfrozenxid",
    r"invalid memory alloc request size",
    r"left-link doesn't match",
    r"xlog flush request .* is not satisfied",
)
# Lines that mean the server crashed (and recovered, or not).
CRASH_MARKERS = (
    r"PANIC:",
    r"was terminated by signal",
    r"terminating any other active server processes",
    r"database system was not properly shut down",
    r"database system was interrupted",
    r"all server processes terminated; reinitializing",
)
_CORRUPTION = re.compile("|".join(CORRUPTION_MARKERS), re.IGNORECASE)
_CRASH = re.compile("|".join(CRASH_MARKERS))
# The time a line starts with, as log_line_prefix %m or %t writes it.
_LOG_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?"
                       r"(?: [A-Za-z][A-Za-z0-9+-]*|[+-]\d{2}(?::?\d{2})?)?)")

# SQLSTATEs of damaged data: XX001 data_corrupted, XX002 index_corrupted; XX000 is what
# amcheck and the storage layer raise for most structural damage.
CORRUPTION_SQLSTATES = ("XX000", "XX001", "XX002")


def scan_log(text, limit=50):
    """Marker lines of the log, oldest first: [{kind, time (text or None), line}], at most
    `limit` of each kind (the newest kept)."""
    found = {"corruption": [], "crash": []}
    for line in (text or "").splitlines():
        kind = "corruption" if _CORRUPTION.search(line) else (
            "crash" if _CRASH.search(line) else None)
        if kind is None:
            continue
        match = _LOG_TIME.match(line)
        found[kind].append(dict(kind=kind, time=match.group(1) if match else None,
                                line=line.strip()[:500]))
    lines = found["corruption"][-limit:] + found["crash"][-limit:]
    return sorted(lines, key=lambda item: item["time"] or "")


def is_corruption(sqlstate):
    """Whether a failed check means damaged data rather than a check that could not run."""
    return (sqlstate or "") in CORRUPTION_SQLSTATES


def verdict(checked, failures, errors, log_findings, amcheck_ran):
    """(corruption_found, crash_found, findings as sentences).

    amcheck's verdict rules when it ran; the log's corruption lines count only when it could
    not (they stay in the log after a repair, so they cannot prove damage that is still there).
    """
    findings = []
    corrupt_log = [f for f in log_findings if f["kind"] == "corruption"]
    crash_log = [f for f in log_findings if f["kind"] == "crash"]
    for failure in failures:
        findings.append("%s %s is damaged: %s" % (failure["kind"], failure["relation"],
                                                  failure["error"]))
    for error in errors:
        findings.append("could not check %s %s: %s" % (error["kind"], error["relation"],
                                                       error["error"]))
    if corrupt_log:
        findings.append("the server log has %d corruption line(s), the newest: %s"
                        % (len(corrupt_log), corrupt_log[-1]["line"]))
    if crash_log:
        findings.append("the server log has %d crash line(s), the newest: %s"
                        % (len(crash_log), crash_log[-1]["line"]))
    if amcheck_ran:
        corruption = bool(failures)
        if not failures:
            findings.append("amcheck found no damage in %d index(es) and %d table(s)"
                            % (checked["indexes"], checked["tables"]))
    else:
        corruption = bool(corrupt_log)
        findings.append("amcheck did not run: indexes and tables were not verified")
    return corruption, bool(crash_log), findings
