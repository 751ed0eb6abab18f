# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Arguments of the engine-neutral run_* modules (run_lock, run_preflight)."""

from __future__ import annotations

import json


def test_run_lock_store_password_is_no_log(argument_spec):
    connection = argument_spec("run_lock")["store"]["options"]["connection"]["options"]
    assert connection["password"]["no_log"] is True


def test_run_lock_password_never_reaches_the_output(run_module):
    code, result = run_module("run_lock", {
        "name": "postgresql", "not_an_option": True,
        "store": {"backend": "postgresql",
                  "connection": {"host": "witness", "password": "lock-s3cr3t"}}})
    assert code == 1 and "not_an_option" in result["msg"]
    assert "lock-s3cr3t" not in json.dumps(result)


def test_run_lock_refuses_a_non_positive_ttl(run_module, tmp_path):
    code, result = run_module("run_lock", {"name": "x", "ttl": 0,
                                           "store": {"path": str(tmp_path)}})
    assert code == 1 and result["msg"] == "ttl must be a positive number of seconds, got 0"


def test_run_lock_postgresql_store_needs_a_connection(run_module, tmp_path):
    code, result = run_module("run_lock", {"name": "x", "store": {"backend": "postgresql"}})
    assert code == 1
    assert "store.connection is required for the postgresql store" in result["msg"]


def test_run_preflight_says_it_runs_on_the_controller(run_module):
    code, result = run_module("run_preflight", {"target": "required"})
    assert code == 1 and "action plugin" in result["msg"]
