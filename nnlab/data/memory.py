"""The adding problem (Hochreiter & Schmidhuber 1997) as a two-class task: a memory test for recurrent nets.

Each sequence has `length` steps of 2 features: a random value in [0, 1) and a marker that is 1 at exactly
two steps (one in the first tenth, one in the second half), 0 elsewhere. The label says whether the two
marked values add up to more than 1 (balanced by symmetry). The first marked value must be remembered
across most of the sequence; nothing else in the input says what the answer is. Generated in memory from
`seed`: the same seed gives the same tensors on every machine.
"""

from __future__ import annotations

import torch

from nnlab.data.bundle import DataBundle, Split


def adding_split(n: int, length: int, generator: torch.Generator) -> Split:
    """`n` sequences (n, length, 2) and their labels (sum of the two marked values > 1)."""
    values = torch.rand(n, length, generator=generator)
    first = torch.randint(0, max(1, length // 10), (n,), generator=generator)
    second = torch.randint(length // 2, length, (n,), generator=generator)
    marker = torch.zeros(n, length)
    rows = torch.arange(n)
    marker[rows, first] = 1.0
    marker[rows, second] = 1.0
    total = values[rows, first] + values[rows, second]
    return Split(torch.stack([values, marker], dim=2), (total > 1.0).long())


def load_adding(*, length: int = 50, train: int = 10000, val: int = 2000, test: int = 2000,
                seed: int = 0) -> DataBundle:
    """Train/val/test adding-problem sequences of `length` steps, drawn in that order from `seed`."""
    g = torch.Generator().manual_seed(seed)
    splits = [adding_split(n, length, g) for n in (train, val, test)]
    return DataBundle("adding", *splits, 2, "sequence", ["sum <= 1", "sum > 1"])
