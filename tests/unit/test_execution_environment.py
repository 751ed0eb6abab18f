# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""execution-environment.yml and bindep.txt: ansible-builder's own schema, and the system
packages per platform (tests/integration/test_awx_execution_environment.py builds the context
and installs its Python side)."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RPM = ["platform:rpm", "platform:centos", "platform:redhat"]
DPKG = ["platform:dpkg", "platform:debian"]
# What the modules run on the host of the job, per platform: (rpm package, dpkg package).
PROGRAMS = {
    "pg_dump pg_restore pg_basebackup pg_waldump": ("postgresql", "postgresql-client"),
    "initdb pg_ctl postgres pg_rewind pg_controldata": ("postgresql-server", "postgresql"),
    "redis-server": ("redis", "redis-server"),
    "zstd": ("zstd", "zstd"),
    "tar": ("tar", "tar"),
    "runuser": ("util-linux", "util-linux"),
}


@functools.lru_cache(maxsize=None)
def _depends():
    from bindep.depends import Depends  # its grammar takes seconds to build: once

    return Depends((REPO / "bindep.txt").read_text())


def packages(profile):
    return [rule[0] for rule in _depends().active_rules(list(profile))]


def test_definition_passes_ansible_builder_schema():
    from ansible_builder.ee_schema import validate_schema

    definition = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    validate_schema(definition)
    assert definition["version"] == 3
    assert definition["dependencies"]["python"] == "requirements.txt"
    assert definition["dependencies"]["system"] == "bindep.txt"
    assert definition["dependencies"]["exclude"]["all_from_collections"] == ["failsafe.datastores"]
    assert "--no-deps" in definition["build_arg_defaults"]["ANSIBLE_GALAXY_CLI_COLLECTION_OPTS"]


def test_definition_schema_refuses_a_mistake():
    from ansible_builder.ee_schema import validate_schema
    from ansible_builder.exceptions import DefinitionError

    definition = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    definition["dependencies"]["pyhton"] = "requirements.txt"
    with pytest.raises(DefinitionError):
        validate_schema(definition)


@pytest.mark.parametrize("programs", sorted(PROGRAMS))
def test_bindep_names_a_package_per_platform(programs):
    rpm, dpkg = PROGRAMS[programs]
    assert rpm in packages(RPM), programs
    assert dpkg in packages(DPKG), programs


def test_bindep_dpkg_packages_exist_in_this_machine_s_apt_lists():
    if not shutil.which("apt-cache"):
        pytest.skip("no apt-cache on this machine")
    if not list(Path("/var/lib/apt/lists").glob("*Packages*")):
        pytest.skip("apt lists are empty (apt-get update has not run)")
    names = packages(DPKG)
    proc = subprocess.run(["apt-cache", "show", "--no-all-versions", *names],
                          capture_output=True, text=True, timeout=120, check=False)
    found = set(re.findall(r"^Package: (\S+)$", proc.stdout, re.M))
    assert sorted(set(names) - found) == [], proc.stderr
