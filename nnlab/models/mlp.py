from __future__ import annotations

import math

from torch import Tensor, nn

from nnlab.models.blocks import ActFactory, dense


class MLP(nn.Module):
    """Stacked dense layers (`hidden` sizes), then a linear output layer."""

    def __init__(self, input_shape: tuple[int, ...], out_units: int, act: ActFactory, *,
                 hidden: list[int], dropout: float = 0.0, batchnorm: bool = False) -> None:
        super().__init__()
        sizes = [math.prod(input_shape), *hidden]
        self.hidden = nn.Sequential(*(dense(a, b, act, dropout=dropout, batchnorm=batchnorm)
                                      for a, b in zip(sizes, sizes[1:])))
        self.out = nn.Linear(sizes[-1], out_units)

    def forward(self, x: Tensor) -> Tensor:  # (B, ...) -> (B, out_units)
        return self.out(self.hidden(x.flatten(1)))
