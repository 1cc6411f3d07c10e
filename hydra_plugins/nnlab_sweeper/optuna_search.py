"""nnlab's Optuna sweeper (hparams_search=optuna_lr), where Hydra's plugin discovery looks for it.

The code is `nnlab.search.OptunaSearch`: current Optuna's ask/tell, a SQLite study in the sweep folder,
pruning fed by each trial's per-epoch validation metric.
"""

from nnlab.registry import ConfigAbort, ConfigError
from nnlab.search import OptunaSearch


class OptunaSweeper(OptunaSearch):
    """Optuna's ask/tell over `hydra.sweeper.params`; a configuration mistake ends in one paragraph, exit 2."""

    def sweep(self, arguments: list[str]) -> None:
        try:
            super().sweep(arguments)
        except ConfigError as e:
            raise ConfigAbort(str(e)) from None
