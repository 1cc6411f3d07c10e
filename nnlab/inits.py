"""INITS: weight-initialization schemes applied to every Linear/Conv layer, gain matched to the activation."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from nnlab.activations import GAIN_FAMILY
from nnlab.registry import ConfigError, choose

Layer = nn.Linear | nn.Conv1d | nn.Conv2d


def _gain(family: str, slope: float) -> float:
    return nn.init.calculate_gain(family, slope if family == "leaky_relu" else None)


def _kaiming(normal: bool) -> Callable[..., None]:
    def init(w: torch.Tensor, *, family: str, slope: float, mode: str, **_: float) -> None:
        fn = nn.init.kaiming_normal_ if normal else nn.init.kaiming_uniform_
        # kaiming_* only know relu/leaky_relu/linear-style gains; others go through calculate_gain too.
        fn(w, a=slope if family == "leaky_relu" else 0.0, mode=mode, nonlinearity=family)
    return init


def _xavier(normal: bool) -> Callable[..., None]:
    def init(w: torch.Tensor, *, family: str, slope: float, **_: float) -> None:
        (nn.init.xavier_normal_ if normal else nn.init.xavier_uniform_)(w, gain=_gain(family, slope))
    return init


def _orthogonal(w: torch.Tensor, *, family: str, slope: float, **_: float) -> None:
    nn.init.orthogonal_(w, gain=_gain(family, slope))


def _normal(w: torch.Tensor, *, std: float, **_: float) -> None:
    nn.init.normal_(w, 0.0, std)


def _zeros(w: torch.Tensor, **_: float) -> None:
    nn.init.zeros_(w)


INITS: dict[str, Callable[..., None] | None] = {
    "default": None,  # keep PyTorch's own reset_parameters()
    "kaiming_normal": _kaiming(normal=True),
    "kaiming_uniform": _kaiming(normal=False),
    "xavier_normal": _xavier(normal=True),
    "xavier_uniform": _xavier(normal=False),
    "orthogonal": _orthogonal,
    "normal": _normal,
    "zeros": _zeros,
}


def gain_family(activation: str, nonlinearity: str = "auto") -> str:
    """The calculate_gain family: the activation's own unless `nonlinearity` names one."""
    return GAIN_FAMILY.get(activation, "relu") if nonlinearity == "auto" else nonlinearity


def expected_std(scheme: str, fan_in: int, fan_out: int, *, family: str, slope: float = 0.01,
                 mode: str = "fan_in", std: float = 0.01) -> float | None:
    """Closed-form std of a weight initialized by `scheme` (None for default/orthogonal)."""
    gain = _gain(family, slope)
    fan = fan_in if mode == "fan_in" else fan_out
    return {
        "kaiming_normal": gain / math.sqrt(fan),
        "kaiming_uniform": gain / math.sqrt(fan),
        "xavier_normal": gain * math.sqrt(2.0 / (fan_in + fan_out)),
        "xavier_uniform": gain * math.sqrt(2.0 / (fan_in + fan_out)),
        "normal": std,
        "zeros": 0.0,
    }.get(scheme)


def init_layers(model: nn.Module, scheme: str, *, activation: str, nonlinearity: str = "auto",
                mode: str = "fan_in", std: float = 0.01, bias: float | None = None,
                negative_slope: float = 0.01) -> int:
    """Initialize every Linear/Conv weight (and bias when `bias` is set); returns how many layers."""
    fn = choose(INITS, scheme, "init")
    if mode not in ("fan_in", "fan_out"):
        raise ConfigError(f"init.mode must be 'fan_in' or 'fan_out', got {mode!r}")
    family = gain_family(activation, nonlinearity)
    count = 0
    for layer in model.modules():
        if not isinstance(layer, Layer):
            continue
        count += 1
        with torch.no_grad():
            if fn is not None:
                fn(layer.weight, family=family, slope=negative_slope, mode=mode, std=std)
            if bias is not None and layer.bias is not None:
                nn.init.constant_(layer.bias, bias)
    return count
