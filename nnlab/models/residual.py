from __future__ import annotations

import math

from torch import Tensor, nn

from nnlab.models.blocks import ActFactory, dense


class ResidualBlock(nn.Module):
    """h + f(h) with f = Linear -> [BN] -> act -> [Dropout]; `skip=False` gives the plain layer f(h)."""

    def __init__(self, width: int, act: ActFactory, *, skip: bool, dropout: float, batchnorm: bool) -> None:
        super().__init__()
        self.f = dense(width, width, act, dropout=dropout, batchnorm=batchnorm)
        self.skip = skip

    def forward(self, h: Tensor) -> Tensor:
        return h + self.f(h) if self.skip else self.f(h)


class ResidualMLP(nn.Module):
    """Stem -> `depth` blocks of `width` units -> linear head. Same net with and without skips."""

    def __init__(self, input_shape: tuple[int, ...], out_units: int, act: ActFactory, *, width: int = 128,
                 depth: int = 4, skip: bool = True, dropout: float = 0.0, batchnorm: bool = False) -> None:
        super().__init__()
        self.stem = dense(math.prod(input_shape), width, act, batchnorm=batchnorm)
        self.blocks = nn.Sequential(*(ResidualBlock(width, act, skip=skip, dropout=dropout, batchnorm=batchnorm)
                                      for _ in range(depth)))
        self.out = nn.Linear(width, out_units)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.blocks(self.stem(x.flatten(1))))
