# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_diagnosis: what state a PostgreSQL cluster is in, and the one runbook that fits it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import lsn_to_int

PLAYBOOKS = "playbooks/"


def _address(host_vars):
    return "%s:%s" % (host_vars.get("failsafe_pg_host"), host_vars.get("failsafe_pg_port", 5432))


def _region(host_vars):
    return host_vars.get("failsafe_region") or "?"


def _sync_blocked(facts):
    """A primary that waits for a synchronous standby none of its streaming standbys is."""
    names = (facts.get("synchronous_standby_names") or "").strip()
    if not names:
        return False
    return not any(s.get("sync_state") in ("sync", "quorum") and s.get("state") == "streaming"
                   for s in facts.get("standbys") or [])


def _rejoin(node, primary):
    return ("ansible-playbook %spostgresql_rejoin.yml -e postgresql_rejoin_node=%s "
            "-e postgresql_rejoin_primary=%s" % (PLAYBOOKS, node, primary))


def pg_diagnosis(nodes, hostvars):
    """nodes: {host: postgresql_replication_info result}; hostvars: the inventory's.

    Returns dict(state, healthy, summary, problems, command): `command` is the one command that
    fits the state (null when healthy or when only an operator can decide).
    """
    if not hasattr(nodes, "items"):
        raise AnsibleFilterError("pg_diagnosis expects postgresql_topology_nodes (a dict)")
    hv = dict((host, hostvars[host]) for host in nodes)
    reachable = dict((h, f) for h, f in nodes.items() if f.get("reachable"))
    writable = sorted(h for h, f in reachable.items() if f.get("role") == "primary"
                      and not f.get("read_only"))
    fenced = sorted(h for h, f in reachable.items() if f.get("role") == "primary"
                    and f.get("read_only"))
    standbys = sorted(h for h, f in reachable.items() if f.get("role") == "standby")
    down = sorted(h for h in nodes if h not in reachable)
    problems = ["%s (%s) does not answer: %s" % (h, _region(hv[h]), nodes[h].get(
        "unreachable_reason") or "unreachable") for h in down]

    def result(state, summary, command=None):
        return dict(state=state, healthy=state == "healthy", summary=summary,
                    problems=problems, command=command, writable_primaries=writable,
                    fenced_primaries=fenced, standbys=standbys, unreachable=down)

    if len(writable) > 1:
        return result(
            "split_brain",
            "split brain: %s take writes at the same time. Decide which one keeps its writes "
            "and rejoin the other as its standby (its divergent WAL is kept aside); the "
            "command below keeps %s" % (
                " and ".join("%s (%s)" % (h, _region(hv[h])) for h in writable), writable[0]),
            _rejoin(writable[-1], writable[0]) + " -e postgresql_rejoin_force=true")
    if not writable:
        if fenced:
            return result(
                "fenced_no_writable",
                "writes are unavailable: %s is fenced (read-only) and no node takes writes, "
                "probably from an interrupted switchover. To give writes back to it, lift the "
                "fence (it refuses if another node takes writes)" % ", ".join(fenced),
                "ansible-playbook %spostgresql_unfence.yml" % PLAYBOOKS)
        if standbys:
            target = max(standbys, key=lambda h: _furthest(nodes[h]))
            return result(
                "no_primary",
                "no primary answers (%s down) and %s can be promoted: this is an emergency "
                "failover; it needs a loss budget" % (", ".join(down) or "none",
                                                      ", ".join(standbys)),
                "ansible-playbook %spostgresql_failover.yml -l %s "
                "-e postgresql_failover_max_data_loss_seconds=SECONDS"
                % (PLAYBOOKS, _region(hv[target])))
        return result("down", "no node answers: bring a node back before any runbook can help")
    primary = writable[0]
    primary_address = _address(hv[primary])
    lagging = []
    for host in standbys:
        receiver = nodes[host].get("wal_receiver") or {}
        upstream = "%s:%s" % (receiver.get("sender_host"), receiver.get("sender_port"))
        if receiver.get("status") != "streaming" or upstream != primary_address:
            problems.append("%s (%s) is a standby but does not stream from %s (WAL receiver: "
                            "%s)" % (host, _region(hv[host]), primary,
                                     receiver.get("status") or "not running"))
            lagging.append(host)
    sync_blocked = _sync_blocked(nodes[primary])
    if sync_blocked:
        problems.append("%s waits for a synchronous standby (synchronous_standby_names = %r) "
                        "and none streams: every commit blocks" % (
                            primary, nodes[primary].get("synchronous_standby_names")))
    stray = fenced + lagging + down
    if stray:
        node = stray[0]
        if node in down:
            summary = ("%s takes writes; %s does not answer: start it, then rejoin it"
                       % (primary, node))
        elif node in fenced:
            summary = ("%s takes writes; %s is a fenced old primary, not yet a standby "
                       "(an interrupted switchover or failover): rejoin it" % (primary, node))
        else:
            summary = "%s takes writes; %s does not follow it: rejoin it" % (primary, node)
        if sync_blocked:
            summary += "; until then commits block on the missing synchronous standby"
        return result("degraded_sync_blocked" if sync_blocked else "degraded", summary,
                      _rejoin(node, primary))
    if sync_blocked:
        return result("sync_blocked", problems[-1], None)
    return result("healthy", "%s (%s) takes writes; %s from it" % (
        primary, _region(hv[primary]),
        "%s %s" % (", ".join(standbys), "streams" if len(standbys) == 1 else "stream")
        if standbys else "no standby streams"))


def _furthest(facts):
    positions = [lsn_to_int(facts.get(k)) for k in ("received_lsn", "replayed_lsn")
                 if facts.get(k)]
    return max(positions) if positions else 0


def pg_status_rows(nodes, hostvars):
    """One row per node for the status table: region, host, role, lag, health, detail."""
    rows = []
    for host in sorted(nodes, key=lambda h: (_region(hostvars[h]), h)):
        facts = nodes[host]
        row = dict(engine="postgresql", region=_region(hostvars[host]), host=host,
                   address=_address(hostvars[host]), role=None, lag_bytes=None,
                   health="down", detail=facts.get("unreachable_reason"))
        if facts.get("reachable"):
            role = facts.get("role")
            row["role"] = "fenced primary" if role == "primary" and facts.get("read_only") \
                else role
            row["health"] = "ok"
            if role == "standby":
                receiver = facts.get("wal_receiver") or {}
                row["lag_bytes"] = facts.get("replay_lag_bytes")
                row["detail"] = "receiver %s from %s:%s" % (
                    receiver.get("status") or "not running", receiver.get("sender_host"),
                    receiver.get("sender_port"))
                if receiver.get("status") != "streaming" or facts.get("replay_paused"):
                    row["health"] = "not streaming" if receiver.get("status") != "streaming" \
                        else "replay paused"
            elif role == "primary":
                standbys = facts.get("standbys") or []
                row["lag_bytes"] = max([s.get("lag_bytes") or 0 for s in standbys] or [0])
                row["detail"] = "%d standby(s) streaming" % len(standbys)
                if facts.get("read_only"):
                    row["health"] = "fenced"
                elif _sync_blocked(facts):
                    row["health"] = "commits blocked"
        rows.append(row)
    return rows


class FilterModule(object):
    def filters(self):
        return {"pg_diagnosis": pg_diagnosis, "pg_status_rows": pg_status_rows}
