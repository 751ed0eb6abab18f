# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/regional_failover.yml and failback.yml on the lab: PostgreSQL, Redis with its
Sentinels, BIND and the Route 53 emulator move together; clients that keep their connection to
the old primaries lose no acknowledged write; the run report is opened in a real browser."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import signal
import sys
import subprocess
import threading
import time

import pytest
from ansible_collections.failsafe.datastores.plugins.module_utils import _lock

from lab.redis_writer import RedisWriter, running
from lab.writer import Writer

from engines.app import AppPair

from conftest import REPO

REGIONAL = "playbooks/regional_failover.yml"
FAILBACK = "playbooks/failback.yml"
KINDS = ("postgresql", "postgresql_witness", "redis", "redis_sentinel", "bind", "route53_emulator",
         "app")


@pytest.fixture
def regional_lab(lab_env, pg_pair, redis_pair):
    """Every store of a regional failover, canonical (writes in us-east), DNS included."""
    lab_env.ensure_started(KINDS)
    lab_env.ensure_canonical()
    return lab_env


@pytest.fixture
def webhook():
    """A local HTTP receiver standing for the team's chat webhook: it keeps every JSON body."""
    received = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (the http.server API)
            length = int(self.headers.get("Content-Length") or 0)
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()


def stats(runner) -> dict:
    for event in runner.events:
        if event.get("event") == "playbook_on_stats":
            return event["event_data"].get("artifact_data") or {}
    return {}


def pg_writer(pg_pair, run_id):
    return Writer([(pg_pair.east.host, pg_pair.east.port), (pg_pair.west.host, pg_pair.west.port)],
                  pg_pair.east.user, pg_pair.east.password, run_id=run_id)


def test_planned_regional_failover_and_failback_lose_nothing(
        regional_lab, pg_pair, redis_pair, run_playbook, tmp_path, webhook):
    run_id = f"regional-{time.time():.0f}"
    writer = pg_writer(pg_pair, run_id)
    redis_writers = RedisWriter.pair_for_lab(regional_lab.lab, run_id,
                                             pinned_to=redis_pair.east.component)
    reports = tmp_path / "reports"
    hook_url, messages = webhook
    extravars = {"failsafe_report_dir": str(reports), "failsafe_rto_seconds": 600,
                 "failsafe_notify_webhook_url": hook_url}
    writer.start()
    try:
        with running(redis_writers, linger=1.0):
            check = run_playbook(REGIONAL, limit="us-west", check=True, diff=True,
                                 extravars=extravars)
            assert check.status == "successful", check.stdout_text
            assert redis_pair.role(redis_pair.east) == "master"
            assert not pg_pair.in_recovery(pg_pair.east)

            runner = run_playbook(REGIONAL, limit="us-west", extravars=extravars)
            assert runner.status == "successful", runner.stdout_text
            time.sleep(0.5)
    finally:
        writer.stop()

    # Independent views: us-west takes the writes of every store; us-east follows it.
    assert not pg_pair.in_recovery(pg_pair.west) and not pg_pair.read_only(pg_pair.west)
    assert pg_pair.in_recovery(pg_pair.east)
    assert redis_pair.role(redis_pair.west) == "master"
    assert redis_pair.role(redis_pair.east) in ("slave", "replica")
    assert set(redis_pair.sentinel_answers().values()) == {redis_pair.west.address}
    # The application: us-west's writer runs and writes through DNS to us-west's stores.
    apps = AppPair(regional_lab)
    assert apps.program_state(apps.east) == "STOPPED"
    assert apps.program_state(apps.west) == "RUNNING"
    health = apps.wait_writing(apps.west)
    assert set(health["resolved"].values()) == {apps.west.host}
    pg_report = writer.verify()
    assert pg_report.acknowledged > 0 and pg_report.lost == 0, pg_report.missing_ids
    redis_pair.wait_synced(redis_pair.east)
    for report in [w.verify(redis_pair.client(redis_pair.west)) for w in redis_writers]:
        assert report.acknowledged > 0 and report.lost == 0, report

    events = [(m["event"], m["check_mode"]) for m in messages]
    assert events[:4] == [("start", True), ("end", True), ("start", False), ("end", False)], events
    assert all(m["target_region"] == "us-west" and m["text"] for m in messages[:4]), messages

    record = stats(runner)["failsafe_run"]
    assert record["target_region"] == "us-west" and record["mode"] == "planned"
    assert record["stores"]["postgresql"]["data_loss"] == {"rows": 0}
    assert 0 < record["stores"]["postgresql"]["write_outage_seconds"] < 5
    assert record["stores"]["redis"]["write_outage_seconds"] is not None

    # The run report: JSON consistent with set_stats, HTML seen in a browser.
    written = sorted(reports.glob("run-regional_failover-*Z.json"))
    assert written, list(reports.iterdir())
    report = json.loads(written[-1].read_text())
    assert report["summary"]["status"] == "ok" and report["summary"]["rto_met"] is True
    assert report["summary"]["stores"] == record["stores"]
    assert {"preflight", "lock", "change", "dns", "verify"} <= {p["name"] for p in report["phases"]}
    assert report["checklist"]
    screenshot(written[-1].with_suffix(".html"), tmp_path / "report.png")

    # A second run changes nothing in the stores.
    again = run_playbook(REGIONAL, limit="us-west", extravars=extravars)
    assert again.status == "successful", again.stdout_text
    assert stats(again)["failsafe_run"]["stores"]["postgresql"]["data_loss"] is None

    back = run_playbook(FAILBACK, limit="us-east", extravars=extravars)
    assert back.status == "successful", back.stdout_text
    assert not pg_pair.in_recovery(pg_pair.east) and pg_pair.in_recovery(pg_pair.west)
    assert redis_pair.role(redis_pair.east) == "master"
    assert apps.program_state(apps.east) == "RUNNING"
    assert apps.program_state(apps.west) == "STOPPED"
    health = apps.wait_writing(apps.east)
    assert set(health["resolved"].values()) == {apps.east.host}
    # Every write the application saw acknowledged, in either region, is still there.
    redis_pair.wait_synced(redis_pair.west)
    for store, losses in apps.losses().items():
        assert losses.acknowledged > 0 and losses.lost == 0, (store, losses)


def test_refused_when_both_regions_take_writes(regional_lab, pg_pair, redis_pair, run_playbook):
    """A bad state made on purpose: the Redis replica made a master too. The readiness lists
    it, and nothing changes in any store."""
    redis_pair.set_down_after(60_000)  # Sentinel must not repair it during the test
    redis_pair.stop_sentinels([s.name for s in redis_pair.sentinels])
    redis_pair.client(redis_pair.west).execute_command("REPLICAOF", "NO", "ONE")
    pg_pair.hold_back_replay()
    try:
        runner = run_playbook(REGIONAL, limit="us-west",
                              extravars={"regional_failover_max_pg_lag_bytes": 0})
    finally:
        pg_pair.release_replay()
    assert runner.status == "failed"
    out = runner.stdout_text
    assert "Not ready to move writes to us-west" in out, out
    assert "replays" in out  # the PostgreSQL lag is listed too, not only the first failure
    assert "Redis: 2 masters" in out and "Nothing was changed" in out
    assert not pg_pair.in_recovery(pg_pair.east) and not pg_pair.read_only(pg_pair.east)
    assert pg_pair.in_recovery(pg_pair.west)


def test_refused_when_the_backup_catalog_cannot_be_read(regional_lab, pg_pair, run_playbook):
    """A fresh backup is required and the S3 store does not answer: the readiness says so and
    nothing changes (the catalog's read is not taken for "no backup is stale")."""
    runner = run_playbook(REGIONAL, limit="us-west", extravars={
        "regional_failover_max_backup_age_hours": 25,
        "failsafe_s3_endpoint_url": "http://127.0.0.1:9", "failsafe_s3_bucket": "backups",
        "failsafe_s3_access_key": "nobody", "failsafe_s3_secret_key": "nothing"})
    assert runner.status == "failed"
    out = runner.stdout_text
    assert "Not ready to move writes to us-west" in out, out
    assert re.search(r"backups: [^|]*127\.0\.0\.1:9", out), out
    assert "Nothing was changed" in out
    assert not pg_pair.in_recovery(pg_pair.east) and not pg_pair.read_only(pg_pair.east)
    assert pg_pair.in_recovery(pg_pair.west)


def test_a_second_concurrent_run_is_refused(regional_lab, pg_pair, run_playbook, lab_env):
    """Another run (a live process, here on another AWX node) holds the regional lock: the run
    is refused naming it, and nothing changes."""
    holder = subprocess.Popen(["sleep", "600"])
    try:
        store = {"backend": "file", "path": str(lab_env.workdir / "locks")}
        owner = dict(machine_id=_lock.machine_id(), pid=holder.pid,
                     pid_start=_lock.process_start(holder.pid), user="alice",
                     controller="awx-node-2", playbook="regional_failover.yml")
        lock_store = _lock.FileStore(store["path"])
        outcome = _lock.acquire(lock_store, "regional",
                                _lock.run_token(owner["machine_id"], owner["pid"],
                                                owner["pid_start"]),
                                owner, 3600, False, False)
        assert outcome["verdict"] == "free", outcome
        runner = run_playbook(REGIONAL, limit="us-west",
                              extravars={"failsafe_lock_backend": "file",
                                         "failsafe_lock_path": store["path"]})
    finally:
        holder.kill()
        holder.wait()
    assert runner.status == "failed"
    assert "alice" in runner.stdout_text and "regional_failover.yml" in runner.stdout_text
    assert not pg_pair.in_recovery(pg_pair.east)


def screenshot(html, png):
    """Open the report in Debian's chromium, headless, and check the picture is not blank."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is not installed (make test installs it where root)")
    profile = png.parent / "chromium-profile"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={profile}", "--window-size=1300,1600",
                    f"--screenshot={png}", html.as_uri()],
                   check=True, timeout=90, capture_output=True)
    from PIL import Image

    image = Image.open(png).convert("RGB")
    assert image.size == (1300, 1600)
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50, "the page rendered (almost) blank"
    # The timeline draws its bars in the status colours: green (ok) must be on the page.
    assert any(g > 100 and r < 80 and b < 80 for _count, (r, g, b) in colours)


def test_emergency_when_every_us_east_server_is_gone(
        regional_lab, pg_pair, redis_pair, dns_zone, run_playbook, tmp_path):
    """The lab kills every us-east server (PostgreSQL, Redis, its Sentinel) first; the emergency
    mode promotes us-west within the loss budget, switches DNS and records the estimated loss."""
    row = pg_pair.insert(pg_pair.east, "before the loss")
    assert pg_pair.wait_row(pg_pair.west, row)
    redis_pair.set_down_after(60_000)  # the playbook acts, not Sentinel's own detection
    pg_pair.crash(pg_pair.east)
    redis_pair.crash(redis_pair.east)
    redis_pair.stop_sentinels(["sentinel-us-east"])
    refused = run_playbook(REGIONAL, limit="us-west",
                           extravars={"failsafe_failover_mode": "emergency"})
    assert refused.status == "failed"
    assert pg_pair.in_recovery(pg_pair.west), "no loss budget: nothing may be promoted"

    runner = run_playbook(REGIONAL, limit="us-west",
                          extravars={"failsafe_failover_mode": "emergency",
                                     "regional_failover_max_data_loss_seconds": 60,
                                     "failsafe_report_dir": str(tmp_path)})
    assert runner.status == "successful", runner.stdout_text
    assert not pg_pair.in_recovery(pg_pair.west) and not pg_pair.read_only(pg_pair.west)
    assert pg_pair.scalar(pg_pair.west, "SELECT count(*) FROM failsafe_it WHERE id = %s",
                          (row,)) == 1
    assert redis_pair.role(redis_pair.west) == "master"
    record = stats(runner)["failsafe_run"]
    assert record["mode"] == "emergency"
    assert record["stores"]["postgresql"]["data_loss"] is not None
    assert record["stores"]["redis"]["data_loss"] is not None
    for name in dns_zone.names:
        for server, found in dns_zone.answers(name).items():
            assert found.get("values") == [dns_zone.address("us-west")], (server, name, found)


# Killed mid-run, then run again -----------------------------------------------------------------

def run_and_interrupt(lab_env, task_pattern, sig, delay, limit="us-west"):
    """ansible-playbook regional_failover.yml in its own process group, as an operator's
    terminal runs it; at the first task whose banner matches `task_pattern`, wait `delay` s and
    send `sig` to the whole group (SIGINT: Ctrl-C; SIGKILL: the terminal or the node dies).
    Returns (the banner it was interrupted at or None, the output)."""
    env = {**os.environ, **lab_env.envvars, "PYTHONUNBUFFERED": "1", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_FORCE_COLOR": "0"}
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), REGIONAL,
         "-i", str(lab_env.inventory), "-l", limit],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True)
    interrupted_at, output = None, []
    try:
        for line in proc.stdout:
            output.append(line)
            if interrupted_at is None and line.startswith("TASK [") and re.search(task_pattern, line):
                time.sleep(delay)
                os.killpg(proc.pid, sig)
                interrupted_at = line.strip()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return interrupted_at, "".join(output)


@pytest.mark.parametrize("task_pattern, sig, delay", [
    # Inside PostgreSQL's one call (fence, catch up, promote): the terminal is closed.
    (r"postgresql_switchover : Fence, catch up and promote", signal.SIGKILL, 0.45),
    # Ctrl-C while Redis fails over, once PostgreSQL has moved.
    (r"redis_failover : Fail over in one call", signal.SIGINT, 0.45),
    # The node running Ansible dies while DNS changes (the stores have moved, the names not).
    (r"dns_failover : Switch the records", signal.SIGKILL, 0.3),
], ids=["kill-in-postgresql", "ctrl-c-in-redis", "kill-in-dns"])
def test_a_run_killed_midway_and_run_again_converges_losing_nothing(
        regional_lab, pg_pair, redis_pair, run_playbook, task_pattern, sig, delay):
    run_id = f"interrupted-{time.time():.0f}"
    writer = pg_writer(pg_pair, run_id)
    redis_writers = RedisWriter.pair_for_lab(regional_lab.lab, run_id,
                                             pinned_to=redis_pair.east.component)
    apps = AppPair(regional_lab)
    writer.start()
    try:
        with running(redis_writers, linger=1.0):
            interrupted_at, output = run_and_interrupt(regional_lab, task_pattern, sig, delay)
            assert interrupted_at, f"the run never reached {task_pattern}:\n{output}"
            again = run_playbook(REGIONAL, limit="us-west")
            assert again.status == "successful", again.stdout_text
            time.sleep(0.5)
    finally:
        writer.stop()

    # One writable node per store, in us-west; us-east follows it; the names and the writers
    # moved too.
    assert not pg_pair.in_recovery(pg_pair.west) and not pg_pair.read_only(pg_pair.west)
    assert pg_pair.in_recovery(pg_pair.east)
    assert redis_pair.role(redis_pair.west) == "master"
    assert redis_pair.role(redis_pair.east) in ("slave", "replica")
    assert set(redis_pair.sentinel_answers().values()) == {redis_pair.west.address}
    assert apps.program_state(apps.east) == "STOPPED"
    assert apps.program_state(apps.west) == "RUNNING"
    health = apps.wait_writing(apps.west)
    assert set(health["resolved"].values()) == {apps.west.host}
    # Nothing acknowledged is lost: the outside clients' and the application's writes.
    pg_report = writer.verify()
    assert pg_report.acknowledged > 0 and pg_report.lost == 0, pg_report.missing_ids
    redis_pair.wait_synced(redis_pair.east)
    for report in [w.verify(redis_pair.client(redis_pair.west)) for w in redis_writers]:
        assert report.acknowledged > 0 and report.lost == 0, report
    for store, losses in apps.losses().items():
        assert losses.acknowledged > 0 and losses.lost == 0, (store, losses)
