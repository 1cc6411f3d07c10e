"""Optimizers are torch's own classes with the configured hyperparameters; schedules follow their formulas."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nnlab.optim import OPTIMIZERS, SCHEDULERS, build_optimizer, build_schedule
from nnlab.registry import ConfigError

TORCH_CLASS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
               "radam": torch.optim.RAdam, "rmsprop": torch.optim.RMSprop}


def test_every_optimizer_is_checked_against_a_reference():
    assert set(OPTIMIZERS) == set(TORCH_CLASS) | {"lamb"}  # lamb: not in torch.optim, see the LAMB tests


@pytest.mark.parametrize("name", sorted(TORCH_CLASS))
def test_optimizer_is_torch_class_and_steps_like_it(name):
    """One step of ours equals one step of torch's class built directly with the same settings."""
    torch.manual_seed(0)
    a, b = nn.Linear(4, 2), nn.Linear(4, 2)
    b.load_state_dict(a.state_dict())
    ours = build_optimizer(name, a.parameters(), lr=0.1, weight_decay=0.01)
    ref = TORCH_CLASS[name](b.parameters(), lr=0.1, weight_decay=0.01)
    assert type(ours) is TORCH_CLASS[name]
    x = torch.randn(8, 4)
    for net, opt in ((a, ours), (b, ref)):
        opt.zero_grad()
        net(x).pow(2).sum().backward()
        opt.step()
    torch.testing.assert_close(a.weight, b.weight)


def test_sgd_momentum_nesterov_reach_torch():
    """momentum and nesterov reach torch's SGD unchanged."""
    opt = build_optimizer("sgd", nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9, nesterov=True)
    assert opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"] is True


def _lrs(name, epochs=4, steps=5, **kw):
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=1.0)
    sched = build_schedule(name, opt, epochs=epochs, steps_per_epoch=steps, **kw)
    seen = []
    for _ in range(epochs):
        for _ in range(steps):
            seen.append(sched.lr)
            opt.step()
            sched.after_step()
        sched.after_epoch(1.0)
    return seen


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_scheduler_builds_and_moves_the_learning_rate(name):
    """Every scheduler gives a positive, finite lr at every step; all but `none` change it over 4 epochs
    (step and plateau with a step size / patience short enough to act within them)."""
    lrs = _lrs(name, **{"step": {"step_size": 1}, "plateau": {"patience": 0}}.get(name, {}))
    assert all(0 < lr < math.inf for lr in lrs)
    assert (len(set(lrs)) == 1) == (name == "none")


def test_step_schedule_decays_each_step_size_epochs():
    """The step schedule keeps the lr for step_size epochs, then multiplies it by gamma."""
    lrs = _lrs("step", step_size=2, gamma=0.1)
    assert lrs[0] == 1.0 and lrs[9] == 1.0 and lrs[10] == pytest.approx(0.1)


def test_cosine_reaches_eta_min():
    """Cosine starts at the base lr and follows the cosine formula (half of it at mid-run with eta_min=0)."""
    lrs = _lrs("cosine", eta_min=0.0)
    assert lrs[0] == 1.0
    assert lrs[10] == pytest.approx(0.5 * (1 + math.cos(math.pi * 10 / 20)))


def test_linear_warmup_then_main():
    """Warm-up climbs linearly from 1% of the base lr over warmup_epochs, then cosine takes over."""
    lrs = _lrs("cosine", warmup_epochs=1)
    assert lrs[0] == pytest.approx(0.01)
    assert lrs[1] < lrs[2] < lrs[4] < 1.0
    assert lrs[5] == pytest.approx(1.0)
    assert lrs[-1] < 0.1


def test_plateau_cuts_lr_when_metric_stalls():
    """Plateau lowers the lr when the monitored metric stops improving."""
    lrs = _lrs("plateau", epochs=6, patience=1, factor=0.5)
    assert lrs[-1] < 1.0


def test_onecycle_with_warmup_is_refused():
    """onecycle with warmup_epochs is refused: it has its own warm-up."""
    with pytest.raises(ConfigError, match="onecycle' has its own warm-up"):
        _lrs("onecycle", warmup_epochs=1)


def test_unknown_names_list_choices():
    """An unknown optimizer lists the choices; an unknown scheduler is named."""
    with pytest.raises(ConfigError,
                       match="unknown optimizer 'lion'; choose one of: adam, adamw, lamb, radam, rmsprop, sgd"):
        build_optimizer("lion", nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(ConfigError, match="unknown scheduler 'linear'"):
        _lrs("linear")


def _lamb_by_hand(w, grads, lr, b1, b2, eps, wd, bias_correction=False):
    """LAMB (You et al. 2020, Algorithm 2) in plain Python floats, one tensor:
    m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  [m /= 1 - b1^t;  v /= 1 - b2^t;]  u = m / (sqrt(v) + eps) + wd w;
    w -= lr * min(||w||, 10) / ||u|| * u."""
    m, v = [0.0] * len(w), [0.0] * len(w)
    for t, g in enumerate(grads, start=1):
        m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g)]
        v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
        c1, c2 = (1 - b1**t, 1 - b2**t) if bias_correction else (1.0, 1.0)
        u = [mi / c1 / (math.sqrt(vi / c2) + eps) + wd * wi for mi, vi, wi in zip(m, v, w)]
        trust = min(math.sqrt(sum(x * x for x in w)), 10.0) / (math.sqrt(sum(x * x for x in u)) + eps)
        w = [wi - lr * trust * ui for wi, ui in zip(w, u)]
    return w


@pytest.mark.parametrize("start", [[3.0, 4.0], [30.0, 40.0]])  # ||w|| = 5, and 50 (trust ratio capped at 10)
def test_lamb_follows_the_papers_update_rule(start):
    """optimizer=lamb: two steps equal the paper's rule computed by hand (layer-wise trust ratio, decay inside)."""
    grads = [[1.0, -2.0], [0.5, 0.25]]
    w = nn.Parameter(torch.tensor(start, dtype=torch.float64))
    opt = build_optimizer("lamb", [w], lr=0.1, betas=[0.9, 0.999], eps=1e-6, weight_decay=0.01)
    for g in grads:
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    want = _lamb_by_hand(start, grads, 0.1, 0.9, 0.999, 1e-6, 0.01)
    assert w.tolist() == pytest.approx(want, rel=1e-9)


def test_lamb_without_decay_takes_the_bias_corrected_papers_step():
    """With weight_decay=0 the bias corrections only rescale m / sqrt(v): the trust ratio makes the step the same
    as Algorithm 2 with bias correction (to eps)."""
    grads = [[1.0, -2.0], [0.5, 0.25], [-1.0, 3.0]]
    w = nn.Parameter(torch.tensor([3.0, 4.0], dtype=torch.float64))
    opt = build_optimizer("lamb", [w], lr=0.1, betas=[0.9, 0.999], eps=1e-12, weight_decay=0.0)
    for g in grads:
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    want = _lamb_by_hand([3.0, 4.0], grads, 0.1, 0.9, 0.999, 1e-12, 0.0, bias_correction=True)
    assert w.tolist() == pytest.approx(want, rel=1e-9)


def test_lamb_trust_ratio_makes_the_step_scale_free():
    """Scaling a layer's gradient by 1000 does not change its LAMB step (Adam's direction is scale-free, and the
    trust ratio fixes the step length to lr * ||w||)."""
    a, b = nn.Parameter(torch.tensor([3.0, 4.0])), nn.Parameter(torch.tensor([3.0, 4.0]))
    for p, scale in ((a, 1.0), (b, 1000.0)):
        opt = build_optimizer("lamb", [p], lr=0.01, weight_decay=0.0)
        p.grad = torch.tensor([1.0, -2.0]) * scale
        opt.step()
    torch.testing.assert_close(a, b)
    assert (a.detach() - torch.tensor([3.0, 4.0])).norm().item() == pytest.approx(0.01 * 5.0, rel=1e-4)
