"""Learning curves of several runs, read back from their TensorBoard event files, as one PNG."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from nnlab.registry import ConfigError

if TYPE_CHECKING:
    from nnlab.runs import RunRecord

PANELS = (("train/loss", "train loss"), ("val/loss", "validation loss"), ("val/acc", "validation accuracy"))


def read_scalars(run_dir: Path, tags: tuple[str, ...]) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    ea.Reload()
    have = set(ea.Tags().get("scalars", []))
    return {t: [(e.step, e.value) for e in ea.Scalars(t)] for t in tags if t in have}


def plot_curves(runs: list[RunRecord], label_keys: list[str], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'nnlab[plot]'") from None
    fig, axes = plt.subplots(1, len(PANELS), figsize=(5 * len(PANELS), 4))
    for r in runs:
        series = read_scalars(r.path, tuple(t for t, _ in PANELS))
        label = ",".join(f"{k}={r.overrides.get(k, '-')}" for k in label_keys) or r.path.name
        for ax, (tag, _) in zip(axes, PANELS):
            if tag in series:
                steps, values = zip(*series[tag])
                ax.plot(steps, values, marker="o", markersize=3, label=label)
    for ax, (_, title) in zip(axes, PANELS):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
