# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the local programs print (module_utils/_postgres_local.py): verbatim PostgreSQL 15 output."""

from __future__ import annotations

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_local import (
    parse_controldata,
    parse_rewind_output,
    parse_waldump_stats,
    segment_number,
    segments_from,
)

CONTROLDATA = """pg_control version number:            1300
Database system identifier:           7440000000000000001
Database cluster state:               shut down
Latest checkpoint location:           0/4000028
Latest checkpoint's REDO location:    0/4000028
Latest checkpoint's TimeLineID:       1
Bytes per WAL segment:                16777216
"""

DRY_RUN = """pg_rewind: servers diverged at WAL location 0/3018038 on timeline 1
pg_rewind: rewinding from last common checkpoint at 0/2000060 on timeline 1
pg_rewind: Done!"""

NO_REWIND = """pg_rewind: source and target cluster are on the same timeline
pg_rewind: no rewind required"""

FAILED = "pg_rewind: error: could not find common ancestor of the source and target cluster's timelines"

WALDUMP_STATS = """pg_waldump: error: error in WAL record at 0/4000028: invalid record length at 0/40000A0: wanted 24, got 0
WAL statistics between 0/3018038 and 0/40000A0:
Type                                           N      (%)          Record size      (%)             FPI size      (%)        Combined size      (%)
----                                           -      ---          -----------      ---             --------      ---        -------------      ---
XLOG/CHECKPOINT_SHUTDOWN                       2 ( 13.33)                  228 ( 26.51)                    0 (  0.00)                  228 (  2.51)
XLOG/SWITCH                                    1 (  6.67)                   24 (  2.79)                    0 (  0.00)                   24 (  0.26)
Transaction/COMMIT                             2 ( 13.33)                   68 (  7.91)                    0 (  0.00)                   68 (  0.75)
Transaction/ABORT                              1 (  6.67)                   34 (  3.95)                    0 (  0.00)                   34 (  0.37)
Heap/INSERT                                    7 ( 46.67)                  408 ( 47.44)                   96 (  1.17)                  504 (  5.55)
                                        --------                      --------                      --------                      --------
Total                                         15                           860 [9.48%]                  8216 [90.52%]                 9076 [100%]
"""

ONLY_CHECKPOINT = """WAL statistics between 0/3018038 and 0/30180B0:
Type                                           N      (%)          Record size      (%)             FPI size      (%)        Combined size      (%)
XLOG/CHECKPOINT_SHUTDOWN                       1 (100.00)                  114 (100.00)                    0 (  0.00)                  114 (100.00)
"""


def test_parse_controldata():
    fields = parse_controldata(CONTROLDATA)
    assert fields["Database cluster state"] == "shut down"
    assert fields["Latest checkpoint's TimeLineID"] == "1"
    assert fields["Latest checkpoint location"] == "0/4000028"
    assert fields["Bytes per WAL segment"] == "16777216"


def test_parse_rewind_output():
    assert parse_rewind_output(DRY_RUN) == dict(needed=True, diverged_at="0/3018038",
                                                diverged_timeline=1)
    assert parse_rewind_output(NO_REWIND)["needed"] is False
    assert parse_rewind_output(FAILED) == dict(needed=None, diverged_at=None,
                                               diverged_timeline=None)
    assert parse_rewind_output("")["needed"] is None


def test_parse_waldump_stats_counts_commits_and_the_range():
    assert parse_waldump_stats(WALDUMP_STATS) == dict(start_lsn="0/3018038", end_lsn="0/40000A0",
                                                      committed=2, aborted=1)


def test_a_shutdown_checkpoint_alone_is_zero_commits():
    assert parse_waldump_stats(ONLY_CHECKPOINT)["committed"] == 0


def test_waldump_that_could_not_read_anything():
    assert parse_waldump_stats("pg_waldump: error: could not find file \"000000010000000000000003\"") is None


def test_segments_from_keeps_the_segment_of_the_lsn_and_later_and_histories():
    names = ["000000010000000000000001", "000000010000000000000002", "000000010000000000000003",
             "000000010000000000000004", "000000010000000000000002.00000028.backup",
             "00000002.history", "archive_status", "000000020000000100000000"]
    assert segments_from(names, "0/3018038", 16 * 1024 * 1024) == [
        "000000010000000000000003", "000000010000000000000004", "00000002.history",
        "000000020000000100000000"]


def test_segment_number_across_the_high_word():
    size = 16 * 1024 * 1024
    assert segment_number("000000010000000100000000", size) == 256
    assert segment_number("0000000100000000000000FF", size) == 255
