# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module documentation agrees with the code.

- DOCUMENTATION options (with the doc fragments resolved here, as ansible-doc would) are exactly
  the argument_spec, recursively, with the same type, default, required, choices and elements.
- RETURN documents exactly the top-level keys the module can pass to exit_json, found by static
  inspection of the module source (and of the module_utils helpers whose result it spreads).
- EXAMPLES are YAML and call the module by its FQCN with options that exist.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "ansible_collections.failsafe.datastores"
COLLECTION = "failsafe.datastores"
MODULE_NAMES = sorted(p.stem for p in (REPO / "plugins" / "modules").glob("*.py")
                      if not p.name.startswith("_"))
HELPER_SOURCES = sorted((REPO / "plugins" / "module_utils").glob("*.py"))

# DOCUMENTATION that YAML (and so ansible-doc) cannot parse: a plain scalar holding ": ".
DOC_MODULES = list(MODULE_NAMES)

# Keys every module result may carry without RETURN documenting them.
STANDARD_RESULT_KEYS = {"changed", "failed", "msg", "invocation", "warnings", "deprecations", "skipped"}


def module(name):
    return importlib.import_module("%s.plugins.modules.%s" % (PACKAGE, name))


# Doc fragments -----------------------------------------------------------------------------------

def fragment(reference):
    """'failsafe.datastores.postgresql.PRIMARY' -> parsed YAML of that fragment variable."""
    parts = reference.split(".")
    assert ".".join(parts[:2]) == COLLECTION and len(parts) in (3, 4), \
        "this test only resolves fragments of %s, not %r" % (COLLECTION, reference)
    variable = parts[3].upper() if len(parts) == 4 else "DOCUMENTATION"
    source = importlib.import_module("%s.plugins.doc_fragments.%s" % (PACKAGE, parts[2]))
    text = getattr(source.ModuleDocFragment, variable)
    return yaml.safe_load(text)


def documented_options(doc):
    """Options after the fragments are merged in; the module's own keys win (ansible's rule)."""
    options = {}
    for reference in doc.get("extends_documentation_fragment") or []:
        for option, definition in (fragment(reference).get("options") or {}).items():
            merged = dict(options.get(option) or {})
            merged.update(definition)
            options[option] = merged
    for option, definition in (doc.get("options") or {}).items():
        merged = dict(options.get(option) or {})
        merged.update(definition)
        options[option] = merged
    return options


def compare_options(spec, docs, where=""):
    """Differences between an argument_spec and documented options, as readable lines."""
    problems = []
    for option in sorted(set(spec) - set(docs)):
        problems.append("%s%s: in argument_spec, not documented" % (where, option))
    for option in sorted(set(docs) - set(spec)):
        problems.append("%s%s: documented, not in argument_spec" % (where, option))
    for option in sorted(set(spec) & set(docs)):
        code, doc = spec[option], docs[option]
        name = where + option
        if not doc.get("description"):
            problems.append("%s: no description" % name)
        checks = [
            ("type", code.get("type", "str"), doc.get("type", "str")),
            ("required", bool(code.get("required", False)), bool(doc.get("required", False))),
            ("default", code.get("default"), doc.get("default")),
            ("choices", list(code.get("choices") or []), list(doc.get("choices") or [])),
            ("elements", code.get("elements"), doc.get("elements")),
        ]
        for what, in_code, in_doc in checks:
            if in_code != in_doc:
                problems.append("%s: %s is %r in argument_spec but %r in the docs"
                                % (name, what, in_code, in_doc))
        if code.get("options") or doc.get("suboptions"):
            problems += compare_options(code.get("options") or {}, doc.get("suboptions") or {},
                                        name + ".")
    return problems


# Returned keys, by static inspection ----------------------------------------------------------------

class Unresolvable(Exception):
    pass


class ResultKeys:
    """Top-level keys a module passes to exit_json: keyword names, and the keys of every dict
    spread with ** (built with dict(...)/{...}, .update(...), x["key"] = ... or
    self.x["key"] = ..., or returned by a function of the module or of module_utils).

    A module may also end its run through a module_utils helper that calls exit_json (the
    shared report: `report.run(work, result, ...)`, `report.exit(result)`): its parameter named
    `result` is the module's dict, and the keys the helper adds count too, except those it adds
    only on request (CONDITIONAL_KEYS: `diff` only when the module declares its changes)."""

    # Keys a helper adds only when the module calls that method of it.
    CONDITIONAL_KEYS = {"diff": "changes"}

    def __init__(self, source):
        self.source = source
        self.tree = ast.parse(source)
        self.helpers = [ast.parse(path.read_text()) for path in HELPER_SOURCES]
        self.exit_calls = 0

    def function(self, name):
        """The module's own function, else a module_utils function, else a module_utils method."""
        for tree in [self.tree] + self.helpers:
            for node in tree.body:
                if isinstance(node, ast.FunctionDef) and node.name == name:
                    return node
        for node in self.helper_methods():
            if node.name == name:
                return node
        raise Unresolvable("function %s not found" % name)

    def own_functions(self):
        return {node.name for node in ast.walk(self.tree) if isinstance(node, ast.FunctionDef)}

    def helper_methods(self):
        for tree in self.helpers:
            for cls in tree.body:
                if isinstance(cls, ast.ClassDef):
                    for node in cls.body:
                        if isinstance(node, ast.FunctionDef):
                            yield node

    def helper_functions(self):
        for tree in self.helpers:
            for node in tree.body:
                if isinstance(node, ast.FunctionDef):
                    yield node
        yield from self.helper_methods()

    @staticmethod
    def callee(call):
        if isinstance(call.func, ast.Name):
            return call.func.id
        if isinstance(call.func, ast.Attribute):
            return call.func.attr
        return None

    def ending(self, function, seen=()):
        """Whether a helper function ends the run: it calls exit_json, or a helper that does."""
        for node in ast.walk(function):
            if isinstance(node, ast.Call):
                name = self.callee(node)
                if name == "exit_json":
                    return True
                helper = self.ending_helper(name, seen + (function.name,))
                if helper is not None:
                    return True
        return False

    def ending_helper(self, name, seen=()):
        if name is None or name in seen:
            return None
        for function in self.helper_functions():
            if function.name == name and self.ending(function, seen):
                return function
        return None

    def helper_keys(self, function, seen=()):
        """Keys a run-ending helper adds to the result it is given."""
        keys = set()
        for node in ast.walk(function):
            if not isinstance(node, ast.Call):
                continue
            name = self.callee(node)
            if name == "exit_json":
                for keyword in node.keywords:
                    if keyword.arg is None:
                        keys |= self.of_expression(keyword.value, function)
                    else:
                        keys.add(keyword.arg)
            elif name not in seen + (function.name,):
                helper = self.ending_helper(name, seen + (function.name,))
                if helper is not None:
                    keys |= self.helper_keys(helper, seen + (function.name,))
        return keys

    @staticmethod
    def result_argument(call, helper):
        """The argument a call passes for the helper's parameter named `result`."""
        names = [a.arg for a in helper.args.args if a.arg != "self"]
        for keyword in call.keywords:
            if keyword.arg == "result":
                return keyword.value
        if "result" in names and names.index("result") < len(call.args):
            return call.args[names.index("result")]
        raise Unresolvable("%s() is given no result at line %d" % (helper.name, call.lineno))

    def of_expression(self, node, scope):
        if isinstance(node, ast.Dict):
            keys = set()
            for key, value in zip(node.keys, node.values):
                if key is None:
                    keys |= self.of_expression(value, scope)
                elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                    keys.add(key.value)
                else:
                    raise Unresolvable("non-constant key at line %d" % key.lineno)
            return keys
        if isinstance(node, ast.Call) and self.callee(node):
            if isinstance(node.func, ast.Name) and node.func.id == "dict":
                keys = set()
                for argument in node.args:
                    keys |= self.of_expression(argument, scope)
                for keyword in node.keywords:
                    if keyword.arg is None:
                        keys |= self.of_expression(keyword.value, scope)
                    else:
                        keys.add(keyword.arg)
                return keys
            function = self.function(self.callee(node))
            keys = set()
            for child in ast.walk(function):
                if isinstance(child, ast.Return) and child.value is not None:
                    keys |= self.of_expression(child.value, function)
            return keys
        if isinstance(node, ast.Name):
            return self.of_name(node.id, scope)
        raise Unresolvable("cannot follow %s at line %d" % (ast.dump(node)[:60], node.lineno))

    def of_name(self, name, scope):
        keys = set()
        for node in ast.walk(scope):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id == name:
                        keys |= self.of_expression(node.value, scope)
                    elif self.is_item_of(target, name):
                        keys.add(target.slice.value)
            elif isinstance(node, ast.AugAssign) and self.is_item_of(node.target, name):
                keys.add(node.target.slice.value)
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("update", "setdefault") \
                    and self.is_name(node.func.value, name):
                if node.func.attr == "setdefault":
                    keys.add(node.args[0].value)
                    continue
                for argument in node.args:
                    keys |= self.of_expression(argument, scope)
                keys |= {k.arg for k in node.keywords if k.arg is not None}
        return keys

    @staticmethod
    def is_name(node, name):
        """`name` or `<anything>.name` (a dict kept on an object: self.result)."""
        return (isinstance(node, ast.Name) and node.id == name) or \
            (isinstance(node, ast.Attribute) and node.attr == name)

    @classmethod
    def is_item_of(cls, target, name):
        return (isinstance(target, ast.Subscript) and cls.is_name(target.value, name)
                and isinstance(target.slice, ast.Constant)
                and isinstance(target.slice.value, str))

    def keys(self):
        keys = set()
        helper_added = set()
        for node in ast.walk(self.tree):
            if not isinstance(node, ast.Call):
                continue
            name = self.callee(node)
            if isinstance(node.func, ast.Attribute) and name == "exit_json":
                self.exit_calls += 1
                for keyword in node.keywords:
                    if keyword.arg is None:
                        keys |= self.of_expression(keyword.value, self.tree)
                    else:
                        keys.add(keyword.arg)
                continue
            # A bare call of the module's own function (its `run`) is not a helper's method.
            own = isinstance(node.func, ast.Name) and name in self.own_functions()
            helper = None if own else self.ending_helper(name)
            if helper is not None:
                self.exit_calls += 1
                keys |= self.of_expression(self.result_argument(node, helper), self.tree)
                helper_added |= self.helper_keys(helper)
        for key, method in self.CONDITIONAL_KEYS.items():
            if ".%s(" % method not in self.source:
                helper_added.discard(key)
        return keys | helper_added


def test_result_key_walker_on_a_sample():
    source = '''
def facts():
    out = dict(a=1, b=2)
    out.update(c=3)
    out["d"] = 4
    return out

def main(module):
    result = dict(changed=False, e=1)
    result.update(dict(f=2), g=3)
    result["h"] = 4
    result["nested"]["ignored"] = 5
    result.setdefault("i", 6)
    finish(module, result)
    module.exit_json(j=1, **facts())

def finish(module, result):
    result["k"] = 1
    module.exit_json(**result)
'''
    walker = ResultKeys(source)
    assert walker.keys() == set("abcdefghijk") | {"changed"}  # not "nested": a key of a value
    assert walker.exit_calls == 2


def test_result_key_walker_follows_the_shared_report():
    source = '''
def work(report, result):
    result["a"] = 1

def main(module):
    report = Report(module)
    result = dict(changed=False)
    report.run(lambda: work(report, result), result, explain_error)
'''
    walker = ResultKeys(source)
    assert walker.keys() == {"changed", "a", "steps", "timings"}
    assert walker.exit_calls == 1
    # diff only when the module declares its changes
    walker = ResultKeys(source + "\ndef more(report):\n    report.changes(1, 2)\n")
    assert walker.keys() == {"changed", "a", "steps", "timings", "diff"}


# The tests -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", DOC_MODULES)
def test_documentation_parses(name):
    mod = module(name)
    doc = yaml.safe_load(mod.DOCUMENTATION)
    assert doc["module"] == name
    assert doc.get("short_description")
    assert doc.get("description")
    assert doc.get("author")
    assert isinstance(yaml.safe_load(mod.RETURN), dict)
    for reference in doc.get("extends_documentation_fragment") or []:
        assert isinstance(fragment(reference), dict), reference


@pytest.mark.parametrize("name", DOC_MODULES)
def test_every_option_is_documented_and_every_documented_option_exists(name, argument_spec):
    spec = argument_spec(name)
    docs = documented_options(yaml.safe_load(module(name).DOCUMENTATION))
    assert sorted(spec) == sorted(docs)


@pytest.mark.parametrize("name", DOC_MODULES)
def test_option_details_match_the_argument_spec(name, argument_spec):
    spec = argument_spec(name)
    docs = documented_options(yaml.safe_load(module(name).DOCUMENTATION))
    problems = compare_options(spec, docs)
    assert not problems, "\n".join(problems)


# Modules that only document an action plugin: their results are built by the action's run().
ACTION_ONLY = {"run_preflight"}


class ActionResultKeys(ResultKeys):
    """ResultKeys for an action plugin: the base class's run() contributes standard keys."""

    def of_expression(self, node, scope):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "run":
            return set()
        return super().of_expression(node, scope)


def action_result_keys(name):
    """Keys of the `result` dict of an action plugin's run()."""
    walker = ActionResultKeys((REPO / "plugins" / "action" / ("%s.py" % name)).read_text())
    run = next(node for node in ast.walk(walker.tree)
               if isinstance(node, ast.FunctionDef) and node.name == "run")
    return walker.of_name("result", run)


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_return_documents_exactly_what_the_module_returns(name):
    mod = module(name)
    if name in ACTION_ONLY:
        returned = action_result_keys(name)
    else:
        walker = ResultKeys(Path(mod.__file__).read_text())
        returned = walker.keys()
        assert walker.exit_calls >= 1
    assert len(returned - STANDARD_RESULT_KEYS) >= 3, returned  # the walker found real keys
    documented = set(yaml.safe_load(mod.RETURN))
    undocumented = returned - STANDARD_RESULT_KEYS - documented
    assert not undocumented, "%s returns keys RETURN does not document: %s" % (name, sorted(undocumented))
    never_returned = documented - returned
    assert not never_returned, "%s documents keys it never returns: %s" % (name, sorted(never_returned))


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_return_entries_are_complete(name):
    for key, entry in yaml.safe_load(module(name).RETURN).items():
        assert entry.get("description"), key
        assert entry.get("returned"), key
        assert entry.get("type") in ("str", "int", "float", "bool", "list", "dict", "raw"), key
        if entry["type"] == "list":
            assert entry.get("elements"), "%s: a list needs elements" % key


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_examples_use_the_fqcn_and_existing_options(name, argument_spec):
    spec = argument_spec(name)
    required = {k for k, v in spec.items() if v.get("required")}
    tasks = yaml.safe_load(module(name).EXAMPLES)
    calls = [task["%s.%s" % (COLLECTION, name)] for task in tasks if "%s.%s" % (COLLECTION, name) in task]
    assert calls, "no example calls %s.%s" % (COLLECTION, name)
    for args in calls:
        assert set(args) <= set(spec), sorted(set(args) - set(spec))
        assert required <= set(args), sorted(required - set(args))
        for option, value in args.items():
            if spec[option].get("type") == "dict" and spec[option].get("options") \
                    and not isinstance(value, str):  # str: a template
                suboptions = spec[option]["options"]
                assert set(value) <= set(suboptions), (option, sorted(set(value) - set(suboptions)))
                assert {k for k, v in suboptions.items() if v.get("required")} <= set(value), option
