"""Every activation in the registry against a reference: torch's functional op or a closed form."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nnlab.activations import ACTIVATIONS, MemoryEfficientSwish, Swish, activation_factory, swish_efficient
from nnlab.registry import ConfigError

X = torch.linspace(-4, 4, 101, dtype=torch.float64)

REFERENCE = {
    "relu": F.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "gelu": F.gelu,
    "elu": lambda x: torch.where(x > 0, x, torch.exp(x) - 1),  # the chapter's ELU, alpha=1
    "silu": lambda x: x / (1 + torch.exp(-x)),
    "swish": lambda x: x / (1 + torch.exp(-x)),
    "swish_efficient": lambda x: x / (1 + torch.exp(-x)),
    "mish": lambda x: x * torch.tanh(torch.log1p(torch.exp(x))),
    "softplus": lambda x: torch.log1p(torch.exp(x)),
    "step": lambda x: (x > 0).double(),
}


def test_reference_covers_registry():
    """Every registered activation has a reference here (a new one cannot go untested)."""
    assert set(REFERENCE) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_reference(name):
    """The module built from the registry computes the reference function."""
    module = activation_factory(name)()
    torch.testing.assert_close(module(X), REFERENCE[name](X))


def test_chapter_swish_values():
    """The chapter's printed values: Swish([-1, 0, 1]) = [-0.2689, 0, 0.7311]."""
    out = Swish()(torch.tensor([-1.0, 0.0, 1.0]))
    torch.testing.assert_close(out, torch.tensor([-0.2689, 0.0, 0.7311]), atol=1e-4, rtol=0)


def test_memory_efficient_swish_gradcheck():
    """The custom autograd.Function's backward agrees with numerical differentiation in float64."""
    x = torch.randn(20, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(swish_efficient, (x,), eps=1e-6, atol=1e-4)


def test_memory_efficient_swish_saves_less():
    """The custom Function keeps one tensor for backward; the plain module keeps more (x and sigmoid(x))."""
    def saved(module):
        count = 0
        def pack(t):
            nonlocal count
            count += 1
            return t
        x = torch.randn(8, requires_grad=True)
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            module(x)
        return count
    assert saved(MemoryEfficientSwish()) == 1
    assert saved(Swish()) >= 2


def test_parameters_are_passed_and_checked():
    """leaky_relu's slope and elu's alpha reach the module; unknown parameters are named."""
    assert activation_factory("leaky_relu", negative_slope=0.2)().negative_slope == 0.2
    assert activation_factory("elu", alpha=0.5)().alpha == 0.5
    with pytest.raises(ConfigError, match="activation 'tanh' has no parameter slope; it accepts: no parameters"):
        activation_factory("tanh", slope=0.1)


def test_unknown_activation_lists_choices():
    """An unknown activation name is refused, naming it and listing the registered choices."""
    with pytest.raises(ConfigError) as e:
        activation_factory("relux")
    assert "unknown activation 'relux'; choose one of: elu, gelu, leaky_relu, mish, relu" in str(e.value)
