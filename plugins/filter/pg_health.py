# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The prevention checks of the PostgreSQL runbook (001): which standbys lag (pg_lagging), the
health findings per node (pg_health_findings: disk space of the data directory, connection use
against max_connections, replication lag) and the same as Prometheus text (pg_health_prometheus)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from ansible.errors import AnsibleFilterError

from ansible_collections.failsafe.datastores.plugins.module_utils import _prometheus as prometheus


def _lags(result, max_seconds):
    receiver = result.get("wal_receiver") or {}
    seconds = result.get("lag_seconds")
    return (receiver.get("status") != "streaming" or seconds is None
            or float(seconds) > float(max_seconds))


def pg_lagging(results, max_seconds=5):
    """Names (each result's `item`) of the standbys of postgresql_replication_info results that
    lag: replay more than max_seconds behind, nothing replayed, or no streaming WAL receiver."""
    if not isinstance(results, list):
        raise AnsibleFilterError("pg_lagging expects the results list of a looped "
                                 "postgresql_replication_info task")
    return [r.get("item") for r in results if not r.get("skipped") and _lags(r, max_seconds)]


def df_bytes(stdout):
    """`df -P -B1 PATH` output -> dict(total_bytes, free_bytes, mount)."""
    lines = [line for line in (stdout or "").splitlines() if line.strip()]
    if len(lines) < 2:
        raise AnsibleFilterError("pg_health_findings: unexpected df output %r" % stdout)
    fields = lines[-1].split()
    try:
        return dict(total_bytes=int(fields[1]), free_bytes=int(fields[3]), mount=fields[-1])
    except (IndexError, ValueError):
        raise AnsibleFilterError("pg_health_findings: unexpected df output %r" % stdout)


def pg_health_findings(replication, df=None, sessions=None, min_free_ratio=0.3, max_usage=0.8,
                       max_lag_seconds=5):
    """{host: findings} from {host: postgresql_replication_info result} (postgresql_topology's
    nodes), {host: `df -P -B1 DATA_DIR` stdout} and {host: postgresql_sessions result}; a part
    missing for a host is not checked. Each finding: role, reachable, disk_total_bytes, disk_free_bytes,
    disk_free_ratio, connections, max_connections, connections_usage_ratio, by_state,
    lag_seconds, streaming, problems (sentences; empty when healthy)."""
    if not isinstance(replication, dict):
        raise AnsibleFilterError("pg_health_findings expects {host: replication facts}")
    df, all_sessions = df or {}, sessions or {}
    findings = {}
    for host, facts in sorted(replication.items()):
        node = dict(df=df.get(host))
        replication = facts or {}
        reachable = bool(replication.get("reachable", True))
        sessions = all_sessions.get(host) or {}
        entry = dict(role=replication.get("role"), reachable=reachable,
                     disk_total_bytes=None, disk_free_bytes=None, disk_free_ratio=None,
                     connections=sessions.get("connections"),
                     max_connections=sessions.get("max_connections"),
                     connections_usage_ratio=sessions.get("usage_ratio"),
                     by_state=dict((state, data.get("count")) for state, data
                                   in (sessions.get("by_state") or {}).items()),
                     lag_seconds=None, streaming=None, problems=[])
        problems = entry["problems"]
        if not reachable:
            problems.append("%s does not answer: %s" % (
                host, replication.get("unreachable_reason") or "unreachable"))
        if node.get("df"):
            disk = df_bytes(node["df"])
            entry.update(disk_total_bytes=disk["total_bytes"], disk_free_bytes=disk["free_bytes"],
                         disk_free_ratio=round(float(disk["free_bytes"]) / disk["total_bytes"], 4)
                         if disk["total_bytes"] else None)
            if entry["disk_free_ratio"] is not None and entry["disk_free_ratio"] < min_free_ratio:
                problems.append("%s: %.1f %% free on the data directory's file system %s "
                                "(below %.0f %%)" % (
                                    host, entry["disk_free_ratio"] * 100, disk["mount"],
                                    min_free_ratio * 100))
        usage = entry["connections_usage_ratio"]
        if usage is not None and usage > max_usage:
            problems.append("%s: %s of %s connections in use (%.0f %%, above %.0f %%): "
                            "playbooks/postgresql_connection_exhaustion.yml" % (
                                host, entry["connections"], entry["max_connections"],
                                usage * 100, max_usage * 100))
        if reachable and entry["role"] == "standby":
            receiver = replication.get("wal_receiver") or {}
            entry["lag_seconds"] = replication.get("lag_seconds")
            entry["streaming"] = receiver.get("status") == "streaming"
            if _lags(replication, max_lag_seconds):
                problems.append("%s: %s: playbooks/postgresql_replication_lag.yml" % (
                    host, "replays %s s behind (above %s s)" % (
                        entry["lag_seconds"], max_lag_seconds)
                    if entry["streaming"] and entry["lag_seconds"] is not None
                    else "does not stream from a primary"))
        findings[host] = entry
    return findings


def pg_health_prometheus(findings, now=None):
    """The findings as Prometheus text format (node_exporter's textfile collector)."""
    when = now if isinstance(now, datetime.datetime) else datetime.datetime.now(
        datetime.timezone.utc)
    hosts = sorted(findings.items())

    def per_host(field):
        return [({"host": host}, data.get(field)) for host, data in hosts]

    families = [
        ("failsafe_postgresql_up", "gauge", "1 when the node answered the health check",
         per_host("reachable")),
        ("failsafe_postgresql_disk_free_bytes", "gauge",
         "Free bytes on the file system of the data directory", per_host("disk_free_bytes")),
        ("failsafe_postgresql_disk_free_ratio", "gauge",
         "Free share of the data directory's file system (0.3 = 30 %)",
         per_host("disk_free_ratio")),
        ("failsafe_postgresql_connections", "gauge", "Client connections in use",
         per_host("connections")),
        ("failsafe_postgresql_max_connections", "gauge", "The server's max_connections",
         per_host("max_connections")),
        ("failsafe_postgresql_connections_usage_ratio", "gauge",
         "Client connections divided by max_connections (0.8 = 80 %)",
         per_host("connections_usage_ratio")),
        ("failsafe_postgresql_connections_by_state", "gauge",
         "Client connections per state",
         [({"host": host, "state": state}, count) for host, data in hosts
          for state, count in sorted((data.get("by_state") or {}).items())]),
        ("failsafe_postgresql_replication_lag_seconds", "gauge",
         "Seconds a standby's replay is behind (0 when it replayed all it received)",
         [({"host": host}, data.get("lag_seconds")) for host, data in hosts
          if data.get("role") == "standby"]),
        ("failsafe_postgresql_replication_streaming", "gauge",
         "1 when a standby streams from its primary",
         [({"host": host}, data.get("streaming")) for host, data in hosts
          if data.get("role") == "standby"]),
        ("failsafe_postgresql_health_problems", "gauge",
         "Problems the health check found on the node", [
             ({"host": host}, len(data.get("problems") or [])) for host, data in hosts]),
        ("failsafe_postgresql_health_timestamp_seconds", "gauge",
         "Unix time of this health check", [({}, prometheus.unix_seconds(when))]),
    ]
    return prometheus.render(families)


class FilterModule(object):
    def filters(self):
        return {"pg_lagging": pg_lagging, "pg_health_findings": pg_health_findings,
                "pg_health_prometheus": pg_health_prometheus}
