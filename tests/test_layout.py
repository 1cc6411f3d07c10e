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


def test_the_rules_see_what_they_look_for():
    """The scans find the imports they check for where those are allowed (so an empty result means something)."""
    assert "nnlab.cli.train" in _imports(PACKAGE / "cli" / "__init__.py")
    speedups = [n for f in (PACKAGE / "_speedups").glob("*.py") for n in _imports(f)]
    assert any(n.startswith("hydra._internal") for n in speedups) and any("loky" in n for n in speedups)
