# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""synchronous_standby_names: formatting, parsing, equivalence, and whether commits block."""

from __future__ import annotations

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_sync import (
    SyncNamesError,
    commit_wait,
    format_names,
    parse_names,
    promotion_sync,
    promotion_sync_note,
    promotion_sync_step,
    same_names,
    sync_statements,
)


@pytest.mark.parametrize("names, method, num, text", [
    ([], "any", 1, ""),
    (["us_west"], "any", 1, "ANY 1 (us_west)"),
    (["us_west", "us_central"], "first", 2, "FIRST 2 (us_west, us_central)"),
    (["us-west"], "any", 1, 'ANY 1 ("us-west")'),
    (['we"ird'], "first", 1, 'FIRST 1 ("we""ird")'),
    (["*"], "any", 1, "ANY 1 (*)"),
    (["*"], "any", 2, "ANY 2 (*)"),
])
def test_format(names, method, num, text):
    assert format_names(names, method, num) == text


@pytest.mark.parametrize("names, method, num, why", [
    (["a"], "any", 2, "every commit would block forever"),
    (["a"], "any", 0, "num_sync must be 1 or more"),
    (["a"], "some", 1, "method must be one of"),
    ([""], "any", 1, "a standby name is empty"),
])
def test_format_refuses(names, method, num, why):
    with pytest.raises(SyncNamesError, match=why):
        format_names(names, method, num)


@pytest.mark.parametrize("text, parts", [
    ("", dict(method=None, num_sync=0, names=[])),
    ("   ", dict(method=None, num_sync=0, names=[])),
    ("ANY 1 (us_west)", dict(method="any", num_sync=1, names=["us_west"])),
    ("any 2 (a,b , c)", dict(method="any", num_sync=2, names=["a", "b", "c"])),
    ("FIRST 1 (a, b)", dict(method="first", num_sync=1, names=["a", "b"])),
    ("2 (a, b)", dict(method="first", num_sync=2, names=["a", "b"])),
    ("a, b", dict(method="first", num_sync=1, names=["a", "b"])),
    ("*", dict(method="first", num_sync=1, names=["*"])),
    ('ANY 1 ("us-west", "we""ird")', dict(method="any", num_sync=1,
                                          names=["us-west", 'we"ird'])),
])
def test_parse(text, parts):
    assert parse_names(text) == parts


@pytest.mark.parametrize("text", ["ANY (a)", "ANY 1 (a", "ANY 1 (a,)", "a,, b", "(a)"])
def test_parse_refuses_garbage(text):
    with pytest.raises(SyncNamesError):
        parse_names(text)


@pytest.mark.parametrize("names, method, num", [
    (["us_west"], "any", 1), (["a", "b"], "first", 2), (["us-west", "x y"], "any", 1)])
def test_format_then_parse_round_trips(names, method, num):
    assert parse_names(format_names(names, method, num)) == dict(
        method=method, num_sync=num, names=names)


def test_same_names():
    assert same_names("ANY 1 (us_west)", "any 1 (US_WEST)")
    assert same_names("a, b", "FIRST 1 (a, b)")
    assert same_names("", "  ")
    assert not same_names("ANY 1 (us_west)", "FIRST 1 (us_west)")
    assert not same_names("ANY 1 (us_west)", "")
    assert not same_names("ANY 1 (a, b)", "ANY 1 (b, a)")


def standby(name, state="streaming"):
    return dict(application_name=name, state=state)


def test_commit_wait_async_never_blocks():
    assert commit_wait("", []) == dict(synchronous=False, blocked=False, missing=[],
                                       streaming=[], needed=0)


def test_commit_wait_blocks_when_the_only_sync_standby_is_gone():
    wait = commit_wait("ANY 1 (us_west)", [])
    assert wait["blocked"] is True and wait["missing"] == ["us_west"] and wait["needed"] == 1


def test_commit_wait_catchup_does_not_count():
    wait = commit_wait("ANY 1 (us_west)", [standby("us_west", "catchup")])
    assert wait["blocked"] is True and wait["missing"] == ["us_west"]


def test_commit_wait_satisfied_and_case_insensitive():
    wait = commit_wait("ANY 1 (US_West)", [standby("us_west"), standby("other")])
    assert wait == dict(synchronous=True, blocked=False, missing=[], streaming=["us_west"],
                        needed=1)


def test_commit_wait_counts_against_num_sync():
    wait = commit_wait("FIRST 2 (a, b, c)", [standby("a"), standby("c", "startup")])
    assert wait["blocked"] is True and wait["missing"] == ["b", "c"]
    assert not commit_wait("ANY 2 (a, b, c)", [standby("a"), standby("c")])["blocked"]


def test_commit_wait_star_matches_any_streaming_standby():
    assert not commit_wait("*", [standby("whatever")])["blocked"]
    assert commit_wait("*", [])["blocked"]


def test_a_standby_never_waits():
    wait = commit_wait("ANY 1 (us_east)", [], in_recovery=True)
    assert wait["synchronous"] is True and wait["blocked"] is False
    assert wait["missing"] == ["us_east"]


def test_statements():
    assert sync_statements("ANY 1 (us_west)", "on") == [
        "ALTER SYSTEM SET synchronous_standby_names = 'ANY 1 (us_west)'",
        "ALTER SYSTEM SET synchronous_commit = 'on'",
        "SELECT pg_reload_conf()"]
    assert sync_statements("", None) == [
        "ALTER SYSTEM SET synchronous_standby_names = ''", "SELECT pg_reload_conf()"]
    assert sync_statements(None, None) == []


@pytest.mark.parametrize("mode, old, candidate, clear, restore, state", [
    ("keep", "ANY 1 (us_west)", "", False, dict(method="any", num_sync=1), "degraded_async"),
    ("keep", "FIRST 1 (us_west)", "ANY 1 (us_west)", True, dict(method="first", num_sync=1),
     "degraded_async"),
    ("keep", None, "ANY 1 (us_west)", True, dict(method="any", num_sync=1), "degraded_async"),
    ("keep", "", "", False, None, "async"),
    ("keep", None, "", False, None, "async"),
    ("on", None, "", False, dict(method="any", num_sync=1), "degraded_async"),
    ("off", "ANY 1 (us_west)", "ANY 1 (us_west)", True, None, "async"),
])
def test_promotion_never_blocks_the_new_primary(mode, old, candidate, clear, restore, state):
    sync = promotion_sync(mode, old, candidate)
    assert sync["clear"] is clear
    assert sync["new_primary_setting"] == ""
    assert sync["restore"] == restore
    assert sync["state"] == state
    assert (promotion_sync_step(sync) is not None) is clear
    assert ("ASYNCHRONOUSLY" in promotion_sync_note(sync, "x")) is (state == "degraded_async")


def test_promotion_mode_is_checked():
    with pytest.raises(SyncNamesError, match="synchronous must be one of"):
        promotion_sync("sometimes", "", "")
