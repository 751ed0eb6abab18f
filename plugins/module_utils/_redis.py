# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared Redis helpers: connection options, error mapping, replication and Sentinel facts.

Private to the collection (leading underscore): modules import it, users do not.

Every connection is made with retries off and explicit timeouts: redis-py 8 retries with
backoff by default, which would hide what a server answered and stretch a failover.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import time
import traceback

REDIS_IMPORT_ERROR = None
try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    HAS_REDIS = True
except ImportError:  # pragma: no cover - exercised by missing_required_lib
    redis = None
    NoBackoff = Retry = None
    HAS_REDIS = False
    REDIS_IMPORT_ERROR = traceback.format_exc()

from ansible.module_utils.basic import missing_required_lib

# Options of one server (a Redis node or a Sentinel): flat (login_*) for the node a module acts
# on, as the sub-options of a dict for the others (master=, replica=, sentinels=).
PEER_SPEC = dict(
    host=dict(type="str", required=True),
    port=dict(type="int", default=6379),
    username=dict(type="str"),
    password=dict(type="str", no_log=True),
    tls=dict(type="bool", default=False),
    ca_cert=dict(type="path"),
    connect_timeout=dict(type="float", default=3),
)

SENTINEL_PORT = 26379

_LOGIN_NAMES = dict(host="login_host", port="login_port", username="login_user",
                    password="login_password")


def login_argument_spec():
    """The flat connection options of the node the module acts on (doc fragment `redis`)."""
    return dict((_LOGIN_NAMES.get(name, name), dict(spec)) for name, spec in PEER_SPEC.items())


def login_params(params):
    return dict((name, params[_LOGIN_NAMES.get(name, name)]) for name in PEER_SPEC)


def peer_option(required=False):
    """A dict option describing another Redis server (master=, replica=)."""
    return dict(type="dict", required=required, options=dict(PEER_SPEC))


def sentinel_options():
    """sentinels= (a list of Sentinels) and master_name=."""
    spec = dict(PEER_SPEC)
    spec["port"] = dict(type="int", default=SENTINEL_PORT)
    return dict(
        sentinels=dict(type="list", elements="dict", default=[], options=spec),
        master_name=dict(type="str"),
    )


def ensure_driver(module):
    if not HAS_REDIS:
        module.fail_json(msg=missing_required_lib("redis (redis-py)"),
                         exception=REDIS_IMPORT_ERROR)


class RedisModuleError(Exception):
    """A failure already phrased for the operator: what was found and what to do."""


def unexpected(exc):
    """Last-resort wording of an error nobody mapped: its class and first line, no traceback."""
    text = str(exc).strip().splitlines()
    return "unexpected %s: %s" % (exc.__class__.__name__, text[0] if text else "(no message)")


def with_state(msg, state):
    """The message, then the state the failure leaves behind (unless the message says it)."""
    msg = msg.strip()
    if not state or state.rstrip(".").lower() in msg.lower():
        return msg
    return "%s%s %s" % (msg, "" if msg.endswith(".") else ".", state)


NOTHING_CHANGED = "Nothing was changed."


def describe(peer):
    return "%s:%s" % (peer["host"], peer["port"])


# Error mapping: the one place that turns redis-py exceptions into messages -----------------------

# Texts of errors that mean "no server is serving there". Everything else, authentication
# first, comes from a live server and must never pass for a dead one.
_UNREACHABLE_MARKERS = (
    "connection refused",
    "timeout connecting",
    "timed out",
    "no route to host",
    "network is unreachable",
    "name or service not known",
    "temporary failure in name resolution",
    "error 111",
    "error 113",
    "error 101",
)
_AUTH_MARKERS = (
    "wrongpass",
    "invalid password",
    "invalid username-password pair",
    "noauth",
    "authentication required",
    "auth <password> called without any password configured",
    "without any password configured",
)


def _text(exc):
    return str(exc).strip() or exc.__class__.__name__


def is_auth_error(exc):
    if HAS_REDIS and isinstance(exc, (redis.exceptions.AuthenticationError,
                                      redis.exceptions.AuthenticationWrongNumberOfArgsError)):
        return True
    lowered = _text(exc).lower()
    return any(marker in lowered for marker in _AUTH_MARKERS)


def is_unreachable(exc):
    """True only for connection errors that say no server answered (never for a refusal)."""
    if is_auth_error(exc):
        return False
    if HAS_REDIS and not isinstance(exc, (redis.exceptions.ConnectionError,
                                          redis.exceptions.TimeoutError)):
        return False
    lowered = _text(exc).lower()
    return any(marker in lowered for marker in _UNREACHABLE_MARKERS)


def explain_error(peer, exc, what="Redis"):
    """A redis-py error as a message that says what was wrong and what to do."""
    text = _text(exc).splitlines()[0]
    where = "%s at %s" % (what, describe(peer))
    if peer.get("username"):
        where += " as user %s" % peer["username"]
    if is_auth_error(exc):
        return ("authentication failed at %s: check the user and password (the password was "
                "not shown): %s" % (where, text))
    if HAS_REDIS and isinstance(exc, redis.exceptions.NoPermissionError):
        return ("%s refused a command: the user lacks a permission (ACL): %s" % (where, text))
    if HAS_REDIS and isinstance(exc, redis.exceptions.BusyLoadingError):
        return "%s is up but still loading its dataset: retry when it has loaded" % where
    if is_unreachable(exc):
        return "cannot reach %s: %s" % (where, text)
    if HAS_REDIS and isinstance(exc, redis.exceptions.ConnectionError):
        return ("cannot talk to %s: %s (a TLS server needs tls=true, a plain one tls=false)"
                % (where, text))
    return "%s answered with an error: %s" % (where, text)


def _client(peer, socket_timeout=None):
    kwargs = dict(
        host=peer["host"],
        port=peer["port"],
        username=peer.get("username"),
        password=peer.get("password"),
        socket_connect_timeout=peer.get("connect_timeout") or 3,
        socket_timeout=socket_timeout or max(5.0, float(peer.get("connect_timeout") or 3)),
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
        client_name="failsafe.datastores",
    )
    if peer.get("tls"):
        kwargs.update(ssl=True, ssl_ca_certs=peer.get("ca_cert"))
    return redis.Redis(**kwargs)


def connect(peer, what="Redis", socket_timeout=None):
    """A connected client (PING answered); raises RedisModuleError with a clear message."""
    conn = _client(peer, socket_timeout)
    try:
        conn.ping()
    except redis.exceptions.RedisError as exc:
        conn.close()
        raise RedisModuleError(explain_error(peer, exc, what))
    return conn


def try_connect(peer, what="Redis"):
    """(client, None), or (None, reason) when no server answers there at all.

    A live server that refuses us (wrong password, ACL, TLS mismatch) raises, so that it is
    never mistaken for a lost master.
    """
    conn = _client(peer)
    try:
        conn.ping()
    except redis.exceptions.RedisError as exc:
        conn.close()
        if is_unreachable(exc):
            return None, explain_error(peer, exc, what)
        raise RedisModuleError(explain_error(peer, exc, what))
    return conn, None


def reopened_once(call):
    """call(), and once more if the server had closed our connection.

    Sentinel ends every client connection of an instance it reconfigures (CLIENT KILL TYPE
    normal), and the old master drops its clients when it becomes a replica: the next command
    on such a connection fails although the server is fine. redis-py reopens the connection on
    the next call; this is the one retry the helpers make (retries are otherwise off).
    """
    try:
        return call()
    except redis.exceptions.ConnectionError as exc:
        if is_auth_error(exc):
            raise
        return call()


def command(conn, peer, *args, **kwargs):
    """Run one command; a redis-py error becomes a RedisModuleError naming the server."""
    what = kwargs.pop("what", "Redis")
    try:
        return reopened_once(lambda: conn.execute_command(*args, **kwargs))
    except redis.exceptions.RedisError as exc:
        raise RedisModuleError(explain_error(peer, exc, what) + " (command %s)" % " ".join(
            str(a) for a in args[:2]))


# Facts ---------------------------------------------------------------------------------------------

def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def parse_replication(info):
    """INFO replication (redis-py's parsed dict) -> the facts a failover decision needs."""
    role = "master" if info.get("role") == "master" else "replica"
    facts = dict(
        role=role,
        master_replid=info.get("master_replid"),
        master_repl_offset=_int(info.get("master_repl_offset"), 0),
        master_failover_state=info.get("master_failover_state", "no-failover"),
        connected_replicas=_int(info.get("connected_slaves"), 0),
        replicas=[],
        master_host=None,
        master_port=None,
        master_link_status=None,
        master_last_io_seconds_ago=None,
        master_link_down_since_seconds=None,
        master_sync_in_progress=False,
        replica_repl_offset=None,
        replica_read_only=None,
        replica_priority=None,
    )
    if role == "master":
        for key in sorted(info):
            value = info[key]
            if key.startswith("slave") and key[5:].isdigit() and isinstance(value, dict):
                offset = _int(value.get("offset"), 0)
                facts["replicas"].append(dict(
                    address="%s:%s" % (value.get("ip"), value.get("port")),
                    ip=value.get("ip"),
                    port=_int(value.get("port")),
                    state=value.get("state"),
                    offset=offset,
                    lag_bytes=max(0, facts["master_repl_offset"] - offset),
                    lag_seconds=_int(value.get("lag")),
                ))
    else:
        link_down = info.get("master_link_down_since_seconds")
        facts.update(
            master_host=info.get("master_host"),
            master_port=_int(info.get("master_port")),
            master_link_status=info.get("master_link_status"),
            master_last_io_seconds_ago=_int(info.get("master_last_io_seconds_ago")),
            master_link_down_since_seconds=None if link_down in (None, "") else _int(link_down),
            master_sync_in_progress=bool(_int(info.get("master_sync_in_progress"), 0)),
            replica_repl_offset=_int(info.get("slave_repl_offset")),
            replica_read_only=bool(_int(info.get("slave_read_only"), 1)),
            replica_priority=_int(info.get("slave_priority")),
        )
    return facts


def node_facts(conn, peer):
    """Role, link, offsets and replicas of one Redis node, plus what the failover needs."""
    try:
        replication = reopened_once(lambda: conn.info("replication"))
        server = conn.info("server")
    except redis.exceptions.RedisError as exc:
        raise RedisModuleError(explain_error(peer, exc))
    facts = parse_replication(replication)
    facts.update(
        address=describe(peer),
        redis_version=server.get("redis_version"),
        run_id=server.get("run_id"),
        config_file=server.get("config_file") or None,
    )
    return facts


def replica_lag_bytes(master, replica):
    """Bytes the replica's offset is behind the master's (None when unknown)."""
    if master.get("master_repl_offset") is None or replica.get("replica_repl_offset") is None:
        return None
    return max(0, master["master_repl_offset"] - replica["replica_repl_offset"])


def replica_entry(master, replica_peer, replica_facts=None, announce_ip=None):
    """The master's INFO entry of the replica `replica_peer` (the address the master knows it
    by, which FAILOVER TO and Sentinel use), or None."""
    entries = master.get("replicas") or []
    port = replica_peer["port"]
    addresses = {replica_peer["host"]}
    if announce_ip:
        addresses.add(announce_ip)
    try:
        addresses.add(socket.gethostbyname(replica_peer["host"]))
    except (socket.error, UnicodeError):
        pass
    for entry in entries:
        if entry["port"] == port and entry["ip"] in addresses:
            return entry
    same_port = [entry for entry in entries if entry["port"] == port]
    return same_port[0] if len(same_port) == 1 else None


def points_at(facts, entry_or_peer):
    """Whether a replica's master_host/port is that address."""
    host = entry_or_peer.get("ip") or entry_or_peer.get("host")
    addresses = {host}
    try:
        addresses.add(socket.gethostbyname(host))
    except (socket.error, UnicodeError, TypeError):
        pass
    return (facts.get("role") == "replica" and facts.get("master_port") == entry_or_peer["port"]
            and facts.get("master_host") in addresses)


def same_node(address, peer):
    """Whether "ip:port" (as Sentinel or a master reports it) names the server `peer`."""
    if not address:
        return False
    host, _sep, port = address.rpartition(":")
    if _int(port) != peer["port"]:
        return False
    if host == peer["host"]:
        return True
    try:
        return host == socket.gethostbyname(peer["host"])
    except (socket.error, UnicodeError):
        return False


# Sentinel ------------------------------------------------------------------------------------------

def sentinel_view(sentinels, master_name):
    """What each Sentinel says about `master_name`, and a summary.

    Never raises for an unreachable Sentinel (it is reported); a Sentinel that refuses us (wrong
    password) raises.
    """
    views = []
    for peer in sentinels:
        view = dict(address=describe(peer), reachable=False, error=None, master=None,
                    quorum_ok=None, quorum_message=None, failover_in_progress=None,
                    flags=[], config_epoch=None, other_sentinels=None, replicas=None,
                    quorum=None, down_after_milliseconds=None, failover_timeout=None,
                    parallel_syncs=None, last_ok_ping_reply_ms=None)
        conn, reason = try_connect(peer, what="Sentinel")
        if conn is None:
            view["error"] = reason
            views.append(view)
            continue
        view["reachable"] = True
        try:
            address = conn.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name)
            if address:
                view["master"] = "%s:%s" % (address[0], address[1])
            else:
                view["error"] = "this Sentinel does not monitor a master named %s" % master_name
                views.append(view)
                continue
            state = conn.execute_command("SENTINEL", "MASTER", master_name)
            if isinstance(state, list):
                state = dict(zip(state[::2], state[1::2]))
            flags = [f for f in str(state.get("flags", "")).split(",") if f]
            view.update(
                flags=flags,
                failover_in_progress=any(f.startswith("failover") for f in flags),
                config_epoch=_int(state.get("config-epoch")),
                other_sentinels=_int(state.get("num-other-sentinels")),
                replicas=_int(state.get("num-slaves")),
                quorum=_int(state.get("quorum")),
                down_after_milliseconds=_int(state.get("down-after-milliseconds")),
                failover_timeout=_int(state.get("failover-timeout")),
                parallel_syncs=_int(state.get("parallel-syncs")),
                last_ok_ping_reply_ms=_int(state.get("last-ok-ping-reply")),
            )
            try:
                view["quorum_message"] = str(conn.execute_command("SENTINEL", "CKQUORUM", master_name))
                view["quorum_ok"] = True
            except redis.exceptions.ResponseError as exc:
                view["quorum_message"] = _text(exc)
                view["quorum_ok"] = False
        except redis.exceptions.ResponseError as exc:
            view["error"] = explain_error(peer, exc, "Sentinel")
        except redis.exceptions.RedisError as exc:
            if is_auth_error(exc):
                raise RedisModuleError(explain_error(peer, exc, "Sentinel"))
            view["reachable"] = False
            view["error"] = explain_error(peer, exc, "Sentinel")
        finally:
            conn.close()
        views.append(view)
    return dict(sentinels=views, **summarise_sentinels(views))


def summarise_sentinels(views):
    """Agreement, quorum and failover state over the views of sentinel_view()."""
    reachable = [v for v in views if v["reachable"] and v["master"]]
    masters = sorted(set(v["master"] for v in reachable))
    return dict(
        reachable=len(reachable),
        total=len(views),
        masters=masters,
        agreed_master=masters[0] if len(masters) == 1 and len(reachable) == len(views) else None,
        # CKQUORUM alone is not enough: a Sentinel counts its peers as usable until
        # down-after-milliseconds has passed, so a majority of the Sentinels must answer us too.
        quorum_ok=any(v["quorum_ok"] for v in reachable) and len(reachable) > len(views) // 2,
        failover_in_progress=any(v["failover_in_progress"] for v in reachable),
    )


def wait_sentinels_agree(sentinels, master_name, peer, timeout, poll=0.01):
    """Poll every reachable Sentinel until each answers `peer`'s address for master_name.

    Returns (ok, {sentinel address: master address}).
    """
    clients = []
    for sentinel in sentinels:
        conn, _reason = try_connect(sentinel, what="Sentinel")
        if conn is not None:
            clients.append((sentinel, conn))
    answers = {}
    deadline = time.monotonic() + timeout
    try:
        while True:
            done = True
            for sentinel, conn in clients:
                try:
                    address = conn.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name)
                except redis.exceptions.RedisError as exc:
                    answers[describe(sentinel)] = "error: %s" % _text(exc)
                    done = False
                    continue
                answers[describe(sentinel)] = "%s:%s" % tuple(address) if address else None
                if not (address and same_node("%s:%s" % tuple(address), peer)):
                    done = False
            if done and clients:
                return True, answers
            if time.monotonic() > deadline:
                return False, answers
            time.sleep(poll)
    finally:
        for _sentinel, conn in clients:
            conn.close()


def persist(conn, peer, facts):
    """CONFIG REWRITE where the server runs from a config file; returns whether it did."""
    if not facts.get("config_file"):
        return False
    command(conn, peer, "CONFIG", "REWRITE")
    return True


def loss_estimate(replica, sentinels_view=None):
    """What a replica may miss when its master cannot be asked.

    The master may have accepted writes this replica never received from the moment the link
    went down until the master stopped: `window_seconds_at_most` is the link-down time, reduced by
    how long ago a Sentinel last heard the master answer (it was gone no earlier than that). It
    is an upper bound; 0 when the link is up.
    """
    link_down = replica.get("master_link_down_since_seconds")
    last_seen_ms = None
    if sentinels_view:
        pings = [v["last_ok_ping_reply_ms"] for v in sentinels_view.get("sentinels", [])
                 if v.get("reachable") and v.get("last_ok_ping_reply_ms") is not None]
        last_seen_ms = min(pings) if pings else None
    window = None
    if replica.get("master_link_status") == "up":
        window = 0
    elif link_down is not None:
        window = float(link_down)
        if last_seen_ms is not None:
            window = max(0.0, float(link_down) - last_seen_ms / 1000.0)
    return dict(
        link_status=replica.get("master_link_status"),
        link_down_seconds=link_down,
        master_last_seen_by_sentinel_seconds_ago=None if last_seen_ms is None
        else round(last_seen_ms / 1000.0, 3),
        replica_offset=replica.get("replica_repl_offset"),
        window_seconds_at_most=None if window is None else round(window, 3),
    )
