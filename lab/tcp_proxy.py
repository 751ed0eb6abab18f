"""A small TCP proxy whose links a test can cut and heal: the lab's network between sites.

One process serves several links. A link listens on one address and port and forwards every
connection to one target; it is named after the side the traffic comes from and the side it
goes to (``control->us-east``). Cutting a link is what a firewall REJECT rule does: its
listener closes (new connections are refused: ECONNREFUSED) and every connection it carries
is closed on both sides (each end reads EOF). Healing opens the listener again.

The process is controlled over a line of JSON on its admin port (``request()`` below):

    {"op": "status"}                          -> {"ok": true, "links": {name: {...}}}
    {"op": "cut", "links": ["a->b", ...]}     -> the same, after the cut
    {"op": "heal", "links": [...]}            -> the same (no "links": every link)

Run as ``python -m lab.tcp_proxy CONFIG.json`` where the file holds
``{"admin": [host, port], "links": [{"name", "listen": [host, port], "target": [host, port]}]}``.
Standard library only, no third-party import (it runs wherever the lab runs).
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import threading
import time
from pathlib import Path

BUFFER = 65536
CONNECT_TIMEOUT = 3.0
ACCEPT_POLL = 0.2


class Link:
    """One listener forwarding to one target; cut() closes it and every connection it carries."""

    def __init__(self, name: str, listen: tuple[str, int], target: tuple[str, int]) -> None:
        self.name = name
        self.listen = (listen[0], int(listen[1]))
        self.target = (target[0], int(target[1]))
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.pairs: set[tuple[socket.socket, socket.socket]] = set()
        self.accepted = 0
        self.dropped = 0
        self.cut_at: float | None = None

    # Listener ----------------------------------------------------------------------------
    def open(self) -> None:
        with self.lock:
            if self.listener is not None:
                return
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(self.listen)
            sock.listen(64)
            sock.settimeout(ACCEPT_POLL)
            self.listener = sock
            self.cut_at = None
        threading.Thread(target=self._accept_loop, args=(sock,), daemon=True,
                         name=f"accept {self.name}").start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            with self.lock:
                if self.listener is not listener:
                    return
            try:
                client, _peer = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True,
                             name=f"connect {self.name}").start()

    def _connect(self, client: socket.socket) -> None:
        client.settimeout(None)
        try:
            upstream = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT)
        except OSError:
            _close(client)
            return
        upstream.settimeout(None)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair = (client, upstream)
        with self.lock:
            if self.listener is None:  # cut while connecting
                _close(client)
                _close(upstream)
                return
            self.pairs.add(pair)
            self.accepted += 1
        threading.Thread(target=self._pump, args=(pair, upstream, client), daemon=True).start()
        self._pump(pair, client, upstream)

    def _pump(self, pair, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(BUFFER)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        # One direction ended: end the connection as a whole (the other pump then ends too).
        with self.lock:
            self.pairs.discard(pair)
        for sock in pair:
            _close(sock)

    # Cut and heal --------------------------------------------------------------------------
    def cut(self) -> None:
        with self.lock:
            listener, self.listener = self.listener, None
            pairs, self.pairs = set(self.pairs), set()
            if listener is not None:
                self.cut_at = time.time()
            self.dropped += len(pairs)
        if listener is not None:
            _close(listener)
        for pair in pairs:
            for sock in pair:
                _close(sock)

    def state(self) -> dict:
        with self.lock:
            return {"state": "cut" if self.listener is None else "open",
                    "listen": f"{self.listen[0]}:{self.listen[1]}",
                    "target": f"{self.target[0]}:{self.target[1]}",
                    "connections": len(self.pairs), "accepted": self.accepted,
                    "dropped": self.dropped, "cut_at": self.cut_at}


def _close(sock: socket.socket) -> None:
    """Close both directions now: the peer reads EOF (a blocked recv in a pump returns)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class Proxy:
    """The links of one process and its admin port."""

    def __init__(self, config: dict) -> None:
        self.admin = (config["admin"][0], int(config["admin"][1]))
        self.links = {spec["name"]: Link(spec["name"], spec["listen"], spec["target"])
                      for spec in config["links"]}

    def handle(self, request: dict) -> dict:
        op = request.get("op")
        names = request.get("links")
        if op not in ("status", "cut", "heal"):
            return {"ok": False, "error": f"unknown op {op!r}: status, cut or heal"}
        if names is None:
            names = list(self.links) if op != "cut" else []
        unknown = sorted(set(names) - set(self.links))
        if unknown:
            return {"ok": False, "error": f"unknown links {unknown}; this proxy has "
                                          f"{sorted(self.links)}"}
        for name in names:
            if op == "cut":
                self.links[name].cut()
            elif op == "heal":
                try:
                    self.links[name].open()
                except OSError as exc:
                    return {"ok": False, "error": f"cannot listen again for {name}: {exc}"}
        return {"ok": True, "links": {name: link.state() for name, link in self.links.items()}}

    def serve(self, stop: threading.Event) -> None:
        for link in self.links.values():
            link.open()
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(self.admin)
        server.listen(16)
        server.settimeout(ACCEPT_POLL)
        try:
            while not stop.is_set():
                try:
                    conn, _peer = server.accept()
                except socket.timeout:
                    continue
                with conn:
                    conn.settimeout(5)
                    try:
                        line = conn.makefile("rb").readline()
                        reply = self.handle(json.loads(line or b"{}"))
                    except (OSError, ValueError) as exc:
                        reply = {"ok": False, "error": f"bad request: {exc}"}
                    try:
                        conn.sendall(json.dumps(reply).encode() + b"\n")
                    except OSError:
                        pass
        finally:
            server.close()
            for link in self.links.values():
                link.cut()


def request(host: str, port: int, op: str, links: list[str] | None = None,
            timeout: float = 5.0) -> dict:
    """Send one admin request to a proxy and return its reply (raises OSError if it is down)."""
    message = {"op": op}
    if links is not None:
        message["links"] = list(links)
    with socket.create_connection((host, port), timeout=timeout) as conn:
        conn.sendall(json.dumps(message).encode() + b"\n")
        reply = json.loads(conn.makefile("rb").readline() or b"{}")
    if not reply.get("ok"):
        raise ValueError(reply.get("error") or f"the proxy at {host}:{port} said {reply}")
    return reply


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m lab.tcp_proxy CONFIG.json", file=sys.stderr)
        return 2
    proxy = Proxy(json.loads(Path(argv[0]).read_text()))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    proxy.serve(stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
