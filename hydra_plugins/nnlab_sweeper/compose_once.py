"""nnlab's default sweeper (hparams_search=grid), where Hydra's plugin discovery looks for it.

The code is `nnlab._speedups.compose_once.GridSweeper`: Hydra's basic sweeper composing each set of
config-group choices once.
"""

from nnlab._speedups.compose_once import GridSweeper


class ComposeOnceSweeper(GridSweeper):
    """Hydra's basic sweeper; each set of config-group choices composed once (see nnlab._speedups)."""
