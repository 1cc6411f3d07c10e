"""The statistics tables of `nnlab compare`: each configuration over its seeds (n, mean, std, 95% CI), and
`--by KEY [--baseline VALUE]`: per value of KEY, its runs pooled, with the difference to the baseline,
its 95% CI, Welch's p-value and the Holm-corrected p-value. scipy.stats does the statistics (nnlab/stats.py).
"""

from __future__ import annotations

import math

from rich.table import Table

from nnlab.runs import RunRecord, by_value, higher_is_better, seed_groups
from nnlab.stats import Estimate, bounds, holm, mean_ci, welch

ALPHA = 0.05


def _values(runs: list[RunRecord], metric: str) -> list[float]:
    return [r.metrics[metric] for r in runs if isinstance(r.metrics.get(metric), (int, float))]


def _num(x: float, fmt: str = ".4f") -> str:
    return "-" if x is None or math.isnan(x) else format(x, fmt)


def _ci(lo: float, hi: float, fmt: str = ".4f") -> str:
    return "-" if math.isnan(lo) else f"[{lo:{fmt}}, {hi:{fmt}}]"


def _order(est: dict[str, Estimate], metric: str) -> list[str]:
    sign = -1 if higher_is_better(metric) else 1
    return sorted(est, key=lambda k: (est[k].n == 0, sign * (0 if math.isnan(est[k].mean) else est[k].mean)))


def _add_estimate_columns(table: Table) -> None:
    for col in ("n", "mean", "std", "95% CI of the mean"):
        table.add_column(col, justify="right")


def _estimate_cells(e: Estimate) -> list[str]:
    return [str(e.n), _num(e.mean), "-" if e.n < 2 else f"± {e.std:.4f}", _ci(e.lo, e.hi)]


def seed_groups_table(runs: list[RunRecord], metric: str) -> Table:
    """One row per configuration, over the runs that differ from it only by seed."""
    groups = seed_groups(runs)
    est = {label: mean_ci(_values(rs, metric), within=bounds(metric)) for label, rs in groups.items()}
    table = Table(title=f"{metric} over seeds (95% CI: t interval)")
    table.add_column("configuration")
    _add_estimate_columns(table)
    for label in _order(est, metric):
        table.add_row(label, *_estimate_cells(est[label]))
    return table


def by_table(runs: list[RunRecord], by: str, metric: str, baseline: str | None = None) -> Table:
    """Per value of `by` (pooled over every other variation: seeds, other keys): n, mean, std, 95% CI; with a
    baseline, the difference to it (Welch), its 95% CI, p and Holm-corrected p across the other values."""
    groups = {v: _values(rs, metric) for v, rs in by_value(runs, by).items()}
    est = {v: mean_ci(xs, within=bounds(metric)) for v, xs in groups.items()}
    title = f"{metric} by {by}" + (f", against {by}={baseline}" if baseline else "") + " (95% CI: t interval)"
    table = Table(title=title)
    table.add_column(by)
    _add_estimate_columns(table)
    order = _order(est, metric)
    if baseline is None:
        for v in order:
            table.add_row(v, *_estimate_cells(est[v]))
        return table
    for col in ("difference", "95% CI (Welch)", "p", "p (Holm)", ""):
        table.add_column(col, justify="right" if col else "left")
    others = [v for v in order if v != baseline]
    diffs = {v: welch(groups[v], groups[baseline]) for v in others}
    adjusted = dict(zip(others, holm([diffs[v].p for v in others])))
    table.add_row(baseline, *_estimate_cells(est[baseline]), "baseline", "", "", "", "")
    for v in others:
        d, p_adj = diffs[v], adjusted[v]
        table.add_row(v, *_estimate_cells(est[v]), _num(d.diff, "+.4f"), _ci(d.lo, d.hi, "+.4f"),
                      _num(d.p, ".3g"), _num(p_adj, ".3g"), significance(d.diff, p_adj, metric))
    return table


def significance(diff: float, p_adjusted: float, metric: str) -> str:
    if math.isnan(p_adjusted):
        return "needs ≥ 2 runs per side"
    if p_adjusted >= ALPHA:
        return "no significant difference"
    better = (diff > 0) == higher_is_better(metric)
    return "[green]significantly better" if better else "[red]significantly worse"
