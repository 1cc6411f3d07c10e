"""`nnlab doctor` names each planted fault and its fix, and passes a healthy pipeline."""

from __future__ import annotations

import pytest

from nnlab.doctor import diagnose
from nnlab.runner import build

from helpers import nnlab


def _failed(results):
    return {c.name: c for c in results if c.status == "fail"}


@pytest.fixture
def pipeline(cfg_for, tmp_path, fake_mnist):
    def make(*overrides):
        return build(cfg_for("data=mnist", f"data.root={fake_mnist}", *overrides), tmp_path)
    return make


def test_healthy_pipeline_passes(pipeline):
    """A healthy pipeline fails no check, and the overfit, gradient-flow and shape checks are among those run."""
    results = diagnose(pipeline())
    assert not _failed(results), _failed(results)
    assert {"overfit 32 samples", "gradients: flow", "forward: shapes"} <= {c.name for c in results}


def test_zeros_init_fails_init_and_gradient_checks(pipeline):
    """init=zeros fails the init check (std 0, fix: kaiming_normal), the vanishing-gradient and overfit checks."""
    failed = _failed(diagnose(pipeline("init=zeros")))
    assert "std 0" in failed["init: hidden.0.0.weight"].detail
    assert "init=kaiming_normal" in failed["init: hidden.0.0.weight"].fix
    assert "hidden.0.0.weight" in failed["gradients: vanishing"].detail
    assert "overfit 32 samples" in failed


def test_huge_learning_rate_is_named(pipeline):
    """With lr=10 the loss does not fall on one batch, and the fix names optimizer.lr=10 as likely too high."""
    failed = _failed(diagnose(pipeline("optimizer=sgd", "optimizer.lr=10")))
    assert "optimizer.lr=10 is likely too high" in failed["update: loss falls on one batch"].fix


def test_detached_layer_is_found(pipeline):
    """A layer whose output is detached is named as getting no gradient, with 'detached' in the fix."""
    p = pipeline()
    first = p.model.hidden[0][0]
    original = first.forward
    first.forward = lambda x: original(x).detach()  # the planted bug: no gradient flows into this layer
    failed = _failed(diagnose(p))
    assert "hidden.0.0.weight" in failed["gradients: every parameter gets one"].detail
    assert "detached" in failed["gradients: every parameter gets one"].fix


def test_labels_out_of_range_are_found(pipeline):
    """A training label beyond the class count fails the label-range check, naming the span and class count."""
    p = pipeline()
    p.data.train.y = p.data.train.y.clone()
    p.data.train.y[0] = 12
    failed = _failed(diagnose(p))
    assert "labels span [0, 12] but there are 10 classes" in failed["data: train label range"].detail


def test_nan_inputs_are_found(pipeline):
    """One NaN in the validation inputs fails the finiteness check, which counts it."""
    p = pipeline()
    p.data.val.x = p.data.val.x.clone()
    p.data.val.x[0, 0, 0, 0] = float("nan")
    assert "1 NaN/inf values" in _failed(diagnose(p))["data: val inputs finite"].detail


@pytest.mark.slow
def test_cli_exit_codes(tmp_path, fake_mnist):
    """`nnlab doctor` exits 0 with 'all checks passed' when healthy, 1 with FAIL and the fix for init=zeros."""
    ok = nnlab("doctor", "data=mnist", f"data.root={fake_mnist}", cwd=tmp_path)
    assert ok.returncode == 0 and "all checks passed" in ok.stdout, ok.stdout + ok.stderr
    bad = nnlab("doctor", "data=mnist", f"data.root={fake_mnist}", "init=zeros", cwd=tmp_path)
    assert bad.returncode == 1 and "FAIL" in bad.stdout and "init=kaiming_normal" in bad.stdout


# every model in the registry, on data it is made for: a healthy pipeline fails no check
HEALTHY = {
    "mlp": ["data=mnist"],
    "cnn": ["data=mnist", "model=cnn", "model.channels=[4,8]", "model.head=16"],
    "residual": ["data=mnist", "model=residual"],
    "perceptron": ["data=gates", "model=perceptron", "loss=bce_logits", "optimizer.lr=0.05"],
    "siamese": ["data=mnist_pairs", "model=siamese", "loss=contrastive", "data.pairs=400"],
    "multibranch": ["data=mnist", "model=multibranch", "model.channels=[8,16]", "model.head=16"],
    "dynamic": ["data=mnist", "model=dynamic", "model.width=32", "model.depth=2"],
    "lstm": ["data=adding", "model=lstm", "model.hidden_size=16", "data.length=10", "data.train=512",
             "optimizer.lr=0.01"],
    "gru": ["data=adding", "model=gru", "model.hidden_size=16", "data.length=10", "data.train=512",
            "optimizer.lr=0.01"],
}


def test_every_registered_model_has_a_healthy_case():
    from nnlab.models import MODELS

    assert set(HEALTHY) == set(MODELS)


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(HEALTHY))
def test_healthy_model_passes_every_check(cfg_for, tmp_path, fake_mnist, model):
    """No check fails on a healthy pipeline of each model (the siamese encoder.out.bias, whose gradient is
    exactly zero because it cancels in e1 - e2, included)."""
    overrides = HEALTHY[model] + ([f"data.root={fake_mnist}"] if "mnist" in HEALTHY[model][0] else [])
    results = diagnose(build(cfg_for(*overrides), tmp_path))
    assert not _failed(results), _failed(results)
    if model == "siamese":
        [update] = [c for c in results if c.name == "update: parameters change after a step"]
        assert "encoder.out.bias" in update.detail and "gradient exactly 0" in update.detail


@pytest.mark.slow
def test_flat_loss_fails_loss_falls(pipeline):
    """init=zeros: the loss stays at ln(10) = 2.30; "loss falls on one batch" must fail, naming the cause."""
    failed = _failed(diagnose(pipeline("init=zeros")))
    check = failed["update: loss falls on one batch"]
    assert "2.30" in check.detail and "less than 1% lower" in check.detail and "init=zeros" in check.fix


@pytest.mark.slow
def test_parameters_the_optimizer_misses_fail_the_update_check(pipeline):
    """A learning rate so small that no weight moves although every one gets a gradient: named, with the fix."""
    failed = _failed(diagnose(pipeline("optimizer.lr=1e-30")))
    check = failed["update: parameters change after a step"]
    assert "got a gradient but unchanged: hidden.0.0.weight" in check.detail and "optimizer" in check.fix


@pytest.mark.slow
def test_wrong_output_layer_fails_forward_shapes(pipeline):
    from torch import nn

    p = pipeline()
    p.model.out = nn.Linear(p.model.out.in_features, 3)  # the planted bug: 3 outputs for 10 classes
    failed = _failed(diagnose(p))
    assert "expected (8, 10)" in failed["forward: shapes"].detail


@pytest.mark.slow
def test_exploding_gradients_are_found(pipeline):
    import torch

    p = pipeline()
    with torch.no_grad():
        for q in p.model.parameters():
            q.mul_(1e3)  # the planted fault: weights 1000x too large
    assert "norm > 1000" in _failed(diagnose(p))["gradients: exploding"].detail


@pytest.mark.slow
def test_dead_units_are_found(pipeline):
    import torch

    p = pipeline()
    with torch.no_grad():
        p.model.hidden[0][0].bias.fill_(-1e4)  # every ReLU of the first layer dead
    assert "100% of units constant" in _failed(diagnose(p))["activations: dead units"].detail


@pytest.mark.slow
def test_imbalanced_classes_warn(pipeline):
    p = pipeline()
    p.data.train.y = p.data.train.y.clone()
    p.data.train.y[: len(p.data.train.y) // 2] = 0  # half of everything is class 0
    [balance] = [c for c in diagnose(p) if c.name == "data: class balance"]
    assert balance.status == "warn" and "loss=focal" in balance.fix


@pytest.mark.slow
def test_wrong_custom_backward_fails_gradcheck(pipeline, monkeypatch):
    import torch

    from nnlab import activations, doctor

    class WrongBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * torch.sigmoid(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * torch.sigmoid(x)  # the planted bug: the product rule's second term is missing

    class Broken(torch.nn.Module):
        def forward(self, x):
            return WrongBackward.apply(x)

    p = pipeline()
    monkeypatch.setattr(doctor, "activation_factory", lambda name, **kw: Broken)
    assert activations.ACTIVATIONS  # the registry itself is untouched
    failed = _failed(diagnose(p))
    assert "backward disagrees" in failed["gradcheck: activation relu (float64)"].detail


def test_configuration_error_is_rendered_not_printed_as_markup(capsys):
    """`nnlab doctor` with a bad key: exit 2, the error rendered by rich (no raw markup such as [bold red])."""
    from nnlab.cli.doctor import doctor_command

    assert doctor_command(["data=xor", "foo=1"]) == 2
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert out.startswith("configuration error:") and "[bold red]" not in out and "[/]" not in out
