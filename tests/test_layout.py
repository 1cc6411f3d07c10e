"""The layout's rules hold in the source: commands live in cli/, process-level tricks in _speedups/."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "nnlab"


def _modules(exclude: str) -> list[Path]:
    """Every Python file of nnlab/ and hydra_plugins/ outside the sub-package `exclude`."""
    files = [*PACKAGE.rglob("*.py"), *(REPO / "hydra_plugins").rglob("*.py")]
    return [f for f in files if (PACKAGE / exclude) not in f.parents]


def _imports(path: Path) -> list[str]:
    """Every module named by an import statement in `path`, at any depth (lazy imports included)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return names


def test_only_cli_imports_cli():
    """No module outside nnlab/cli/ imports nnlab.cli (the core never depends on the commands); the one
    exception is nnlab/__main__.py, which is `python -m nnlab`, the CLI's entry point."""
    offenders = {str(f.relative_to(REPO)): n for f in _modules("cli") for n in _imports(f)
                 if (n == "nnlab.cli" or n.startswith("nnlab.cli.")) and f.name != "__main__.py"}
    assert offenders == {}


def test_only_speedups_reach_into_hydra_loky_or_atexit():
    """Outside nnlab/_speedups/, no import of hydra._internal or loky, and no private attribute of atexit."""
    offenders = []
    for f in _modules("_speedups"):
        offenders += [f"{f.relative_to(REPO)}: {n}" for n in _imports(f) if n.startswith("hydra._internal")
                      or "loky" in n]
        offenders += [f"{f.relative_to(REPO)}: atexit.{node.attr}" for node in ast.walk(ast.parse(f.read_text()))
                      if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                      and node.value.id == "atexit" and node.attr.startswith("_")]
    assert offenders == []


def _inherited_privates(source: str) -> list[str]:
    """`self._x` read but never defined in `source` (a private attribute of a base class: in hydra_plugins/,
    Hydra's), and `_x=` keyword arguments (a private field of someone else's dataclass)."""
    tree = ast.parse(source)
    defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    defined |= {t.id for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    defined |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)}
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == "self" and n.attr.startswith("_") and not n.attr.startswith("__")}
    keywords = {k.arg for n in ast.walk(tree) if isinstance(n, ast.Call) for k in n.keywords
                if k.arg and k.arg.startswith("_")}
    return sorted((used - defined) | {f"{k}=" for k in keywords})


def test_plugins_use_no_private_attribute_of_hydras_classes():
    """The classes Hydra discovers in hydra_plugins/ (subclasses of Hydra's launchers and sweepers) read no
    private attribute they inherit and fill no private field of Hydra's dataclasses."""
    offenders = {str(f.relative_to(REPO)): bad for f in (REPO / "hydra_plugins").rglob("*.py")
                 if (bad := _inherited_privates(f.read_text()))}
    assert offenders == {}


def test_the_rules_see_what_they_look_for():
    """The scans find the imports they check for where those are allowed (so an empty result means something)."""
    assert "nnlab.cli.train" in _imports(PACKAGE / "cli" / "__init__.py")
    speedups = [n for f in (PACKAGE / "_speedups").glob("*.py") for n in _imports(f)]
    assert any(n.startswith("hydra._internal") for n in speedups) and any("loky" in n for n in speedups)
    planted = ("class L(Base):\n    def f(self):\n        self._mine = 1\n        return self._mine, self._EXECUTOR\n"
               "    def g(self):\n        return JobReturn(status=1, _return_value=None)\n")
    assert _inherited_privates(planted) == ["_EXECUTOR", "_return_value="]
