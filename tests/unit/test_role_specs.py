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
# Roles this test holds to.
CHECKED = ["dns_failover", "postgresql_rejoin", "app_traffic", "postgresql_recover_rows",
           "postgresql_crash_recovery"]
ALL_ROLES = sorted(p.parent.parent.name for p in ROLES.glob("*/meta/argument_specs.yml"))


def entry_points(role):
    specs = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())
    return specs["argument_specs"]


def role_defaults(role):
    path = ROLES / role / "defaults" / "main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


@pytest.mark.parametrize("role", CHECKED)
def test_defaults_and_argument_specs_agree(role):
    specs = yaml.safe_load((ROLES / role / "meta" / "argument_specs.yml").read_text())
    options = specs["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())
    public = {k: v for k, v in defaults.items() if not k.startswith("__")}
    required = {name for name, spec in options.items() if spec.get("required")}
    assert sorted(public) == sorted(set(options) - required)
    for name, spec in options.items():
        assert name.startswith(role + "_"), name
        assert spec.get("description"), name
        if name in required:
            continue
        if "default" in spec:
            if isinstance(public[name], str) and "{{" in public[name]:
                continue  # computed from another variable; the spec shows its usual value
            assert public[name] == spec["default"], name
        else:
            assert public[name] is None, name


@pytest.mark.parametrize("role", ALL_ROLES)
def test_required_options_have_no_default(role):
    """A role default satisfies `required: true`: Ansible validates the arguments with the
    role's defaults merged in, so a defaulted required option would never be enforced."""
    defaults = role_defaults(role)
    for entry, spec in entry_points(role).items():
        for name, option in (spec.get("options") or {}).items():
            if option.get("required"):
                assert name not in defaults, f"{role}:{entry} defaults required {name}"
                assert "default" not in option, f"{role}:{entry} {name}: required with a default"
