# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LSN arithmetic of module_utils/_postgres_facts.py (the numbers every failover decision rests on)."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import (
    int_to_lsn,
    lsn_at_least,
    lsn_diff,
    lsn_to_int,
    seconds,
)


@pytest.mark.parametrize("lsn, value", [
    ("0/0", 0),
    ("0/1", 1),
    ("16/B374D848", 0x16B374D848),
    ("0/FFFFFFFF", 0xFFFFFFFF),
    ("1/0", 1 << 32),
    ("FFFFFFFF/FFFFFFFF", (1 << 64) - 1),
])
def test_lsn_to_int_and_back(lsn, value):
    assert lsn_to_int(lsn) == value
    assert int_to_lsn(value) == lsn


def test_lowercase_input_is_read_and_printed_like_postgresql():
    # PostgreSQL prints pg_lsn as %X/%X (upper case, no zero padding).
    assert lsn_to_int("16/b374d848") == 0x16B374D848
    assert int_to_lsn(lsn_to_int("16/b374d848")) == "16/B374D848"
    assert int_to_lsn(lsn_to_int("0/0000A0")) == "0/A0"


@pytest.mark.parametrize("value", [0, 1, 0xFFFFFFFF, 1 << 32, 0x16B374D848, 123456789012345])
def test_int_round_trip(value):
    assert lsn_to_int(int_to_lsn(value)) == value


def test_none_stays_none():
    assert lsn_to_int(None) is None
    assert int_to_lsn(None) is None
    assert lsn_diff(None, "0/1") is None
    assert lsn_diff("0/1", None) is None
    assert lsn_diff(None, None) is None


@pytest.mark.parametrize("bad", ["", "garbage", "16B374D848", "1/2/3", "G/0", "0/XYZ", "/1", "1/", 42])
def test_invalid_input_raises_value_error(bad):
    with pytest.raises(ValueError, match="not a PostgreSQL LSN"):
        lsn_to_int(bad)


@pytest.mark.parametrize("bad", ["-1/0", "0/-1", "0/100000000", "+1/0", "1_0/0", " 1/0"])
def test_inputs_postgresql_rejects_raise(bad):
    with pytest.raises(ValueError):
        lsn_to_int(bad)


def test_high_word_carry():
    assert lsn_to_int("1/0") - lsn_to_int("0/FFFFFFFF") == 1
    assert lsn_diff("1/0", "0/FFFFFFFF") == 1
    assert int_to_lsn(lsn_to_int("0/FFFFFFFF") + 1) == "1/0"
    # Compared as numbers, not strings: '10/0' < 'F/FFFFFFFF' as text, but is one byte past it.
    assert lsn_diff("10/0", "F/FFFFFFFF") == 1
    assert lsn_at_least("10/0", "F/FFFFFFFF")
    assert not lsn_at_least("F/FFFFFFFF", "10/0")


def test_lsn_diff_counts_bytes():
    assert lsn_diff("0/3000060", "0/3000000") == 0x60
    assert lsn_diff("16/B374D848", "16/B374D848") == 0
    assert lsn_diff("1/10", "0/FFFFFFF0") == 0x20


@pytest.mark.parametrize("ahead, behind", [("0/0", "0/1"), ("0/FFFFFFFF", "1/0"), ("5/0", "6/0")])
def test_lsn_diff_never_negative(ahead, behind):
    assert lsn_diff(ahead, behind) == 0


def test_lsn_at_least_boundary():
    assert lsn_at_least("0/3000060", "0/3000060")  # reached exactly counts
    assert lsn_at_least("0/3000061", "0/3000060")
    assert not lsn_at_least("0/300005F", "0/3000060")


def test_lsn_at_least_unknown_is_not_reached():
    assert not lsn_at_least(None, "0/0")
    assert not lsn_at_least("0/0", None)
    assert not lsn_at_least(None, None)


def test_seconds():
    assert seconds(None) is None
    assert seconds(datetime.timedelta(seconds=1, microseconds=500)) == 1.0005
    assert seconds(datetime.timedelta(minutes=2)) == 120.0
