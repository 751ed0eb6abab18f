# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument handling of every module, with the real AnsibleModule (ansible-core's
patch_module_args); the modules exit before they would connect anywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

# The PostgreSQL modules (peer connection dicts); the run_* modules: test_run_modules_args.py.
MODULE_NAMES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "plugins" / "modules").glob("postgresql_*.py"))

# The smallest valid arguments of each module: exactly its required options.
MINIMAL = {
    "postgresql_copy_rows": {"source": {"host": "pg-east"}, "target": {"host": "pg-east"},
                             "tables": ["orders"]},
    "postgresql_corruption_info": {"node": {"host": "pg-east"}},
    "postgresql_failover": {"nodes": [{"name": "pg-east", "host": "pg-east"}]},
    "postgresql_nodes_info": {"nodes": [{"name": "pg-east", "host": "pg-east"}]},
    "postgresql_partition_decision": {"nodes": [{"name": "pg-east", "host": "pg-east"}]},
    "postgresql_promote": {"node": {"host": "pg-west"}},
    "postgresql_read_only": {"node": {"host": "pg-east"}, "read_only": True},
    "postgresql_replication_info": {"node": {"host": "pg-east"}},
    "postgresql_sessions": {"node": {"host": "pg-east"}},
    "postgresql_setting": {"node": {"host": "pg-east"}, "name": "max_connections", "value": "100"},
    "postgresql_standby": {"node": {"host": "pg-east"}, "primary": {"host": "pg-west"},
                           "data_dir": "/var/lib/postgresql/15/main"},
    "postgresql_switchover": {"primary": {"host": "pg-east"}, "standby": {"host": "pg-west"}},
    "postgresql_sync_replication": {"node": {"host": "pg-east"}, "standby_names": ["us_west"]},
}

# Where each module takes a secret: a path of option names.
SECRETS = {
    "postgresql_copy_rows": [("source", "password"), ("target", "password")],
    "postgresql_corruption_info": [("node", "password")],
    "postgresql_failover": [("nodes", "password")],
    "postgresql_nodes_info": [("nodes", "password")],
    "postgresql_partition_decision": [("nodes", "password")],
    "postgresql_promote": [("node", "password"), ("primary", "password")],
    "postgresql_read_only": [("node", "password")],
    "postgresql_replication_info": [("node", "password")],
    "postgresql_sessions": [("node", "password")],
    "postgresql_setting": [("node", "password")],
    "postgresql_standby": [("node", "password"), ("primary", "password"), ("replication_password",)],
    "postgresql_switchover": [("primary", "password"), ("standby", "password")],
    "postgresql_sync_replication": [("node", "password")],
}

SECRET_NAME = re.compile(r"pass(word|wd)?$|secret|token", re.IGNORECASE)


def with_secrets(name, args):
    """`args` with a distinct secret value at every secret option of the module."""
    args = json.loads(json.dumps(args))
    values = []
    for number, path in enumerate(SECRETS[name]):
        value = "s3cr3t-%d-%s" % (number, "-".join(path))
        node = args
        for key in path[:-1]:
            node = node.setdefault(key, {"host": "pg-%s" % key})
            if isinstance(node, list):  # a list of dicts (nodes=): its first element
                node = node[0]
        node[path[-1]] = value
        values.append(value)
    return args, values


def walk(spec, prefix=()):
    for option, definition in spec.items():
        yield prefix + (option,), definition
        if definition.get("options"):
            yield from walk(definition["options"], prefix + (option,))


def test_every_module_is_covered():
    assert sorted(MINIMAL) == MODULE_NAMES
    assert sorted(SECRETS) == MODULE_NAMES


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_required_options(name, argument_spec):
    spec = argument_spec(name)
    assert {k for k, v in spec.items() if v.get("required")} == set(MINIMAL[name])


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_no_arguments_names_every_missing_option(name, run_module):
    code, result = run_module(name, {})
    assert code == 1 and result["failed"] is True
    assert result["msg"] == "missing required arguments: %s" % ", ".join(sorted(MINIMAL[name]))


@pytest.mark.parametrize("name, option", [(n, o) for n in MODULE_NAMES for o in MINIMAL[n]])
def test_each_missing_required_option_fails_clearly(name, option, run_module):
    args = dict(MINIMAL[name])
    del args[option]
    code, result = run_module(name, args)
    assert code == 1
    assert result["msg"] == "missing required arguments: %s" % option


@pytest.mark.parametrize("name, peer", [("postgresql_switchover", "primary"),
                                        ("postgresql_switchover", "standby"),
                                        ("postgresql_standby", "primary"),
                                        ("postgresql_standby", "node"),
                                        ("postgresql_promote", "primary"),
                                        ("postgresql_promote", "node"),
                                        ("postgresql_read_only", "node"),
                                        ("postgresql_replication_info", "node"),
                                        ("postgresql_sync_replication", "node"),
                                        ("postgresql_copy_rows", "source"),
                                        ("postgresql_corruption_info", "node"),
                                        ("postgresql_copy_rows", "target")])
def test_peer_without_host_fails_clearly(name, peer, run_module):
    args = dict(MINIMAL[name])
    args[peer] = {"port": 5433}
    code, result = run_module(name, args)
    assert code == 1
    assert result["msg"] == "missing required arguments: host found in %s" % peer


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_minimal_arguments_are_valid_and_defaults_apply(name, build_module):
    module = build_module(name, MINIMAL[name])
    params = module.params
    for key, value in MINIMAL[name].items():
        if isinstance(value, list):
            value, params = value[0], dict(params, **{key: params[key][0]})
        if isinstance(value, dict):
            assert params[key]["host"] == value["host"]
            assert params[key]["port"] == 5432 and params[key]["user"] == "postgres"
            assert params[key]["ssl_mode"] == "prefer" and params[key]["password"] is None
        else:
            assert params[key] == value
    assert not any(option.startswith("login_") for option in params)
    assert module.check_mode is False


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_bad_choice_and_type_are_refused(name, run_module):
    args = json.loads(json.dumps(MINIMAL[name]))
    target = args.get("node") or args.get("primary") or args.get("target") or args["nodes"][0]
    target["ssl_mode"] = "bogus"
    code, result = run_module(name, args)
    assert code == 1
    assert "must be one of: allow, disable, prefer, require, verify-ca, verify-full, got: bogus" \
        in result["msg"]
    args = json.loads(json.dumps(MINIMAL[name]))
    target = args.get("standby") or args.get("node") or args.get("source") or args["nodes"][0]
    target["port"] = "five"
    code, result = run_module(name, args)
    assert code == 1 and "cannot be converted to an int" in result["msg"]


@pytest.mark.parametrize("extra, why", [
    (dict(num_sync=2), "num_sync=2 but only 1 standby name(s) given (us_west): every commit "
                       "would block forever. Nothing was changed."),
    (dict(num_sync=0), "num_sync must be 1 or more, got 0. Nothing was changed."),
    (dict(standby_names=["us_west", ""]), "a standby name is empty"),
])
def test_sync_replication_refuses_values_that_would_block(extra, why, run_module):
    code, result = run_module("postgresql_sync_replication",
                              dict(MINIMAL["postgresql_sync_replication"], **extra))
    assert code == 1
    assert why in result["msg"]


def test_promote_refuses_negative_max_lag_bytes(run_module):
    code, result = run_module("postgresql_promote", dict(MINIMAL["postgresql_promote"], max_lag_bytes=-1))
    assert code == 1
    assert result["msg"] == "max_lag_bytes must be 0 or more, got -1"


# Secrets -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", MODULE_NAMES)
def test_secret_options_are_no_log(name, argument_spec):
    spec = argument_spec(name)
    for path in SECRETS[name]:
        node = spec[path[0]]
        for key in path[1:]:
            node = node["options"][key]
        assert node.get("no_log") is True, "%s: %s is not no_log" % (name, ".".join(path))


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_every_secret_looking_option_is_no_log(name, argument_spec):
    """Any option (or sub-option) named like a secret: catches the next one someone adds."""
    found = []
    for path, definition in walk(argument_spec(name)):
        if SECRET_NAME.search(path[-1]):
            found.append(path)
            assert definition.get("no_log") is True, "%s: %s" % (name, ".".join(path))
    assert sorted(found) == sorted(SECRETS[name])


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_secrets_are_registered_for_masking(name, build_module):
    args, values = with_secrets(name, MINIMAL[name])
    module = build_module(name, args)
    for value in values:
        assert value in module.no_log_values


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_secrets_never_reach_the_output(name, run_module):
    args, values = with_secrets(name, MINIMAL[name])
    args["not_an_option"] = True  # make the module fail after reading everything
    code, result = run_module(name, args)
    assert code == 1 and "not_an_option" in result["msg"]
    text = json.dumps(result)
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in text  # the arguments are echoed, masked
    for value in values:
        assert value not in text
