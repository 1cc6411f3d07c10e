"""LOSSES and the Objective: what the model must output and what targets the loss needs.

The runner never asks the user for output units or target encoding: the loss and the
data decide them here (CE -> logits over classes, BCE -> one logit for two classes,
MSE -> one-hot regression targets, contrastive -> an embedding distance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nnlab.registry import ConfigError, choose, register


class FocalLoss(nn.Module):
    """Multi-class focal loss, mean of -(1 - p_t)^gamma * log p_t (gamma=0 is cross-entropy)."""

    def __init__(self, gamma: float = 2.0) -> None:
        super().__init__()
        self.gamma = gamma

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        logp_t = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)
        return (-(1 - logp_t.exp()) ** self.gamma * logp_t).mean()


class ProbabilityBCE(nn.Module):
    """The chapter's nn.BCELoss on sigmoid(logit): numerically weaker than BCEWithLogitsLoss."""

    def __init__(self) -> None:
        super().__init__()
        self.bce = nn.BCELoss()

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        return self.bce(torch.sigmoid(logits.float()), target)


class ContrastiveLoss(nn.Module):
    """Hadsell et al.: y*d^2 + (1-y)*max(0, margin-d)^2, halved and averaged; y=1 means 'same'."""

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, distance: Tensor, same: Tensor) -> Tensor:
        d = distance.float()
        return 0.5 * (same * d**2 + (1 - same) * F.relu(self.margin - d) ** 2).mean()


@dataclass(frozen=True)
class LossSpec:
    build: Callable[..., nn.Module]
    target: str  # "index" | "binary" | "onehot" | "distance"


LOSSES: dict[str, LossSpec] = {
    "cross_entropy": LossSpec(lambda label_smoothing=0.0: nn.CrossEntropyLoss(label_smoothing=label_smoothing),
                              "index"),
    "focal": LossSpec(lambda gamma=2.0: FocalLoss(gamma), "index"),
    "bce_logits": LossSpec(lambda: nn.BCEWithLogitsLoss(), "binary"),
    "bce": LossSpec(lambda: ProbabilityBCE(), "binary"),
    "mse": LossSpec(lambda: nn.MSELoss(), "onehot"),
    "l1": LossSpec(lambda: nn.L1Loss(), "onehot"),
    "huber": LossSpec(lambda delta=1.0: nn.HuberLoss(delta=delta), "onehot"),
    "contrastive": LossSpec(lambda margin=1.0: ContrastiveLoss(margin), "distance"),
}


def register_loss(name: str, target: str = "index") -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: `@register_loss("mine")` on a loss class (or factory) whose keyword arguments come from the
    loss config makes `loss=mine` choose it. `target` says what it compares the model's output with:
    "index" (class indices, output = logits over classes), "binary" (one logit for two classes),
    "onehot" (one-hot float targets, output = one unit per class)."""
    if target not in ("index", "binary", "onehot"):
        raise ConfigError(f"register_loss({name!r}): target {target!r} must be one of index, binary, onehot")

    def add(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        register(LOSSES, "loss", name, LossSpec(build, target))
        return build
    return add


@dataclass
class Objective:
    """The loss plus everything derived from it."""

    name: str
    criterion: nn.Module
    out_units: int  # 0 means the model outputs a distance, not units
    target: Callable[[Tensor], Tensor]  # integer labels -> what the criterion expects
    predict: Callable[[Tensor], Tensor]  # model output -> integer labels

    def __call__(self, output: Tensor, labels: Tensor) -> Tensor:
        return self.criterion(output, self.target(labels))


def _argmax(out: Tensor) -> Tensor:
    return out.argmax(dim=1)


def build_objective(name: str, *, num_classes: int, pairs: bool, **params: float) -> Objective:
    """The loss `name` for data with `num_classes` classes (pairs: same/different data)."""
    spec = choose(LOSSES, name, "loss")
    if spec.target == "distance" and not pairs:
        raise ConfigError(f"loss {name!r} compares two inputs: use it with pair data "
                          "(data=mnist_pairs or data=fashion_pairs) and model=siamese")
    try:
        criterion = spec.build(**params)
    except TypeError as e:
        raise ConfigError(f"loss {name!r} got parameters {sorted(params)} it does not accept: {e}") from None
    if spec.target == "index":
        return Objective(name, criterion, num_classes, lambda y: y, _argmax)
    if spec.target == "binary" and num_classes == 2:
        return Objective(name, criterion, 1, lambda y: y.float()[:, None], lambda out: (out[:, 0] > 0).long())
    if spec.target in ("binary", "onehot"):
        return Objective(name, criterion, num_classes,
                         lambda y: F.one_hot(y, num_classes).float(), _argmax)
    margin = float(params.get("margin", 1.0))
    return Objective(name, criterion, 0, lambda y: y.float(), lambda d: (d < margin / 2).long())


class OverExits(nn.Module):
    """Deep supervision for multi-exit models: the mean of `criterion` over every exit's output (B, exits, ...);
    a single output (B, ...) passes straight through (evaluation, where the model has chosen its exit)."""

    def __init__(self, criterion: nn.Module) -> None:
        super().__init__()
        self.criterion = criterion

    def forward(self, out: Tensor, target: Tensor) -> Tensor:
        if out.ndim < 3:
            return self.criterion(out, target)
        return torch.stack([self.criterion(out[:, k], target) for k in range(out.shape[1])]).mean()


def over_exits(objective: Objective) -> Objective:
    """`objective` for a model whose training output stacks every exit: loss averaged over the exits,
    predictions from the last (deepest) exit."""
    predict = objective.predict
    return Objective(objective.name, OverExits(objective.criterion), objective.out_units, objective.target,
                     lambda out: predict(out[:, -1] if out.ndim == 3 else out))
