"""`nnlab compare PATH...`: the runs under some folders side by side, best first.

Reads each run's `.hydra/overrides.yaml`, `metrics.json` (or `error.txt` for a failed job);
no torch import (the learning-curve plot reads TensorBoard event files).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nnlab.cli.compare_stats import by_table, seed_groups_table
from nnlab.runs import RunRecord, by_value, find_runs, metric_key, ranked, seed_groups, swept_keys
from nnlab.tracker import make_console

COLUMNS = {"final/val_acc": ("val acc", ".4f"), "final/test_acc": ("test acc", ".4f"),
           "final/test_loss": ("test loss", ".4f"), "final/epochs": ("epochs", ".0f"),
           "wall_seconds": ("seconds", ".1f")}


STATUS_STYLE = {"failed": "[red]failed", "interrupted": "[yellow]interrupted", "pruned": "[yellow]pruned"}


def runs_table(runs: list[RunRecord], metric: str, title: str) -> Table:
    keys = swept_keys(runs)
    table = Table(title=title)
    for k in keys:
        table.add_column(k)
    for c, (header, _) in COLUMNS.items():
        table.add_column(header + (" ▼" if c == metric else ""), justify="right")
    table.add_column("status")
    for r in ranked(runs, metric):
        cells = [format(r.metrics[c], fmt) if c in r.metrics else "-" for c, (_, fmt) in COLUMNS.items()]
        table.add_row(*(r.overrides.get(k, "-") for k in keys), *cells, STATUS_STYLE.get(r.status, r.status))
    return table


def write_csv(runs: list[RunRecord], path: Path, metric: str) -> None:
    keys = swept_keys(runs)
    metric_names = sorted({m for r in runs for m in r.metrics if m.startswith("final/")} | {"wall_seconds"})
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", *keys, *metric_names, "status", "error"])  # error: or why it was pruned
        for r in ranked(runs, metric):
            w.writerow([str(r.path), *(r.overrides.get(k, "") for k in keys),
                        *(r.metrics.get(m, "") for m in metric_names), r.status, r.error or r.pruned or ""])


def failures_text(runs: list[RunRecord]) -> list[str]:
    return [f"{r.path.name}: {r.error}" for r in runs if r.error]


def interruptions_text(runs: list[RunRecord]) -> list[str]:
    return [f"{r.path.name}: {r.interrupted}" for r in runs if r.status == "interrupted"]


def print_comparison(runs: list[RunRecord], metric: str, title: str, console: Console) -> None:
    console.print(runs_table(runs, metric, title))
    for lines, what, style in ((failures_text(runs), "failed", "red"),
                               (interruptions_text(runs), "were interrupted", "yellow")):
        if lines:
            console.print(f"[{style}]{len(lines)} of {len(runs)} runs {what}:")
            for line in lines:
                console.print(f"  [{style}]{escape(line)}", soft_wrap=True, highlight=False)


def baseline_problem(runs: list[RunRecord], by: str | None, baseline: str | None) -> str | None:
    """--baseline needs --by and one of the values the runs have for it."""
    if baseline is None:
        return None
    if not by:
        return "--baseline needs --by KEY: the key whose values are compared with the baseline value"
    values = sorted({r.overrides.get(by, "-") for r in runs})
    if baseline not in values:
        return f"--baseline {baseline!r}: no run has {by}={baseline}; the runs have {by} = {', '.join(values)}"
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nnlab compare", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="run or sweep folders")
    parser.add_argument("--metric", default="val_acc", help="rank by this final metric (default: val_acc)")
    parser.add_argument("--by", help="group by this override key: n, mean, std, 95%% CI over the other variations")
    parser.add_argument("--baseline", metavar="VALUE", help="with --by: each value against this one: difference, "
                        "95%% CI and p-value (Welch), Holm-corrected")
    parser.add_argument("--csv", type=Path, help="also write the table as CSV")
    parser.add_argument("--plot", type=Path, help="write a PNG of the learning curves")
    args = parser.parse_args(argv)
    console = make_console()
    missing = [str(p) for p in args.paths if not p.exists()]
    if missing:
        console.print(f"[red]no such folder: {', '.join(missing)}")
        return 2
    runs = find_runs(args.paths)
    if not runs:
        console.print(f"[red]no runs under {', '.join(map(str, args.paths))}: a run folder holds "
                      ".hydra/overrides.yaml (made by `nnlab train`)")
        return 2
    metric = metric_key(args.metric)
    print_comparison(runs, metric, f"{len(runs)} runs, best {metric} first", console)
    problem = baseline_problem(runs, args.by, args.baseline)
    if problem:
        console.print(f"[red]{problem}", soft_wrap=True)
        return 2
    if args.by:
        console.print(by_table(runs, args.by, metric, args.baseline))
    elif any(sum(metric in r.metrics for r in g) > 1 for g in seed_groups(runs).values()):
        console.print(seed_groups_table(runs, metric))
    if args.csv:
        write_csv(runs, args.csv, metric)
        console.print(f"wrote {args.csv}")
    if args.plot:
        from nnlab.curves import plot_groups

        plot_groups(by_value(runs, args.by) if args.by else seed_groups(runs), args.plot, args.by)
        console.print(f"wrote {args.plot}")
    return 0

