"""`nnlab compare PATH...`: the runs under some folders side by side, best first.

Reads each run's `.hydra/overrides.yaml`, `metrics.json` (or `error.txt` for a failed job);
no torch import (the learning-curve plot reads TensorBoard event files).
"""

from __future__ import annotations

import argparse
import csv
import difflib
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from nnlab.cli.compare_stats import by_table, seed_groups_table
from nnlab.runs import (
    RunRecord,
    by_value,
    find_runs,
    folder_names,
    metric_key,
    metric_names,
    ranked,
    resolve_key,
    seed_groups,
    swept_keys,
)
from nnlab.tracker import make_console

COLUMNS = {"final/val_acc": ("val acc", ".4f"), "final/test_acc": ("test acc", ".4f"),
           "final/test_loss": ("test loss", ".4f"), "final/epochs": ("epochs", ".0f"),
           "wall_seconds": ("seconds", ".1f")}


STATUS_STYLE = {"failed": "[red]failed", "interrupted": "[yellow]interrupted", "pruned": "[yellow]pruned"}


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
        status = f"[red]unreadable: {escape(r.unreadable)}" if r.unreadable else STATUS_STYLE.get(r.status, r.status)
        table.add_row(escape(folders[r.path]), *(r.overrides.get(k, "-") for k in keys), *cells, status)
    return table


def write_csv(runs: list[RunRecord], path: Path, metric: str) -> None:
    keys = swept_keys(runs)
    metric_names = sorted({m for r in runs for m in r.metrics if m.startswith("final/")} | {"wall_seconds"})
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", *keys, *metric_names, "status", "error"])  # error: or why it was pruned
        for r in ranked(runs, metric):
            w.writerow([str(r.path), *(r.overrides.get(k, "") for k in keys),
                        *(r.metrics.get(m, "") for m in metric_names), r.status,
                        r.error or r.unreadable or r.pruned or ""])


def failures_text(runs: list[RunRecord]) -> list[str]:
    return [f"{r.path.name}: {r.error}" for r in runs if r.error]


def interruptions_text(runs: list[RunRecord]) -> list[str]:
    return [f"{r.path.name}: {r.interrupted}" for r in runs if r.status == "interrupted"]


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

            known = known_keys()
            ending = sorted((k for k in known if k.endswith("." + by)), key=lambda k: not k.startswith("trainer."))
            config_key = by if by in known else next(iter(ending), None)  # `seed`: trainer.seed first
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
    metric, by, problems = check_args(runs, args.metric, args.by)
    if not problems and (problem := baseline_problem(runs, by, args.baseline)):
        problems.append(problem)
    problems += [f"cannot write {flag} {path}: no folder {path.parent}; choose a path in an existing folder"
                 for flag, path in (("--csv", args.csv), ("--plot", args.plot))
                 if path is not None and not path.parent.is_dir()]  # before the tables, not after
    if problems:
        console.print(f"nnlab compare: {'; '.join(problems)}", soft_wrap=True, markup=False, highlight=False)
        return 2
    print_comparison(runs, metric, f"{len(runs)} runs, best {metric} first", console)
    if by:
        console.print(by_table(runs, by, metric, args.baseline))
    elif any(sum(metric in r.metrics for r in g) > 1 for g in seed_groups(runs).values()):
        console.print(seed_groups_table(runs, metric))
    for flag, path, write in (("--csv", args.csv, lambda: write_csv(runs, args.csv, metric)),
                              ("--plot", args.plot, lambda: _plot(runs, by, args.plot))):
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


def _plot(runs: list[RunRecord], by: str | None, path: Path) -> None:
    """Mean learning curves with a 95% band: one per value of `by`, else one per group of seeds."""
    from nnlab.curves import plot_groups

    plot_groups(by_value(runs, by) if by else seed_groups(runs), path, by)
