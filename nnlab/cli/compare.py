"""`nnlab compare PATH...`: the runs under some folders side by side, best first.

Reads each run's `.hydra/overrides.yaml`, `metrics.json` (or `error.txt` for a failed job);
no torch import (the learning-curve plot reads TensorBoard event files).
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nnlab.runs import RunRecord, find_runs, higher_is_better, metric_key, ranked, swept_keys
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


def grouped_table(runs: list[RunRecord], by: str, metric: str) -> Table:
    """Mean ± std of `metric` per value of `by`, over every other variation (e.g. seeds)."""
    groups: dict[str, list[float]] = {}
    for r in runs:
        if metric in r.metrics:
            groups.setdefault(r.overrides.get(by, "-"), []).append(r.metrics[metric])
    table = Table(title=f"{metric} by {by}")
    for col in (by, "runs", "mean", "std"):
        table.add_column(col, justify="left" if col == by else "right")
    order = sorted(groups.items(), key=lambda kv: statistics.mean(kv[1]), reverse=higher_is_better(metric))
    for value, xs in order:
        std = statistics.stdev(xs) if len(xs) > 1 else 0.0
        table.add_row(value, str(len(xs)), f"{statistics.mean(xs):.4f}", f"± {std:.4f}")
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


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="nnlab compare", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path, help="run or sweep folders")
    parser.add_argument("--metric", default="val_acc", help="rank by this final metric (default: val_acc)")
    parser.add_argument("--by", help="group by this override key: mean ± std over the other variations")
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
    if args.by:
        console.print(grouped_table(runs, args.by, metric))
    if args.csv:
        write_csv(runs, args.csv, metric)
        console.print(f"wrote {args.csv}")
    if args.plot:
        from nnlab.curves import plot_curves

        plot_curves(runs, swept_keys(runs), args.plot)
        console.print(f"wrote {args.plot}")
    return 0

