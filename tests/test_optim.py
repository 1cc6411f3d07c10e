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


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
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
    with pytest.raises(ConfigError, match="unknown optimizer 'lamb'; choose one of: adam, adamw, radam, rmsprop, sgd"):
        build_optimizer("lamb", nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(ConfigError, match="unknown scheduler 'linear'"):
        _lrs("linear")
