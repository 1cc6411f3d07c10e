from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class Perceptron(nn.Module):
    """w·x + b. Trained through its logits (as in the chapter); `predict` applies the step function."""

    def __init__(self, input_shape: tuple[int, ...], out_units: int) -> None:
        super().__init__()
        self.linear = nn.Linear(math.prod(input_shape), out_units)

    def forward(self, x: Tensor) -> Tensor:  # (B, *input_shape) -> (B, out_units) logits
        return self.linear(x.flatten(1))

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        """Step output: 1 where w·x + b > 0 (one unit), else the index of the largest unit."""
        z = self(x)
        return (z[:, 0] > 0).long() if z.shape[1] == 1 else z.argmax(1)
