"""Architectures: shapes, the chapter's perceptron, skip connections, weight sharing, dropout in eval."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nnlab.activations import activation_factory
from nnlab.models import MODELS, build_model
from nnlab.models.perceptron import Perceptron
from nnlab.registry import ConfigError

RELU = activation_factory("relu")
PARAMS = {
    "perceptron": {},
    "mlp": {"hidden": [32, 16]},
    "residual": {"width": 16, "depth": 3},
    "cnn": {"channels": [4, 8], "blocks": 1, "head": 16},
    "siamese": {"hidden": [32], "embedding": 8},
    "multibranch": {"channels": [8, 16], "branches": ["1x1", "3x3", "dilated", "pool"], "head": 16},
    "dynamic": {"width": 16, "depth": 3},
    "lstm": {"hidden_size": 16},
    "gru": {"hidden_size": 16},
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_maps_input_to_out_units(name):
    """Every registered model maps a batch of its input (images or pairs) to (batch, out_units)."""
    kind = "pairs" if name == "siamese" else "image"
    model = build_model(name, input_shape=(1, 28, 28), out_units=10, data_kind=kind, act=RELU, **PARAMS[name])
    x = torch.randn(5, 2, 1, 28, 28) if name == "siamese" else torch.randn(5, 1, 28, 28)
    if getattr(model, "multi_exit", False):
        model.eval()  # in training a multi-exit model returns every exit: (5, exits, 10)
    assert model(x).shape == (5, 10)


def test_perceptron_or_gate_with_chapter_weights():
    """w = [1, 1], b = -0.5 makes the step perceptron an OR gate: [0, 1, 1, 1]."""
    p = Perceptron((2,), 1)
    with torch.no_grad():
        p.linear.weight.copy_(torch.tensor([[1.0, 1.0]]))
        p.linear.bias.copy_(torch.tensor([-0.5]))
    inputs = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    assert p.predict(inputs).tolist() == [0, 1, 1, 1]


def test_residual_skip_flag_changes_only_the_wiring():
    """skip=True and skip=False have identical parameters; with zero block weights, skip passes h through."""
    kw = dict(input_shape=(8,), out_units=2, data_kind="vector", act=RELU, width=8, depth=2)
    res, plain = build_model("residual", skip=True, **kw), build_model("residual", skip=False, **kw)
    assert [p.shape for p in res.parameters()] == [p.shape for p in plain.parameters()]
    block = res.blocks[0]
    nn.init.zeros_(block.f[0].weight)
    nn.init.zeros_(block.f[0].bias)
    h = torch.randn(3, 8)
    torch.testing.assert_close(block(h), h)


def test_siamese_shares_one_encoder():
    """Swapping the pair gives the same |e1 - e2| logits: both members go through the same weights."""
    model = build_model("siamese", input_shape=(1, 28, 28), out_units=1, data_kind="pairs", act=RELU,
                        hidden=[16], embedding=4)
    pair = torch.randn(3, 2, 1, 28, 28)
    torch.testing.assert_close(model(pair), model(pair.flip(1)))
    dist = build_model("siamese", input_shape=(1, 28, 28), out_units=0, data_kind="pairs", act=RELU, hidden=[16])
    assert dist(pair).shape == (3,)


def test_dropout_is_off_in_eval():
    """The chapter: dropout only acts in model.train(); eval outputs are deterministic."""
    model = build_model("mlp", input_shape=(20,), out_units=3, data_kind="vector", act=RELU, hidden=[64], dropout=0.5)
    x = torch.randn(4, 20)
    model.train()
    assert not torch.equal(model(x), model(x))
    model.eval()
    assert torch.equal(model(x), model(x))


def test_batchnorm_layers_present():
    """batchnorm=True puts BatchNorm1d layers in the MLP."""
    model = build_model("mlp", input_shape=(20,), out_units=3, data_kind="vector", act=RELU, hidden=[8],
                        batchnorm=True)
    assert any(isinstance(m, nn.BatchNorm1d) for m in model.modules())


def test_incompatible_pairs_are_refused():
    """Pair data without siamese, a CNN on vector data and an unknown model are refused with clear messages."""
    with pytest.raises(ConfigError, match="pair data .* goes with model=siamese"):
        build_model("mlp", input_shape=(1, 28, 28), out_units=2, data_kind="pairs", act=RELU, hidden=[4])
    with pytest.raises(ConfigError, match="model 'cnn' needs image data"):
        build_model("cnn", input_shape=(2,), out_units=2, data_kind="vector", act=RELU, channels=[4])
    with pytest.raises(ConfigError, match="unknown model 'vit'; choose one of: cnn, dynamic, gru, lstm, mlp, "
                                          "multibranch, perceptron, residual"):
        build_model("vit", input_shape=(2,), out_units=2, data_kind="vector", act=RELU)
