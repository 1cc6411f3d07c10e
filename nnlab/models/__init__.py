"""MODELS: name -> architecture. Builders take plain arguments; the runner derives shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from nnlab.models.blocks import ActFactory
from nnlab.models.cnn import CNN
from nnlab.models.dynamic import EarlyExitMLP
from nnlab.models.mlp import MLP
from nnlab.models.multibranch import MultiBranchCNN
from nnlab.models.perceptron import Perceptron
from nnlab.models.recurrent import gru, lstm
from nnlab.models.residual import ResidualMLP
from nnlab.models.siamese import Siamese
from nnlab.registry import ConfigError, choose, register

MODELS: dict[str, Callable[..., nn.Module]] = {
    "perceptron": lambda input_shape, out_units, act, **kw: Perceptron(input_shape, out_units, **kw),
    "mlp": MLP,
    "residual": ResidualMLP,
    "cnn": CNN,
    "siamese": Siamese,
    "multibranch": MultiBranchCNN,
    "dynamic": EarlyExitMLP,
    "lstm": lstm,
    "gru": gru,
}
IMAGE_MODELS = ("cnn", "multibranch")


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: `@register_model("my_net")` on a class or function called as
    `ctor(input_shape, out_units, act, **model_config)` makes `model=my_net` choose it."""
    return lambda ctor: register(MODELS, "model", name, ctor)


def build_model(name: str, *, input_shape: tuple[int, ...], out_units: int, data_kind: str,
                act: ActFactory, **params: Any) -> nn.Module:
    """`name` for inputs of `input_shape` with `out_units` outputs (0: a distance, siamese only)."""
    ctor = choose(MODELS, name, "model")
    if (name == "siamese") != (data_kind == "pairs"):
        raise ConfigError(
            f"model {name!r} cannot take {data_kind} data: pair data (data=mnist_pairs or "
            "data=fashion_pairs) goes with model=siamese, and model=siamese needs pair data"
        )
    if name in IMAGE_MODELS and len(input_shape) != 3:
        raise ConfigError(f"model {name!r} needs image data (C, H, W); this data's samples have shape {input_shape}")
    if name == "perceptron":
        params = {}  # a perceptron has no hidden layers to drop out or normalize
    try:
        return ctor(input_shape, out_units, act, **params)
    except TypeError as e:
        raise ConfigError(f"model {name!r}: {e}") from None


__all__ = ["MODELS", "ActFactory", "build_model", "register_model"]
