"""3.3 dynamic computation: a residual MLP with an exit head after every block. Training supervises every
exit; at inference a sample leaves at the first exit whose confidence reaches `exit_threshold`, so easy
inputs run fewer blocks than hard ones."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from nnlab.models.blocks import ActFactory, dense
from nnlab.models.residual import ResidualBlock


def confidence(logits: Tensor) -> Tensor:
    """Top-class probability: softmax over units, or max(p, 1 - p) for one binary logit."""
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits[:, 0].float())
        return torch.maximum(p, 1 - p)
    return torch.softmax(logits.float(), dim=1).amax(dim=1)


class EarlyExitMLP(nn.Module):
    """Stem -> `depth` residual blocks, each followed by its own linear exit head.

    train mode: every exit's output, (B, depth, out_units) (the runner averages the loss over exits);
    eval mode:  (B, out_units), each row from the first exit with confidence >= `exit_threshold` (the last
                exit otherwise; a threshold of 1 always runs every block). Blocks run only on the rows still
                undecided; `last_depth` holds the number of blocks each row of the last batch used.
    """

    multi_exit = True

    def __init__(self, input_shape: tuple[int, ...], out_units: int, act: ActFactory, *, width: int = 128,
                 depth: int = 4, exit_threshold: float = 0.9, dropout: float = 0.0, batchnorm: bool = False) -> None:
        super().__init__()
        self.stem = dense(math.prod(input_shape), width, act, batchnorm=batchnorm)
        self.blocks = nn.ModuleList(ResidualBlock(width, act, skip=True, dropout=dropout, batchnorm=batchnorm)
                                    for _ in range(depth))
        self.exits = nn.ModuleList(nn.Linear(width, out_units) for _ in range(depth))
        self.exit_threshold = exit_threshold
        self.last_depth: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x.flatten(1))
        if self.training:
            outs = []
            for block, head in zip(self.blocks, self.exits):
                h = block(h)
                outs.append(head(h))
            return torch.stack(outs, dim=1)
        return self.early_exit(h, self.exit_threshold)

    def early_exit(self, h: Tensor, threshold: float) -> Tensor:
        n, last = len(h), len(self.blocks) - 1
        rows = torch.arange(n, device=h.device)  # the rows still running
        depth = torch.zeros(n, dtype=torch.long, device=h.device)
        out: Tensor | None = None
        for k, (block, head) in enumerate(zip(self.blocks, self.exits)):
            h = block(h)
            logits = head(h)
            if out is None:
                out = logits.new_empty((n, logits.shape[1]))
            if k == last:
                done = torch.ones_like(rows, dtype=torch.bool)
            else:  # a threshold of 1 never exits early (a saturated softmax can round to exactly 1)
                done = confidence(logits) >= threshold if threshold < 1 else torch.zeros_like(rows, dtype=torch.bool)
            out[rows[done]] = logits[done]
            depth[rows[done]] = k + 1
            rows, h = rows[~done], h[~done]
            if not len(rows):
                break
        self.last_depth = depth
        return out  # type: ignore[return-value]


@torch.no_grad()
def exit_curve(model: EarlyExitMLP, batches: Callable[[], Iterable[tuple[Tensor, Tensor]]],
               predict: Callable[[Tensor], Tensor], thresholds: Iterable[float]) -> list[tuple[float, float, float]]:
    """(threshold, accuracy, mean blocks used) at each threshold, over the batches `batches()` yields."""
    was_training, kept = model.training, model.exit_threshold
    model.eval()
    rows = []
    try:
        for t in thresholds:
            model.exit_threshold = t
            correct = used = seen = 0
            for xb, yb in batches():
                correct += int((predict(model(xb)) == yb).sum())
                used += int(model.last_depth.sum())  # type: ignore[union-attr]
                seen += len(yb)
            rows.append((t, correct / max(seen, 1), used / max(seen, 1)))
    finally:
        model.exit_threshold = kept
        model.train(was_training)
    return rows
