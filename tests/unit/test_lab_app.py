# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's application: the writer's pure parts, its supervisord configuration, the journal."""

from __future__ import annotations

import configparser
import json
from pathlib import Path

from lab import app, app_journal, app_service
from lab.core import LabConfig
from lab.topology import make_lab

REGIONS = {"us-east": "127.0.41.1", "us-west": "127.0.42.1"}


def lab(tmp_path):
    return make_lab(LabConfig(state_dir=tmp_path, regions=dict(REGIONS)))


def state(pg="ok", redis="ok"):
    return {"region": "us-east", "program": app.PROGRAM, "pid": 1, "started": 0.0,
            "stores": {"postgresql": {"state": pg, "last_ack": 1.0},
                       "redis": {"state": redis, "last_ack": None}},
            "resolved": {"redis.failsafe.lab.": "127.0.41.1"}}


def test_health_is_200_only_when_every_store_acknowledged_its_last_write():
    status, body = app_service.health_document(state())
    assert status == 200 and body["writing"] == "ok"
    assert body["resolved"] == {"redis.failsafe.lab.": "127.0.41.1"}
    for failing in (state(pg="failing"), state(redis="starting")):
        status, body = app_service.health_document(failing)
        assert status == 503 and body["writing"] == "failing"
    assert app_service.health_document({**state(), "stores": {}})[0] == 503


def test_write_ids_are_unique_per_region_and_start():
    ids = {app_service.write_id(region, boot, 1)
           for region in ("us-east", "us-west") for boot in (1, 2)}
    assert len(ids) == 4


def test_only_the_first_region_writes_at_start(tmp_path):
    east, west = lab(tmp_path).of_kind("app")
    for comp, autostart in ((east, "true"), (west, "false")):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(comp.supervisord_conf())
        program = parser["program:" + app.PROGRAM]
        assert program["autostart"] == autostart
        assert program["command"].split()[-3:] == [
            str(Path(app_service.__file__)), "--config", str(comp.app_config)]
        assert parser["inet_http_server"]["port"] == f"{comp.host}:19001"
        assert parser["supervisorctl"]["serverurl"] == comp.supervisor_url


def test_the_writer_resolves_through_the_lab_dns_and_knows_every_store_port(tmp_path):
    the_lab = lab(tmp_path)
    config = the_lab.component("app-us-west").service_config()
    dns = the_lab.component("bind-dns-primary")
    assert config["dns"] == {"server": dns.host, "port": dns.port}
    assert config["postgresql"]["dns_name"] == "postgresql.failsafe.lab."
    assert config["redis"]["dns_name"] == "redis.failsafe.lab."
    assert set(config["postgresql"]["ports"]) == set(REGIONS.values())
    assert config["postgresql"]["ca_cert"] == str(tmp_path / "tls" / "ca.crt")
    assert config["listen"] == {"host": "127.0.42.1", "port": 18080}
    assert config["journal"] == str(tmp_path / "app-us-west" / "journal.jsonl")


def test_the_inventory_host_names_health_supervisor_and_platform(tmp_path):
    comp = lab(tmp_path).component("app-us-east")
    host = comp.inventory_host()
    assert host.name == "app-us-east" and host.groups == ("app",)
    assert host.vars["failsafe_app_platform"] == "supervisor"
    assert host.vars["failsafe_app_health_url"] == "http://127.0.41.1:18080/health"
    assert app.SUPERVISOR_PASSWORD in comp.lab.secrets()


def test_journal_parsing_skips_a_torn_last_line():
    lines = [json.dumps({"store": "redis", "id": "a", "time": 1}),
             json.dumps({"store": "postgresql", "id": "a", "time": 1}),
             json.dumps({"store": "redis", "id": "b", "time": 2}),
             '{"store": "redis", "id": "c", "ti']
    assert app_journal.parse_journal(lines) == {"redis": ["a", "b"], "postgresql": ["a"]}


def test_read_journals_merges_regions_and_ignores_a_missing_file(tmp_path):
    (tmp_path / "east.jsonl").write_text(json.dumps({"store": "redis", "id": "e1"}) + "\n")
    (tmp_path / "west.jsonl").write_text(json.dumps({"store": "redis", "id": "w1"}) + "\n")
    paths = [tmp_path / "east.jsonl", tmp_path / "west.jsonl", tmp_path / "none.jsonl"]
    assert app_journal.read_journals(paths) == {"redis": ["e1", "w1"]}


def test_losses_count_every_acknowledged_id_the_store_lacks(monkeypatch):
    monkeypatch.setattr(app_journal, "CHUNK", 2)
    asked = []

    def present(chunk):
        asked.append(list(chunk))
        return [i for i in chunk if i != "3"]

    journal = {"postgresql": ["1", "2", "3", "4", "5"]}
    report = app_journal.losses(journal, {"postgresql": ("pg:1", present),
                                          "redis": ("redis:1", lambda chunk: [])})
    assert asked == [["1", "2"], ["3", "4"], ["5"]]
    pg = report["postgresql"].as_dict()
    assert pg["acknowledged_writes"] == 5 and pg["acknowledged_writes_lost"] == 1
    assert pg["missing_sample"] == ["3"] and pg["checked_on"] == "pg:1"
    assert report["redis"].acknowledged == 0 and report["redis"].lost == 0
