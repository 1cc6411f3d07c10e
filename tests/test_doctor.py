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
