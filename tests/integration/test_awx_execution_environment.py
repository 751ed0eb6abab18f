# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX execution environment (execution-environment.yml), without a container engine.

`make ee-context` (extras/awx/ee-context.sh) must produce the build context offline. Then the
image build's own steps run here, from that context, as its Containerfile runs them: the Galaxy
stage's `ansible-galaxy collection install` of the context's requirements.yml, the builder
stage's introspect.py (the script ansible-builder copied into the context), the Python
requirements it writes installed into a fresh virtualenv (as `assemble` and
`install-from-bindep` pip-install them, with the ansible-core and ansible-runner of
ANSIBLE_INSTALL_REFS), and `ansible-doc` of every module from that virtualenv and that
collections path only. What is not done: the base image, its package manager, the bindep
packages and the image itself (docs/awx.md).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
MODULES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py") if not p.name.startswith("_"))
# Wheels of the requirements, kept between runs: the fresh virtualenv installs from them.
WHEELHOUSE = Path(os.environ.get("FAILSAFE_EE_WHEELHOUSE", "/var/tmp/failsafe-ee-wheels"))
# Modules of the collections the `ansible` package brings, which the roles call.
DEPENDENCY_MODULES = ["community.general.nsupdate", "amazon.aws.route53", "kubernetes.core.k8s_scale"]


def offline_env(**extra) -> dict:
    """The environment of a step that must not reach the network: every proxy points at a
    closed port and pip may not use an index."""
    env = dict(os.environ)
    closed = "http://127.0.0.1:9"
    env.update(http_proxy=closed, https_proxy=closed, HTTP_PROXY=closed, HTTPS_PROXY=closed,
               no_proxy="", NO_PROXY="", PIP_NO_INDEX="1", ANSIBLE_GALAXY_SERVER=closed,
               PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}")
    env.update(extra)
    return env


def run(argv, **kwargs):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=kwargs.pop("timeout", 600),
                          check=False, **kwargs)
    assert proc.returncode == 0, f"{shlex.join(map(str, argv))}:\n{proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    out = tmp_path_factory.mktemp("ee")
    run(["bash", str(REPO / "extras" / "awx" / "ee-context.sh"), str(out)], cwd=REPO,
        env=offline_env())
    return out / "context"


def containerfile_arg(context, name) -> str:
    match = re.search(rf'^ARG {name}="([^"]*)"$', (context / "Containerfile").read_text(), re.M)
    assert match, name
    return match.group(1)


def test_the_context_holds_what_the_definition_names(context):
    build = context / "_build"
    definition = yaml.safe_load((REPO / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    assert (build / "requirements.txt").read_text() == (REPO / "requirements.txt").read_text()
    assert (build / "bindep.txt").read_text() == (REPO / "bindep.txt").read_text()
    assert yaml.safe_load((build / "requirements.yml").read_text()) == {
        "collections": [{"name": "collection/failsafe-datastores.tar.gz", "type": "file"}]}
    assert (build / "exclude-collections.txt").read_text().split() == ["failsafe.datastores"]
    containerfile = (context / "Containerfile").read_text()
    assert containerfile_arg(context, "EE_BASE_IMAGE") == definition["images"]["base_image"]["name"]
    assert containerfile_arg(context, "ANSIBLE_GALAXY_CLI_COLLECTION_OPTS") == "--no-deps"
    assert "ansible-core>=2.19,<2.20" in containerfile_arg(context, "ANSIBLE_INSTALL_REFS")
    assert "module enable postgresql:16 redis:7" in containerfile
    for script in ("introspect.py", "assemble", "install-from-bindep"):
        assert (build / "scripts" / script).is_file()

    galaxy = yaml.safe_load((REPO / "galaxy.yml").read_text())
    with tarfile.open(build / "collection" / "failsafe-datastores.tar.gz") as tar:
        names = tar.getnames()
        manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
    assert (manifest["namespace"], manifest["name"], manifest["version"]) == (
        galaxy["namespace"], galaxy["name"], galaxy["version"])
    assert {f"plugins/modules/{m}.py" for m in MODULES} <= set(names)
    assert "playbooks/regional_failover.yml" in names and "roles/lock/tasks/acquire.yml" in names
    for left_out in (".venv", "tests/output", "build", "collections", ".git"):
        assert not [n for n in names if n == left_out or n.startswith(left_out + "/")], left_out


@pytest.fixture(scope="module")
def image(context, tmp_path_factory):
    """The image's collections path and Python, made from the context as its build would."""
    root = tmp_path_factory.mktemp("image")
    (root / "ansible.cfg").write_text("# the image has no ansible.cfg of this repository\n")
    build = context / "_build"
    collections = root / "usr-share-ansible" / "collections"
    # Galaxy stage (offline: the collection is a file, its dependencies are not fetched).
    opts = containerfile_arg(context, "ANSIBLE_GALAXY_CLI_COLLECTION_OPTS").split()
    run([str(VENV_BIN / "ansible-galaxy"), "collection", "install", *opts, "-r", "requirements.yml",
         "--collections-path", str(collections)], cwd=build,
        env=offline_env(ANSIBLE_GALAXY_DISABLE_GPG_VERIFY="1", ANSIBLE_CONFIG=str(root / "ansible.cfg")))
    # Builder stage: the context's introspect.py combines the requirements.
    pip_file, bindep_file = root / "requirements.txt", root / "bindep.txt"
    run([sys.executable, str(build / "scripts" / "introspect.py"), "introspect",
         "--user-pip=requirements.txt", "--user-bindep=bindep.txt",
         "--exclude-collection-reqs=exclude-collections.txt",
         f"--write-bindep={bindep_file}", f"--write-pip={pip_file}", str(collections)],
        cwd=build, env=offline_env())
    # The Python packages, into a fresh virtualenv (wheels fetched once from the package index).
    refs = shlex.split(containerfile_arg(context, "ANSIBLE_INSTALL_REFS"))
    WHEELHOUSE.mkdir(parents=True, exist_ok=True)
    run([str(VENV_BIN / "pip"), "wheel", "--quiet", "--wheel-dir", str(WHEELHOUSE),
         "--find-links", str(WHEELHOUSE), "-r", str(pip_file), *refs], timeout=900)
    venv = root / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "--quiet", "--no-compile", "--no-index",
         "--find-links", str(WHEELHOUSE), "-r", str(pip_file), *refs], env=offline_env(),
        timeout=900)
    return {"root": root, "collections": collections, "venv": venv, "pip_file": pip_file,
            "bindep_file": bindep_file}


def image_env(image) -> dict:
    """Ansible in the image: its own collections path, no ansible.cfg of this repository."""
    return offline_env(ANSIBLE_COLLECTIONS_PATH=str(image["collections"]),
                       ANSIBLE_CONFIG=str(image["root"] / "ansible.cfg"),
                       PATH=f"{image['venv'] / 'bin'}{os.pathsep}/usr/bin:/bin",
                       ANSIBLE_LOCAL_TEMP=str(image["root"] / "tmp"), HOME=str(image["root"]))


def test_introspection_keeps_the_definition_requirements(image):
    written = image["pip_file"].read_text().splitlines()
    user = [line.split("#")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()
            if line.split("#")[0].strip()]
    assert [line.split("  # ")[0] for line in written] == user
    assert all(line.endswith("# from collection user") for line in written)
    assert "ansible>=12.0,<13" in user, "the package that brings the dependency collections"
    bindep = image["bindep_file"].read_text()
    assert "postgresql-server [platform:rpm]  # from collection user" in bindep


def test_every_module_documents_from_the_image(image):
    proc = run([str(image["venv"] / "bin" / "ansible-doc"), "--json",
                *[f"failsafe.datastores.{m}" for m in MODULES], *DEPENDENCY_MODULES],
               cwd=image["root"], env=image_env(image), timeout=600)
    docs = json.loads(proc.stdout)
    assert sorted(docs) == sorted([f"failsafe.datastores.{m}" for m in MODULES] + DEPENDENCY_MODULES)
    for name, doc in docs.items():
        assert doc["doc"]["short_description"] and doc["doc"]["options"] is not None, name
        if name.startswith("failsafe."):
            # From the installed collection, not from this checkout.
            assert doc["doc"]["filename"].startswith(str(image["collections"])), doc["doc"]["filename"]
    listed = run([str(image["venv"] / "bin" / "ansible-doc"), "-l", "failsafe.datastores", "--json"],
                 cwd=image["root"], env=image_env(image))
    assert sorted(k.split(".")[-1] for k in json.loads(listed.stdout)) == MODULES


def test_the_modules_libraries_import_in_the_image(image):
    """Every optional library the modules guard with HAS_* is installed in the image."""
    script = (
        "import importlib, json, pkgutil\n"
        "import ansible_collections.failsafe.datastores.plugins.module_utils as mu\n"
        "import ansible_collections.failsafe.datastores.plugins.modules as mods\n"
        "flags = {}\n"
        "for pkg in (mu, mods):\n"
        "    for info in pkgutil.iter_modules(pkg.__path__):\n"
        "        module = importlib.import_module(pkg.__name__ + '.' + info.name)\n"
        "        flags.update({f'{info.name}.{k}': v for k, v in vars(module).items() if k.startswith('HAS_')})\n"
        "import kubernetes, ansible_runner\n"
        "print(json.dumps(flags))\n"
    )
    env = image_env(image)
    env["PYTHONPATH"] = str(image["collections"])
    proc = run([str(image["venv"] / "bin" / "python"), "-c", script], cwd=image["root"], env=env)
    flags = json.loads(proc.stdout)
    assert len(flags) >= 4 and {k.split(".")[-1] for k in flags} >= {"HAS_PSYCOPG", "HAS_REDIS", "HAS_BOTO3", "HAS_DNSPYTHON"}
    assert [k for k, v in flags.items() if v is not True] == []
