"""Initialization schemes against their closed-form standard deviations and torch's own initializers."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nnlab.inits import INITS, expected_std, init_layers
from nnlab.registry import ConfigError


def _layer() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(800, 400), nn.ReLU())


@pytest.mark.parametrize("scheme", ["kaiming_normal", "kaiming_uniform", "xavier_normal", "xavier_uniform",
                                    "normal", "zeros"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "leaky_relu"])
def test_std_matches_closed_form(scheme, activation):
    """The empirical weight std is the scheme's gain/sqrt(fan) formula (within 3%)."""
    net = _layer()
    init_layers(net, scheme, activation=activation, negative_slope=0.2, std=0.05, bias=0.0)
    w = net[0].weight
    family = {"relu": "relu", "tanh": "tanh", "leaky_relu": "leaky_relu"}[activation]
    want = expected_std(scheme, 800, 400, family=family, slope=0.2, std=0.05)
    assert w.std().item() == pytest.approx(want, rel=0.03, abs=1e-12)
    assert w.mean().abs().item() < 0.01 + want * 0.05


def test_kaiming_relu_gain_is_sqrt2_over_fan_in():
    """Kaiming for ReLU: std = sqrt(2 / fan_in), the chapter's 'modern default'."""
    assert expected_std("kaiming_normal", 800, 400, family="relu") == pytest.approx(math.sqrt(2 / 800))


def test_fan_out_mode():
    """Kaiming with mode=fan_out gives std = sqrt(2 / fan_out) (within 3%)."""
    net = _layer()
    init_layers(net, "kaiming_normal", activation="relu", mode="fan_out")
    assert net[0].weight.std().item() == pytest.approx(math.sqrt(2 / 400), rel=0.03)


def test_orthogonal_is_orthogonal_times_gain():
    """The orthogonal scheme gives W Wᵀ = gain² I, with the activation's gain."""
    net = nn.Sequential(nn.Linear(64, 64))
    init_layers(net, "orthogonal", activation="tanh")
    w = net[0].weight
    gain = nn.init.calculate_gain("tanh")
    torch.testing.assert_close(w @ w.T, gain**2 * torch.eye(64), atol=1e-4, rtol=0)


def test_bias_value_and_default_scheme():
    """`bias` sets every bias; `default` leaves PyTorch's own weights untouched."""
    net = _layer()
    before = net[0].weight.clone()
    init_layers(net, "default", activation="relu", bias=0.01)
    assert torch.equal(net[0].weight, before)
    assert torch.all(net[0].bias == 0.01)


def test_conv_layers_are_initialized():
    """Conv layers are initialized as well as linear ones, and both are counted."""
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Linear(4, 2))
    assert init_layers(net, "zeros", activation="relu") == 2
    assert net[0].weight.abs().sum() == 0


def test_unknown_scheme_lists_choices():
    """An unknown init scheme is refused, naming it and listing the registered choices."""
    with pytest.raises(ConfigError, match="unknown init 'he'; choose one of: default, kaiming_normal"):
        init_layers(_layer(), "he", activation="relu")
    assert "orthogonal" in INITS


def _blocks(w: torch.Tensor, gates: int) -> list[torch.Tensor]:
    return list(w.detach().chunk(gates, dim=0))


@pytest.mark.parametrize(("cls", "gates"), [(nn.LSTM, 4), (nn.GRU, 3)])
def test_recurrent_init_is_the_chapters_scheme_per_gate_block(cls, gates):
    """init=recurrent (3.4): every gate block of weight_hh is orthogonal (Q^T Q = I), every gate block of weight_ih
    is Xavier-uniform with its own fans (bound sqrt(6 / (fan_in + H)), std bound / sqrt(3)), the biases are zero
    except gate block 1 (LSTM forget gate f of i,f,g,o; GRU update gate z of r,z,n), whose bias_ih + bias_hh is 1."""
    torch.manual_seed(0)
    hidden, features = 100, 300
    rnn = cls(features, hidden, num_layers=2)
    assert init_layers(nn.Sequential(rnn), "recurrent", activation="relu", recurrent="orthogonal",
                       input="xavier_uniform", forget_bias=1.0, bias=0.0) == 1
    for layer, fan_in in ((0, features), (1, hidden)):
        for q in _blocks(getattr(rnn, f"weight_hh_l{layer}"), gates):
            torch.testing.assert_close(q.T @ q, torch.eye(hidden), atol=1e-4, rtol=0)
        bound = math.sqrt(6 / (fan_in + hidden))
        for w in _blocks(getattr(rnn, f"weight_ih_l{layer}"), gates):
            assert w.abs().max().item() <= bound
            assert w.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.03)
        total = (getattr(rnn, f"bias_ih_l{layer}") + getattr(rnn, f"bias_hh_l{layer}")).detach()
        want = torch.zeros(gates * hidden)
        want[hidden:2 * hidden] = 1.0
        assert torch.equal(total, want)
        assert torch.equal(getattr(rnn, f"bias_hh_l{layer}").detach(), torch.zeros(gates * hidden))


def test_shipped_recurrent_preset_and_other_schemes_per_block(cfg_for):
    """configs/init/recurrent.yaml spells the chapter's keys; another scheme (kaiming_normal) acts on each LSTM
    gate block with gain 1 (the gates squash with sigmoid/tanh): std 1/sqrt(fan_in); Linear layers keep theirs."""
    cfg = cfg_for("init=recurrent")["init"]
    assert (cfg["recurrent"], cfg["input"], cfg["forget_bias"], cfg["bias"]) == ("orthogonal", "xavier_uniform",
                                                                                  1.0, 0.0)
    torch.manual_seed(0)
    net = nn.Sequential(nn.LSTM(400, 200), nn.Linear(800, 400))
    init_layers(net, "kaiming_normal", activation="relu")
    for w in _blocks(net[0].weight_ih_l0, 4):
        assert w.std().item() == pytest.approx(1 / math.sqrt(400), rel=0.03)
    for w in _blocks(net[0].weight_hh_l0, 4):
        assert w.std().item() == pytest.approx(1 / math.sqrt(200), rel=0.03)
    assert net[1].weight.std().item() == pytest.approx(math.sqrt(2 / 800), rel=0.03)
