# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's partition proxy (lab/tcp_proxy.py, lab/partition.py) with real sockets.

A real proxy process forwards to a real echo server: a cut must refuse new connections AND close
the connections it carries on both sides; a heal must let connections through again. The
component's links, ports, CLI sides and inventory overlay are checked on a lab that runs
nothing (addresses of no other lab).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from lab import partition
from lab.__main__ import main
from lab.core import LabConfig, LabError
from lab.tcp_proxy import request
from lab.topology import make_lab

HOST = "127.0.33.1"  # no other lab uses 127.0.33.x
REGIONS = {"us-east": "127.0.34.1", "us-west": "127.0.35.1"}
PROXY = Path(partition.__file__).resolve().parent / "tcp_proxy.py"


def free_port(host=HOST):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@pytest.fixture
def echo_server():
    """An echo server on HOST (every connection served in a thread); yields its port and, per
    connection it accepted, an Event set once that connection ended (EOF or reset)."""
    server = socket.create_server((HOST, 0))
    server.settimeout(0.2)
    stop = threading.Event()
    accepted = []

    def serve(conn, ended):
        with conn:
            while True:
                try:
                    data = conn.recv(4096)
                except OSError:
                    break
                if not data:
                    break
                conn.sendall(data)
        ended.set()

    def loop():
        while not stop.is_set():
            try:
                conn, _peer = server.accept()
            except socket.timeout:
                continue
            accepted.append(threading.Event())
            threading.Thread(target=serve, args=(conn, accepted[-1]), daemon=True).start()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(2)
        server.close()


@pytest.fixture
def proxy(tmp_path, echo_server):
    """A proxy process with two links to the echo server; stopped after the test."""
    target, _accepted = echo_server
    admin, first, second = free_port(), free_port(), free_port()
    config = {"admin": [HOST, admin], "links": [
        {"name": "control->us-east", "listen": [HOST, first], "target": [HOST, target]},
        {"name": "witness->us-east", "listen": [HOST, second], "target": [HOST, target]}]}
    path = tmp_path / "proxy.json"
    path.write_text(json.dumps(config))
    proc = subprocess.Popen([sys.executable, str(PROXY), str(path)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                request(HOST, admin, "status")
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.05)
        yield dict(admin=admin, control=first, witness=second, echo=echo_server)
    finally:
        proc.terminate()
        proc.wait(10)


def roundtrip(port, payload=b"ping"):
    with socket.create_connection((HOST, port), timeout=3) as conn:
        conn.sendall(payload)
        return conn.recv(100)


def reads_eof(conn, timeout=3.0):
    """Whether the peer closed: recv returns b'' (or the connection was reset)."""
    conn.settimeout(timeout)
    try:
        return conn.recv(100) == b""
    except ConnectionResetError:
        return True


def test_a_link_forwards_both_ways(proxy):
    assert roundtrip(proxy["control"], b"hello") == b"hello"
    states = request(HOST, proxy["admin"], "status")["links"]
    assert states["control->us-east"]["state"] == "open"
    assert states["control->us-east"]["accepted"] == 1


def test_a_cut_refuses_new_connections_and_closes_open_ones_on_both_sides(proxy):
    _target, accepted = proxy["echo"]
    conn = socket.create_connection((HOST, proxy["control"]), timeout=3)
    try:
        conn.sendall(b"before")
        assert conn.recv(100) == b"before"
        server_side_ended = accepted[-1]
        reply = request(HOST, proxy["admin"], "cut", ["control->us-east"])
        assert reply["links"]["control->us-east"]["state"] == "cut"
        assert reply["links"]["control->us-east"]["dropped"] == 1
        assert reads_eof(conn), "the client's connection stayed open after the cut"
        assert server_side_ended.wait(3), "the server's connection stayed open after the cut"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((HOST, proxy["control"]), timeout=3)
        # The other link is not affected.
        assert roundtrip(proxy["witness"]) == b"ping"
    finally:
        conn.close()


def test_a_heal_lets_connections_through_again(proxy):
    request(HOST, proxy["admin"], "cut", ["control->us-east", "witness->us-east"])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((HOST, proxy["witness"]), timeout=3)
    states = request(HOST, proxy["admin"], "heal")["links"]  # no links: every link
    assert {name: s["state"] for name, s in states.items()} == {
        "control->us-east": "open", "witness->us-east": "open"}
    assert roundtrip(proxy["control"]) == b"ping"
    assert roundtrip(proxy["witness"]) == b"ping"


def test_the_admin_port_refuses_unknown_links_and_operations(proxy):
    with pytest.raises(ValueError, match="unknown links"):
        request(HOST, proxy["admin"], "cut", ["us-west->us-east"])
    with pytest.raises(ValueError, match="unknown op"):
        request(HOST, proxy["admin"], "drop")
    assert roundtrip(proxy["control"]) == b"ping"  # nothing was cut


# The component, on a lab that runs nothing ----------------------------------------------------

@pytest.fixture
def idle_lab(tmp_path):
    return make_lab(LabConfig(state_dir=tmp_path / "lab", regions=dict(REGIONS)))


def test_each_region_has_a_proxy_with_one_link_per_other_side(idle_lab):
    east = idle_lab.component("partition-us-east")
    assert east.host == REGIONS["us-east"]
    assert east.origins == ["control", "witness", "us-west"]
    assert list(east.ports) == ["admin", "control", "witness", "us-west"]
    assert len(set(east.ports.values())) == 4
    links = {link["name"]: link for link in east.config()["links"]}
    assert set(links) == {"control->us-east", "witness->us-east", "us-west->us-east"}
    pg = idle_lab.component("postgresql-us-east")
    assert {tuple(link["target"]) for link in links.values()} == {(pg.host, pg.port)}


def test_a_plain_up_leaves_the_optional_proxies_alone(idle_lab):
    assert "partition" not in {comp.kind for comp in idle_lab.select(None)}
    selected = [comp.kind for comp in idle_lab.select(["partition"])]
    assert "postgresql" in selected and selected[-1] == "partition"


def test_between_names_the_links_of_both_directions(idle_lab):
    found = partition.links_between(idle_lab, "us-east", "us-west")
    assert {proxy.name: names for proxy, names in found.items()} == {
        "partition-us-east": ["us-west->us-east"], "partition-us-west": ["us-east->us-west"]}
    found = partition.links_between(idle_lab, "witness", "us-east")
    assert {proxy.name: names for proxy, names in found.items()} == {
        "partition-us-east": ["witness->us-east"]}


def test_isolate_names_every_link_of_a_region(idle_lab):
    found = partition.links_of(idle_lab, isolate="us-east")
    names = sorted(name for names in found.values() for name in names)
    assert names == ["control->us-east", "us-east->us-west", "us-west->us-east",
                     "witness->us-east"]


@pytest.mark.parametrize("between, message", [
    (("us-east", "us-east"), "two different sides"),
    (("us-east", "eu-north"), "unknown side"),
    (("control", "witness"), "no proxied link"),
])
def test_bad_sides_are_refused(idle_lab, between, message):
    with pytest.raises(LabError, match=message):
        partition.links_between(idle_lab, *between)


def test_cut_needs_to_be_told_what_and_the_proxy_to_run(idle_lab):
    with pytest.raises(LabError, match="say what to cut"):
        partition.cut(idle_lab)
    with pytest.raises(LabError, match="does not run"):
        partition.cut(idle_lab, between=("us-east", "us-west"))


def test_the_inventory_overlay_routes_control_and_witness_through_the_proxies(idle_lab):
    overlay = partition.inventory_overlay(idle_lab)
    hosts = overlay["all"]["children"]["postgresql"]["hosts"]
    east = idle_lab.component("partition-us-east")
    assert hosts["pg-us-east"] == {
        "failsafe_pg_host": east.host, "failsafe_pg_port": east.ports["control"],
        "failsafe_pg_witness_route": {"host": east.host, "port": east.ports["witness"]}}
    assert set(hosts) == {"pg-us-east", "pg-us-west"}


def test_the_cli_parses_sides_and_prints_the_overlay(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("FAILSAFE_LAB_DIR", str(tmp_path / "lab"))
    monkeypatch.setenv("FAILSAFE_LAB_REGIONS", ",".join(f"{k}={v}" for k, v in REGIONS.items()))
    assert main(["partition", "inventory"]) == 0
    assert "pg-us-west" in yaml.safe_load(capsys.readouterr().out)["all"]["children"][
        "postgresql"]["hosts"]
    with pytest.raises(SystemExit):
        main(["partition", "cut", "--between", "us-east"])
    assert main(["partition", "cut", "--between", "us-east,us-west"]) == 1
    assert "does not run" in capsys.readouterr().err
