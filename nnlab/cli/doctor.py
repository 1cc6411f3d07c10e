"""The `nnlab doctor` command: compose, validate, build, diagnose, report."""

from __future__ import annotations

import tempfile
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from nnlab.cli.failures import ctrl_c_held
from nnlab.config.compose import compose_with_search_path
from nnlab.config.validate import validate
from nnlab.registry import ConfigError
from nnlab.tracker import make_console

STYLE = {"pass": "[green]pass", "warn": "[yellow]warn", "fail": "[bold red]FAIL"}


def doctor_command(overrides: list[str]) -> int:
    console = make_console()
    try:
        cfg, folders = compose_with_search_path(overrides)
        from nnlab.plugins import load_plugins

        load_plugins(cfg.get("plugins"))
        validate(cfg, folders)
        with ctrl_c_held():  # torch comes with these
            from nnlab.doctor import diagnose
            from nnlab.runner import build

        with tempfile.TemporaryDirectory() as tmp:
            results = diagnose(build(cfg, Path(tmp)))
    except ConfigError as e:
        console.print(f"[bold red]configuration error:[/] {escape(str(e))}", soft_wrap=True, highlight=False)
        return 2
    table = Table(title="nnlab doctor: the chapter's debugging protocol")
    for col in ("check", "status", "detail", "fix"):
        table.add_column(col)
    for c in results:
        table.add_row(c.name, STYLE[c.status], c.detail, c.fix)
    console.print(table)
    failed = [c for c in results if c.status == "fail"]
    console.print(f"{len(failed)} check(s) failed" if failed else "all checks passed")
    return 1 if failed else 0
