# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""docs/inventory.md documents exactly the variables the collection reads besides role options."""

from __future__ import annotations

import re
from pathlib import Path

from ansible_collections.failsafe.datastores.plugins.module_utils._variables import (
    INVENTORY_VARIABLES,
    RUN_VARIABLES,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "inventory.md"


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
