# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""inventories/production, the example for real sites, as ansible-inventory and ansible-playbook
read it (with the example vault password of its README): the documented `-l us-west` selects
that region's hosts, and every name in it is one the collection reads."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.failsafe.datastores.plugins.module_utils._variables import (
    INVENTORY_VARIABLES,
    RUN_VARIABLES,
)

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "inventories" / "production"
BIN = Path(sys.executable).parent
REGIONS = ("us-east", "us-west")


@pytest.fixture(scope="module")
def vault_password_file(tmp_path_factory):
    readme = (INVENTORY / "README.md").read_text()
    password = re.search(r"example password `([^`]+)`", readme).group(1)
    path = tmp_path_factory.mktemp("vault") / "password"
    path.write_text(password + "\n")
    return path


def ansible(tool, *args, password_file):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    proc = subprocess.run([str(BIN / tool), "-i", str(INVENTORY), "--vault-password-file",
                           str(password_file), *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def inventory(vault_password_file):
    return json.loads(ansible("ansible-inventory", "--list", password_file=vault_password_file))


def hosts_of(inventory, group):
    node = inventory.get(group, {})
    found = set(node.get("hosts", []))
    for child in node.get("children", []):
        found |= hosts_of(inventory, child)
    return found


@pytest.mark.parametrize("limit", ["us-west", "us_west", "us-east"])
def test_the_documented_limit_selects_the_region(vault_password_file, inventory, limit):
    out = ansible("ansible-playbook", "playbooks/regional_failover.yml", "-l", limit,
                  "--list-hosts", password_file=vault_password_file)
    listed = set(re.findall(r"^\s{6}(\S+)$", out, re.MULTILINE))
    region = limit.replace("_", "-")
    assert listed == hosts_of(inventory, region) and listed, out
    engines = {group for group in ("postgresql", "redis", "redis_sentinel", "app")
               if listed & hosts_of(inventory, group)}
    assert engines == {"postgresql", "redis", "redis_sentinel", "app"}


def test_region_groups_and_failsafe_region_agree(inventory):
    hostvars = inventory["_meta"]["hostvars"]
    for region in REGIONS:
        alias = region.replace("-", "_")
        assert inventory[alias].get("children") == [region] and not inventory[alias].get("hosts")
        for host in hosts_of(inventory, region):
            assert hostvars[host].get("failsafe_region") == region, host
    for host, variables in hostvars.items():
        if variables.get("failsafe_region"):
            assert host in hosts_of(inventory, variables["failsafe_region"]), host


def group_vars():
    merged = {}
    for path in sorted((INVENTORY / "group_vars" / "all").glob("*.yml")):
        text = path.read_text()
        if not text.startswith("$ANSIBLE_VAULT"):
            merged.update(yaml.safe_load(text) or {})
    return merged


def test_hosts_named_by_variables_exist(inventory):
    hosts = set(inventory["_meta"]["hostvars"])
    variables = group_vars()
    for name in ("failsafe_lock_host", "failsafe_backup_history_host"):
        assert variables[name] in hosts, f"{name}: {variables[name]} is no host of the inventory"
    assert hosts_of(inventory, "witness") == {variables["failsafe_lock_host"]}
    assert variables["failsafe_backup_history_host"] in hosts_of(inventory, "postgresql")


def role_options():
    names = set()
    for spec in REPO.glob("roles/*/meta/argument_specs.yml"):
        for entry in (yaml.safe_load(spec.read_text()).get("argument_specs") or {}).values():
            names.update((entry.get("options") or {}).keys())
    return names


def test_every_variable_is_one_the_collection_reads(inventory):
    known = set(INVENTORY_VARIABLES) | set(RUN_VARIABLES) | role_options()
    used = set(group_vars())
    for variables in inventory["_meta"]["hostvars"].values():
        used.update(variables)
    ours = {name for name in used if not name.startswith(("ansible_", "vault_"))}
    assert sorted(ours - known) == []


def test_every_vault_reference_is_defined(vault_password_file):
    plain = {}
    for vault in sorted((INVENTORY / "group_vars" / "all").glob("vault*.yml")):
        plain.update(yaml.safe_load(subprocess.run(
            [str(BIN / "ansible-vault"), "view", "--vault-password-file",
             str(vault_password_file), str(vault)], capture_output=True, text=True,
            check=True).stdout))
    texts = [(INVENTORY / "hosts.yml").read_text()] + [
        p.read_text() for p in (INVENTORY / "group_vars" / "all").glob("*.yml")]
    referenced = {name for text in texts for name in re.findall(r"\{\{\s*(vault_\w+)", text)}
    assert referenced and sorted(referenced - set(plain)) == []
