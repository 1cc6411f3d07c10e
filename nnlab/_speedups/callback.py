"""The speed-ups that hook into a Hydra run: the joblib fork server at sweep start, gc.freeze at job start."""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from nnlab import _speedups


class SpeedupsCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        if _speedups.is_joblib(config.hydra.launcher):  # also where a preset, not the command line, chose joblib
            _speedups.start_forkserver()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        _speedups.freeze_once()
