# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's DNS components without starting them: BIND's configuration and zone (checked by
named-checkconf and named-checkzone where bind9 is installed), the inventory they add."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

# Until the generic lab (lab/core.py with Registry, components on sites) is on this branch.
from lab import core as _lab_core  # noqa: E402

if not hasattr(_lab_core, "Registry"):
    pytest.skip("needs the generic lab (lab.core.Registry), not yet merged here",
                allow_module_level=True)

from lab import bind  # noqa: E402
from lab.core import Lab, LabConfig, Registry  # noqa: E402
from lab.route53_emulator import Route53Emulator  # noqa: E402

REGIONS = {"us-east": "127.0.51.1", "us-west": "127.0.52.1"}


@pytest.fixture
def lab(tmp_path):
    registry = Registry([bind.bind_pair, Route53Emulator.at("route53-emulator")])
    return Lab(LabConfig(state_dir=tmp_path, regions=dict(REGIONS)), registry)


def servers(lab):
    primary, secondary = lab.of_kind("bind")
    return primary, secondary


def test_each_server_on_its_own_site_and_the_same_port(lab):
    primary, secondary = servers(lab)
    assert (primary.site, secondary.site) == ("dns-primary", "dns-secondary")
    assert primary.host != secondary.host and primary.port == secondary.port == 15353
    assert not set(REGIONS.values()) & {primary.host, secondary.host}
    assert secondary.primary is primary and primary.secondaries == [secondary]


def test_the_primary_grants_the_key_exactly_the_switched_names(lab):
    primary, secondary = servers(lab)
    conf = primary.named_conf()
    assert f"listen-on port {primary.port} {{ {primary.host}; }};" in conf
    assert "recursion no;" in conf and "listen-on-v6 { none; };" in conf
    grants = [line.strip() for line in conf.splitlines() if line.strip().startswith("grant ")]
    assert grants == [f"grant {bind.TSIG_KEY_NAME} name {name}.{bind.ZONE} A AAAA CNAME;"
                      for name in bind.SWITCHED_NAMES]
    assert f"also-notify {{ {secondary.host} port {secondary.port}; }};" in conf
    assert f"notify-source {primary.host};" in conf
    assert f"allow-transfer {{ key {bind.XFR_KEY_NAME}; }};" in conf


def test_the_secondary_transfers_from_the_primary_with_its_own_key(lab):
    primary, secondary = servers(lab)
    conf = secondary.named_conf()
    assert "type secondary;" in conf and bind.TSIG_SECRET not in conf
    assert f"primaries {{ {primary.host} port {primary.port} key {bind.XFR_KEY_NAME}; }};" in conf
    assert f"transfer-source {secondary.host};" in conf


def test_the_zone_points_every_name_at_the_first_region_and_lists_both_servers(lab):
    primary, secondary = servers(lab)
    zone = primary.zone_text()
    assert f"ns1 IN A {primary.host}" in zone and f"ns2 IN A {secondary.host}" in zone
    for name in bind.SWITCHED_NAMES + (bind.STATIC_NAME,):
        assert f"{name} IN A {REGIONS['us-east']}" in zone
    assert f"$TTL {bind.RECORD_TTL}" in zone


@pytest.mark.skipif(not Path("/usr/sbin/named").exists() or not shutil.which("named-checkzone"),
                    reason="bind9 is not installed (lab/install-deps.sh installs it)")
def test_named_accepts_the_configuration_and_the_zone(lab, tmp_path):
    primary, secondary = servers(lab)
    for comp in (primary, secondary):
        comp.home.mkdir(parents=True)  # named-checkconf enters the server's directory
        path = tmp_path / f"{comp.name}.conf"
        path.write_text(comp.named_conf())
        check = subprocess.run(["named-checkconf", str(path)], capture_output=True, text=True,
                               check=False)
        assert check.returncode == 0, check.stdout + check.stderr
    zone = tmp_path / "zone"
    zone.write_text(primary.zone_text())
    check = subprocess.run(["named-checkzone", bind.ZONE, str(zone)], capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_inventory_one_host_per_provider_and_the_records_of_each_region(lab):
    primary, secondary = servers(lab)
    host = primary.inventory_host()
    assert host.name == "dns-primary" and host.groups == ("dns",)
    assert host.vars["failsafe_dns_server"] == primary.host
    assert host.vars["failsafe_dns_nameservers"] == [f"{primary.host}:{primary.port}",
                                                     f"{secondary.host}:{secondary.port}"]
    assert secondary.inventory_host() is None
    records = primary.inventory_vars()["failsafe_dns_records"]
    assert records == {region: {name: address for name in bind.SWITCHED_NAMES}
                       for region, address in REGIONS.items()}
    emulator = lab.of_kind("route53_emulator")[0]
    assert emulator.name == "route53-emulator"
    r53 = emulator.inventory_host()
    assert r53.vars["failsafe_dns_provider"] == "route53"
    assert r53.vars["failsafe_route53_endpoint_url"] == f"http://{emulator.host}:{emulator.port}"
    assert r53.vars["failsafe_route53_query_nameservers"] is False
    assert emulator.inventory_vars() == primary.inventory_vars()
