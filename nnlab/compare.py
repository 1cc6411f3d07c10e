"""`nnlab compare PATH...`: the runs under some folders side by side, best first.

Reads each run's `.hydra/overrides.yaml`, `metrics.json` (or `error.txt` for a failed job);
no torch import (the learning-curve plot reads TensorBoard event files).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from nnlab.tracker import make_console

HIDDEN_KEYS = ("data.root", "hydra/launcher", "resume", "logger", "logger.progress")


@dataclass
class RunRecord:
    path: Path
    overrides: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None

    @property
    def status(self) -> str:
        return "failed" if self.error else "ok" if self.metrics else "incomplete"


def read_run(run_dir: Path) -> RunRecord:
    raw = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) or []
    overrides = dict(o.lstrip("+~").split("=", 1) for o in raw if "=" in o)
    overrides = {k: v for k, v in overrides.items() if k not in HIDDEN_KEYS and not k.startswith("hydra.")}
    metrics_file, error_file = run_dir / "metrics.json", run_dir / "error.txt"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    error = error_file.read_text().strip() if error_file.is_file() else None
    return RunRecord(run_dir, overrides, metrics, error)


def find_runs(paths: list[Path]) -> list[RunRecord]:
    """Every run folder (one holding .hydra/overrides.yaml) at or below `paths`."""
    dirs: dict[Path, None] = {}
    for root in paths:
        for marker in sorted(root.glob("**/.hydra/overrides.yaml")):
            dirs[marker.parent.parent] = None
    return [read_run(d) for d in dirs]


def swept_keys(runs: list[RunRecord]) -> list[str]:
    """Override keys whose values differ between runs (all of them for a single run)."""
    keys = sorted({k for r in runs for k in r.overrides})
    if len(runs) < 2:
        return keys
    return [k for k in keys if len({r.overrides.get(k) for r in runs}) > 1]


def metric_key(name: str) -> str:
    return name if "/" in name else f"final/{name}"


def higher_is_better(metric: str) -> bool:
    return not metric.endswith("loss")


def ranked(runs: list[RunRecord], metric: str) -> list[RunRecord]:
    """Best first on `metric`; failed and incomplete runs last."""
    sign = -1 if higher_is_better(metric) else 1
    return sorted(runs, key=lambda r: (metric not in r.metrics, sign * r.metrics.get(metric, 0.0)))


COLUMNS = {"final/val_acc": ("val acc", ".4f"), "final/test_acc": ("test acc", ".4f"),
           "final/test_loss": ("test loss", ".4f"), "final/epochs": ("epochs", ".0f"),
           "wall_seconds": ("seconds", ".1f")}


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
        table.add_row(*(r.overrides.get(k, "-") for k in keys), *cells,
                      "[red]failed" if r.error else r.status)
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
        w.writerow(["run", *keys, *metric_names, "status", "error"])
        for r in ranked(runs, metric):
            w.writerow([str(r.path), *(r.overrides.get(k, "") for k in keys),
                        *(r.metrics.get(m, "") for m in metric_names), r.status, r.error or ""])


def failures_text(runs: list[RunRecord]) -> list[str]:
    return [f"{r.path.name}: {r.error}" for r in runs if r.error]


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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
