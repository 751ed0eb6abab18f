# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""galaxy.yml: the dependencies are exactly the collections the code calls, and the collection
builds without the checkout's caches, virtualenv and benchmark results."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
OWN = {"ansible.builtin", "failsafe.datastores"}
# A task's module (`  community.general.nsupdate:`), a role (`name: ns.coll.role`), a filter,
# test or lookup (`| ns.coll.name`, `is ns.coll.name`, `lookup('ns.coll.name'`).
_FQCN_USES = (
    re.compile(r"^\s*(?:-\s+)?([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+:", re.M),
    re.compile(r"\bname:\s*([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+\s*$", re.M),
    re.compile(r"(?:\||\bis|lookup\(|query\()\s*'?([a-z0-9_]+\.[a-z0-9_]+)\.[a-z0-9_]+"),
)
_PY_IMPORT = re.compile(r"ansible_collections\.([a-z0-9_]+)\.([a-z0-9_]+)")


def galaxy():
    return yaml.safe_load((REPO / "galaxy.yml").read_text())


def collections_the_code_uses():
    used = set()
    for path in list((REPO / "roles").rglob("*.yml")) + list((REPO / "playbooks").rglob("*.yml")):
        text = path.read_text()
        for pattern in _FQCN_USES:
            used.update(match.group(1) for match in pattern.finditer(text))
    for path in (REPO / "plugins").rglob("*.py"):
        used.update("%s.%s" % match.groups() for match in _PY_IMPORT.finditer(path.read_text()))
    # Variables named like a.b.c (hostvars[x].failsafe_...) are not collections.
    return {name for name in used if not name.startswith(("hostvars", "item", "_"))}


def test_dependencies_are_the_collections_the_code_uses():
    declared = set(galaxy().get("dependencies") or {})
    used = collections_the_code_uses() - OWN
    assert declared == used, (f"galaxy.yml declares {sorted(declared - used)} that nothing "
                              f"calls; the code calls {sorted(used - declared)} undeclared")


@pytest.mark.parametrize("entry", [".venv", ".pytest_cache", "tests/output", "bench/results",
                                   "collections", "lab/.state"])
def test_build_ignore_keeps_local_files_out(entry):
    assert entry in galaxy()["build_ignore"]


def test_the_collection_builds_without_local_files(tmp_path):
    galaxy_cli = Path(sys.executable).with_name("ansible-galaxy")
    proc = subprocess.run([str(galaxy_cli), "collection", "build", "--output-path",
                           str(tmp_path), str(REPO)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (archive,) = tmp_path.glob("failsafe-datastores-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "galaxy.yml" not in names and "MANIFEST.json" in names
    assert "plugins/modules/postgresql_switchover.py" in names
    assert "roles/postgresql_switchover/meta/argument_specs.yml" in names
    for ignored in (".venv", ".pytest_cache", ".ansible", "tests/output", "bench/results",
                    "collections"):
        assert not [n for n in names if n == ignored or n.startswith(ignored + "/")], ignored
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
