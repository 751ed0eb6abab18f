# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_preflight: the target region is named, never guessed; typos in -e are caught."""

from __future__ import annotations

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils._preflight import (
    PreflightError,
    resolve_target,
    unknown_variables,
)

HOSTVARS = {
    "pg-us-east": {"failsafe_region": "us-east"},
    "pg-us-west": {"failsafe_region": "us-west"},
    "redis-us-west": {"failsafe_region": "us-west"},
    "witness": {},
}
GROUP = ["pg-us-east", "pg-us-west"]
GROUPS = {"us-east": ["pg-us-east"], "us-west": ["pg-us-west", "redis-us-west"],
          "us_east": ["pg-us-east"], "us_west": ["pg-us-west", "redis-us-west"],
          "postgresql": GROUP}


def resolve(required=True, limit=None, play_hosts=None, groups=None, **kwargs):
    return resolve_target(required, limit, play_hosts or list(HOSTVARS), GROUP, HOSTVARS,
                          GROUPS if groups is None else groups, **kwargs)


def test_limit_names_the_region():
    target = resolve(limit="us-west", play_hosts=["pg-us-west", "redis-us-west"])
    assert target["region"] == "us-west" and target["source"] == "-l us-west"


def test_alias_limit_and_host_limit_name_the_region_too():
    assert resolve(limit="us_west", play_hosts=["pg-us-west"])["region"] == "us-west"
    assert resolve(limit="pg-us-east", play_hosts=["pg-us-east"])["region"] == "us-east"


def test_variable_names_the_region():
    assert resolve(target_region="us-east")["region"] == "us-east"


def test_target_host_variable_names_the_region():
    target = resolve(target_hosts={"postgresql_switchover_target": "pg-us-west"})
    assert target["region"] == "us-west"
    assert target["source"] == "postgresql_switchover_target=pg-us-west"


def test_nothing_named_is_refused_with_the_ways_to_name_it():
    with pytest.raises(PreflightError) as info:
        resolve(target_hosts={"postgresql_switchover_target": ""})
    text = str(info.value)
    assert "-l REGION" in text and "failsafe_target_region" in text
    assert "postgresql_switchover_target=HOST" in text and "Nothing was changed" in text


def test_nothing_named_is_fine_when_not_required():
    assert resolve(required=False)["region"] is None


def test_two_different_names_are_refused():
    with pytest.raises(PreflightError, match="named twice and differently"):
        resolve(limit="us-west", play_hosts=["pg-us-west"], target_region="us-east")


def test_the_same_region_named_twice_is_fine():
    target = resolve(limit="us-west", play_hosts=["pg-us-west"], target_region="us-west")
    assert target["region"] == "us-west"


def test_limit_over_several_regions_is_refused():
    with pytest.raises(PreflightError, match="several regions"):
        resolve(limit="all", play_hosts=GROUP)


def test_unknown_region_is_refused():
    with pytest.raises(PreflightError, match="us-north is not a region"):
        resolve(target_region="us-north")


def test_mistyped_host_is_not_in_the_inventory():
    with pytest.raises(PreflightError) as info:
        resolve(target_hosts={"postgresql_failover_target": "pg-us-esat"})
    assert "not in the inventory" in str(info.value) and "pg-us-east" in str(info.value)


def test_renamed_region_group_is_explained():
    groups = dict(GROUPS)
    del groups["us-west"]
    with pytest.raises(PreflightError) as info:
        resolve(target_region="us-west", groups=groups)
    assert "force_valid_group_names" in str(info.value) and "us_west" in str(info.value)


def test_missing_region_group_is_explained():
    groups = {"postgresql": GROUP}
    with pytest.raises(PreflightError, match="has no group us-east"):
        resolve(target_region="us-east", groups=groups)


KNOWN = {"failsafe_target_region", "postgresql_switchover_target",
         "postgresql_switchover_max_lag_bytes", "failsafe_pg_password"}
ROLES = ["postgresql_switchover", "postgresql_failover"]


def test_typo_of_a_target_variable_is_refused():
    refused, reported = unknown_variables({"failsafe_target_regoin": "us-west"}, KNOWN, ROLES)
    assert refused == [("failsafe_target_regoin", "failsafe_target_region")] and not reported


def test_typo_of_another_variable_is_reported():
    refused, reported = unknown_variables({"postgresql_switchover_max_lag_byte": 1}, KNOWN, ROLES)
    assert not refused
    assert reported == [("postgresql_switchover_max_lag_byte",
                         "postgresql_switchover_max_lag_bytes")]


def test_known_and_foreign_variables_pass():
    refused, reported = unknown_variables(
        {"failsafe_target_region": "us-west", "ansible_user": "x", "my_var": 1}, KNOWN, ROLES)
    assert refused == [] and reported == []
