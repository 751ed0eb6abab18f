# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Synchronous replication: `synchronous_standby_names` as text and as parts, and whether the
commits of a primary wait for a standby that is not there.

Pure functions (unit-tested) plus the few statements that read and set the two settings.

A primary with a non-empty `synchronous_standby_names` acknowledges a commit only once enough of
the named standbys have confirmed it: none of them streaming means every commit blocks. That is
the price of losing nothing when the primary dies.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible_collections.failsafe.datastores.plugins.module_utils._postgres_connection import (
    PostgresError,
)

METHODS = ("any", "first")
SYNCHRONOUS_COMMIT_CHOICES = ("on", "remote_apply", "remote_write", "local", "off")

SET_NAMES = "ALTER SYSTEM SET synchronous_standby_names = %s"
SET_COMMIT = "ALTER SYSTEM SET synchronous_commit = %s"
RELOAD = "SELECT pg_reload_conf()"

_SIMPLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_TOKEN = re.compile(r'\s*(?:(?P<quoted>"(?:[^"]|"")*")|(?P<punct>[(),])|(?P<word>[^\s(),"]+))')


class SyncNamesError(ValueError):
    """A synchronous_standby_names value that cannot be read or would never be satisfied."""


def quote_name(name):
    """One standby name as synchronous_standby_names spells it."""
    if name == "*" or _SIMPLE_NAME.match(name):
        return name
    return '"%s"' % name.replace('"', '""')


def format_names(names, method="any", num_sync=1):
    """'ANY 1 (us_west)' from the parts; '' (asynchronous) for no names."""
    names = list(names or [])
    if not names:
        return ""
    method = (method or "any").lower()
    if method not in METHODS:
        raise SyncNamesError("method must be one of %s, got %r" % (", ".join(METHODS), method))
    if isinstance(num_sync, bool) or not isinstance(num_sync, int) or num_sync < 1:
        raise SyncNamesError("num_sync must be 1 or more, got %r" % (num_sync,))
    if num_sync > len(names) and "*" not in names:
        raise SyncNamesError(
            "num_sync=%d but only %d standby name(s) given (%s): every commit would block "
            "forever" % (num_sync, len(names), ", ".join(names)))
    if any(not name or not name.strip() for name in names):
        raise SyncNamesError("a standby name is empty: %r" % (names,))
    return "%s %d (%s)" % (method.upper(), num_sync, ", ".join(quote_name(n) for n in names))


def _tokens(text):
    pos, tokens = 0, []
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise SyncNamesError("cannot read synchronous_standby_names %r" % text)
        pos = match.end()
        if match.group("quoted"):
            tokens.append(("name", match.group("quoted")[1:-1].replace('""', '"')))
        elif match.group("punct"):
            tokens.append((match.group("punct"), match.group("punct")))
        else:
            tokens.append(("word", match.group("word")))
    return tokens


def _name_list(tokens, text):
    names, expect_name = [], True
    for kind, value in tokens:
        if expect_name and kind in ("name", "word"):
            names.append(value)
            expect_name = False
        elif not expect_name and kind == ",":
            expect_name = True
        else:
            raise SyncNamesError("cannot read synchronous_standby_names %r" % text)
    if expect_name:
        raise SyncNamesError("cannot read synchronous_standby_names %r" % text)
    return names


def parse_names(text):
    """The parts of a synchronous_standby_names value, as PostgreSQL reads it.

    dict(method='any'|'first', num_sync=int, names=[...]); method None, num_sync 0 and no names
    for '' (asynchronous). A bare list ('a, b') is FIRST 1; 'N (a, b)' is FIRST N.
    """
    text = (text or "").strip()
    if not text:
        return dict(method=None, num_sync=0, names=[])
    tokens = _tokens(text)
    method = None
    if len(tokens) >= 2 and tokens[0][0] == "word" and tokens[0][1].lower() in METHODS \
            and tokens[1][0] == "word" and tokens[1][1].isdigit():
        method = tokens[0][1].lower()
        tokens = tokens[1:]
    if tokens and tokens[0][0] == "word" and tokens[0][1].isdigit() and len(tokens) > 1 \
            and tokens[1][0] == "(":
        num_sync = int(tokens[0][1])
        if tokens[-1][0] != ")":
            raise SyncNamesError("cannot read synchronous_standby_names %r" % text)
        return dict(method=method or "first", num_sync=num_sync,
                    names=_name_list(tokens[2:-1], text))
    if method is not None:
        raise SyncNamesError("cannot read synchronous_standby_names %r" % text)
    return dict(method="first", num_sync=1, names=_name_list(tokens, text))


def same_names(current, wanted):
    """Whether two values mean the same thing (names compare case-insensitively, like
    PostgreSQL matches them against application_name)."""
    def canonical(text):
        parts = parse_names(text)
        return (parts["method"], parts["num_sync"], [n.lower() for n in parts["names"]])
    try:
        return canonical(current) == canonical(wanted)
    except SyncNamesError:
        return (current or "").strip() == (wanted or "").strip()


def _matches(name, application_name):
    return name == "*" or name.lower() == (application_name or "").lower()


def commit_wait(text, standbys, in_recovery=False):
    """Whether a server's commits wait for a synchronous standby that is not there.

    `standbys` are pg_stat_replication rows (application_name, state). Returns dict(
    synchronous, blocked, missing, streaming, needed): `missing` the named standbys that do not
    stream, `streaming` those that do, `needed` how many must confirm each commit. A standby
    (in recovery) never waits; a standby still in 'catchup' does not count yet.
    """
    parts = parse_names(text)
    synchronous = bool(parts["names"])
    streaming = sorted(set(
        s["application_name"] for s in standbys or []
        if s.get("state") == "streaming"
        and any(_matches(n, s.get("application_name")) for n in parts["names"])))
    missing = [n for n in parts["names"] if n != "*"
               and not any(_matches(n, s) for s in streaming)]
    needed = parts["num_sync"] if synchronous else 0
    blocked = synchronous and not in_recovery and len(streaming) < needed
    return dict(synchronous=synchronous, blocked=blocked, missing=missing,
                streaming=streaming, needed=needed)


# Statements -----------------------------------------------------------------------------------

def read_sync_settings(conn):
    """(synchronous_standby_names, synchronous_commit) as a new session sees them."""
    row = conn.execute(
        "SELECT current_setting('synchronous_standby_names') AS names,"
        " current_setting('synchronous_commit') AS sync_commit").fetchone()
    return row["names"], row["sync_commit"]


def sync_statements(names_text, synchronous_commit=None):
    """The statements (as reported) that set the values given (None: leave as is)."""
    statements = []
    if names_text is not None:
        statements.append(SET_NAMES % quote_literal(names_text))
    if synchronous_commit is not None:
        statements.append(SET_COMMIT % quote_literal(synchronous_commit))
    if statements:
        statements.append(RELOAD)
    return statements


def quote_literal(value):
    return "'%s'" % value.replace("'", "''")


def set_sync_settings(conn, names_text=None, synchronous_commit=None, timeout=10):
    """ALTER SYSTEM the given values, reload, and wait until this session sees them."""
    if names_text is None and synchronous_commit is None:
        return []
    if names_text is not None:
        conn.execute("ALTER SYSTEM SET synchronous_standby_names = %s" % quote_literal(
            names_text))
    if synchronous_commit is not None:
        conn.execute("ALTER SYSTEM SET synchronous_commit = %s" % quote_literal(
            synchronous_commit))
    conn.execute(RELOAD)
    deadline = time.monotonic() + timeout
    while True:
        names, commit = read_sync_settings(conn)
        if (names_text is None or same_names(names, names_text)) and \
                (synchronous_commit is None or commit == synchronous_commit):
            break
        if time.monotonic() > deadline:
            raise PostgresError(
                "synchronous_standby_names/synchronous_commit are still %r/%r %.1fs after the "
                "reload" % (names, commit, timeout))
        time.sleep(0.001)
    return sync_statements(names_text, synchronous_commit)


# Promotions ------------------------------------------------------------------------------------

PROMOTION_MODES = ("keep", "on", "off")


def promotion_sync(mode, old_primary_setting, candidate_setting):
    """What a switchover or failover does about synchronous replication (pure).

    Never promote a server whose own synchronous_standby_names is non-empty (inherited by a base
    backup, or set earlier): it could name a standby that does not stream yet and block every
    commit. The new primary starts asynchronous; `restore` (method, num_sync) says how to make
    it synchronous again once a standby streams from it (the rejoin does), or None.

    mode: 'keep' (as the old primary was, read from it, or from the candidate's inherited copy
    when the old primary cannot be read), 'on' (the cluster replicates synchronously: restore in
    any case), 'off' (stay asynchronous).
    """
    if mode not in PROMOTION_MODES:
        raise SyncNamesError("synchronous must be one of %s, got %r"
                             % (", ".join(PROMOTION_MODES), mode))
    candidate = (candidate_setting or "").strip()
    old = (old_primary_setting or "").strip()
    source = old or candidate
    restore = None
    if mode != "off" and (source or mode == "on"):
        try:
            parts = parse_names(source)
        except SyncNamesError:
            parts = dict(method=None)
        restore = dict(method=parts["method"] or "any", num_sync=1)
    return dict(mode=mode, old_primary_setting=old_primary_setting,
                candidate_setting=candidate_setting, clear=bool(candidate),
                new_primary_setting="", restore=restore,
                state="degraded_async" if restore else "async")


def promotion_sync_step(sync):
    """The step (as reported) of clearing the candidate's setting, or None."""
    if not sync["clear"]:
        return None
    return ("make the standby asynchronous before promoting it (synchronous_standby_names was "
            "%r)" % sync["candidate_setting"])


def promotion_sync_note(sync, new_primary):
    """A sentence for the module's msg."""
    if sync["state"] == "degraded_async":
        return (" %s replicates ASYNCHRONOUSLY for now (synchronous mode degraded): it becomes "
                "synchronous again once a standby streams from it (the rejoin does it)."
                % new_primary)
    return ""
