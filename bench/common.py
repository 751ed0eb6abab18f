"""Shared machinery of the benchmarks: the bench lab, playbook runs, writer helpers, statistics.

The lab itself (lab.topology.make_lab), its inventory (lab.inventory) and the measuring client
(lab.writer.Writer) are the ones `make demo` uses; nothing here re-implements them.
"""

from __future__ import annotations

import bisect
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

# The bench lab: its own state directory and addresses, so that it never touches a demo lab
# (127.0.1.1/127.0.2.1) or a test lab (127.0.3.1/127.0.4.1).
BENCH_LAB_DIR = "/var/tmp/failsafe-bench-lab"
BENCH_LAB_REGIONS = "us-east=127.0.5.1,us-west=127.0.6.1"

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"

PLAYBOOK_TIMEOUT = 300


def configure_env() -> None:
    """Point lab.LabConfig.from_env() at the bench lab (call before lab.topology.make_lab()):
    its own directory and addresses, the components' default ports.

    FAILSAFE_BENCH_LAB_DIR, FAILSAFE_BENCH_LAB_REGIONS and FAILSAFE_BENCH_LAB_PORT_OFFSET move
    it elsewhere (a machine where another bench lab runs)."""
    global BENCH_LAB_DIR, BENCH_LAB_REGIONS
    BENCH_LAB_DIR = os.environ.get("FAILSAFE_BENCH_LAB_DIR") or BENCH_LAB_DIR
    BENCH_LAB_REGIONS = os.environ.get("FAILSAFE_BENCH_LAB_REGIONS") or BENCH_LAB_REGIONS
    os.environ["FAILSAFE_LAB_DIR"] = BENCH_LAB_DIR
    os.environ["FAILSAFE_LAB_REGIONS"] = BENCH_LAB_REGIONS
    for name in ("FAILSAFE_LAB_PORT_OFFSET", "FAILSAFE_LAB_PORT_SCAN"):
        os.environ.pop(name, None)
    if os.environ.get("FAILSAFE_BENCH_LAB_PORT_OFFSET"):
        os.environ["FAILSAFE_LAB_PORT_OFFSET"] = os.environ["FAILSAFE_BENCH_LAB_PORT_OFFSET"]


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


# Statistics --------------------------------------------------------------------------------

def summary(values) -> dict | None:
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {
        "median": round(statistics.median(vals), 4),
        "min": round(min(vals), 4),
        "max": round(max(vals), 4),
        "n": len(vals),
    }


def r4(value):
    return None if value is None else round(value, 4)


# Playbooks ---------------------------------------------------------------------------------

@dataclass
class PlaybookRun:
    argv: list
    returncode: int
    started: float  # monotonic
    ended: float  # monotonic
    log_file: Path
    reports: list = field(default_factory=list)

    @property
    def wall(self) -> float:
        return self.ended - self.started


class PlaybookError(RuntimeError):
    pass


class Ansible:
    """Runs the collection's playbooks against the bench lab's rendered inventory."""

    def __init__(self, inventory: Path, work_dir: Path, profile_tasks: bool = False) -> None:
        self.inventory = inventory
        self.work_dir = work_dir
        self.bin_dir = Path(sys.executable).parent
        self.count = 0
        self.profile_tasks = profile_tasks

    def env(self) -> dict:
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
                   ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
                   PATH=f"{self.bin_dir}:{os.environ.get('PATH', '')}")
        if self.profile_tasks:
            # Diagnostics only: a timestamp per task in the logs (not used for the JSON).
            env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
        return env

    def playbook(self, playbook: str, *, limit: str | None = None, extra: dict | None = None,
                 report_dir: Path | None = None, on_start=None) -> PlaybookRun:
        """Run one playbook; output goes to a log file (its tail is shown on failure).

        `on_start` is called with the monotonic start time just before the process starts.
        When `report_dir` is given, the JSON reports written there by this run are returned.
        """
        self.count += 1
        log_file = self.work_dir / f"{self.count:02d}-{Path(playbook).stem}.log"
        argv = [str(self.bin_dir / "ansible-playbook"), "-i", str(self.inventory), playbook]
        if limit:
            argv += ["-l", limit]
        for key, value in (extra or {}).items():
            argv += ["-e", f"{key}={value}"]
        before = set(report_dir.glob("*.json")) if report_dir else set()
        with open(log_file, "w") as out:
            started = time.monotonic()
            if on_start:
                on_start(started)
            proc = subprocess.run(argv, cwd=REPO_ROOT, env=self.env(), stdin=subprocess.DEVNULL,
                                  stdout=out, stderr=subprocess.STDOUT, timeout=PLAYBOOK_TIMEOUT,
                                  check=False)
            ended = time.monotonic()
        run = PlaybookRun(argv=argv, returncode=proc.returncode, started=started, ended=ended,
                          log_file=log_file)
        if proc.returncode != 0:
            tail = "\n".join(log_file.read_text().splitlines()[-40:])
            raise PlaybookError(f"{' '.join(argv[1:])} failed (exit {proc.returncode}); "
                                f"log {log_file}:\n{tail}")
        if report_dir:
            new = sorted(set(report_dir.glob("*.json")) - before)
            run.reports = [json.loads(p.read_text()) for p in new]
        return run


# Topology ----------------------------------------------------------------------------------

def pg_nodes(lab):
    from lab.postgresql import PostgresNode

    return lab.of_kind(PostgresNode.kind)


def node_state(node) -> dict:
    import psycopg

    try:
        with psycopg.connect(node.conninfo(), autocommit=True) as conn:
            recovering = conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
            read_only = conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
            if recovering:
                row = conn.execute("SELECT status FROM pg_stat_wal_receiver").fetchone()
                lag = conn.execute(
                    "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())"
                ).fetchone()[0]
                return {"up": True, "role": "standby", "read_only": read_only,
                        "streaming": bool(row and row[0] == "streaming"),
                        "replay_lag": float(lag or 0)}
            lag = conn.execute(
                "SELECT max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)) "
                "FROM pg_stat_replication WHERE state = 'streaming'").fetchone()[0]
            return {"up": True, "role": "primary", "read_only": read_only,
                    "standby_lag": None if lag is None else float(lag)}
    except psycopg.Error as exc:
        return {"up": False, "error": str(exc).strip().splitlines()[0] if str(exc) else ""}


def wait_healthy_pair(lab, timeout: float = 60.0):
    """Wait for one writable primary and one streaming standby that has replayed (almost)
    everything; returns (primary_node, standby_node)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        states = {n.name: (n, node_state(n)) for n in pg_nodes(lab)}
        primaries = [n for n, s in states.values()
                     if s.get("role") == "primary" and not s.get("read_only")]
        standbys = [n for n, s in states.values()
                    if s.get("role") == "standby" and s.get("streaming")]
        last = {k: s for k, (_node, s) in states.items()}
        if len(primaries) == 1 and len(standbys) == 1:
            pstate = states[primaries[0].name][1]
            sstate = states[standbys[0].name][1]
            if (pstate.get("standby_lag") is not None and pstate["standby_lag"] < 1024 * 1024
                    and sstate["replay_lag"] < 1024 * 1024):
                return primaries[0], standbys[0]
        time.sleep(0.1)
    raise RuntimeError(f"the lab has no healthy primary/standby pair after {timeout}s: {last}")


# Writer helpers (read-only views over lab.writer.Writer's lists) -----------------------------

def ack_snapshot(writer):
    """(ids, times) of acknowledged commits."""
    return writer.snapshot()


def first_ack_after(writer, t: float):
    """(time, id) of the first acknowledged commit after monotonic time t, or (None, None)."""
    ids, times = ack_snapshot(writer)
    i = bisect.bisect_right(times, t)
    if i >= len(times):
        return None, None
    return times[i], ids[i]


def last_ack_before(writer, t: float):
    ids, times = ack_snapshot(writer)
    i = bisect.bisect_right(times, t)
    if i == 0:
        return None, None
    return times[i - 1], ids[i - 1]


def wait_ack_after(writer, t: float, timeout: float = 30.0) -> float | None:
    """Block until the writer has acknowledged a commit after t; returns that time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ack, _index = first_ack_after(writer, t)
        if ack is not None:
            return ack
        time.sleep(0.01)
    return None


def acks_between(writer, start: float, end: float) -> list:
    ids, times = ack_snapshot(writer)
    lo = bisect.bisect_right(times, start)
    hi = bisect.bisect_right(times, end)
    return ids[lo:hi]


# Machine -----------------------------------------------------------------------------------

def machine_info(lab) -> dict:
    import psycopg

    info = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        from importlib.metadata import version

        info["ansible_core"] = version("ansible-core")
    except Exception:  # noqa: BLE001 - informative only
        info["ansible_core"] = None
    try:
        info["psycopg"] = psycopg.__version__
    except AttributeError:
        info["psycopg"] = None
    info["postgresql"] = None
    for node in pg_nodes(lab):
        try:
            with psycopg.connect(node.conninfo(), autocommit=True) as conn:
                info["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
                break
        except psycopg.Error:
            continue
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def loadavg() -> list | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)
