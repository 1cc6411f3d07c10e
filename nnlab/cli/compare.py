"""`nnlab compare PATH...`: the runs under some folders side by side, best first.

Reads each run's `.hydra/overrides.yaml`, `metrics.json` (or `error.txt` for a failed job);
no torch import (the learning-curve plot reads TensorBoard event files).
"""

from __future__ import annotations

import argparse
import csv
import difflib
import math
import statistics
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nnlab.runs import (
    RunRecord,
    find_runs,
    folder_names,
    higher_is_better,
    metric_key,
    metric_names,
    ranked,
    resolve_key,
    swept_keys,
)
from nnlab.tracker import make_console

COLUMNS = {"final/val_acc": ("val acc", ".4f"), "final/test_acc": ("test acc", ".4f"),
           "final/test_loss": ("test loss", ".4f"), "final/epochs": ("epochs", ".0f"),
           "wall_seconds": ("seconds", ".1f")}


def runs_table(runs: list[RunRecord], metric: str, title: str) -> Table:
    keys = swept_keys(runs)
    folders = folder_names(runs)
    table = Table(title=title)
    table.add_column("run")
    for k in keys:
        table.add_column(k)
    for c, (header, _) in COLUMNS.items():
        table.add_column(header + (" ▼" if c == metric else ""), justify="right")
    table.add_column("status")
    for r in ranked(runs, metric):
        cells = [format(r.metrics[c], fmt) if c in r.metrics else "-" for c, (_, fmt) in COLUMNS.items()]
        table.add_row(escape(folders[r.path]), *(r.overrides.get(k, "-") for k in keys), *cells,
                      f"[red]unreadable: {escape(r.unreadable)}" if r.unreadable else
                      "[red]failed" if r.error else r.status)
    return table


def grouped_table(runs: list[RunRecord], by: str, metric: str) -> Table:
    """Mean ± std of `metric` per value of `by`, over every other variation (e.g. seeds)."""
    groups: dict[str, list[float]] = {}
    for r in runs:
        if math.isfinite(r.metrics.get(metric, math.nan)):
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
        w.writerow(["run", *keys, *metric_names, "status", "error"])
        for r in ranked(runs, metric):
            w.writerow([str(r.path), *(r.overrides.get(k, "") for k in keys),
                        *(r.metrics.get(m, "") for m in metric_names), r.status, r.error or r.unreadable or ""])


def failures_text(runs: list[RunRecord]) -> list[str]:
    return [f"{r.path.name}: {r.error}" for r in runs if r.error]


def check_args(runs: list[RunRecord], metric: str, by: str | None) -> tuple[str, str | None, list[str]]:
    """(the metric key, the override key of --by, problems): unknown names come back with the valid ones,
    close matches first."""
    problems = []
    metrics = metric_names(runs)
    if metrics and metric_key(metric).removeprefix("final/") not in metrics and metric not in metrics:
        problems.append(f"--metric {metric}: no run recorded it; {_choices(metric, metrics)}")
    key = None
    if by is not None:
        key = resolve_key(by, runs)
        if key is None:
            keys = sorted({k for r in runs for k in r.overrides})
            from nnlab.config.validate import known_keys

            config_key = by if by in known_keys() else next((k for k in sorted(known_keys()) if k.endswith(
                "." + by)), None)
            why = (f"it is {config_key} in the config, and every run here used its default, so all would fall "
                   f"in one group (sweep it, e.g. -m {config_key}=0,1,2)" if config_key else "no run sets it")
            problems.append(f"--by {by}: {why}; " + (
                _choices(by, keys) if keys else "these runs all use the defaults, so there is nothing to group by"))
    return metric_key(metric), key, problems


def _choices(name: str, valid: list[str]) -> str:
    """'did you mean X? valid: ...', the close matches (also of the last dotted part) first."""
    close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
    last = {v.rsplit(".", 1)[-1]: v for v in valid}  # `activaton` also matches `model.activation`
    close += [last[m] for m in difflib.get_close_matches(name, list(last), n=3, cutoff=0.6) if last[m] not in close]
    rest = [v for v in valid if v not in close]
    return (f"did you mean {' or '.join(close)}? " if close else "") + f"valid: {', '.join([*close, *rest])}"


def print_comparison(runs: list[RunRecord], metric: str, title: str, console: Console) -> None:
    console.print(runs_table(runs, metric, title))
    failed = failures_text(runs)
    if failed:
        console.print(f"[red]{len(failed)} of {len(runs)} runs failed:")
        for line in failed:
            console.print(f"  [red]{line}", soft_wrap=True)


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
    metric, by, problems = check_args(runs, args.metric, args.by)
    if problems:
        console.print(f"nnlab compare: {'; '.join(problems)}", soft_wrap=True, markup=False, highlight=False)
        return 2
    print_comparison(runs, metric, f"{len(runs)} runs, best {metric} first", console)
    if by:
        console.print(grouped_table(runs, by, metric))
    for flag, path, write in (("--csv", args.csv, lambda: write_csv(runs, args.csv, metric)),
                              ("--plot", args.plot, lambda: _plot(runs, args.plot))):
        if path is None:
            continue
        try:
            write()
        except OSError as e:
            console.print(f"nnlab compare: cannot write {flag} {path}: {e.strerror or e}; choose a writable path "
                          "(the table above is complete)", soft_wrap=True, markup=False, highlight=False)
            return 2
        console.print(f"wrote {path}")
    return 0


def _plot(runs: list[RunRecord], path: Path) -> None:
    from nnlab.curves import plot_curves

    plot_curves(runs, swept_keys(runs), path)
