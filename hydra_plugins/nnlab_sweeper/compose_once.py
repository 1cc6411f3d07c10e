"""nnlab's default sweeper (hparams_search=grid), where Hydra's plugin discovery looks for it.

The code is `nnlab._speedups.compose_once.GridSweeper`: Hydra's basic sweeper composing each set of
config-group choices once. With `resume: true` (set by `nnlab resume <sweep>`) it runs only the jobs of the
sweep folder that have not finished (nnlab.sweep_resume), each under its original number and folder.
"""

from typing import Any

from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from nnlab._speedups.compose_once import GridSweeper
from nnlab.registry import ConfigAbort, ConfigError


class ComposeOnceSweeper(GridSweeper):
    """Hydra's basic sweeper; each set of config-group choices composed once (see nnlab._speedups); resumable."""

    def __init__(self, max_batch_size: int | None = None, params: Any = None, resume: bool = False,
                 rerun_failed: bool = False) -> None:
        super().__init__(max_batch_size=max_batch_size, params=params)
        self.resume, self.rerun_failed = resume, rerun_failed

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
        if self.resume:
            from nnlab.sweep_resume import ResumingLauncher

            self.launcher = ResumingLauncher(self.launcher, self.hydra_context.config_loader, config,
                                             self.rerun_failed)

    def sweep(self, arguments: list[str]) -> Any:
        try:
            return super().sweep(arguments)
        except ConfigError as e:
            raise ConfigAbort(str(e)) from None
