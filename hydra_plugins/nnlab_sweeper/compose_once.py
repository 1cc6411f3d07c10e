"""nnlab's default sweeper: Hydra's basic sweeper, composing each job's config once instead of twice.

The basic sweeper composes every job up front, to reject a bad override before any job runs; the
launcher then composes the same job again (about 0.1 s each here), in this process (basic launcher) or
in a worker (joblib, submitit). This sweeper keeps what the check composed and hands it to the launcher:
in this process directly, and to workers inside the pickled loader, for batches of up to KEEP jobs
(beyond that the extra configs would cost more to ship to every task than to compose again).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_loader import ConfigLoader
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

KEEP = 32


class ComposeOnceLoader:
    """A config loader whose `load_sweep_config` hands each composed config out twice: to the up-front
    check, then (the same object) to the job. The check only composes; it keeps nothing."""

    def __init__(self, loader: ConfigLoader) -> None:
        self._loader = loader
        self._composed: dict[tuple[str, ...], DictConfig] = {}

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: Sequence[str]) -> DictConfig:
        key = tuple(sweep_overrides)
        if key in self._composed:
            return self._composed.pop(key)
        config = self._loader.load_sweep_config(master_config, list(sweep_overrides))
        if len(self._composed) < KEEP:
            self._composed[key] = config
        return config

    def __getattr__(self, name: str) -> Any:  # every other ConfigLoader method, unchanged
        if name.startswith("_"):  # private and dunder names (pickle's probes) are this object's own
            raise AttributeError(name)
        return getattr(self._loader, name)


class ComposeOnceSweeper(BasicSweeper):
    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        context = HydraContext(config_loader=ComposeOnceLoader(hydra_context.config_loader),
                               callbacks=hydra_context.callbacks)
        super().setup(hydra_context=context, task_function=task_function, config=config)
