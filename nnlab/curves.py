"""Learning curves of several runs, read back from their TensorBoard event files, as one PNG."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from nnlab.registry import ConfigError
from nnlab.stats import bounds, mean_ci

if TYPE_CHECKING:
    from nnlab.runs import RunRecord

PANELS = (("Loss/train", "train loss"), ("Loss/val", "validation loss"), ("Accuracy/val", "validation accuracy"))


def read_scalars(run_dir: Path, tags: tuple[str, ...]) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    ea.Reload()
    have = set(ea.Tags().get("scalars", []))
    return {t: [(e.step, e.value) for e in ea.Scalars(t)] for t in tags if t in have}


def epoch_series(run_dir: Path, tags: tuple[str, ...]) -> dict[str, list[float]]:
    """Per-epoch scalars as lists indexed by epoch - 1 (they are written once per epoch, at its last step)."""
    return {t: [v for _, v in sorted(points)] for t, points in read_scalars(run_dir, tags).items()}


def band(curves: list[list[float]], within: tuple[float, float] = (-math.inf, math.inf)
         ) -> tuple[list[int], list[float], list[float], list[float]]:
    """Epochs, mean and 95% t interval (cut to `within`) across runs at each epoch that every run reached (the
    interval is the mean itself where only one run is left)."""
    epochs = min(len(c) for c in curves)
    xs, mean, lo, hi = [], [], [], []
    for e in range(epochs):
        est = mean_ci([c[e] for c in curves], within=within)
        xs.append(e + 1)
        mean.append(est.mean)
        lo.append(est.mean if est.n < 2 else est.lo)
        hi.append(est.mean if est.n < 2 else est.hi)
    return xs, mean, lo, hi


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'nnlab[plot]'") from None
    return plt


def plot_groups(groups: dict[str, list[RunRecord]], out: Path, by: str | None = None) -> list[str]:
    """One mean curve per group with its 95% CI band (t interval over the group's runs), epochs on the x axis.
    Returns the legend's labels (one per group drawn)."""
    plt = _pyplot()
    labels: list[str] = []
    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 4))
    tags = tuple(t for t, _ in PANELS)
    for group, runs in groups.items():
        series = [epoch_series(r.path, tags) for r in runs]
        name = f"{by}={group}" if by else group
        for i, (ax, (tag, _)) in enumerate(zip(axes, PANELS)):
            curves = [s[tag] for s in series if s.get(tag)]
            if not curves:
                continue
            xs, mean, lo, hi = band(curves, bounds(tag))
            label = f"{name} (n={len(curves)})"
            line, = ax.plot(xs, mean, marker="o", markersize=3, label=label if i == 0 else None)
            if i == 0:
                labels.append(label)
            ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    for ax, (_, title) in zip(axes, PANELS):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    fig.legend(loc="lower center", ncol=min(4, max(1, len(groups))), fontsize=8, frameon=False)
    fig.suptitle("mean over runs, band: 95% CI of the mean (t interval)", fontsize=9)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * (len(groups) // 4), 1, 0.95))
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return labels
