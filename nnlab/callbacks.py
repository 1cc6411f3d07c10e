"""Hydra callbacks: the comparison table at the end of every sweep, failures listed with their errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

FAILED: list[str] = []  # read by the CLI to set the exit code of a sweep


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from nnlab.compare import failures_text, find_runs, print_comparison
        from nnlab.tracker import make_console

        sweep = Path(str(config.hydra.sweep.dir))
        runs = find_runs([sweep])
        if not runs:
            return
        monitor = config.get("regularizer", {}).get("early_stopping", {}).get("monitor", "val/loss")
        metric = "final/val_acc" if monitor.endswith("acc") or monitor.endswith("loss") else f"final/{monitor}"
        print_comparison(runs, metric, f"sweep {sweep}: {len(runs)} jobs", make_console())
        FAILED[:] = failures_text(runs)
