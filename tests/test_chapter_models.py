"""The chapter's multi-branch, dynamic-depth and recurrent models: parameter counts by hand, forward passes
against hand-written references, early exit, and one short epoch each on the real Fashion-MNIST files."""

from __future__ import annotations

import pytest
import torch
from rich.console import Console
from torch import nn

from nnlab.activations import activation_factory
from nnlab.models import build_model
from nnlab.registry import ConfigError
from nnlab.runner import run
from nnlab.tracker import Tracker

from helpers import SHARED_DATA, needs_fashion

RELU = activation_factory("relu")


def n_params(model: nn.Module) -> int:
    return sum(q.numel() for q in model.parameters())


def test_multibranch_parameter_count_by_hand():
    """One block of 8 channels, 4 paths of 2 (1x1; 1x1 then 3x3; 1x1 then 5x5; pool then 1x1), BN, no conv bias."""
    model = build_model("multibranch", input_shape=(1, 28, 28), out_units=10, data_kind="image", act=RELU,
                        channels=[8], branches=["1x1", "3x3", "5x5", "pool"], head=16)
    bn = 2 * 2  # weight + bias of a 2-channel BatchNorm
    paths = (1 * 2 + bn) + (1 * 2 + bn + 2 * 2 * 9 + bn) + (1 * 2 + bn + 2 * 2 * 25 + bn) + (1 * 2 + bn)
    head = (8 * 14 * 14 * 16 + 16) + (16 * 10 + 10)
    assert n_params(model) == paths + head == 168 + 25274
    assert model(torch.randn(3, 1, 28, 28)).shape == (3, 10)


def test_multibranch_paths_see_different_scales():
    """An impulse reaches a 1x1 neighbourhood through the 1x1 path, 3x3 through 3x3, 5x5 through 5x5 and
    through the dilated 3x3 (same field as 5x5 with 9 weights per filter); the block keeps H and W."""
    torch.manual_seed(0)
    model = build_model("multibranch", input_shape=(1, 15, 15), out_units=2, data_kind="image", act=nn.Identity,
                        channels=[4], branches=["1x1", "3x3", "5x5", "dilated"], head=4, batchnorm=False)
    block = model.features[0]
    x = torch.zeros(1, 1, 15, 15)
    x[0, 0, 7, 7] = 1.0
    with torch.no_grad():
        out = block(x)
        base = block(torch.zeros_like(x))  # what the biases alone give
    assert out.shape == (1, 4, 15, 15)
    for channel, side in enumerate((1, 3, 5, 5)):
        reached = ((out[0, channel] - base[0, channel]).abs() > 1e-7).nonzero()
        rows, cols = reached[:, 0], reached[:, 1]
        assert int(rows.max() - rows.min()) + 1 == side and int(cols.max() - cols.min()) + 1 == side
    dilated = [m for m in block.paths[3] if isinstance(m, nn.Conv2d)][-1]
    assert dilated.kernel_size == (3, 3) and dilated.dilation == (2, 2)


def test_multibranch_width_must_split_evenly():
    with pytest.raises(ConfigError, match=r"model.channels=\[10\]: .* multiple of 4"):
        build_model("multibranch", input_shape=(1, 28, 28), out_units=10, data_kind="image", act=RELU,
                    channels=[10], branches=["1x1", "3x3", "5x5", "pool"])


def test_dynamic_parameter_count_and_outputs():
    """stem 784->16, 3 residual blocks 16->16, one 16->10 exit per block; training returns every exit."""
    model = build_model("dynamic", input_shape=(1, 28, 28), out_units=10, data_kind="image", act=RELU,
                        width=16, depth=3)
    assert n_params(model) == (784 * 16 + 16) + 3 * (16 * 16 + 16) + 3 * (16 * 10 + 10)
    x = torch.randn(7, 1, 28, 28)
    assert model.train()(x).shape == (7, 3, 10)
    assert model.eval()(x).shape == (7, 10)


def test_early_exit_takes_the_first_confident_exit():
    """Each row's eval output is the logits of the exit it left at (last_depth), and every earlier exit was
    below the threshold; threshold 1 runs every block (= the last exit), a tiny one stops at the first."""
    torch.manual_seed(0)
    model = build_model("dynamic", input_shape=(20,), out_units=4, data_kind="vector", act=RELU, width=32, depth=4,
                        exit_threshold=0.5)
    x = torch.randn(200, 20) * 3
    with torch.no_grad():
        every = model.train()(x)  # (200, 4 exits, 4); no dropout/BN: the same function in both modes
        model.eval()
        out = model(x)
        depth = model.last_depth
        conf = torch.softmax(every, dim=2).amax(dim=2)
        torch.testing.assert_close(out, every[torch.arange(200), depth - 1])
        for row in range(200):
            assert (conf[row, :depth[row] - 1] < 0.5).all()
            assert depth[row] == 4 or conf[row, depth[row] - 1] >= 0.5
        assert 1 < depth.float().mean() < 4  # a mix of early and late exits
        model.exit_threshold = 1.0
        torch.testing.assert_close(model(x), every[:, -1])
        assert (model.last_depth == 4).all()
        model.exit_threshold = 1e-6
        torch.testing.assert_close(model(x), every[:, 0])
        assert (model.last_depth == 1).all()


def _lstm_reference(x, rnn, steps):
    """The LSTM equations written out: gates i, f, g, o from W_ih x + b_ih + W_hh h + b_hh."""
    h = torch.zeros(x.shape[0], rnn.hidden_size)
    c = torch.zeros_like(h)
    for t in range(steps):
        z = x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0 + h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0
        i, f, g, o = z.chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    return h


def _gru_reference(x, rnn, steps):
    """The GRU equations written out: r, z, n; h' = (1 - z) * n + z * h."""
    h = torch.zeros(x.shape[0], rnn.hidden_size)
    for t in range(steps):
        xi = x[:, t] @ rnn.weight_ih_l0.T + rnn.bias_ih_l0
        hh = h @ rnn.weight_hh_l0.T + rnn.bias_hh_l0
        (xr, xz, xn), (hr, hz, hn) = xi.chunk(3, dim=1), hh.chunk(3, dim=1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        h = (1 - z) * torch.tanh(xn + r * hn) + z * h
    return h


@pytest.mark.parametrize(("cell", "gates", "reference"), [("lstm", 4, _lstm_reference), ("gru", 3, _gru_reference)])
def test_recurrent_count_and_forward_against_the_equations(cell, gates, reference):
    """Parameters: gates x (H*F + H*H + 2H) + head; forward on a 28x28 sequence equals the hand-written cell."""
    torch.manual_seed(0)
    model = build_model(cell, input_shape=(28, 28), out_units=10, data_kind="sequence", act=RELU, hidden_size=32)
    assert n_params(model) == gates * (32 * 28 + 32 * 32 + 2 * 32) + (32 * 10 + 10)
    x = torch.randn(5, 28, 28)
    with torch.no_grad():
        want = model.head(reference(x, model.rnn, 28))
        torch.testing.assert_close(model(x), want, rtol=1e-4, atol=1e-5)
        # an image (B, 1, 28, 28) is read one row per step: the same as the (B, 28, 28) sequence
        torch.testing.assert_close(model(x.unsqueeze(1)), model(x))


def test_bidirectional_stacked_lstm_matches_torch_count():
    model = build_model("lstm", input_shape=(50, 2), out_units=2, data_kind="sequence", act=RELU, hidden_size=8,
                        layers=2, bidirectional=True, dropout=0.1)
    ref = nn.LSTM(2, 8, num_layers=2, bidirectional=True)
    assert n_params(model) == n_params(ref) + (16 * 2 + 2)
    assert model(torch.randn(3, 50, 2)).shape == (3, 2)


@pytest.mark.slow
@needs_fashion()
@pytest.mark.parametrize(("model", "data"), [("multibranch", "fashion_mnist"), ("dynamic", "fashion_mnist"),
                                             ("lstm", "fashion_mnist_seq"), ("gru", "fashion_mnist_seq")])
def test_one_short_epoch_on_fashion_mnist(cfg_for, tmp_path, model, data):
    """40 batches of one epoch on the real files leave each model far above chance (10%) on the test split;
    the dynamic model also reports the blocks it used per split."""
    small = ["model.channels=[16,32]"] if model == "multibranch" else []  # the same blocks, a quarter the work
    cfg = cfg_for(f"model={model}", f"data={data}", f"data.root={SHARED_DATA}", "trainer.epochs=1",
                  "trainer.limit_train_batches=40", "trainer.final_train_samples=2000", "device=cpu", *small)
    tracker = Tracker(tmp_path, progress=False, console=Console(file=open("/dev/null", "w")))
    try:
        m = run(cfg, tmp_path, {"model": model}, tracker)
    finally:
        tracker.close()
    assert m["final/test_acc"] > 0.5, m
    if model == "dynamic":
        assert all(1 <= m[f"final/{s}_depth"] <= 4 for s in ("train", "val", "test"))
        assert m["exit/test_depth@1"] == 4 and m["exit/test_depth@0.5"] < m["exit/test_depth@0.99"]


def test_dynamic_run_logs_the_trade_off_curve_to_tensorboard(cfg_for, tmp_path, fake_mnist):
    """A run of model=dynamic writes final/<split>_depth, and the test split's accuracy and blocks used at every
    threshold to metrics.json and to TensorBoard (exit/test_acc, exit/test_depth: step = threshold in percent)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from nnlab.runner import EXIT_THRESHOLDS

    cfg = cfg_for("data=mnist", f"data.root={fake_mnist}", "model=dynamic", "model.depth=3", "trainer.epochs=2")
    tracker = Tracker(tmp_path, progress=False, console=Console(file=open("/dev/null", "w")))
    try:
        m = run(cfg, tmp_path, {"model": "dynamic"}, tracker)
    finally:
        tracker.close()
    assert {"final/train_depth", "final/val_depth", "final/test_depth"} <= set(m)
    assert m["exit/test_depth@1"] == 3.0
    depths = [m[f"exit/test_depth@{t:g}"] for t in EXIT_THRESHOLDS]
    assert depths == sorted(depths)  # a higher threshold never uses fewer blocks
    ea = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    ea.Reload()
    curve = {e.step: e.value for e in ea.Scalars("exit/test_depth")}
    assert sorted(curve) == [round(t * 100) for t in EXIT_THRESHOLDS]
    assert curve[90] == pytest.approx(m["exit/test_depth@0.9"])
    assert {e.step: e.value for e in ea.Scalars("exit/test_acc")}[50] == pytest.approx(m["exit/test_acc@0.5"])
