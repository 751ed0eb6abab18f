# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""backup_findings and backup_prometheus: the scheduled verification's findings per engine, and
the same as Prometheus text format (for node_exporter's textfile collector)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible.errors import AnsibleFilterError

from ansible_collections.failsafe.datastores.plugins.module_utils import _backup as catalog

# A newest backup that is not a success counts as failed once it is this old (it may still run).
RUNNING_GRACE = datetime.timedelta(hours=1)


def backup_findings(info, verify=None, restore=None, now=None):
    """{engine: {...}} from a backup_info result, a backup_verify result and optional restore
    figures ({engine: {"seconds": s, "validation_ok": bool}})."""
    if not isinstance(info, dict) or "freshness" not in info:
        raise AnsibleFilterError("backup_findings expects a backup_info result")
    now = catalog.parse_time(now) if now else catalog.utcnow()
    verify = verify or {}
    restore = restore or {}
    findings = {}
    for engine, fresh in info["freshness"].items():
        newest = (info.get("newest") or {}).get(engine) or {}
        latest_any = next((b for b in info.get("backups") or [] if b.get("engine") == engine), None)
        failed = bool(latest_any and latest_any.get("problems")
                      and now - catalog.created(latest_any) > RUNNING_GRACE)
        checked = [c for c in verify.get("checked") or [] if c.get("engine") == engine]
        size = (info.get("size_changes") or {}).get(engine) or {}
        created = catalog.created(newest) if newest else None
        entry = dict(
            status=fresh["status"],
            last_success_timestamp=int((created - datetime.datetime(
                1970, 1, 1, tzinfo=datetime.timezone.utc)).total_seconds()) if created else None,
            age_seconds=round((now - created).total_seconds(), 1) if created else None,
            size_bytes=newest.get("size_bytes"),
            growth=size.get("growth"),
            failed=failed,
            verify_ok=all(c.get("ok") for c in checked) if checked else None,
            mismatches=len([c for c in checked if not c.get("ok")]) if checked else None,
            restore_seconds=(restore.get(engine) or {}).get("seconds"),
            validation_ok=(restore.get(engine) or {}).get("validation_ok"),
        )
        problems = [m for m in (fresh.get("message"), size.get("message")) if m]
        if failed:
            problems.append("the newest %s backup %s failed: %s" % (
                engine, latest_any["backup_id"], "; ".join(latest_any["problems"])))
        problems += ["%s does not match its checksum" % c["backup_id"]
                     for c in checked if not c.get("ok")]
        if entry["validation_ok"] is False:
            problems.append("the %s restore failed its integrity validation" % engine)
        entry["problems"] = problems
        findings[engine] = entry
    return findings


def backup_prometheus(findings, now=None, verification=True):
    now = catalog.parse_time(now) if now else catalog.utcnow()
    return catalog.prometheus_text(findings, now, verification)


class FilterModule(object):
    def filters(self):
        return {"backup_findings": backup_findings, "backup_prometheus": backup_prometheus}
