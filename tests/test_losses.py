"""Losses against torch references and closed forms; output units and targets derived from the loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nnlab.losses import LOSSES, ContrastiveLoss, FocalLoss, build_objective
from nnlab.registry import ConfigError

LOGITS = torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
LABELS = torch.arange(16) % 10


def test_every_loss_builds_for_its_data():
    """Each registered loss builds: classification losses on 10 classes, contrastive on pairs."""
    for name in LOSSES:
        obj = build_objective(name, num_classes=2 if name == "contrastive" else 10, pairs=name == "contrastive")
        assert obj.out_units == (0 if name == "contrastive" else 10)


def test_cross_entropy_matches_torch_with_label_smoothing():
    """cross_entropy with label smoothing equals torch's F.cross_entropy with the same smoothing."""
    obj = build_objective("cross_entropy", num_classes=10, pairs=False, label_smoothing=0.1)
    torch.testing.assert_close(obj(LOGITS, LABELS), F.cross_entropy(LOGITS, LABELS, label_smoothing=0.1))


def test_focal_with_gamma_zero_is_cross_entropy():
    """Focal loss with γ = 0 equals plain cross-entropy."""
    torch.testing.assert_close(FocalLoss(0.0)(LOGITS, LABELS), F.cross_entropy(LOGITS, LABELS))


def test_focal_down_weights_easy_examples():
    """FL = -(1-p)^γ log p: for one sample with p_t known, the closed form."""
    logits = torch.tensor([[2.0, 0.0]])
    p = torch.softmax(logits, 1)[0, 0]
    torch.testing.assert_close(FocalLoss(2.0)(logits, torch.tensor([0])), -(1 - p) ** 2 * torch.log(p))


def test_binary_losses_use_one_logit_for_two_classes():
    """BCE-with-logits on 2 classes: one output unit, float targets, prediction is logit > 0."""
    obj = build_objective("bce_logits", num_classes=2, pairs=False)
    assert obj.out_units == 1
    out, y = torch.tensor([[3.0], [-2.0]]), torch.tensor([1, 0])
    torch.testing.assert_close(obj(out, y), F.binary_cross_entropy_with_logits(out, y.float()[:, None]))
    assert obj.predict(out).tolist() == [1, 0]


def test_bce_on_probabilities_agrees_then_saturates():
    """nn.BCELoss(sigmoid(z)) equals BCE-with-logits for moderate z but saturates at large |z|."""
    bce = build_objective("bce", num_classes=2, pairs=False)
    logits = build_objective("bce_logits", num_classes=2, pairs=False)
    y = torch.tensor([0])
    moderate = torch.tensor([[1.5]])
    torch.testing.assert_close(bce(moderate, y), logits(moderate, y))
    huge = torch.tensor([[200.0]])
    assert logits(huge, y).item() == pytest.approx(200.0)
    assert bce(huge, y).item() == pytest.approx(100.0)  # log clamped at -100: the numerics lesson


def test_regression_losses_use_one_hot_targets():
    """MSE and Huber (with its delta) compare the outputs to one-hot targets, as torch's losses do."""
    obj = build_objective("mse", num_classes=10, pairs=False)
    torch.testing.assert_close(obj(LOGITS, LABELS), F.mse_loss(LOGITS, F.one_hot(LABELS, 10).float()))
    huber = build_objective("huber", num_classes=10, pairs=False, delta=0.5)
    torch.testing.assert_close(huber(LOGITS, LABELS), F.huber_loss(LOGITS, F.one_hot(LABELS, 10).float(), delta=0.5))


def test_contrastive_closed_form():
    """y=1 pulls distance to 0 (d²/2); y=0 pushes it past the margin (max(0, m-d)²/2)."""
    d = torch.tensor([0.5, 0.2, 1.5])
    same = torch.tensor([1.0, 0.0, 0.0])
    want = (0.5 * 0.25 + 0.5 * 0.8**2 + 0.0) / 3
    torch.testing.assert_close(ContrastiveLoss(1.0)(d, same), torch.tensor(want))


def test_contrastive_refuses_non_pair_data():
    """The contrastive loss is refused on non-pair data."""
    with pytest.raises(ConfigError, match="use it with pair data"):
        build_objective("contrastive", num_classes=10, pairs=False)


def test_unknown_loss_and_parameter():
    """An unknown loss lists the choices; a parameter the loss does not take is named."""
    with pytest.raises(ConfigError, match="unknown loss 'nll'; choose one of: bce, bce_logits, contrastive"):
        build_objective("nll", num_classes=10, pairs=False)
    with pytest.raises(ConfigError, match="loss 'mse' got parameters"):
        build_objective("mse", num_classes=10, pairs=False, gamma=2)
