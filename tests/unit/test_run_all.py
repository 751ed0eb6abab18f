"""tests/run-all.sh (`make test`, CI): its stage handling, run in a copy of the layout it expects
with a stand-in Python and stand-in tools, so that each stage's exit status is chosen here."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Stands in for .venv/bin/python: `-m pytest DIR ...` logs DIR and exits with the status the
# test chose for it (RC_<dir with / as _>, default 0); HANG_<dir> waits for Ctrl-C as pytest
# does (and exits 2, pytest's status for an interrupted run).
FAKE_PYTHON = """#!/usr/bin/env bash
dir=$3
key=${dir//\\//_}
echo "pytest $dir" >> "$STAGE_LOG"
hang=HANG_$key
if [ -n "${!hang:-}" ]; then
  sleep 60 >/dev/null 2>&1 &
  trap 'kill $!; exit 2' INT
  touch "$STAGE_LOG.hanging"
  wait
  exit 0
fi
rc=RC_$key
exit "${!rc:-0}"
"""

FAKE_TOOL = """#!/usr/bin/env bash
echo "{name}" >> "$STAGE_LOG"
exit 0
"""


@pytest.fixture
def layout(tmp_path):
    """A checkout as run-all.sh sees it: tests/run-all.sh, .venv/bin tools, test directories."""
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "integration").mkdir()
    (tmp_path / "tests" / "sanity").mkdir()
    shutil.copy(REPO / "tests" / "run-all.sh", tmp_path / "tests" / "run-all.sh")
    (tmp_path / "tests" / "sanity" / "run-sanity.sh").write_text(
        FAKE_TOOL.format(name="sanity"))
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name, text in (("python", FAKE_PYTHON), ("ansible-lint", FAKE_TOOL.format(
            name="ansible-lint"))):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return tmp_path


def start(layout: Path, **env) -> subprocess.Popen:
    full_env = dict(os.environ, STAGE_LOG=str(layout / "stages.log"), **env)
    return subprocess.Popen(["bash", str(layout / "tests" / "run-all.sh")], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def stages_run(layout: Path) -> list[str]:
    log = layout / "stages.log"
    return log.read_text().split("\n")[:-1] if log.exists() else []


def test_every_stage_runs_and_passes(layout):
    proc = start(layout)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    assert stages_run(layout) == ["pytest tests/unit", "sanity", "ansible-lint",
                                  "pytest tests/integration"]
    assert out.splitlines()[-2:] == ["run-all: all stages passed",
                                     "stages: 4 passed, 0 failed, 1 skipped"]


def test_a_failed_stage_does_not_stop_the_others_but_fails_the_run(layout):
    proc = start(layout, RC_tests_unit="1")
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1
    assert len(stages_run(layout)) == 4
    assert "FAIL (pytest exit 1)" in out
    assert out.splitlines()[-1] == "stages: 3 passed, 1 failed, 1 skipped"


def test_no_tests_collected_passes_only_where_there_is_no_test_file(layout):
    proc = start(layout, RC_tests_unit="5", RC_tests_integration="5")
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 0, out
    assert "tests/unit has no test files yet: counted as passed" in out

    (layout / "tests" / "integration" / "test_something.py").write_text("")
    (layout / "stages.log").unlink()
    proc = start(layout, RC_tests_integration="5")
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1
    assert "integration   FAIL (pytest exit 5)" in out


def test_ctrl_c_stops_the_run_after_the_current_stage(layout):
    proc = start(layout, HANG_tests_unit="1")
    hanging = layout / "stages.log.hanging"
    deadline = time.monotonic() + 30
    while not hanging.exists():
        assert time.monotonic() < deadline, "the first stage never started"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 130, out
    assert stages_run(layout) == ["pytest tests/unit"]
    assert "run-all: interrupted during unit: the stages after it did not run" in out
    assert out.splitlines()[-2:] == ["run-all: INTERRUPTED",
                                     "stages: 0 passed, 1 failed, 0 skipped"]
