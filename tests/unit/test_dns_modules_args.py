# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument handling of the DNS modules, with the real AnsibleModule: secrets are no_log, and
arguments that cannot work are refused before anything is sent anywhere."""

from __future__ import annotations

import re

import pytest

DNS_MODULES = ["dns_preflight", "dns_verify", "dns_update"]
SECRET = re.compile(r"(secret|password|token)")
MINIMAL = {"zone": "failsafe.lab", "server": "127.0.0.1", "records": [{"name": "api", "values": ["10.0.0.1"]}]}


@pytest.mark.parametrize("name", DNS_MODULES)
def test_every_secret_option_is_no_log(name, argument_spec):
    spec = argument_spec(name)
    secrets = [option for option in spec if SECRET.search(option)]
    assert sorted(secrets) == ["key_secret", "secret_key", "session_token"]
    for option in secrets:
        assert spec[option].get("no_log") is True, option
    assert not spec["key_name"].get("no_log")


@pytest.mark.parametrize("name", DNS_MODULES)
def test_rfc2136_needs_a_server(name, run_module):
    args = dict(MINIMAL)
    del args["server"]
    code, result = run_module(name, args)
    assert code == 1 and "server" in result["msg"]


@pytest.mark.parametrize("name", DNS_MODULES)
def test_a_key_name_needs_its_secret(name, run_module):
    code, result = run_module(name, dict(MINIMAL, key_name="failsafe-lab-update"))
    assert code == 1 and "key_name" in result["msg"] and "key_secret" in result["msg"]


def test_a_secret_never_appears_in_a_refusal(run_module):
    code, result = run_module("dns_preflight", dict(MINIMAL, key_name="k", key_secret="bm90IGI2NA==x!",
                                                    records=[{"name": "api.example.com.",
                                                              "values": ["10.0.0.1"]}]))
    assert code == 1 and "bm90IGI2NA==x!" not in str(result)


def test_a_name_outside_the_zone_is_refused_before_any_question(run_module, monkeypatch):
    from ansible_collections.failsafe.datastores.plugins.module_utils import _dns

    def no_network(*args, **kwargs):
        raise AssertionError("the module talked to a server")
    monkeypatch.setattr(_dns.dns.query, "tcp", no_network)
    code, result = run_module("dns_preflight", dict(MINIMAL, records=[{"name": "api.example.com.",
                                                                       "values": ["10.0.0.1"]}]))
    assert code == 1 and result["error_kind"] == "input"
    assert "not in zone failsafe.lab." in result["msg"]
