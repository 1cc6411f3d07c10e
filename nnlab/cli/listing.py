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
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        return f"(not valid YAML: {' '.join(str(e).split())[:80]})"
    if isinstance(data, dict) and isinstance(data.get("experiment"), dict):
        return str(data["experiment"].get("description", ""))
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#") and not line.startswith("# @package"):
            return line.lstrip("# ")
    if isinstance(data, dict):
        return ", ".join(f"{k}={v}" for k, v in data.items() if k not in ("name", "defaults"))
    return ""


def groups(extra: list[Path] | tuple[Path, ...] = ()) -> list[str]:
    return sorted({p.name for d in (config_dir(), *extra) if d.is_dir() for p in d.iterdir()
                   if p.is_dir() and p.name not in HIDDEN})


def list_command(args: list[str]) -> int:
    """`nnlab list [group] [--config-dir DIR ...]`: the user's config folders list beside nnlab's own."""
    extra, rest, it = [], [], iter(args)
    for a in it:
        if a in ("--config-dir", "-cd"):
            extra.append(Path(next(it, ".")))
        elif a.startswith("--config-dir="):
            extra.append(Path(a.split("=", 1)[1]))
        else:
            rest.append(a)
    missing = [str(d) for d in extra if not d.is_dir()]
    if missing:
        Console(stderr=True).print(f"[red]--config-dir: no such folder: {', '.join(missing)}")
        return 2
    return print_choices(rest[0] if rest else None, extra=extra)


def print_choices(group: str | None, console: Console | None = None, extra: list[Path] | tuple[Path, ...] = ()
                  ) -> int:
    """The choices of `group` (all groups when None): nnlab's config files, then those in `extra` folders."""
    console = console or Console()
    names = groups(extra)
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
        files = {p.stem: p for d in (*reversed(extra), config_dir()) for p in (d / g).glob("*.yaml")}
        for stem, path in sorted(files.items()):
            mark = " (default)" if chosen.get(g) == stem else ""
            table.add_row(g, stem + mark, describe(path))
    console.print(table)
    return 0
