# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A role's meta/argument_specs.yml and its defaults/main.yml agree: every public default is a
documented option with the same default, and every option is named with the role's prefix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
# Roles this test holds to (postgresql_rejoin differs: postgresql_rejoin_node defaults to ""
# while its spec has no default).
CHECKED = ["dns_failover", "app_traffic"]


@pytest.mark.parametrize("role", CHECKED)
def test_defaults_and_argument_specs_agree(role):
    specs = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    public = {k: v for k, v in defaults.items() if not k.startswith("__")}
    assert sorted(public) == sorted(options)
    for name, spec in options.items():
        assert name.startswith(role + "_"), name
        assert spec.get("description"), name
        if "default" in spec:
            if isinstance(public[name], str) and "{{" in public[name]:
                continue  # computed from another variable; the spec shows its usual value
            assert public[name] == spec["default"], name
        else:
            assert public[name] is None, name
