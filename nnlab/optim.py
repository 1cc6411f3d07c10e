"""OPTIMIZERS and SCHEDULERS (with optional linear warm-up), built from plain arguments."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.optim import lr_scheduler as lrs

from nnlab.registry import ConfigError, choose, register

# `fast` is {"fused": True} or {"foreach": True}: one kernel for all parameters instead of a Python loop.
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "sgd": lambda params, fast, lr, weight_decay=0.0, momentum=0.0, nesterov=False, dampening=0.0: torch.optim.SGD(
        params, lr=lr, momentum=momentum, nesterov=nesterov, dampening=dampening, weight_decay=weight_decay, **fast),
    "adam": lambda params, fast, lr, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8: torch.optim.Adam(
        params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, **fast),
    "adamw": lambda params, fast, lr, weight_decay=0.01, betas=(0.9, 0.999), eps=1e-8: torch.optim.AdamW(
        params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, **fast),
    "radam": lambda params, fast, lr, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-8: torch.optim.RAdam(
        params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, foreach=True),
    "rmsprop": lambda params, fast, lr, weight_decay=0.0, alpha=0.99, momentum=0.0, eps=1e-8: torch.optim.RMSprop(
        params, lr=lr, alpha=alpha, momentum=momentum, eps=eps, weight_decay=weight_decay, foreach=True),
    "lamb": lambda params, fast, lr, weight_decay=0.0, betas=(0.9, 0.999), eps=1e-6: _lamb(
        params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay),
}


def _lamb(params: list[nn.Parameter], **kw: Any) -> torch.optim.Optimizer:
    """LAMB (You et al. 2020; torch.optim has none): pytorch_optimizer's, set to the paper's rule: the update
    u = m / (sqrt(v) + eps) + weight_decay * w, scaled per tensor by the trust ratio min(||w||, 10) / ||u||.

    Moments without bias correction (adam_debias=True keeps pytorch_optimizer from dividing the *step* by
    1 - beta1^t outside the trust ratio, a 10x first step): with weight_decay=0 this is exactly the paper's
    bias-corrected step, since the corrections only rescale m / sqrt(v) and the trust ratio fixes the length."""
    from pytorch_optimizer import Lamb

    return Lamb(params, weight_decouple=False, adam_debias=True, grad_averaging=True, adam=False, pre_norm=False,
                rectify=False, foreach=True, **kw)


OptimizerCtor = Callable[..., torch.optim.Optimizer]


def register_optimizer(name: str) -> Callable[[OptimizerCtor], OptimizerCtor]:
    """Decorator: `@register_optimizer("mine")` on an optimizer class (or factory) called as
    `cls(params, lr=..., **optimizer_config)` makes `optimizer=mine` choose it."""
    def add(cls: OptimizerCtor) -> OptimizerCtor:
        def build(params: list[nn.Parameter], fast: dict[str, bool], **kw: Any) -> torch.optim.Optimizer:
            return cls(params, **kw)
        build.__wrapped__ = cls  # type: ignore[attr-defined]
        register(OPTIMIZERS, "optimizer", name, build)
        return cls
    return add


def _fast_kernels(params: list[nn.Parameter]) -> dict[str, bool]:
    """Fused kernels where torch has them for these tensors (CPU/CUDA floating point), else foreach."""
    fusable = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)
    return {"fused": True} if fusable else {"foreach": True}


def build_optimizer(name: str, params: Iterable[nn.Parameter], **kwargs: Any) -> torch.optim.Optimizer:
    ctor = choose(OPTIMIZERS, name, "optimizer")
    params = list(params)
    try:
        return ctor(params, _fast_kernels(params), **kwargs)
    except TypeError as e:
        raise ConfigError(f"optimizer {name!r}: {e}") from None


class Schedule:
    """One learning-rate policy: per-step (warm-up, cosine, onecycle) or per-epoch (step, plateau)."""

    def __init__(self, optimizer: torch.optim.Optimizer, main: Any, *, per_step: bool,
                 warmup: lrs.LinearLR | None, warmup_steps: int) -> None:
        self.optimizer, self.main, self.per_step = optimizer, main, per_step
        self.warmup, self.warmup_steps, self.steps = warmup, warmup_steps, 0

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[0]["lr"]

    def after_step(self) -> None:
        self.steps += 1
        if self.warmup is not None and self.steps <= self.warmup_steps:
            self.warmup.step()
        elif self.per_step and self.main is not None:
            self.main.step()

    def after_epoch(self, monitored: float) -> None:
        if self.per_step or self.main is None or self.steps <= self.warmup_steps:
            return
        if isinstance(self.main, lrs.ReduceLROnPlateau):
            self.main.step(monitored)
        else:
            self.main.step()

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps,
                "main": self.main.state_dict() if self.main is not None else None,
                "warmup": self.warmup.state_dict() if self.warmup is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        if self.main is not None:
            self.main.load_state_dict(state["main"])
        if self.warmup is not None:
            self.warmup.load_state_dict(state["warmup"])


SCHEDULERS: dict[str, Callable[..., tuple[Any, bool]]] = {
    "none": lambda opt, total_steps, epochs, steps_per_epoch: (None, False),
    "step": lambda opt, total_steps, epochs, steps_per_epoch, step_size=10, gamma=0.1: (
        lrs.StepLR(opt, step_size=step_size, gamma=gamma), False),
    "cosine": lambda opt, total_steps, epochs, steps_per_epoch, eta_min=0.0: (
        lrs.CosineAnnealingLR(opt, T_max=max(1, total_steps), eta_min=eta_min), True),
    "onecycle": lambda opt, total_steps, epochs, steps_per_epoch, max_lr=0.01, pct_start=0.3: (
        lrs.OneCycleLR(opt, max_lr=max_lr, total_steps=max(2, total_steps), pct_start=pct_start), True),
    "plateau": lambda opt, total_steps, epochs, steps_per_epoch, mode="min", factor=0.1, patience=2: (
        lrs.ReduceLROnPlateau(opt, mode=mode, factor=factor, patience=patience), False),
}


def build_schedule(name: str, optimizer: torch.optim.Optimizer, *, epochs: int, steps_per_epoch: int,
                   warmup_epochs: float = 0.0, **params: Any) -> Schedule:
    """`name` over `epochs`, after `warmup_epochs` of linear warm-up from 1% of the base lr."""
    ctor = choose(SCHEDULERS, name, "scheduler")
    if warmup_epochs and name == "onecycle":
        raise ConfigError("scheduler 'onecycle' has its own warm-up (pct_start); set scheduler.warmup_epochs=0")
    warmup_steps = round(warmup_epochs * steps_per_epoch)
    warmup = lrs.LinearLR(optimizer, start_factor=0.01, total_iters=warmup_steps) if warmup_steps else None
    try:
        main, per_step = ctor(optimizer, epochs * steps_per_epoch - warmup_steps, epochs, steps_per_epoch,
                              **params)
    except TypeError as e:
        raise ConfigError(f"scheduler {name!r}: {e}") from None
    return Schedule(optimizer, main, per_step=per_step, warmup=warmup, warmup_steps=warmup_steps)
