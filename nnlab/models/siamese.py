from __future__ import annotations

import math

from torch import Tensor, nn

from nnlab.models.blocks import ActFactory
from nnlab.models.mlp import MLP


class Siamese(nn.Module):
    """One shared encoder applied to both members of a pair.

    out_units > 0: a head on |e1 - e2| gives logits (same/different);
    out_units == 0: the output is the embedding distance ||e1 - e2|| (contrastive loss).
    """

    def __init__(self, input_shape: tuple[int, ...], out_units: int, act: ActFactory, *,
                 hidden: list[int], embedding: int = 64, dropout: float = 0.0, batchnorm: bool = False) -> None:
        super().__init__()
        self.encoder = MLP((math.prod(input_shape),), embedding, act, hidden=hidden, dropout=dropout,
                           batchnorm=batchnorm)
        self.head = nn.Linear(embedding, out_units) if out_units else None

    def forward(self, pair: Tensor) -> Tensor:  # (B, 2, ...) -> (B, out_units) or (B,)
        b = pair.shape[0]
        e = self.encoder(pair.flatten(2).flatten(0, 1)).view(b, 2, -1)  # both members in one batch
        diff = e[:, 0] - e[:, 1]
        if self.head is None:
            return diff.pow(2).sum(1).add(1e-9).sqrt()
        return self.head(diff.abs())
