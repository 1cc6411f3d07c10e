"""Layer helpers shared by the architectures."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

ActFactory = Callable[[], nn.Module]


def dense(n_in: int, n_out: int, act: ActFactory, *, dropout: float = 0.0, batchnorm: bool = False) -> nn.Sequential:
    """Linear -> [BatchNorm1d] -> activation -> [Dropout]: the chapter's hidden layer."""
    layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(n_out))
    layers.append(act())
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


def classifier_head(features: int, width: int, out_units: int, act: ActFactory, dropout: float = 0.0) -> nn.Sequential:
    """Flatten -> Linear -> activation -> [Dropout] -> Linear: the convolutional nets' classifier."""
    return nn.Sequential(nn.Flatten(), nn.Linear(features, width), act(),
                         nn.Dropout(dropout) if dropout else nn.Identity(), nn.Linear(width, out_units))
