# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The dns_conn and dns_records filters: inventory variables -> DNS module options."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.failsafe.datastores.plugins.filter.dns import dns_conn, dns_records

BIND_HOST = {
    "inventory_hostname": "dns-primary",
    "failsafe_dns_provider": "rfc2136",
    "failsafe_dns_server": "127.1.1.2",
    "failsafe_dns_port": 15353,
    "failsafe_dns_zone": "failsafe.lab.",
    "failsafe_dns_tsig_key_name": "failsafe-lab-update",
    "failsafe_dns_tsig_key_secret": "c2VjcmV0",
    "failsafe_dns_tsig_algorithm": "hmac-sha256",
    "failsafe_route53_access_key": "ignored for rfc2136",
    "failsafe_pg_host": "ignored",
}


def test_rfc2136_host_variables_become_module_options():
    assert dns_conn(BIND_HOST) == {
        "provider": "rfc2136", "zone": "failsafe.lab.", "server": "127.1.1.2", "port": 15353,
        "key_name": "failsafe-lab-update", "key_secret": "c2VjcmV0",
        "key_algorithm": "hmac-sha256"}


def test_route53_host_variables_become_module_options():
    host = {"inventory_hostname": "r53", "failsafe_dns_provider": "route53",
            "failsafe_dns_zone": "failsafe.lab.", "failsafe_route53_endpoint_url": "http://x:1",
            "failsafe_route53_access_key": "AKIA", "failsafe_route53_secret_key": "s",
            "failsafe_route53_zone_id": "", "failsafe_dns_server": "ignored"}
    assert dns_conn(host) == {"provider": "route53", "zone": "failsafe.lab.",
                              "endpoint_url": "http://x:1", "access_key": "AKIA",
                              "secret_key": "s"}


@pytest.mark.parametrize("host, words", [
    ({"inventory_hostname": "h", "failsafe_dns_server": "10.0.0.1"}, "no failsafe_dns_zone"),
    ({"inventory_hostname": "h", "failsafe_dns_zone": "z."}, "no failsafe_dns_server"),
    ({"inventory_hostname": "h", "failsafe_dns_zone": "z.", "failsafe_dns_provider": "azure"},
     "failsafe_dns_provider=azure"),
])
def test_incomplete_hosts_are_refused_with_the_missing_variable(host, words):
    with pytest.raises(AnsibleFilterError, match=words):
        dns_conn(host)


def test_dns_conn_wants_a_hosts_variables():
    with pytest.raises(AnsibleFilterError, match="hostvars"):
        dns_conn(["dns-primary"])


RECORDS = {
    "us-east": {"postgresql": "10.10.1.10", "api": ["10.10.0.80", "10.10.0.81"],
                "www": {"type": "CNAME", "values": "lb-east.example.com", "ttl": 60}},
    "us-west": {"postgresql": "10.20.1.10"},
}


def test_region_records_become_the_records_option():
    assert dns_records(RECORDS, "us-east") == [
        {"name": "api", "values": ["10.10.0.80", "10.10.0.81"]},
        {"name": "postgresql", "values": ["10.10.1.10"]},
        {"name": "www", "values": ["lb-east.example.com"], "type": "CNAME", "ttl": 60}]
    assert dns_records(RECORDS["us-west"]) == [{"name": "postgresql", "values": ["10.20.1.10"]}]


def test_a_region_without_records_is_an_error_that_names_the_known_ones():
    with pytest.raises(AnsibleFilterError, match="no DNS records for region eu-central.*us-east, us-west"):
        dns_records(RECORDS, "eu-central")


def test_a_record_without_values_is_an_error():
    with pytest.raises(AnsibleFilterError, match="api has no values"):
        dns_records({"api": {"type": "A"}})
