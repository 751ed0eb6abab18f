# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Arguments of the backup_* and restore_* modules: required options, secrets never shown."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

MODULES = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "plugins" / "modules").glob("*.py")
                 if p.stem.startswith(("backup_", "restore_")))
STORE = {"bucket": "backups"}
PG = {"host": "pg-east"}

MINIMAL = {
    "backup_info": {"store": STORE},
    "backup_neo4j": {"store": STORE},
    "backup_opensearch": {"store": STORE, "server": {"url": "https://os:9200"},
                          "indices": ["documents"]},
    "backup_postgresql": {"store": STORE, "source": PG},
    "backup_postgresql_base": {"store": STORE, "source": PG},
    "backup_postgresql_wal": {"store": STORE, "server": PG, "script_dir": "/var/lib/postgresql/x"},
    "backup_qdrant": {"store": STORE, "server": {"url": "http://qdrant:6333"},
                      "collections": ["documents"]},
    "backup_redis": {"store": STORE, "server": {"host": "redis-east"}},
    "backup_retention": {"store": STORE},
    "backup_set": {"store": STORE, "set_id": "set_20250130_020000", "members": []},
    "backup_verify": {"store": STORE},
    "restore_integrity": {"target": PG},
    "restore_neo4j": {"store": STORE},
    "restore_opensearch": {"store": STORE, "server": {"url": "https://os:9200"}},
    "restore_postgresql": {"store": STORE, "target": PG},
    "restore_postgresql_pitr": {"store": STORE, "target_time": "2025-01-30T12:00:00Z",
                                "path": "/var/tmp/pitr"},
    "restore_qdrant": {"store": STORE, "server": {"url": "http://qdrant:6333"}},
    "restore_redis": {"store": STORE, "target": {"host": "redis-east"}},
    "restore_scratch_postgresql": {"path": "/var/tmp/scratch"},
    "restore_scratch_redis": {"path": "/var/tmp/scratch-redis"},
}

SECRET_NAME = re.compile(r"pass(word|wd)?$|secret|token", re.IGNORECASE)


def walk(spec, prefix=()):
    for option, definition in spec.items():
        yield prefix + (option,), definition
        if definition.get("options"):
            yield from walk(definition["options"], prefix + (option,))


def test_every_backup_module_is_covered():
    assert sorted(MINIMAL) == MODULES


@pytest.mark.parametrize("name", MODULES)
def test_required_options(name, argument_spec):
    spec = argument_spec(name)
    assert {k for k, v in spec.items() if v.get("required")} == set(MINIMAL[name])


@pytest.mark.parametrize("name", MODULES)
def test_every_secret_looking_option_is_no_log(name, argument_spec):
    for path, definition in walk(argument_spec(name)):
        if SECRET_NAME.search(path[-1]):
            assert definition.get("no_log") is True, "%s: %s" % (name, ".".join(path))


@pytest.mark.parametrize("name", [n for n in MODULES if "store" in MINIMAL[n]])
def test_store_secret_is_no_log(name, argument_spec):
    assert argument_spec(name)["store"]["options"]["secret_key"]["no_log"] is True


@pytest.mark.parametrize("name", MODULES)
def test_secrets_never_reach_the_output(name, run_module):
    args = json.loads(json.dumps(MINIMAL[name]))
    values = []
    for option in ("store", "source", "target", "server", "history"):
        if option in args:
            key = "secret_key" if option == "store" else (
                "api_key" if "qdrant" in args[option].get("url", "") else "password")
            args[option] = dict(args[option], **{key: "s3cr3t-%s" % option})
            values.append("s3cr3t-%s" % option)
    if name == "restore_redis":
        args["start_command"] = ["true"]
    if name.startswith("restore_scratch_"):
        args["password"] = "s3cr3t-scratch"
        values.append("s3cr3t-scratch")
    args["not_an_option"] = True
    code, result = run_module(name, args)
    assert code == 1 and "not_an_option" in result["msg"]
    text = json.dumps(result)
    for value in values:
        assert value not in text


def test_store_part_size_below_s3_minimum_is_refused(run_module):
    code, result = run_module("backup_postgresql", dict(MINIMAL["backup_postgresql"], part_size_mb=4))
    assert code == 1
    assert result["msg"] == "part_size_mb must be 5 or more (S3's smallest part), got 4"
