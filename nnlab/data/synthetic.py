"""Boolean truth tables (AND, OR, NAND, XOR) for the perceptron experiments."""

from __future__ import annotations

import torch

from nnlab.data.bundle import DataBundle, Split
from nnlab.registry import choose

TRUTH_TABLE = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
GATES = {
    "and": torch.tensor([0, 0, 0, 1]),
    "or": torch.tensor([0, 1, 1, 1]),
    "nand": torch.tensor([1, 1, 1, 0]),
    "xor": torch.tensor([0, 1, 1, 0]),
}


def load_gate(gate: str = "xor", *, repeat: int = 1, noise: float = 0.0, seed: int = 0) -> DataBundle:
    """The 4-row truth table of `gate`; an epoch sees it `repeat` times (with optional input noise).

    Validation and test are the exact truth table: the question is whether the model fits it.
    """
    labels = choose(GATES, gate, "gate")
    x = TRUTH_TABLE.repeat(repeat, 1)
    if noise:
        x = x + noise * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    exact = Split(TRUTH_TABLE.clone(), labels.clone())
    return DataBundle(gate, Split(x, labels.repeat(repeat)), exact, exact, 2, "vector", ["0", "1"])
