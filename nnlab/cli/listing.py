"""`nnlab list [group]`: every config group's choices, with each file's one-line description."""

from __future__ import annotations

from pathlib import Path

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nnlab.config.paths import config_dir

HIDDEN = ("hydra",)


def describe(path: Path) -> str:
    """`description:` of an experiment, else the file's first comment line, else its key settings."""
    text = path.read_text()
    data = yaml.safe_load(text) or {}
    if isinstance(data, dict) and isinstance(data.get("experiment"), dict):
        return str(data["experiment"].get("description", ""))
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#") and not line.startswith("# @package"):
            return line.lstrip("# ")
    if isinstance(data, dict):
        return ", ".join(f"{k}={v}" for k, v in data.items() if k not in ("name", "defaults"))
    return ""


def groups() -> list[str]:
    return sorted(p.name for p in config_dir().iterdir() if p.is_dir() and p.name not in HIDDEN)


def print_choices(group: str | None, console: Console | None = None) -> int:
    console = console or Console()
    names = groups()
    if group is not None and group not in names:
        import difflib

        close = difflib.get_close_matches(group, names, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        console.print(f"[red]unknown config group {escape(repr(group))}; choose one of: {', '.join(names)}{hint}")
        return 2
    defaults = (yaml.safe_load((config_dir() / "train.yaml").read_text()) or {}).get("defaults", [])
    chosen = {k: v for d in defaults if isinstance(d, dict) for k, v in d.items()}
    table = Table(title="nnlab config groups" if group is None else f"{group}: choose with {group}=<name>")
    table.add_column("group")
    table.add_column("choice")
    table.add_column("description")
    for g in [group] if group else names:
        for path in sorted((config_dir() / g).glob("*.yaml")):
            mark = " (default)" if chosen.get(g) == path.stem else ""
            table.add_row(g, path.stem + mark, describe(path))
    console.print(table)
    return 0
