"""INITS: weight-initialization schemes applied to every Linear/Conv layer, gain matched to the activation,
and to LSTM/GRU layers gate block by gate block (3.4: orthogonal recurrent, Xavier input, forget-gate bias)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from nnlab.activations import GAIN_FAMILY
from nnlab.registry import ConfigError, choose, register

Layer = nn.Linear | nn.Conv1d | nn.Conv2d
Recurrent = nn.LSTM | nn.GRU | nn.RNN
GATES: dict[type, int] = {nn.LSTM: 4, nn.GRU: 3, nn.RNN: 1}  # LSTM rows i, f, g, o; GRU r, z, n


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
    "recurrent": _xavier(normal=False),  # Linear/Conv layers: Xavier; LSTM/GRU: its recurrent/input keys
}


def register_init(name: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Decorator: `@register_init("mine")` on `fn(weight, *, family, slope, mode, std, **_)` (in-place, under
    no_grad) makes `init=mine` choose it; it gets each Linear/Conv weight and each LSTM/GRU gate block."""
    return lambda fn: register(INITS, "init", name, fn)


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
        "recurrent": gain * math.sqrt(2.0 / (fan_in + fan_out)),  # Xavier-uniform outside LSTM/GRU layers
        "normal": std,
        "zeros": 0.0,
    }.get(scheme)


def init_layers(model: nn.Module, scheme: str, *, activation: str, nonlinearity: str = "auto",
                mode: str = "fan_in", std: float = 0.01, bias: float | None = None, negative_slope: float = 0.01,
                recurrent: str | None = None, input: str | None = None, forget_bias: float | None = None) -> int:
    """Initialize every Linear/Conv weight (and bias when `bias` is set) with `scheme`, and every LSTM/GRU
    layer with `recurrent` (weight_hh) and `input` (weight_ih) schemes, `scheme` where they are None.

    Returns how many layers were initialized."""
    fn = choose(INITS, scheme, "init")
    rec_fn = fn if recurrent is None else choose(INITS, recurrent, "init.recurrent scheme")
    in_fn = fn if input is None else choose(INITS, input, "init.input scheme")
    if mode not in ("fan_in", "fan_out"):
        raise ConfigError(f"init.mode must be 'fan_in' or 'fan_out', got {mode!r}")
    family = gain_family(activation, nonlinearity)
    # the gates have their own sigmoid/tanh: gain 1 unless init.nonlinearity names a family
    rec_family = "linear" if nonlinearity == "auto" else nonlinearity
    count = 0
    for layer in model.modules():
        with torch.no_grad():
            if isinstance(layer, Recurrent):
                count += 1
                init_recurrent(layer, in_fn, rec_fn, family=rec_family, slope=negative_slope, mode=mode, std=std,
                               bias=bias, forget_bias=forget_bias)
            elif isinstance(layer, Layer):
                count += 1
                if fn is not None:
                    fn(layer.weight, family=family, slope=negative_slope, mode=mode, std=std)
                if bias is not None and layer.bias is not None:
                    nn.init.constant_(layer.bias, bias)
    return count


def init_recurrent(layer: nn.LSTM | nn.GRU | nn.RNN, input_fn: Callable[..., None] | None,
                   recurrent_fn: Callable[..., None] | None, *, bias: float | None, forget_bias: float | None,
                   **kw: float | str) -> None:
    """Each gate's block of weight_ih_l* / weight_hh_l* on its own (its own fans, its own orthogonal matrix).

    `forget_bias` goes to gate block 1: the LSTM's forget gate (rows H..2H of i, f, g, o) and the GRU's update
    gate z (rows H..2H of r, z, n; h' = (1 - z) * n + z * h, so a positive z bias also keeps the old state).
    PyTorch adds two biases, bias_ih + bias_hh: the whole value goes into bias_ih and bias_hh's block is
    zeroed, so the gate's total bias is exactly `forget_bias`."""
    gates, size = GATES[type(layer)], layer.hidden_size
    for name, param in layer.named_parameters():
        fn = input_fn if name.startswith("weight_ih") else recurrent_fn if name.startswith("weight_hh") else None
        if fn is not None:
            for g in range(gates):
                fn(param[g * size:(g + 1) * size], **kw)
        if name.startswith("bias"):
            if bias is not None:
                nn.init.constant_(param, bias)
            if forget_bias is not None and gates > 1:
                param[size:2 * size] = forget_bias if name.startswith("bias_ih") else 0.0
