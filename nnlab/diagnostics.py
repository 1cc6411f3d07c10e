"""Activation statistics through forward hooks: per-layer std, dead units, histograms."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from nnlab.activations import ACTIVATIONS

ACTIVATION_TYPES = tuple({type(ctor()) for ctor in ACTIVATIONS.values()})


@contextmanager
def recorded_activations(model: nn.Module) -> Iterator[list[tuple[str, Tensor]]]:
    """Collect (name, output) of every activation module, in forward order, while inside the block."""
    outputs: list[tuple[str, Tensor]] = []
    handles = [m.register_forward_hook(lambda mod, inp, out, name=name: outputs.append((name, out.detach())))
               for name, m in model.named_modules() if isinstance(m, ACTIVATION_TYPES)]
    try:
        yield outputs
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def probe(model: nn.Module, x: Tensor) -> list[tuple[str, Tensor]]:
    """Activation outputs for one batch, in eval mode (dropout off)."""
    was_training = model.training
    model.eval()
    with recorded_activations(model) as outputs:
        model(x)
    model.train(was_training)
    return outputs


def dead_fraction(out: Tensor) -> float:
    """Share of units whose output does not vary over the batch (dead ReLUs, saturated sigmoids)."""
    units = out.transpose(0, 1).flatten(1) if out.ndim > 2 else out.T  # (units, samples[*positions])
    return (units.float().std(dim=1) < 1e-6).float().mean().item() if units.shape[1] > 1 else 0.0


def layer_stats(model: nn.Module, x: Tensor) -> list[dict[str, float | str]]:
    """Per activation layer: name, output mean, std and dead fraction on batch `x`."""
    return [{"layer": name, "mean": out.float().mean().item(), "std": out.float().std().item(),
             "dead": dead_fraction(out)} for name, out in probe(model, x)]
