# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network partition decisions: which side keeps the primary, from two vantage points.

Pure logic (no connection here): the control node (where Ansible runs) and the witness each
say which nodes they reach and what each answered (role, read_only, timeline). The rule of
the runbook ("identify which partition has quorum"):

- a node is on the majority side when the control node AND the witness both reach it;
- a writable primary on the majority side keeps the primary role;
- otherwise the most advanced standby on the majority side is promoted (postgresql_failover
  chooses among them, within the data-loss budget);
- a writable primary outside the majority that the control node still reaches is fenced
  read-only (so that it stops taking writes that would be lost);
- no node on the majority side: nothing is changed, and the run says so;
- after the heal (phase ``heal``), the primary is the writable primary on the newest timeline
  (the one the majority promoted); every other primary is stale: fenced, then rejoined with
  pg_rewind.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class PartitionRefusal(Exception):
    """No safe decision: the message says what was seen and what to do; nothing was changed."""


def _names(nodes):
    return [n["name"] for n in nodes]


def _is_writable_primary(view):
    return bool(view.get("reachable")) and view.get("role") == "primary" \
        and not view.get("read_only")


def _seen(node):
    """What the node answered: the control node's view when it reached it, else the witness's."""
    return node["control"] if node["control"].get("reachable") else node["witness"]


def _label(node):
    return "%s (%s)" % (node["name"], node["region"]) if node.get("region") else node["name"]


def _listing(nodes):
    return ", ".join(_label(n) for n in nodes) or "none"


def sides(nodes):
    """Split the nodes by who reaches them."""
    both, control_only, witness_only, neither = [], [], [], []
    for node in nodes:
        control, witness = node["control"].get("reachable"), node["witness"].get("reachable")
        if control and witness:
            both.append(node)
        elif control:
            control_only.append(node)
        elif witness:
            witness_only.append(node)
        else:
            neither.append(node)
    return dict(majority=both, control_only=control_only, witness_only=witness_only,
                unreachable=neither)


def newest_primary(primaries):
    """The writable primary on the newest timeline; refuses when two share the newest."""
    ordered = sorted(primaries, key=lambda n: _seen(n).get("timeline") or 0, reverse=True)
    if len(ordered) > 1 and (_seen(ordered[0]).get("timeline") or 0) \
            == (_seen(ordered[1]).get("timeline") or 0):
        raise PartitionRefusal(
            "%s are writable primaries on the same timeline %s: which one the majority chose "
            "cannot be told from the servers. Nothing was changed. Decide which one keeps the "
            "writes, fence the other (postgresql_read_only read_only=true), then run this "
            "again" % (" and ".join(_label(n) for n in ordered[:2]),
                       _seen(ordered[0]).get("timeline")))
    return ordered[0]


def decide(nodes, phase="partition"):
    """The plan for one run.

    nodes: [dict(name, region, control=dict(reachable, role, read_only, timeline,
    system_identifier), witness=dict(reachable, role, read_only, timeline))].
    phase: ``partition`` (act on a partition seen now) or ``heal`` (the network is whole
    again: rejoin what the partition left behind).
    Returns dict(verdict, primary, promote_candidates, fence, rejoin, sides (names), msg).
    Raises PartitionRefusal when no safe decision exists (nothing to be changed then).
    """
    if phase not in ("partition", "heal"):
        raise PartitionRefusal("unknown phase %r: partition or heal" % phase)
    if not nodes:
        raise PartitionRefusal("no PostgreSQL node was given. Nothing was changed")
    split = sides(nodes)
    named = dict((key, _names(value)) for key, value in split.items())
    majority = split["majority"]
    partitioned = len(majority) != len(nodes)
    sysids = set(_seen(n).get("system_identifier") for n in nodes
                 if _seen(n).get("reachable") and _seen(n).get("system_identifier"))
    if len(sysids) > 1:
        raise PartitionRefusal("the nodes belong to different clusters (system identifiers "
                               "%s): check the inventory. Nothing was changed" % sorted(sysids))
    plan = dict(verdict=None, primary=None, promote_candidates=[], fence=[], rejoin=[],
                sides=named, partitioned=partitioned, msg="")
    if not majority:
        raise PartitionRefusal(
            "no side has the majority: the control node and the witness reach no node in "
            "common (control node reaches: %s; witness reaches: %s). Nothing was changed: "
            "whichever side kept writing would be a guess. Restore the network between the "
            "control node, the witness and at least one region, or decide by hand which "
            "region keeps the writes" % (
                _listing(split["control_only"]) if split["control_only"] else "none",
                _listing(split["witness_only"]) if split["witness_only"] else "none"))
    if phase == "heal":
        return _heal(plan, nodes, split, partitioned)
    return _partition(plan, nodes, split, partitioned)


def _partition(plan, nodes, split, partitioned):
    majority = split["majority"]
    writable_in = [n for n in majority if _is_writable_primary(n["control"])
                   and _is_writable_primary(n["witness"])]
    isolated_writable = [n for n in split["control_only"] if _is_writable_primary(n["control"])]
    if not partitioned:
        writable = [n for n in nodes if _is_writable_primary(n["control"])]
        primaries = [n for n in nodes if n["control"].get("role") == "primary"]
        plan["verdict"] = "no_partition"
        plan["primary"] = writable[0]["name"] if len(writable) == 1 else None
        plan["msg"] = (
            "No partition: the control node and the witness both reach every node (%s). "
            "Nothing to do%s." % (_listing(nodes), "" if len(primaries) <= 1 else
                                  ", but %s are primaries (writable: %s): after a partition "
                                  "that ended, run the heal phase (-e "
                                  "network_partition_phase=heal) to fence and rejoin the stale "
                                  "one" % (_listing(primaries), _listing(writable))))
        return plan
    if len(writable_in) > 1:
        raise PartitionRefusal(
            "%s are writable primaries on the majority side: a split brain that no partition "
            "rule resolves. Nothing was changed. Fence all but one (postgresql_read_only), "
            "then run the heal phase" % _listing(writable_in))
    plan["fence"] = _names(isolated_writable)
    if writable_in:
        keeper = writable_in[0]
        plan.update(verdict="keep_primary", primary=keeper["name"])
        plan["msg"] = ("%s keeps the primary: the control node and the witness both reach it. "
                       "Cut off: %s.%s" % (_label(keeper), _listing(
                           split["control_only"] + split["witness_only"] + split["unreachable"]),
                           _fence_note(isolated_writable)))
        return plan
    standbys = [n for n in majority if n["control"].get("role") == "standby"]
    if not standbys:
        fenced = [n for n in majority if n["control"].get("role") == "primary"]
        raise PartitionRefusal(
            "the majority side (%s) has no writable primary and no standby to promote%s. "
            "Nothing was changed" % (_listing(majority), (
                ": %s is a fenced primary (an interrupted run?): give writes back with "
                "playbooks/postgresql_unfence.yml if it is the one to keep" % _listing(fenced))
                if fenced else ""))
    plan.update(verdict="fail_over", promote_candidates=_names(standbys))
    old = [n for n in nodes if n not in majority]
    plan["msg"] = ("The primary is cut off from the majority (cut off: %s): promote the most "
                   "advanced standby of %s.%s" % (_listing(old), _listing(standbys),
                                                  _fence_note(isolated_writable)))
    return plan


def _fence_note(isolated_writable):
    if not isolated_writable:
        return ""
    return (" %s still answers the control node as a writable primary: fence it read-only "
            "first, so that it stops taking writes that would be lost." % _listing(isolated_writable))


def _heal(plan, nodes, split, partitioned):
    if partitioned:
        cut = split["control_only"] + split["witness_only"] + split["unreachable"]
        raise PartitionRefusal(
            "the partition is not healed: %s %s not reached by both the control node and the "
            "witness (control node reaches %s; witness reaches %s). Nothing was changed. Heal "
            "the network first, or run the partition phase" % (
                _listing(cut), "is" if len(cut) == 1 else "are",
                _listing([n for n in nodes if n["control"].get("reachable")]),
                _listing([n for n in nodes if n["witness"].get("reachable")])))
    writable = [n for n in nodes if _is_writable_primary(n["control"])]
    primaries = [n for n in nodes if n["control"].get("role") == "primary"]
    if not writable:
        raise PartitionRefusal(
            "no node takes writes%s. Nothing was changed. Give writes back to the primary to "
            "keep (playbooks/postgresql_unfence.yml) or promote one "
            "(playbooks/postgresql_failover.yml), then run the heal phase again" % (
                " (fenced primaries: %s)" % _listing(primaries) if primaries else ""))
    keeper = newest_primary(writable)
    stale = [n for n in primaries if n is not keeper]
    plan.update(primary=keeper["name"], fence=_names([n for n in stale if not n["control"].get(
        "read_only")]), rejoin=_names(stale))
    if stale:
        plan["verdict"] = "rejoin"
        plan["msg"] = ("The network is whole. %s is the primary (timeline %s); %s diverged "
                       "during the partition: fence it and rejoin it with pg_rewind (what it "
                       "accepted alone is discarded and counted)." % (
                           _label(keeper), keeper["control"].get("timeline"), _listing(stale)))
    else:
        plan["verdict"] = "healthy"
        plan["msg"] = ("The network is whole and %s is the only primary: nothing to rejoin."
                       % _label(keeper))
    return plan
