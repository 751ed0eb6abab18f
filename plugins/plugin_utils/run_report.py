# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run report: what a playbook run did, phase by phase, and what it cost (controller side).

`RunRecorder` collects events (the run_report callback feeds it); `build_report` turns them into
one JSON document; `render_html` draws the same document as one self-contained page with a
timeline. Store figures (write outage, data loss) come from the roles' `set_stats` records, so
the report and those records never disagree.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import html
import json

SCHEMA = "failsafe.run_report/1"

# Task tags that name a phase, in the order a run goes through them.
PHASES = ("preflight", "lock", "prepare", "fence", "change", "promote", "dns", "traffic",
          "verify", "rejoin", "report")

# Keys of a module result worth keeping in the report (never the invocation: arguments).
RESULT_KEYS = ("timings", "data_loss", "steps", "changes")


def _iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat(
        timespec="milliseconds")


def _round(value):
    return None if value is None else round(value, 3)


class RunRecorder(object):
    """Events of one playbook run, in wall-clock seconds (time.time())."""

    def __init__(self, playbook, started, check_mode=False, limit=None, controller=None,
                 user=None):
        self.run = dict(playbook=playbook, started=started, check_mode=bool(check_mode),
                        limit=limit, controller=controller, user=user)
        self.plays = []
        self.tasks = []
        self._open = {}
        self.stats = {}
        self.ended = None
        self.hosts_failed = set()
        self.interrupted = False
        # Where the run asked for its report (run_preflight's report_dir), known before the end.
        self.report_dir = None

    def play(self, name, at):
        self.plays.append(dict(name=name, started=at))

    def task_start(self, uid, name, role, tags, at):
        phase = next((tag for tag in PHASES if tag in (tags or [])), None)
        task = dict(uid=uid, name=name, role=role, phase=phase or role or
                    (self.plays[-1]["name"] if self.plays else "run"),
                    started=at, ended=at, hosts={}, changed=False, failed=False, results={})
        self.tasks.append(task)
        self._open[uid] = task

    def task_result(self, uid, host, status, result, at):
        task = self._open.get(uid)
        if task is None:
            return
        task["ended"] = max(task["ended"], at)
        task["hosts"][host] = status
        result = result or {}
        if result.get("changed"):
            task["changed"] = True
        if status in ("failed", "unreachable"):
            task["failed"] = True
            task["msg"] = str(result.get("msg") or "")[:2000]
            if not result.get("_ansible_ignore_errors"):
                self.hosts_failed.add(host)
        if isinstance(result.get("report_dir"), dict) and result["report_dir"].get("path"):
            self.report_dir = result["report_dir"]["path"]
        kept = dict((k, result[k]) for k in RESULT_KEYS if k in result)
        if kept:
            task["results"][host] = kept

    def finish(self, at, stats=None, interrupted=False):
        self.ended = at
        self.stats = stats or {}
        self.interrupted = interrupted


def _phases(tasks, origin):
    phases = []
    for task in tasks:
        if phases and phases[-1]["name"] == task["phase"]:
            phase = phases[-1]
        else:
            phase = dict(name=task["phase"], started=task["started"], ended=task["ended"],
                         tasks=0, failed=False, changed=False)
            phases.append(phase)
        phase["ended"] = max(phase["ended"], task["ended"])
        phase["tasks"] += 1
        phase["failed"] = phase["failed"] or task["failed"]
        phase["changed"] = phase["changed"] or task["changed"]
    return [dict(name=p["name"], started_at=_iso(p["started"]),
                 start_offset_seconds=_round(p["started"] - origin),
                 duration_seconds=_round(p["ended"] - p["started"]), tasks=p["tasks"],
                 status="failed" if p["failed"] else ("changed" if p["changed"] else "ok"))
            for p in phases]


def _outage_window(task, origin):
    """Where a module's write outage lies on the run's clock, from its own timings."""
    for result in task["results"].values():
        timings = result.get("timings") or {}
        outage, total = timings.get("write_unavailable"), timings.get("total")
        if outage is None or total is None:
            continue
        # The module's clock starts ~when the task's result arrives minus its total; the outage
        # begins after the module's own checks.
        begin = task["ended"] - total + (timings.get("checks") or 0.0)
        return dict(start_offset_seconds=_round(begin - origin), duration_seconds=outage)
    return None


def store_figures(stats):
    """Per store: write outage and data loss, from the roles' set_stats records.

    A record `failsafe_run` ({"stores": {name: {...}}}) written by a composite runbook wins;
    single-engine runbooks are read from their own records.
    """
    run = stats.get("failsafe_run") or {}
    if run.get("stores"):
        return dict(run["stores"])
    stores = {}
    switchover = stats.get("failsafe_postgresql_switchover")
    if switchover:
        stores["postgresql"] = dict(
            operation="switchover",
            write_outage_seconds=(switchover.get("timings") or {}).get("write_unavailable"),
            data_loss=dict(rows=0) if switchover.get("changed") else None)
    failover = stats.get("failsafe_postgresql_failover")
    if failover:
        stores["postgresql"] = dict(operation="failover",
                                    write_outage_seconds=None,
                                    data_loss=failover.get("data_loss"))
    return stores


def _number(value):
    """A figure given as text (-e failsafe_rto_seconds=300 is a string), or None."""
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def build_report(recorder):
    """The JSON document of one run."""
    origin = recorder.run["started"]
    ended = recorder.ended or max([t["ended"] for t in recorder.tasks] or [origin])
    stats = recorder.stats or {}
    run_stats = stats.get("failsafe_run") or {}
    failed = bool(recorder.hosts_failed)
    status = "interrupted" if recorder.interrupted else ("failed" if failed else "ok")
    duration = ended - origin
    targets = run_stats.get("targets") or {}
    rto_target = _number(targets.get("rto_seconds"))
    tasks = []
    for task in recorder.tasks:
        entry = dict(name=task["name"], role=task["role"], phase=task["phase"],
                     start_offset_seconds=_round(task["started"] - origin),
                     duration_seconds=_round(task["ended"] - task["started"]),
                     hosts=task["hosts"], changed=task["changed"], failed=task["failed"])
        if task.get("msg"):
            entry["msg"] = task["msg"]
        if task["results"]:
            entry["results"] = task["results"]
        outage = _outage_window(task, origin)
        if outage:
            entry["write_outage"] = outage
        tasks.append(entry)
    run = dict(recorder.run)
    run.update(started_at=_iso(origin), ended_at=_iso(ended), duration_seconds=_round(duration),
               status=status)
    del run["started"]
    return dict(
        schema=SCHEMA,
        run=run,
        summary=dict(
            status=status,
            rto_seconds=_round(duration),
            rto_target_seconds=rto_target,
            rto_met=None if rto_target is None or failed else duration <= rto_target,
            application_downtime_seconds=_number(run_stats.get("application_downtime_seconds")),
            stores=store_figures(stats),
        ),
        phases=_phases(recorder.tasks, origin),
        tasks=tasks,
        stats=stats,
        checklist=list(run_stats.get("checklist") or []),
    )


# HTML -----------------------------------------------------------------------------------------

_STATUS_COLOURS = {"ok": "#2e7d32", "changed": "#f9a825", "failed": "#c62828",
                   "interrupted": "#6a1b9a"}

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1b1b1b;
background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
.meta{color:#555;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin-top:16px}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 14px;min-width:150px}
.card .label{font-size:12px;color:#666}.card .value{font-size:20px;font-weight:600}
.status-ok{color:#2e7d32}.status-failed{color:#c62828}.status-interrupted{color:#6a1b9a}
table{border-collapse:collapse;font-size:13px;margin-top:6px}
th,td{border-bottom:1px solid #eee;padding:4px 10px;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
svg text{font-size:11px;fill:#333}
.check li{margin:3px 0}
"""


def _fmt_seconds(value):
    if value is None:
        return "unknown"
    return "%.3f s" % value if value < 10 else "%.1f s" % value


def _loss_text(loss):
    if loss is None:
        return "unknown"
    if isinstance(loss, dict):
        for key, unit in (("rows", "rows"), ("writes", "writes"), ("bytes", "bytes")):
            if loss.get(key) is not None:
                return "%s %s" % (loss[key], unit)
        if loss.get("window_seconds_at_most") is not None:
            return "at most %s s of writes" % loss["window_seconds_at_most"]
        return "unknown"
    return str(loss)


def _timeline_svg(report):
    phases = report["phases"]
    outages = [t for t in report["tasks"] if t.get("write_outage")]
    total = max(report["run"]["duration_seconds"] or 0.0, 0.001)
    width, left, row = 900, 150, 26
    height = row * (len(phases) + (1 if outages else 0)) + 30
    scale = (width - left - 20) / total
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="timeline" '
             'width="%d" height="%d" viewBox="0 0 %d %d">' % (width, height, width, height)]
    ticks = 5
    for i in range(ticks + 1):
        x = left + (width - left - 20) * i / ticks
        parts.append('<line x1="%.1f" y1="10" x2="%.1f" y2="%d" stroke="#eee"/>'
                     % (x, x, height - 20))
        parts.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                     % (x, height - 6, html.escape(_fmt_seconds(total * i / ticks))))
    for index, phase in enumerate(phases):
        y = 10 + index * row
        x = left + phase["start_offset_seconds"] * scale
        w = max(phase["duration_seconds"] * scale, 2)
        parts.append('<text x="%d" y="%d" text-anchor="end">%s</text>'
                     % (left - 8, y + 16, html.escape(phase["name"])))
        parts.append('<rect class="phase" x="%.1f" y="%d" width="%.1f" height="%d" rx="3" '
                     'fill="%s"><title>%s: %s</title></rect>'
                     % (x, y + 4, w, row - 8, _STATUS_COLOURS.get(phase["status"], "#1565c0"),
                        html.escape(phase["name"]),
                        html.escape(_fmt_seconds(phase["duration_seconds"]))))
    y = 10 + len(phases) * row
    if outages:
        parts.append('<text x="%d" y="%d" text-anchor="end">write outage</text>'
                     % (left - 8, y + 16))
    for task in outages:
        outage = task["write_outage"]
        x = left + max(outage["start_offset_seconds"], 0) * scale
        parts.append('<rect class="outage" x="%.1f" y="%d" width="%.1f" height="%d" '
                     'fill="#c62828"><title>%s: writes unavailable %s</title></rect>'
                     % (x, y + 4, max(outage["duration_seconds"] * scale, 3), row - 8,
                        html.escape(task["name"]),
                        html.escape(_fmt_seconds(outage["duration_seconds"]))))
    parts.append("</svg>")
    return "".join(parts)


def render_html(report):
    """One self-contained page (no script, no external resource)."""
    run, summary = report["run"], report["summary"]
    e = html.escape
    cards = [("status", summary["status"], "status-%s" % summary["status"]),
             ("duration (RTO reached)", _fmt_seconds(summary["rto_seconds"]), "")]
    if summary.get("rto_target_seconds") is not None:
        cards.append(("RTO target", "%s (%s)" % (_fmt_seconds(summary["rto_target_seconds"]),
                                                 "met" if summary["rto_met"] else "missed"),
                      "status-ok" if summary["rto_met"] else "status-failed"))
    if summary.get("application_downtime_seconds") is not None:
        cards.append(("application downtime",
                      _fmt_seconds(summary["application_downtime_seconds"]), ""))
    for name, figures in sorted(summary["stores"].items()):
        cards.append(("%s write outage" % name,
                      _fmt_seconds((figures or {}).get("write_outage_seconds")), ""))
        cards.append(("%s data lost" % name, _loss_text((figures or {}).get("data_loss")), ""))
    out = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
           "<title>%s: %s</title>" % (e(run["playbook"] or "run"), e(summary["status"])),
           "<style>%s</style></head><body>" % _STYLE,
           "<h1>%s</h1>" % e(run["playbook"] or "run"),
           "<div class=\"meta\">started %s, ended %s%s%s%s</div>" % (
               e(run["started_at"]), e(run["ended_at"]),
               ", limit %s" % e(run["limit"]) if run.get("limit") else "",
               ", check mode" if run.get("check_mode") else "",
               ", by %s@%s" % (e(run.get("user") or "?"), e(run.get("controller") or "?"))),
           "<div class=\"cards\">"]
    for label, value, css in cards:
        out.append("<div class=\"card\"><div class=\"label\">%s</div><div class=\"value %s\">"
                   "%s</div></div>" % (e(label), css, e(str(value))))
    out.append("</div><h2>Timeline</h2>")
    out.append(_timeline_svg(report))
    out.append("<h2>Phases</h2><table><tr><th>phase</th><th>start</th><th>duration</th>"
               "<th>tasks</th><th>status</th></tr>")
    for phase in report["phases"]:
        out.append("<tr><td>%s</td><td class=\"num\">+%s</td><td class=\"num\">%s</td>"
                   "<td class=\"num\">%d</td><td>%s</td></tr>" % (
                       e(phase["name"]), e(_fmt_seconds(phase["start_offset_seconds"])),
                       e(_fmt_seconds(phase["duration_seconds"])), phase["tasks"],
                       e(phase["status"])))
    out.append("</table><h2>Tasks</h2><table><tr><th>task</th><th>phase</th><th>start</th>"
               "<th>duration</th><th>hosts</th><th>result</th></tr>")
    for task in report["tasks"]:
        result = "failed: %s" % task.get("msg", "") if task["failed"] else (
            "changed" if task["changed"] else "ok")
        out.append("<tr><td>%s</td><td>%s</td><td class=\"num\">+%s</td><td class=\"num\">%s"
                   "</td><td>%s</td><td>%s</td></tr>" % (
                       e(task["name"]), e(task["phase"] or ""),
                       e(_fmt_seconds(task["start_offset_seconds"])),
                       e(_fmt_seconds(task["duration_seconds"])),
                       e(", ".join("%s: %s" % hs for hs in sorted(task["hosts"].items()))),
                       e(result)))
    out.append("</table>")
    out.append("<h2>Records</h2><pre>%s</pre>" % e(json.dumps(report["stats"], indent=2,
                                                              sort_keys=True, default=str)))
    if report["checklist"]:
        # Last section, as the runbooks end: what people still have to do.
        out.append("<h2>Post-incident checklist</h2><ul class=\"check\">")
        for item in report["checklist"]:
            out.append("<li>&#9744; %s</li>" % e(str(item)))
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out)
