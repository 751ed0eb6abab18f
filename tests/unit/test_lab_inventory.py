# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""inventories/lab/hosts.yml is lab.inventory rendered for the default lab, and never drifts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lab import inventory, postgresql
from lab.core import DEFAULT_REGIONS, LabConfig, default_state_dir
from lab.topology import make_lab

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "inventories" / "lab" / "hosts.yml"


def default_config():
    return LabConfig(state_dir=Path(default_state_dir()))


def default_lab():
    return make_lab(default_config())


@pytest.fixture
def committed():
    return COMMITTED.read_text()


def test_committed_inventory_equals_the_rendered_default(committed):
    assert committed == inventory.dump(default_lab()), (
        "inventories/lab/hosts.yml differs from lab.inventory: regenerate it with "
        "`python -m lab inventory > inventories/lab/hosts.yml`")


def test_from_env_without_overrides_is_the_default(monkeypatch, committed):
    for name in ("FAILSAFE_LAB_DIR", "FAILSAFE_LAB_REGIONS", "FAILSAFE_LAB_PORT_OFFSET",
                 "FAILSAFE_LAB_PORT_SCAN"):
        monkeypatch.delenv(name, raising=False)
    assert inventory.dump(make_lab()) == committed


def test_lab_passwords_equal_the_inventory(committed):
    variables = yaml.safe_load(committed)["all"]["vars"]
    assert variables["failsafe_pg_user"] == postgresql.ADMIN_USER
    assert variables["failsafe_pg_password"] == postgresql.ADMIN_PASSWORD
    assert variables["failsafe_pg_replication_user"] == postgresql.REPLICATION_USER
    assert variables["failsafe_pg_replication_password"] == postgresql.REPLICATION_PASSWORD


def test_inventory_makes_every_client_verify_the_lab_servers(committed):
    variables = yaml.safe_load(committed)["all"]["vars"]
    assert variables["failsafe_pg_ssl_mode"] == "verify-full"
    assert variables["failsafe_pg_ca_cert"] == default_state_dir() + "/tls/ca.crt"


def test_inventory_hosts_match_the_lab(committed):
    data = yaml.safe_load(committed)["all"]
    hosts = data["children"]["postgresql"]["hosts"]
    assert set(hosts) == {"pg-%s" % region for region in DEFAULT_REGIONS}
    for region, address in DEFAULT_REGIONS.items():
        host = hosts["pg-%s" % region]
        assert host["failsafe_region"] == region
        assert host["failsafe_pg_host"] == address
        assert host["failsafe_pg_port"] == postgresql.PostgresNode.default_ports["pg"]
        assert host["failsafe_pg_slot_name"] == postgresql.slot_name(region)
        assert host["failsafe_pg_data_dir"].startswith(default_state_dir() + "/")
        # Every region is a group of its own, holding its hosts, named as users type it.
        assert data["children"][region]["hosts"] == {
            "%s-%s" % (prefix, region): None for prefix in ("pg", "redis", "sentinel", "app")}


def test_inventory_follows_the_lab_config(tmp_path):
    config = LabConfig(state_dir=tmp_path, regions={"eu-central": "127.0.3.1"}, port_offset=10000)
    rendered = yaml.safe_load(inventory.dump(make_lab(config)))["all"]
    host = rendered["children"]["postgresql"]["hosts"]["pg-eu-central"]
    assert host["failsafe_pg_host"] == "127.0.3.1" and host["failsafe_pg_port"] == 25432
    assert host["failsafe_pg_data_dir"] == str(tmp_path / "postgresql-eu-central" / "data")
    assert host["failsafe_pg_slot_name"] == "eu_central"
    assert set(rendered["children"]) == {"eu-central", "eu_central", "postgresql", "witness",
                                         "redis", "redis_sentinel", "dns", "app"}
    witness = rendered["children"]["witness"]["hosts"]["pg-witness"]
    assert witness["failsafe_pg_host"] == "127.1.3.1" and witness["failsafe_pg_port"] == 25432


def test_witness_is_a_host_of_its_own_outside_the_cluster(committed):
    children = yaml.safe_load(committed)["all"]["children"]
    assert "pg-witness" not in children["postgresql"]["hosts"]
    witness = children["witness"]["hosts"]["pg-witness"]
    assert witness["failsafe_region"] is None
    assert witness["failsafe_pg_host"] == "127.1.1.1"
    assert witness["failsafe_pg_data_dir"] == default_state_dir() + "/postgresql-witness/data"
    assert "failsafe_pg_slot_name" not in witness


def test_region_aliases_are_parents_of_the_dashed_groups(committed):
    children = yaml.safe_load(committed)["all"]["children"]
    for region in DEFAULT_REGIONS:
        alias = region.replace("-", "_")
        assert children[alias] == {"children": {region: None}}


def test_region_without_a_dash_has_no_alias(tmp_path):
    config = LabConfig(state_dir=tmp_path, regions={"east": "127.0.3.1", "west": "127.0.4.1"})
    children = yaml.safe_load(inventory.dump(make_lab(config)))["all"]["children"]
    assert children["east"] == {"hosts": {"pg-east": None, "redis-east": None,
                                          "sentinel-east": None, "app-east": None}}
    assert "children" not in children["west"]


def test_limit_by_alias_and_by_dashed_name_selects_the_region(tmp_path):
    """What `ansible -l us_west` and `-l us-west` select, as ansible-core reads the file."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    manager = InventoryManager(loader=DataLoader(), sources=[str(COMMITTED)])
    for pattern in ("us-west", "us_west"):
        assert [h.name for h in manager.get_hosts(pattern)] == [
            "pg-us-west", "redis-us-west", "sentinel-us-west", "app-us-west"]
    assert sorted(h.name for h in manager.get_hosts("postgresql")) == ["pg-us-east", "pg-us-west"]


def test_app_hosts_are_in_the_app_group_and_their_region(committed):
    from lab import app

    data = yaml.safe_load(committed)["all"]
    hosts = data["children"]["app"]["hosts"]
    assert set(hosts) == {"app-%s" % region for region in DEFAULT_REGIONS}
    for region, address in DEFAULT_REGIONS.items():
        host = hosts["app-%s" % region]
        assert host["failsafe_region"] == region
        assert host["failsafe_app_platform"] == "supervisor"
        assert host["failsafe_app_program"] == app.PROGRAM
        assert host["failsafe_app_health_url"] == "http://%s:18080/health" % address
        assert host["failsafe_app_supervisor_url"] == "http://%s:19001" % address
        assert host["failsafe_app_supervisor_config"] == (
            default_state_dir() + "/app-%s/supervisord.conf" % region)
    assert data["vars"]["failsafe_app_supervisor_password"] == app.SUPERVISOR_PASSWORD


def test_write(tmp_path):
    path = inventory.write(default_lab(), tmp_path / "inv")
    assert path == tmp_path / "inv" / "hosts.yml"
    assert path.read_text() == COMMITTED.read_text()


def test_synchronous_lab_says_so_in_the_inventory(monkeypatch, committed):
    assert "failsafe_pg_synchronous" not in yaml.safe_load(committed)["all"]["vars"]
    monkeypatch.setenv("FAILSAFE_LAB_PG_SYNCHRONOUS", "1")
    variables = yaml.safe_load(inventory.dump(default_lab()))["all"]["vars"]
    assert variables["failsafe_pg_synchronous"] is True
