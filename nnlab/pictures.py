"""End-of-run pictures from the test split: a confusion matrix and the misclassified images (image data),
the test embeddings of a siamese encoder (projector). Computed here; the tracker writes them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from nnlab.loop import Pipeline
    from nnlab.tracker import Tracker

MAX_WRONG = 64  # misclassified images in the grid (8 x 8)
MAX_EMBEDDED = 500  # test images in the projector


@torch.no_grad()
def predictions(p: Pipeline, x: Tensor) -> Tensor:
    """The model's predicted class for every row of `x`, in eval mode, in evaluation-sized batches."""
    was_training = p.model.training
    p.model.eval()
    out = [p.objective.predict(p.model(x[i:i + p.settings.eval_batch_size]))
           for i in range(0, len(x), p.settings.eval_batch_size)]
    p.model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def confusion(y: Tensor, pred: Tensor, n: int) -> Tensor:
    """(n, n) counts: row = true class, column = predicted class."""
    return torch.bincount(y * n + pred, minlength=n * n).view(n, n)


def confusion_markdown(matrix: Tensor, names: list[str]) -> str:
    head = "| true ↓ / predicted → | " + " | ".join(names) + " |"
    rows = [f"| **{names[i]}** | " + " | ".join(str(int(c)) for c in row) + " |" for i, row in enumerate(matrix)]
    return "\n".join([head, "|---" * (len(names) + 1) + "|", *rows])


def confusion_image(matrix: Tensor, cell: int = 24) -> Tensor:
    """Row-normalized confusion matrix as a (3, H, W) heat map: white = 0, dark blue = the whole row."""
    frac = matrix.float() / matrix.sum(1, keepdim=True).clamp(min=1)
    big = frac.repeat_interleave(cell, 0).repeat_interleave(cell, 1)
    return torch.stack([1 - big, 1 - 0.7 * big, 1 - 0.3 * big]).clamp(0, 1)


def _unit(images: Tensor) -> Tensor:
    """Each image min-max scaled to [0, 1] (the data are normalized), as float (N, C, H, W)."""
    flat = images.float().flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp(min=1e-8)).view_as(images.float())


def test_pictures(p: Pipeline, tracker: Tracker) -> None:
    """Image classification: confusion matrix (image + table) and misclassified test images;
    pairs: the encoder's embeddings of test images for the projector."""
    if not tracker.tensorboard:
        return
    test = p.data.test
    if p.data.kind == "image" and len(test):
        x, y = test.x.cpu(), test.y.cpu()
        pred = predictions(p, test.x).cpu()
        names = p.data.classes or [str(c) for c in range(p.data.num_classes)]
        matrix = confusion(y, pred, p.data.num_classes)
        tracker.picture("test/confusion_matrix", confusion_image(matrix), confusion_markdown(matrix, names))
        wrong = torch.nonzero(pred != y).squeeze(1)[:MAX_WRONG]
        tracker.images("test/misclassified", _unit(x[wrong].contiguous()),
                       [f"{names[int(y[i])]} → {names[int(pred[i])]}" for i in wrong])
    elif p.data.kind == "pairs" and hasattr(p.model, "encoder") and len(test):
        first = test.x[:MAX_EMBEDDED, 0]  # the first image of each test pair
        with torch.no_grad():
            was_training = p.model.training
            p.model.eval()
            vectors = p.model.encoder(first.flatten(1).float())
            p.model.train(was_training)
        same = ["same" if int(v) else "different" for v in test.y[:MAX_EMBEDDED]]
        tracker.embedding(vectors.cpu(), [f"test pair {i} ({s} pair)" for i, s in enumerate(same)],
                          _unit(first.cpu().contiguous()), "test_embeddings")
