"""Secrets never reach Ansible's output, even at -vvv; the collection comes from the checkout."""

from __future__ import annotations

import json
import os

import pytest

from lab.postgresql import REPLICATION_PASSWORD, REPLICATION_USER

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.fixture(scope="module")
def verbose_runs(lab_env, run_module):
    """Runs at verbosity 3 of modules taking passwords in connection dicts and as options."""
    lab_env.ensure_canonical()
    pair = lab_env.pair()
    east, west = pair.east, pair.west
    runs = {
        "replication_info": run_module("postgresql_replication_info", dict(node=east.peer()),
                                       verbosity=3),
        # Nested peer dicts (primary=, standby=) with passwords, in check mode.
        "switchover": run_module("postgresql_switchover",
                                 dict(primary=east.peer(), standby=west.peer()),
                                 check=True, diff=True, verbosity=3),
        # node + primary + replication_password; the node already follows: changed=false.
        "standby": run_module("postgresql_standby", dict(
            node=west.peer(), data_dir=str(west.data_dir), config_dir=str(west.config_dir),
            primary=east.peer(), replication_user=REPLICATION_USER,
            replication_password=REPLICATION_PASSWORD, slot_name=west.slot_name),
            check=True, diff=True, verbosity=3),
        # A failure path: the message must not echo the (wrong) password either.
        "wrong_password": run_module("postgresql_promote", dict(
            node=west.peer(), primary=east.peer(password="wrong-Pa55word-secret")),
            verbosity=3),
    }
    return runs


def test_runs_succeeded_as_expected(verbose_runs):
    assert not verbose_runs["replication_info"].failed
    assert not verbose_runs["switchover"].failed, verbose_runs["switchover"].msg
    assert verbose_runs["switchover"]["switched"] is True
    assert not verbose_runs["standby"].failed, verbose_runs["standby"].msg
    assert verbose_runs["standby"]["changed"] is False
    assert verbose_runs["wrong_password"].failed
    assert "authentication failed" in verbose_runs["wrong_password"].msg


@pytest.mark.parametrize("name", ["replication_info", "switchover", "standby", "wrong_password"])
def test_no_secret_in_events(verbose_runs, lab_secrets, name):
    result = verbose_runs[name]
    secrets = list(lab_secrets) + ["wrong-Pa55word-secret"]
    assert "ESTABLISH LOCAL CONNECTION" in result.stdout, "not a -vvv run"
    for event in result.events:
        for secret in secrets:
            assert secret not in (event.get("stdout") or ""), (name, event.get("event"))
    dumped = json.dumps(result.events)
    for secret in secrets:
        assert secret not in dumped, (name, secret)
    # The module saw the password (the invocation shows it masked).
    args = result["invocation"]["module_args"]
    masked = json.dumps(args)
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in masked or "********" in masked


def test_collection_loaded_from_checkout(verbose_runs):
    """-vvv names the module file: it must be the working tree's, through collections/."""
    stdout = verbose_runs["replication_info"].stdout
    lines = [ln for ln in stdout.splitlines() if "Using module file" in ln]
    assert lines, stdout[-2000:]
    path = lines[0].split("Using module file", 1)[1].strip()
    assert path.startswith(os.path.join(REPO, "collections", "ansible_collections",
                                        "failsafe", "datastores")), path
    assert os.path.realpath(path) == os.path.join(
        REPO, "plugins", "modules", "postgresql_replication_info.py")
