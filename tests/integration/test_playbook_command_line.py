"""The headline command line, typed as an operator types it: `ansible-playbook ... -l us-west`.

Not through ansible-runner: a subprocess in the repository with the repository's ansible.cfg, so
that what `-l` matches, the group-name warnings and the run report are Ansible's own. The only
difference from the README is `-i`: the test lab listens on other addresses than
inventories/lab.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import REPO

SWITCHOVER = "playbooks/postgresql_switchover.yml"


def ansible_playbook(lab_env, report_dir, *args, timeout=900):
    """Run `ansible-playbook ARGS -i <test lab inventory>` in the repository."""
    env = dict(os.environ)
    env.update(lab_env.envvars)
    env["FAILSAFE_REPORT_DIR"] = str(report_dir)
    return subprocess.run(["ansible-playbook", *args, "-i", str(lab_env.inventory)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("region", ["us-west", "us_west"], ids=["dashed", "alias"])
def test_the_literal_switchover_command_line(pg_pair, lab_env, tmp_path, region):
    proc = ansible_playbook(lab_env, tmp_path, SWITCHOVER, "-l", region)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Could not match supplied host pattern" not in output
    assert "Invalid characters were found in group names" not in output
    assert "Traceback" not in output

    # Independent view: us-west is the writable primary, us-east streams from it.
    west, east = pg_pair.west, pg_pair.east
    assert not pg_pair.in_recovery(west) and not pg_pair.read_only(west)
    assert pg_pair.in_recovery(east)
    assert pg_pair.receiver(east)["sender_host"] == west.host
    row = pg_pair.insert(west, f"after -l {region}")
    assert pg_pair.wait_row(east, row)

    # The run report went where FAILSAFE_REPORT_DIR says, with the limit as typed.
    reports = sorted(tmp_path.glob("run-postgresql_switchover*.json"))
    assert reports, f"no run report in {tmp_path}: {os.listdir(tmp_path)}"
    report = json.loads(reports[-1].read_text())
    assert report["run"]["limit"] == region
    assert report["run"]["playbook"] == "postgresql_switchover.yml"
