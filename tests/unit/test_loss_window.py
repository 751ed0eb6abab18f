# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data-loss window of a standby whose primary is gone (module_utils/_postgres_facts.py).

The log lines are verbatim PostgreSQL 15 walreceiver lines (log_line_prefix '%m [%p] us-west ').
"""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_facts import (
    connection_loss,
    loss_window,
    receiver_events,
)

STREAMING = ("2026-11-22 03:17:38.192 GMT [9686] us-west LOG:  started streaming WAL from "
             "primary at 0/3000000 on timeline 1")
CLOSED = ("2026-11-22 03:17:42.364 GMT [9686] us-west FATAL:  could not receive data from WAL "
          "stream: server closed the connection unexpectedly\n"
          "\t\tThis probably means the server terminated abnormally\n"
          "\t\tbefore or while processing the request.")
INVALID = "2026-11-22 03:17:42.367 GMT [9685] us-west LOG:  invalid record length at 0/3018038: wanted 24, got 0"
REFUSED = ("2026-11-22 03:17:42.369 GMT [9719] us-west FATAL:  could not connect to the primary "
           "server: connection to server at \"127.0.9.1\", port 26432 failed: Connection refused\n"
           "\t\tIs the server running on that host and accepting TCP/IP connections?")
WAITING = "2026-11-22 03:17:42.369 GMT [9685] us-west LOG:  waiting for WAL to become available at 0/3018050"
TERMINATED = ("2026-11-22 03:20:01.500 GMT [9700] us-west LOG:  replication terminated by primary "
              "server\n2026-11-22 03:20:01.500 GMT [9700] us-west DETAIL:  End of WAL reached on "
              "timeline 1 at 0/30001C0.")
TIMEOUT = "2026-11-22 03:25:00.000 UTC [9800] FATAL:  terminating walreceiver due to timeout"
RESTARTED = ("2026-11-22 03:18:00.000 GMT [9900] us-west LOG:  restarted WAL streaming at "
             "0/3000000 on timeline 1")


def log(*lines):
    return "\n".join(lines) + "\n"


# The log ------------------------------------------------------------------------------------------

def test_receiver_events_keep_only_the_receivers_lines_with_their_timestamps():
    events = receiver_events(log(STREAMING, CLOSED, INVALID, REFUSED, WAITING))
    assert [(ts, kind) for ts, kind, _line in events] == [
        ("2026-11-22 03:17:38.192 GMT", "streaming"),
        ("2026-11-22 03:17:42.364 GMT", "closed"),
    ]


def test_connection_loss_is_the_end_of_the_last_streaming_session():
    events = receiver_events(log(STREAMING, CLOSED, REFUSED, REFUSED, WAITING))
    timestamp, kind, line = connection_loss(events)
    assert (timestamp, kind) == ("2026-11-22 03:17:42.364 GMT", "closed")
    assert "server closed the connection unexpectedly" in line


def test_a_standby_that_streams_again_has_not_lost_its_primary():
    assert connection_loss(receiver_events(log(STREAMING, CLOSED, RESTARTED))) is None
    assert connection_loss(receiver_events(log(STREAMING))) is None
    assert connection_loss([]) is None


def test_an_earlier_loss_is_not_the_last_one():
    events = receiver_events(log(STREAMING, CLOSED, RESTARTED, TIMEOUT))
    assert connection_loss(events)[:2] == ("2026-11-22 03:25:00.000 UTC", "timeout")


def test_a_clean_primary_shutdown_counts_as_closed():
    assert connection_loss(receiver_events(log(STREAMING, TERMINATED)))[1] == "closed"


def test_a_log_tail_without_the_start_line_still_finds_the_loss():
    assert connection_loss(receiver_events(log(CLOSED, REFUSED)))[1] == "closed"


def test_prefix_without_a_timestamp():
    events = receiver_events("[42] FATAL:  terminating walreceiver due to timeout\n")
    assert events == [(None, "timeout", "[42] FATAL:  terminating walreceiver due to timeout")]


@pytest.mark.parametrize("prefix, stamp", [
    ("2024-05-01 12:00:00.123 CEST [1] ", "2024-05-01 12:00:00.123 CEST"),
    ("2024-05-01 12:00:00 UTC [1] ", "2024-05-01 12:00:00 UTC"),
    ("app=x 2024-05-01 12:00:00.5+02 ", "2024-05-01 12:00:00.5+02"),
])
def test_timestamps_of_other_prefixes(prefix, stamp):
    events = receiver_events(prefix + "LOG:  replication terminated by primary server\n")
    assert events[0][0] == stamp


# The window ---------------------------------------------------------------------------------------

T0 = datetime.datetime(2026, 11, 22, 3, 17, 42, 364000, tzinfo=datetime.timezone.utc)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("reaction", [1, 70, 7000])
def test_after_a_crash_the_window_does_not_grow_with_the_reaction_time(reaction):
    """The reported case: 70 s after the crash, everything received, must fit a 60 s budget."""
    window = loss_window(now=at(reaction), last_commit=at(-0.58), last_message=None,
                         lost_at=at(0), lost_how="closed", receiver_timeout=60)
    assert window["window_seconds_at_most"] == 0.58
    assert window["basis"] == "connection closed"
    assert window["last_contact"] == at(-0.58)
    assert "closed the replication connection" in window["meaning"]


def test_an_idle_primary_that_crashed_is_bounded_by_the_receiver_timeout():
    # No commit for ten minutes: the standby still heard from it within wal_receiver_timeout.
    window = loss_window(now=at(300), last_commit=at(-600), last_message=None, lost_at=at(0),
                         lost_how="closed", receiver_timeout=60)
    assert window["window_seconds_at_most"] == 60.0
    assert window["last_contact"] == at(-60)


def test_without_a_receiver_timeout_the_last_commit_bounds_it():
    window = loss_window(now=at(300), last_commit=at(-600), last_message=None, lost_at=at(0),
                         lost_how="closed", receiver_timeout=0)
    assert window["window_seconds_at_most"] == 600.0


def test_no_commit_replayed_since_start_and_no_timeout_is_unknown():
    window = loss_window(now=at(5), last_commit=None, last_message=None, lost_at=at(0),
                         lost_how="closed", receiver_timeout=0)
    assert window["window_seconds_at_most"] is None


def test_a_receiver_timeout_runs_until_now():
    """A partition: the primary may have gone on taking writes the standby never saw."""
    window = loss_window(now=at(100), last_commit=at(-120), last_message=None, lost_at=at(0),
                         lost_how="timeout", receiver_timeout=60)
    assert window["basis"] == "connection timed out"
    assert window["last_contact"] == at(-60)
    assert window["window_seconds_at_most"] == 160.0
    assert "until now" in window["meaning"]


def test_a_connected_receiver_counts_from_its_last_message():
    window = loss_window(now=at(10), last_commit=at(-5), last_message=at(8), lost_at=None,
                         lost_how=None, receiver_timeout=60)
    assert window["basis"] == "connected"
    assert window["window_seconds_at_most"] == 2.0


def test_nothing_known_is_a_labelled_since_now_bound():
    window = loss_window(now=at(70), last_commit=at(-0.5), last_message=None, lost_at=None,
                         lost_how=None, receiver_timeout=60)
    assert window["basis"] == "since now"
    assert window["window_seconds_at_most"] == 70.5
    assert "grows while you wait" in window["meaning"]


def test_a_receiver_stopped_by_the_standby_itself_is_not_a_known_loss():
    window = loss_window(now=at(70), last_commit=at(-0.5), last_message=None, lost_at=at(0),
                         lost_how="stopped", receiver_timeout=60)
    assert window["basis"] == "since now"


def test_clock_skew_never_gives_a_negative_window():
    # The commit time comes from the primary's clock, the loss from the standby's.
    window = loss_window(now=at(70), last_commit=at(0.2), last_message=None, lost_at=at(0),
                         lost_how="closed", receiver_timeout=60)
    assert window["window_seconds_at_most"] == 0.0
