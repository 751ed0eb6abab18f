# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests: pure logic only, no server, no network (the whole directory runs in seconds).

The checkout holds collections/ansible_collections/failsafe/datastores -> the repository root, so
putting <repo>/collections on sys.path makes `ansible_collections.failsafe.datastores...` import
from the working tree; the repository root on sys.path makes `import lab` work.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / "collections"

for _path in (str(REPO), str(COLLECTIONS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

PACKAGE = "ansible_collections.failsafe.datastores"
MODULES_DIR = REPO / "plugins" / "modules"
MODULE_NAMES = sorted(p.stem for p in MODULES_DIR.glob("*.py") if not p.name.startswith("_"))


def import_module(name):
    """A module of plugins/modules by its short name (postgresql_promote)."""
    return importlib.import_module("%s.plugins.modules.%s" % (PACKAGE, name))


class SpecCaptured(Exception):
    """Raised by the stand-in AnsibleModule once it has recorded the module's arguments."""

    def __init__(self, kwargs):
        super().__init__("argument spec captured")
        self.kwargs = kwargs


class ModuleBuilt(Exception):
    """Raised by the patched ensure_driver: the real AnsibleModule was built and validated."""

    def __init__(self, module):
        super().__init__("AnsibleModule built")
        self.module = module


def capture_argument_spec(name, monkeypatch):
    """The keyword arguments a module's main() gives AnsibleModule (no validation, no I/O)."""
    mod = import_module(name)

    def fake_module(**kwargs):
        raise SpecCaptured(kwargs)

    monkeypatch.setattr(mod, "AnsibleModule", fake_module)
    with pytest.raises(SpecCaptured) as info:
        mod.main()
    return info.value.kwargs


@pytest.fixture
def argument_spec(monkeypatch):
    """argument_spec("postgresql_promote") -> the module's argument_spec dict."""
    def get(name):
        return capture_argument_spec(name, monkeypatch)["argument_spec"]
    return get


@pytest.fixture
def run_module(monkeypatch, capsys):
    """Run a module's main() with the given arguments until it exits (fail_json/exit_json).

    Returns (exit code, parsed JSON result). Only for inputs that make the module exit before it
    connects anywhere (argument validation); a module that tried to connect would fail the test.
    """
    from ansible.module_utils.testing import patch_module_args

    def run(name, args):
        mod = import_module(name)

        def no_connect(*args, **kwargs):
            raise AssertionError("the module tried to connect during argument validation")

        monkeypatch.setattr(mod, "connect", no_connect, raising=False)
        with patch_module_args(args):
            with pytest.raises(SystemExit) as info:
                mod.main()
        out = capsys.readouterr().out
        return info.value.code, json.loads(out)
    return run


@pytest.fixture
def build_module(monkeypatch):
    """Build the module's real AnsibleModule from `args` and return it (stops right after)."""
    from ansible.module_utils.testing import patch_module_args

    def build(name, args):
        mod = import_module(name)

        def stop(module):
            raise ModuleBuilt(module)

        monkeypatch.setattr(mod, "ensure_driver", stop)
        with patch_module_args(args):
            with pytest.raises(ModuleBuilt) as info:
                mod.main()
        return info.value.module
    return build
