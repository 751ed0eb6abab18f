# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libpq connection strings and postgresql.auto.conf (module_utils/_postgres_files.py).

Two independent references keep the tests honest:
- libpq's own parser (psycopg.conninfo.conninfo_to_dict calls PQconninfoParse), for conninfo;
- pg_read_conf below, a transcription of PostgreSQL's configuration-file lexer (guc-file.l: the
  STRING token and GUC_scanstr), for what the server reads back from postgresql.auto.conf.
"""

from __future__ import annotations

import os
import re
import stat

import pytest
from psycopg.conninfo import conninfo_to_dict

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_files import (
    AUTO_CONF_HEADER,
    conninfo_string,
    merge_settings,
    parse_auto_conf,
    quote_conninfo_value,
    quote_setting,
    read_auto_conf,
    render_auto_conf,
    unquote_setting,
    update_auto_conf,
)

# guc-file.l: STRING = \'([^'\\\n]|\\.|\'\')*\'  ;  a setting is  NAME [=] VALUE  [# comment]
_PG_LINE = re.compile(
    r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_.]*)\s*=?\s*"
    r"(?P<value>'(?:[^'\\\n]|\\.|'')*'|[^\s#']+)\s*(?:#.*)?$")
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def pg_scanstr(quoted):
    """GUC_scanstr: strip the quotes, undo '' and backslash escapes (\\b \\f \\n \\r \\t, octal, other)."""
    text, out, i = quoted[1:-1], [], 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
            elif nxt in "01234567":
                digits = re.match(r"[0-7]{1,3}", text[i + 1:]).group(0)
                out.append(chr(int(digits, 8)))
                i += 1 + len(digits)
            else:
                out.append(nxt)
                i += 2
        elif char == "'" and text[i + 1:i + 2] == "'":
            out.append("'")
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def pg_read_conf(text):
    """The settings PostgreSQL reads from a configuration file (SyntaxError where it would)."""
    settings = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        match = _PG_LINE.match(line)
        if not match:
            raise SyntaxError("PostgreSQL: syntax error in line %d: %r" % (number, line))
        value = match.group("value")
        settings[match.group("name").lower()] = pg_scanstr(value) if value.startswith("'") else value
    return settings


def test_reference_reader_follows_postgresql():
    # Checked against `postgres -C` of PostgreSQL 15: ALTER SYSTEM doubles quotes and backslashes.
    assert pg_read_conf("a = 'it''s'\nb = 'x\\\\y'\nc='q\\'s'\nd = 5 # note\n") == \
        {"a": "it's", "b": "x\\y", "c": "q's", "d": "5"}
    with pytest.raises(SyntaxError):
        pg_read_conf("a = 'x\\''y'\n")


# conninfo ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, quoted", [
    ("plain", "plain"),
    ("10.0.1.10", "10.0.1.10"),
    (5432, "5432"),
    ("two words", "'two words'"),
    ("tab\there", "'tab\there'"),
    ("it's", "'it\\'s'"),
    ("back\\slash", "'back\\\\slash'"),
    ("", "''"),
    ("a'b\\c d", "'a\\'b\\\\c d'"),
])
def test_quote_conninfo_value(value, quoted):
    assert quote_conninfo_value(value) == quoted


@pytest.mark.parametrize("password", ["simple", "with space", "it's", "back\\slash", "",
                                      "'\\' \\\\ ''", "=x=", "#hash"])
def test_conninfo_string_round_trips_through_libpq(password):
    conninfo = conninfo_string(host="pg-east", port=5432, user="replicator", password=password,
                               application_name="us_west")
    assert conninfo_to_dict(conninfo) == dict(host="pg-east", port="5432", user="replicator",
                                              password=password, application_name="us_west")


def test_conninfo_string_skips_none_and_keeps_order():
    assert conninfo_string(host="h", port=5432, user=None, password=None, application_name="a") == \
        "host=h port=5432 application_name=a"
    assert conninfo_string(z="1", a="2") == "z=1 a=2"
    assert conninfo_string() == ""


def test_conninfo_string_keeps_empty_but_not_none():
    assert conninfo_string(password="") == "password=''"


# postgresql.auto.conf: parse ---------------------------------------------------------------------

def test_parse_auto_conf():
    text = (AUTO_CONF_HEADER
            + "primary_conninfo = 'host=h port=5432 user=r password=''x y'''\n"
            + "\n"
            + "   # a comment\n"
            + "Primary_Slot_Name='us_west'\n"
            + "max_connections = 50\n"
            + "cluster_name 'east'\n")
    assert parse_auto_conf(text) == [
        ("primary_conninfo", "host=h port=5432 user=r password='x y'"),
        ("primary_slot_name", "us_west"),
        ("max_connections", "50"),
        ("cluster_name", "east"),
    ]


def test_parse_keeps_duplicates_in_order():
    assert parse_auto_conf("a = '1'\nb = '2'\na = '3'\n") == [("a", "1"), ("b", "2"), ("a", "3")]


def test_unquote_setting():
    assert unquote_setting("'it''s'") == "it's"
    assert unquote_setting("  'x'  ") == "x"
    assert unquote_setting("''") == ""
    assert unquote_setting("50") == "50"
    assert unquote_setting("'") == "'"


def test_read_auto_conf_missing_file(tmp_path):
    assert read_auto_conf(str(tmp_path / "postgresql.auto.conf")) == []


# render ------------------------------------------------------------------------------------------------

def test_render_auto_conf():
    text = render_auto_conf([("primary_conninfo", "host=h password='x y'"), ("primary_slot_name", "")])
    assert text == (AUTO_CONF_HEADER
                    + "primary_conninfo = 'host=h password=''x y'''\n"
                    + "primary_slot_name = ''\n")


def test_quote_setting_doubles_quotes():
    assert quote_setting("it's") == "'it''s'"
    assert quote_setting("''") == "''''''"
    assert quote_setting(5) == "'5'"


@pytest.mark.parametrize("settings", [
    [],
    [("a", "1")],
    [("primary_conninfo", "host=h user=r password='x y' application_name=us_west"),
     ("primary_slot_name", "us_west"), ("empty", "")],
    [("q", "it's ''quoted''"), ("spaces", "  padded  ")],
])
def test_parse_render_round_trip(settings):
    assert parse_auto_conf(render_auto_conf(settings)) == settings


@pytest.mark.parametrize("value", [
    "plain",
    "it's",
    "host=h user=r password='x y' application_name=a",
    "",
])
def test_postgresql_reads_what_was_rendered(value):
    assert pg_read_conf(render_auto_conf([("primary_conninfo", value)])) == {"primary_conninfo": value}


@pytest.mark.parametrize("password", ["a'b", "a\\b"])
def test_postgresql_reads_the_rendered_primary_conninfo(password):
    conninfo = conninfo_string(host="h", user="r", password=password)
    read = pg_read_conf(render_auto_conf([("primary_conninfo", conninfo)]))
    assert conninfo_to_dict(read["primary_conninfo"])["password"] == password


def test_parse_reads_a_file_written_by_alter_system():
    # ALTER SYSTEM SET restore_command = 'cp /a\b %p' writes the backslash doubled.
    text = AUTO_CONF_HEADER + "restore_command = 'cp /a\\\\b %p'\n"
    assert pg_read_conf(text) == {"restore_command": "cp /a\\b %p"}
    assert parse_auto_conf(text) == [("restore_command", "cp /a\\b %p")]


# merge ---------------------------------------------------------------------------------------------------

CURRENT = [("primary_conninfo", "host=old"), ("primary_slot_name", "s1"), ("work_mem", "4MB")]


def test_merge_replaces_in_place():
    assert merge_settings(CURRENT, {"primary_slot_name": "s2"}) == [
        ("primary_conninfo", "host=old"), ("primary_slot_name", "s2"), ("work_mem", "4MB")]


def test_merge_appends_new_settings():
    assert merge_settings(CURRENT, {"cluster_name": "east"}) == CURRENT + [("cluster_name", "east")]


def test_merge_removes():
    assert merge_settings(CURRENT, {}, remove=["work_mem", "not_there"]) == CURRENT[:2]


def test_merge_names_are_case_insensitive():
    assert merge_settings(CURRENT, {"Primary_Conninfo": "host=new"}, remove=["WORK_MEM"]) == [
        ("primary_conninfo", "host=new"), ("primary_slot_name", "s1")]


def test_merge_nothing_to_do_is_identity():
    assert merge_settings(CURRENT, {}) == CURRENT
    assert merge_settings(CURRENT, {"work_mem": "4MB"}) == CURRENT
    assert merge_settings([], {}) == []


def test_merge_duplicate_with_update_leaves_one_entry():
    current = [("primary_conninfo", "host=a"), ("x", "1"), ("primary_conninfo", "host=b")]
    assert merge_settings(current, {"primary_conninfo": "host=c"}) == [
        ("primary_conninfo", "host=c"), ("x", "1")]


def test_merge_remove_drops_every_duplicate():
    current = [("default_transaction_read_only", "on"), ("x", "1"),
               ("default_transaction_read_only", "off")]
    assert merge_settings(current, {}, remove=["default_transaction_read_only"]) == [("x", "1")]


def test_merge_duplicate_last_wins():
    current = [("restore_command", "cp old %p"), ("x", "1"), ("restore_command", "cp new %p")]
    assert pg_read_conf(render_auto_conf(current))["restore_command"] == "cp new %p"
    merged = merge_settings(current, {"primary_slot_name": "s"})
    assert dict(merged)["restore_command"] == "cp new %p"


# update_auto_conf ---------------------------------------------------------------------------------------

def test_update_creates_the_file(tmp_path):
    path = str(tmp_path / "postgresql.auto.conf")
    assert update_auto_conf(path, {"primary_conninfo": "host=h", "primary_slot_name": "s"}) is True
    with open(path) as handle:
        text = handle.read()
    assert text.startswith(AUTO_CONF_HEADER)
    assert read_auto_conf(path) == [("primary_conninfo", "host=h"), ("primary_slot_name", "s")]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert os.listdir(str(tmp_path)) == ["postgresql.auto.conf"]  # no temporary file left


def test_update_without_change_returns_false_and_does_not_write(tmp_path):
    path = tmp_path / "postgresql.auto.conf"
    # As pg_basebackup -R writes it: no header, our quoting.
    original = "primary_conninfo = 'host=h user=r'\nprimary_slot_name = 's'\n"
    path.write_text(original)
    os.utime(str(path), (1000000000, 1000000000))
    assert update_auto_conf(str(path), {"primary_conninfo": "host=h user=r"}) is False
    assert update_auto_conf(str(path), {}, remove=["default_transaction_read_only"]) is False
    assert path.read_text() == original
    assert os.stat(str(path)).st_mtime == 1000000000


def test_update_missing_file_and_nothing_to_set(tmp_path):
    path = tmp_path / "postgresql.auto.conf"
    assert update_auto_conf(str(path), {}, remove=["x"]) is False
    assert not path.exists()


def test_update_changes_value_and_removes(tmp_path):
    path = tmp_path / "postgresql.auto.conf"
    path.write_text(AUTO_CONF_HEADER + "default_transaction_read_only = 'on'\n"
                    "primary_conninfo = 'host=old'\n")
    assert update_auto_conf(str(path), {"primary_conninfo": "host=new"},
                            remove=["default_transaction_read_only"]) is True
    assert read_auto_conf(str(path)) == [("primary_conninfo", "host=new")]
    # Second run: nothing left to do.
    assert update_auto_conf(str(path), {"primary_conninfo": "host=new"},
                            remove=["default_transaction_read_only"]) is False


def test_update_only_removing_returns_true(tmp_path):
    path = tmp_path / "postgresql.auto.conf"
    path.write_text(AUTO_CONF_HEADER + "default_transaction_read_only = 'on'\n")
    assert update_auto_conf(str(path), {}, remove=["default_transaction_read_only"]) is True
    assert read_auto_conf(str(path)) == []
    assert path.read_text() == AUTO_CONF_HEADER


def test_update_writes_what_postgresql_reads(tmp_path):
    path = tmp_path / "postgresql.auto.conf"
    conninfo = conninfo_string(host="pg-west", port=5432, user="replicator",
                               password="two words", application_name="us_east")
    update_auto_conf(str(path), {"primary_conninfo": conninfo, "primary_slot_name": ""})
    read = pg_read_conf(path.read_text())
    assert read == {"primary_conninfo": conninfo, "primary_slot_name": ""}
    assert conninfo_to_dict(read["primary_conninfo"])["password"] == "two words"
