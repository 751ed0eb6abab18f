# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab is generic: an engine joins with one Component class and one registration.

EchoServer below is such an engine, defined and registered here only: it shows in `status`,
in the inventory and in the persisted ports, and starts and stops with `--only echo`, without
any other file knowing it. Also: site addresses, port allocation, kinds and their needs.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from unittest import mock
from pathlib import Path

import pytest
import yaml

from lab import topology
from lab.__main__ import main
from lab.core import (PORTS_FILE, Component, DebianPackage, InventoryHost, Lab, LabConfig,
                      LabError, Registry, pid_alive, site_addresses)

LAB_DIR = Path(__file__).resolve().parents[2] / "lab"
# Addresses of no other lab (demo 127.0.1-2, tests 3-4, bench 5-6, molecule 7-8).
REGIONS = {"us-east": "127.0.31.1", "us-west": "127.0.32.1"}
# The server runs as the lab's user, which cannot execute a virtualenv under /root.
PYTHON = shutil.which("python3", path="/usr/bin:/bin") or sys.executable

ECHO_SERVER = """
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
while True:
    conn, _ = server.accept()
    with conn:
        conn.sendall(conn.recv(1024))
"""


class EchoServer(Component):
    """A TCP echo server: an engine as small as one can be."""

    kind = "echo"
    default_ports = {"echo": 17007, "admin": 17008}
    packages = (DebianPackage("failsafe-echo-not-a-package", command="failsafe-no-such-command"),)
    secrets = ("echo-secret",)
    stop_grace = 2.0

    def up(self):
        self.spawn([PYTHON, "-c", ECHO_SERVER, self.host, str(self.port)])
        self.wait_listening()

    def describe(self):
        return {"role": "echo", "detail": f"echoes on {self.port}"}

    def inventory_host(self):
        return InventoryHost(f"echo-{self.instance}", {"echo_port": self.port}, ("echo", "toys"))

    def inventory_vars(self):
        return {"echo_greeting": "hello"}


class EchoClient(Component):
    """Needs an echo server; never started here."""

    kind = "echo_client"
    needs = ("echo",)


ECHOES = EchoServer.at("echoes", instances=2)
# The echo site comes after the topology's own sites: witness, dns-primary, dns-secondary,
# route53-emulator.
ECHO_ADDRESS = "127.1.31.6"


@pytest.fixture
def lab_env(tmp_path, monkeypatch):
    """FAILSAFE_LAB_* for a lab of this test's own; the echo servers registered meanwhile."""
    monkeypatch.setenv("FAILSAFE_LAB_DIR", str(tmp_path / "lab"))
    monkeypatch.setenv("FAILSAFE_LAB_REGIONS", ",".join(f"{k}={v}" for k, v in REGIONS.items()))
    monkeypatch.setenv("FAILSAFE_LAB_PORT_OFFSET", "0")
    monkeypatch.setenv("FAILSAFE_LAB_PORT_SCAN", "1")
    with topology.REGISTRY.added(ECHOES):
        yield tmp_path / "lab"


def run(capsys, *argv):
    assert main(list(argv)) == 0, capsys.readouterr().err
    return capsys.readouterr().out


def echo(host, port):
    with socket.create_connection((host, port), timeout=5) as conn:
        conn.sendall(b"ping")
        return conn.recv(1024)


def test_a_registered_component_is_in_status_json(lab_env, capsys):
    rows = {row["component"]: row for row in json.loads(run(capsys, "status", "--json"))}
    assert {"postgresql-us-east", "postgresql-witness", "echo-echoes", "echo-echoes-1"} <= set(rows)
    first, second = rows["echo-echoes"], rows["echo-echoes-1"]
    assert first["kind"] == "echo" and first["site"] == "echoes" and first["region"] is None
    assert first["state"] == "stopped" and first["role"] is None
    # A non-region site has an address of its own, after the topology's sites (witness first).
    assert rows["postgresql-witness"]["host"] == "127.1.31.1"
    assert first["host"] == second["host"] == ECHO_ADDRESS
    assert first["ports"] == {"echo": 17007, "admin": 17008}
    assert second["ports"] == {"echo": 17009, "admin": 17010}  # same site: no port given twice


def test_a_registered_component_is_in_the_inventory(lab_env, capsys):
    inventory = yaml.safe_load(run(capsys, "inventory"))["all"]
    assert inventory["vars"]["echo_greeting"] == "hello"
    hosts = inventory["children"]["echo"]["hosts"]
    assert hosts["echo-0"] == {"failsafe_region": None, "echo_port": 17007}
    assert hosts["echo-1"]["echo_port"] == 17009
    assert inventory["children"]["toys"]["hosts"] == {"echo-0": None, "echo-1": None}
    # Not a region's host.
    region_hosts = inventory["children"]["us-east"]["hosts"]
    assert "pg-us-east" in region_hosts and not set(region_hosts) & {"echo-0", "echo-1"}


def test_only_starts_the_kind_persists_its_ports_and_down_stops_it(lab_env, capsys):
    try:
        run(capsys, "up", "--only", "echo")
        saved = json.loads((lab_env / PORTS_FILE).read_text())
        assert saved["regions"] == REGIONS
        assert saved["sites"] == {"witness": "127.1.31.1", "dns-primary": "127.1.31.2",
                                  "dns-secondary": "127.1.31.3",
                                  "route53-emulator": "127.1.31.4", "s3": "127.1.31.5",
                                  "echoes": ECHO_ADDRESS}
        assert saved["ports"]["echo-echoes-1"] == {"echo": 17009, "admin": 17010}
        rows = {row["component"]: row for row in json.loads(run(capsys, "status", "--json"))}
        assert rows["echo-echoes"]["state"] == rows["echo-echoes-1"]["state"] == "running"
        assert rows["echo-echoes"]["detail"] == "echoes on 17007"
        assert rows["postgresql-us-east"]["state"] == "stopped"
        assert echo(ECHO_ADDRESS, 17009) == b"ping"
        pids = [int((lab_env / name / "echo.pid").read_text())
                for name in ("echo-echoes", "echo-echoes-1")]
    finally:
        assert "lab stopped" in run(capsys, "down")
    assert not lab_env.exists()
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()
    with pytest.raises(OSError):
        echo(ECHO_ADDRESS, 17007)


def fail_to_start(name, error=None):
    """While in use, EchoServer `name` fails to start, as a server whose port or data is not
    ready would (or raises `error`: KeyboardInterrupt is Ctrl-C)."""
    real_up = EchoServer.up

    def up(self):
        if self.name == name:
            raise error or LabError(f"{self.name} did not start: on purpose")
        real_up(self)

    return mock.patch.object(EchoServer, "up", up)


def kill(pid):
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"{pid} still runs"
        time.sleep(0.05)


def test_a_failed_restart_keeps_what_ran_and_the_data_of_the_node(lab_env, capsys):
    """A node killed and started again, whose start fails: `up` stops only what it started,
    keeps that node's directory and leaves the servers that ran before alone."""
    try:
        run(capsys, "up", "--only", "echo")
        first = int((lab_env / "echo-echoes" / "echo.pid").read_text())
        kill(int((lab_env / "echo-echoes-1" / "echo.pid").read_text()))
        (lab_env / "echo-echoes-1" / "data-of-the-node").write_text("kept")
        with fail_to_start("echo-echoes-1"):
            assert main(["up", "--only", "echo"]) == 1
        err = capsys.readouterr().err
        assert "echo-echoes-1 did not start: on purpose" in err
        assert "data kept (it existed before): echo-echoes-1" in err
        assert "still running, untouched: echo-echoes" in err
        assert pid_alive(first) and echo(ECHO_ADDRESS, 17007) == b"ping"
        assert (lab_env / "echo-echoes-1" / "data-of-the-node").read_text() == "kept"
    finally:
        run(capsys, "down")


def test_a_failed_first_start_stops_and_removes_what_it_started(lab_env, capsys):
    try:
        with fail_to_start("echo-echoes-1"):
            assert main(["up", "--only", "echo"]) == 1
        err = capsys.readouterr().err
        assert "stopped what this `up` started: echo-echoes-1, echo-echoes" in err
        assert "data kept" not in err and "still running" not in err
        assert not (lab_env / "echo-echoes").exists() and not (lab_env / "echo-echoes-1").exists()
        with pytest.raises(OSError):
            echo(ECHO_ADDRESS, 17007)
    finally:
        run(capsys, "down")


def test_ctrl_c_during_up_stops_what_it_started_and_says_so(lab_env, capsys):
    try:
        with fail_to_start("echo-echoes-1", KeyboardInterrupt()):
            assert main(["up", "--only", "echo"]) == 130
        err = capsys.readouterr().err
        assert err.splitlines()[:2] == [
            "lab: interrupted (Ctrl-C)",
            "lab: stopped what this `up` started: echo-echoes-1, echo-echoes"]
        with pytest.raises(OSError):
            echo(ECHO_ADDRESS, 17007)
    finally:
        run(capsys, "down")


def test_a_second_up_waits_for_the_first(lab_env, capsys):
    """Two `up` at once would each take the other's servers for their own: the second waits."""
    lab = topology.make_lab()
    waiting = threading.Thread(target=lab.up, args=(["echo"],))
    try:
        with lab.exclusive():
            waiting.start()
            time.sleep(0.5)
            assert waiting.is_alive()
            with pytest.raises(OSError):
                echo(ECHO_ADDRESS, 17007)
        waiting.join(30)
        assert not waiting.is_alive()
        assert "lab: waiting for another `python -m lab`" in capsys.readouterr().err
        assert echo(ECHO_ADDRESS, 17007) == b"ping"
    finally:
        run(capsys, "down")


def test_packages_lists_what_the_selected_kinds_miss(lab_env, capsys):
    assert run(capsys, "packages", "--only", "echo").split() == ["failsafe-echo-not-a-package"]
    assert "failsafe-echo-not-a-package" not in run(capsys, "packages", "--only", "postgresql")


def test_unknown_kind_is_refused(lab_env, capsys):
    assert main(["up", "--only", "nope"]) == 1
    assert "unknown kind nope" in capsys.readouterr().err


def test_secrets_of_every_component(lab_env):
    assert "echo-secret" in topology.make_lab().secrets()


# Addresses and ports --------------------------------------------------------------------------

def test_sites_get_addresses_in_order_of_first_appearance():
    regions = {"us-east": "127.0.5.1", "us-west": "127.0.6.1"}
    sites = ["us-east", "witness", "dns", "us-west", "witness", "s3"]
    assert site_addresses(regions, sites) == {
        "witness": "127.1.5.1", "dns": "127.1.5.2", "s3": "127.1.5.3"}


def test_persisted_site_addresses_stay_and_new_sites_take_free_ones():
    regions = {"us-east": "127.0.5.1"}
    known = {"dns": "127.1.5.1"}
    assert site_addresses(regions, ["witness", "dns"], known) == {
        "dns": "127.1.5.1", "witness": "127.1.5.2"}


def test_a_lab_needs_a_loopback_first_region():
    with pytest.raises(LabError, match="loopback"):
        site_addresses({"us-east": "10.0.0.1"}, ["witness"])


def small_lab(tmp_path, *factories, **config):
    return Lab(LabConfig(state_dir=tmp_path, regions=dict(REGIONS), **config),
               Registry(factories or [ECHOES]))


def test_ports_are_default_plus_offset(tmp_path):
    lab = small_lab(tmp_path, port_offset=1000)
    assert lab.component("echo-echoes").ports == {"echo": 18007, "admin": 18008}


def test_per_region_components_keep_their_default_ports(tmp_path):
    lab = small_lab(tmp_path, EchoServer.in_each_region)
    assert [c.ports["echo"] for c in lab.components] == [17007, 17007]
    assert [c.host for c in lab.components] == list(REGIONS.values())


def test_scan_skips_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.1.31.1", 17007))
        busy.listen()
        lab = small_lab(tmp_path, scan_ports=True)
        assert lab.component("echo-echoes").ports == {"echo": 17008, "admin": 17009}


def test_saved_ports_win_over_a_new_plan(tmp_path):
    small_lab(tmp_path, port_offset=1000).save_state()
    lab = small_lab(tmp_path)
    assert lab.component("echo-echoes").ports == {"echo": 18007, "admin": 18008}
    assert LabConfig.from_state_dir(tmp_path).regions == REGIONS


def test_a_state_dir_of_other_regions_is_refused(tmp_path):
    small_lab(tmp_path).save_state()
    with pytest.raises(LabError, match="FAILSAFE_LAB_REGIONS=us-east=127.0.31.1"):
        Lab(LabConfig(state_dir=tmp_path, regions={"us-east": "127.0.33.1"}), Registry([ECHOES]))


# Kinds ---------------------------------------------------------------------------------------

def test_a_kind_brings_what_it_needs_and_down_takes_what_needs_it(tmp_path):
    lab = small_lab(tmp_path, ECHOES, EchoClient.at("clients"))
    assert [c.name for c in lab.select(["echo_client"])] == [
        "echo-echoes", "echo-echoes-1", "echo_client-clients"]
    assert [c.name for c in lab.select(["echo"])] == ["echo-echoes", "echo-echoes-1"]
    assert [c.name for c in lab.dependents(["echo"])][-1] == "echo_client-clients"


def test_the_app_kind_brings_its_datastores_and_dns(tmp_path):
    lab = topology.make_lab(LabConfig(state_dir=tmp_path, regions=dict(REGIONS)))
    kinds = [c.kind for c in lab.select(["app"])]
    assert set(kinds) == {"postgresql", "redis", "bind", "app"}
    assert [c.name for c in lab.of_kind("app")] == ["app-us-east", "app-us-west"]
    assert {c.kind for c in lab.dependents(["redis"])} >= {"app", "redis_sentinel"}


def test_needs_must_be_registered_first(tmp_path):
    with pytest.raises(LabError, match="needs"):
        small_lab(tmp_path, EchoClient.at("clients"), ECHOES)


def test_component_names_are_unique(tmp_path):
    with pytest.raises(LabError, match="two components"):
        small_lab(tmp_path, ECHOES, ECHOES)


# Modules -------------------------------------------------------------------------------------

def imported_modules(path):
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_core_imports_neither_topology_nor_a_component():
    imports = imported_modules(LAB_DIR / "core.py")
    assert not {"lab.topology", "lab.postgresql"} & imports


def test_listing_packages_imports_only_the_standard_library(lab_env):
    code = ("import sys; from lab.__main__ import main; main(['packages']); "
            "print(sorted({'yaml', 'psycopg', 'cryptography'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=LAB_DIR.parent, capture_output=True,
                         text=True, check=True).stdout
    assert out.splitlines()[-1] == "[]"
