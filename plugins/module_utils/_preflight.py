# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks every state-changing run makes before its first change (engine-neutral, pure).

- Which region is the target: from `-l` (the hosts the limit left in the engine's group), from
  `failsafe_target_region`, or from a role variable naming a host. Never guessed: with none of
  them, a run that needs a target is refused with the ways to name it.
- Which `-e` variables look like the collection's but are unknown (typos).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib

from ansible_collections.failsafe.datastores.plugins.module_utils._variables import (
    COLLECTION_PREFIX,
    TARGET_SELECTING,
)


class PreflightError(Exception):
    """A refusal phrased for the operator; nothing was changed."""


def host_region(hostvars, host):
    return (hostvars.get(host) or {}).get("failsafe_region")


def regions_of(hostvars, hosts):
    return sorted(set(r for r in (host_region(hostvars, h) for h in hosts) if r))


def alias_of(region):
    """The underscore spelling a sanitising controller turns a dashed group name into."""
    return region.replace("-", "_")


def check_region_group(region, groups):
    """The region's group must exist as it is spelled in failsafe_region."""
    if region in groups:
        return
    renamed = alias_of(region)
    if renamed in groups:
        raise PreflightError(
            "the inventory has a group %s but no group %s for region %s: the controller renamed "
            "the group (Ansible's force_valid_group_names). Set force_valid_group_names = ignore "
            "([defaults] in ansible.cfg, or ANSIBLE_TRANSFORM_INVALID_GROUP_CHARS=ignore in the "
            "environment of AWX or the execution environment), or name the group %s in the "
            "inventory. Nothing was changed" % (renamed, region, region, region))
    raise PreflightError(
        "the inventory has no group %s, although hosts say failsafe_region=%s: add the region "
        "group (see docs/inventory.md). Nothing was changed" % (region, region))


def resolve_target(required, limit, play_hosts, group_hosts, hostvars, groups,
                   target_region=None, target_hosts=None):
    """The target region and how it was named.

    limit: ansible_limit or None; play_hosts: the hosts the limit left (ansible_play_hosts_all);
    group_hosts: the engine group's hosts; target_hosts: {role variable: host} for variables
    that name a host. Returns dict(region, source, regions) or raises PreflightError.
    """
    regions = regions_of(hostvars, group_hosts)
    named = []
    for variable, host in sorted((target_hosts or {}).items()):
        if not host:
            continue
        if host not in hostvars:
            close = difflib.get_close_matches(host, sorted(group_hosts), n=2, cutoff=0.7)
            raise PreflightError(
                "%s=%s: host %s is not in the inventory%s. Nothing was changed"
                % (variable, host, host,
                   " (did you mean %s?)" % " or ".join(close) if close else ""))
        if host not in group_hosts:
            raise PreflightError("%s=%s: host %s is not in the group of this run's nodes. "
                                 "Nothing was changed" % (variable, host, host))
        named.append((host_region(hostvars, host), "%s=%s" % (variable, host)))
    if target_region:
        if target_region not in regions:
            raise PreflightError(
                "failsafe_target_region=%s is not a region of this inventory (regions: %s). "
                "Nothing was changed" % (target_region, ", ".join(regions) or "none"))
        named.append((target_region, "failsafe_target_region=%s" % target_region))
    if limit:
        limited = [h for h in play_hosts if h in group_hosts]
        limit_regions = regions_of(hostvars, limited)
        if len(limit_regions) == 1:
            named.append((limit_regions[0], "-l %s" % limit))
        elif len(limit_regions) > 1 and required and not named:
            raise PreflightError(
                "-l %s leaves nodes of several regions (%s): name one region, e.g. -l %s. "
                "Nothing was changed" % (limit, ", ".join(limit_regions), limit_regions[-1]))
    chosen = sorted(set(region for region, _source in named))
    if len(chosen) > 1:
        raise PreflightError(
            "the target is named twice and differently: %s. Name it once. Nothing was changed"
            % "; ".join("%s means %s" % (source, region) for region, source in named))
    if not chosen:
        if required:
            raise PreflightError(
                "no target region named: this run changes which region takes writes and does "
                "not guess. Name it with -l REGION (e.g. -l %s), -e failsafe_target_region=REGION"
                "%s. Nothing was changed"
                % (regions[-1] if regions else "us-west",
                   "".join(", or -e %s=HOST" % v for v in sorted(target_hosts or {}))))
        return dict(region=None, source=None, regions=regions)
    check_region_group(chosen[0], groups)
    return dict(region=chosen[0], source="; ".join(source for _r, source in named),
                regions=regions)


def unknown_variables(extra_vars, known, role_prefixes):
    """-e variables with the collection's or a role's prefix that nothing reads.

    Returns (refused, reported): lists of (name, suggestion or None). A name whose closest
    known name selects the target, or that speaks of a target or region, is refused: the run
    would otherwise choose a target itself.
    """
    prefixes = (COLLECTION_PREFIX,) + tuple(p + "_" for p in role_prefixes)
    refused, reported = [], []
    for name in sorted(extra_vars):
        if name in known or not name.startswith(prefixes):
            continue
        close = difflib.get_close_matches(name, sorted(set(known) | set(TARGET_SELECTING)),
                                          n=1, cutoff=0.75)
        suggestion = close[0] if close else None
        targeting = suggestion in TARGET_SELECTING or "target" in name or "region" in name
        (refused if targeting else reported).append((name, suggestion))
    return refused, reported


def describe_unknown(items):
    return ", ".join("%s%s" % (name, " (did you mean %s?)" % hint if hint else "")
                     for name, hint in items)
