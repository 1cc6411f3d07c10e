"""The in-memory dataset every loader returns, and batching by permutation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass
class Split:
    x: Tensor
    y: Tensor  # int64 labels

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device) -> Split:
        return Split(self.x.to(device, non_blocking=True), self.y.to(device, non_blocking=True))

    def take(self, n: int) -> Split:
        return Split(self.x[:n], self.y[:n])

    def spread(self, n: int) -> Split:
        """At most `n` rows evenly strided over the split (a view): the same rows every run, all classes."""
        if not n or len(self) <= n:
            return self
        step = -(-len(self) // n)
        return Split(self.x[::step], self.y[::step])


@dataclass
class DataBundle:
    """Train/val/test tensors, normalized once, plus what the model builder needs to know."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    kind: str  # "vector" | "image" | "pairs"
    classes: list[str] = field(default_factory=list)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one sample (for pairs: of one member of the pair)."""
        shape = tuple(self.train.x.shape[1:])
        return shape[1:] if self.kind == "pairs" else shape

    def to(self, device: torch.device) -> DataBundle:
        return DataBundle(self.name, self.train.to(device), self.val.to(device), self.test.to(device),
                          self.num_classes, self.kind, self.classes)


def shuffled_batches(split: Split, batch_size: int, generator: torch.Generator, start: int = 0, rank: int = 0,
                     world: int = 1) -> Iterator[tuple[Tensor, Tensor]]:
    """Mini-batches in a fresh random order drawn from `generator` (at the call), from batch number `start` on.

    Under data parallelism every rank draws the same permutation and takes every `world`-th sample
    of each (global) batch, starting at its `rank`.
    """
    perm = torch.randperm(len(split), generator=generator, device=generator.device)  # drawn now, not lazily
    return _slices(split, perm, batch_size, start, rank, world)


def _slices(split: Split, perm: Tensor, batch_size: int, start: int, rank: int,
            world: int) -> Iterator[tuple[Tensor, Tensor]]:
    for begin in range(start * batch_size, len(split), batch_size):
        idx = perm[begin:begin + batch_size][rank::world]
        yield split.x.index_select(0, idx), split.y.index_select(0, idx)  # ~2x faster than x[idx] on CPU


def ordered_batches(split: Split, batch_size: int) -> Iterator[tuple[Tensor, Tensor]]:
    for start in range(0, len(split), batch_size):
        yield split.x[start:start + batch_size], split.y[start:start + batch_size]


def carve_validation(x: Tensor, y: Tensor, fraction: float, seed: int) -> tuple[Split, Split]:
    """A fixed random `fraction` of (x, y) held out for validation."""
    n_val = int(round(len(y) * fraction))
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    val, train = perm[:n_val], perm[n_val:]
    return Split(x.index_select(0, train), y[train]), Split(x.index_select(0, val), y[val])
