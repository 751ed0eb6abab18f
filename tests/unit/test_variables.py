# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/inventory.md documents exactly the variables the collection reads besides role options."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from ansible_collections.failsafe.datastores.plugins.module_utils._variables import (
    ARTIFACT_VARIABLES,
    INVENTORY_VARIABLES,
    RUN_VARIABLES,
)

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "inventory.md"


def documented():
    names = set()
    for line in DOC.read_text().splitlines():
        if line.startswith("| `failsafe_"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`(failsafe_\w+)`", first_cell))
    return names


def test_docs_list_exactly_the_known_variables():
    known = set(INVENTORY_VARIABLES) | set(RUN_VARIABLES)
    assert sorted(documented() - known) == [], "documented but unknown to _variables.py"
    assert sorted(known - documented()) == [], "in _variables.py but not documented"


def test_no_variable_is_listed_twice():
    names = list(INVENTORY_VARIABLES) + list(RUN_VARIABLES)
    assert len(names) == len(set(names))


def _set_stats_keys(node, found):
    if isinstance(node, dict):
        for key in ("ansible.builtin.set_stats", "set_stats"):
            if isinstance(node.get(key), dict):
                found.update((node[key].get("data") or {}).keys())
        for value in node.values():
            _set_stats_keys(value, found)
    elif isinstance(node, list):
        for value in node:
            _set_stats_keys(value, found)
    return found


def test_artifact_variables_are_the_set_stats_keys():
    """AWX hands a workflow job's set_stats to the next jobs as extra vars: run_preflight must
    know every key the playbooks publish (and only those)."""
    found = set()
    for path in sorted(REPO.glob("roles/*/tasks/*.yml")) + sorted(REPO.glob("playbooks/*.yml")):
        _set_stats_keys(yaml.safe_load(path.read_text()), found)
    assert "failsafe_run" in found
    assert sorted(found - set(RUN_VARIABLES)) == sorted(ARTIFACT_VARIABLES)
    assert not set(ARTIFACT_VARIABLES) & (set(INVENTORY_VARIABLES) | set(RUN_VARIABLES))
