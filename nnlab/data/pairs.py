"""Same/different digit pairs for the weight-sharing (siamese) network."""

from __future__ import annotations

import torch

from nnlab.data.bundle import DataBundle, Split
from nnlab.data.vision import load_vision


def make_pairs(split: Split, n: int, generator: torch.Generator) -> Split:
    """`n` pairs (n, 2, C, H, W), half from the same class (label 1), half from different ones (0)."""
    n_same = n // 2
    first = torch.randint(len(split), (n,), generator=generator)
    by_class = [torch.nonzero(split.y == c).squeeze(1) for c in range(int(split.y.max()) + 1)]
    second = torch.empty(n, dtype=torch.long)
    for i, c in enumerate(split.y[first[:n_same]].tolist()):
        pool = by_class[c]
        second[i] = pool[torch.randint(len(pool), (1,), generator=generator)]
    # different: redraw until the classes differ (few redraws: 9 of 10 classes differ)
    other = torch.randint(len(split), (n - n_same,), generator=generator)
    clash = split.y[other] == split.y[first[n_same:]]
    while clash.any():
        other[clash] = torch.randint(len(split), (int(clash.sum()),), generator=generator)
        clash = split.y[other] == split.y[first[n_same:]]
    second[n_same:] = other
    same = torch.cat([torch.ones(n_same), torch.zeros(n - n_same)]).long()
    return Split(torch.stack([split.x[first], split.x[second]], dim=1), same)


def load_pairs(base: str, *, root: str, pairs: int = 20000, val_fraction: float = 0.1, split_seed: int = 0,
               limit_train: int = 0, download: bool = True) -> DataBundle:
    digits = load_vision(base, root=root, val_fraction=val_fraction, split_seed=split_seed,
                         limit_train=limit_train, download=download)
    g = torch.Generator().manual_seed(split_seed)
    n_eval = max(2, pairs // 5)
    return DataBundle(f"{base}_pairs", make_pairs(digits.train, pairs, g), make_pairs(digits.val, n_eval, g),
                      make_pairs(digits.test, n_eval, g), 2, "pairs", ["different", "same"])
