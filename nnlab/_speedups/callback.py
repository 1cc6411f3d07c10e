"""The speed-up that hooks into a Hydra run: the joblib fork server at sweep start (gc.freeze comes with the first
job, after its config is checked: cli/train.py)."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from nnlab import _speedups


class SpeedupsCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if _speedups.is_joblib(config.hydra.launcher):  # also where a preset, not the command line, chose joblib
            _speedups.start_forkserver()
