"""ACTIVATIONS: name -> module constructor, including the chapter's custom Swish variants."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch
from torch import Tensor, nn

from nnlab.registry import ConfigError, choose, register


class Swish(nn.Module):
    """The chapter's plain Swish, x * sigmoid(x): autograd saves both x and sigmoid(x)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(x)


class _SwishFunction(torch.autograd.Function):
    """Swish that saves only its input and recomputes sigmoid in backward."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return x * torch.sigmoid(x)

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(x)
        return grad_output * (s * (1 + x * (1 - s)))


def swish_efficient(x: Tensor) -> Tensor:
    return _SwishFunction.apply(x)


class MemoryEfficientSwish(nn.Module):
    """Swish through a custom autograd.Function: one saved tensor instead of two."""

    def forward(self, x: Tensor) -> Tensor:
        return swish_efficient(x)


class Step(nn.Module):
    """Heaviside step, the perceptron's activation: 1 where x > 0. Its gradient is zero everywhere."""

    def forward(self, x: Tensor) -> Tensor:
        return (x > 0).to(x.dtype)


ACTIVATIONS: dict[str, Callable[..., nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda negative_slope=0.01: nn.LeakyReLU(negative_slope),
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "gelu": lambda approximate="none": nn.GELU(approximate=approximate),
    "elu": lambda alpha=1.0: nn.ELU(alpha=alpha),
    "silu": nn.SiLU,
    "swish": Swish,
    "swish_efficient": MemoryEfficientSwish,
    "mish": nn.Mish,
    "softplus": lambda beta=1.0, threshold=20.0: nn.Softplus(beta=beta, threshold=threshold),
    "step": Step,
}

# The gain family nn.init.calculate_gain knows that best matches each activation.
GAIN_FAMILY: dict[str, str] = {
    "relu": "relu", "leaky_relu": "leaky_relu", "sigmoid": "sigmoid", "tanh": "tanh",
    "gelu": "relu", "elu": "relu", "silu": "relu", "swish": "relu", "swish_efficient": "relu",
    "mish": "relu", "softplus": "relu", "step": "linear",
}


Ctor = Callable[..., nn.Module]


def register_activation(name: str, gain_family: str = "relu") -> Callable[[Ctor], Ctor]:
    """Decorator: `@register_activation("mine")` on a module class makes `activation=mine` choose it; its
    keyword arguments come from the activation config. `gain_family` picks the init gain (relu, tanh, ...)."""
    def add(ctor: Ctor) -> Ctor:
        register(ACTIVATIONS, "activation", name, ctor)
        GAIN_FAMILY[name.strip().lower()] = gain_family
        return ctor
    return add


def activation_params(name: str) -> list[str]:
    """The keyword parameters an activation accepts."""
    params = inspect.signature(choose(ACTIVATIONS, name, "activation")).parameters.values()
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "inplace"]


def activation_factory(name: str, **params: float | str) -> Callable[[], nn.Module]:
    """A zero-argument constructor for `name` with `params`, checked once up front."""
    ctor = choose(ACTIVATIONS, name, "activation")
    allowed = activation_params(name)
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ConfigError(
            f"activation {name!r} has no parameter {', '.join(unknown)}; "
            f"it accepts: {', '.join(allowed) or 'no parameters'}"
        )
    ctor(**params)  # fail now, not inside the model
    return lambda: ctor(**params)
