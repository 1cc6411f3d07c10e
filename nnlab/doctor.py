"""`nnlab doctor [overrides]`: the chapter's debugging protocol run on the configured pipeline.

Each check reports pass/warn/fail with the fix from the chapter's symptom table; any fail -> exit code 1.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from nnlab.activations import activation_factory
from nnlab.data import shuffled_batches
from nnlab.diagnostics import probe
from nnlab.inits import GATES, Recurrent, expected_std, gain_family
from nnlab.loop import Pipeline
from nnlab.optim import build_optimizer

VANISHING, EXPLODING = 1e-7, 1e3
FLAT = 0.01  # the loss on one batch must fall by at least 1% in 10 steps


@dataclass
class Check:
    name: str
    status: str  # "pass" | "warn" | "fail"
    detail: str
    fix: str = ""


def check_data(p: Pipeline) -> list[Check]:
    """NaN/inf inputs, labels outside [0, classes), class balance."""
    out = []
    for split_name in ("train", "val", "test"):
        split = getattr(p.data, split_name)
        bad = (~torch.isfinite(split.x)).sum().item()
        if bad:
            out.append(Check(f"data: {split_name} inputs finite", "fail", f"{bad} NaN/inf values",
                             "clean or impute the inputs before training (NaN in -> NaN loss)"))
        lo, hi = split.y.min().item(), split.y.max().item()
        if lo < 0 or hi >= p.data.num_classes:
            out.append(Check(f"data: {split_name} label range", "fail",
                             f"labels span [{lo}, {hi}] but there are {p.data.num_classes} classes (0-"
                             f"{p.data.num_classes - 1})", "fix the labels: class indices must be 0..C-1"))
    if not out:
        out.append(Check("data: finite inputs, labels in range", "pass",
                         f"{len(p.data.train)}/{len(p.data.val)}/{len(p.data.test)} samples, "
                         f"{p.data.num_classes} classes"))
    counts = torch.bincount(p.data.train.y.clamp(0, p.data.num_classes - 1), minlength=p.data.num_classes)
    ratio = counts.min().item() / max(1, counts.max().item())
    out.append(Check("data: class balance", "pass" if ratio >= 0.5 else "warn",
                     f"smallest/largest class = {ratio:.2f}",
                     "" if ratio >= 0.5 else "imbalanced classes: consider loss=focal or resampling"))
    return out


def _batch(p: Pipeline, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = next(shuffled_batches(p.data.train, n, torch.Generator(p.data.train.y.device).manual_seed(0)))
    return x, y


def _trainable_copy(p: Pipeline) -> tuple[nn.Module, torch.optim.Optimizer]:
    """A copy of the model with its configured optimizer: the checks never touch the real one."""
    model = copy.deepcopy(p.model)
    opt = build_optimizer(p.config["optimizer"]["name"], model.parameters(),
                          **{k: v for k, v in p.config["optimizer"].items() if k != "name"})
    return model, opt


def check_forward(p: Pipeline) -> list[Check]:
    x, _ = _batch(p, 8)
    want = (8, p.objective.out_units) if p.objective.out_units else (8,)
    if getattr(p.model, "multi_exit", False):  # training returns every exit's output: one per block
        want = (8, len(p.model.exits), *want[1:])
    try:
        out = p.model(x)
    except RuntimeError as e:
        return [Check("forward: shapes", "fail", f"input {tuple(x.shape)}: {str(e).splitlines()[0]}",
                      "print each layer's output shape; the input size must match the first layer")]
    ok = tuple(out.shape) == want
    return [Check("forward: shapes", "pass" if ok else "fail", f"input {tuple(x.shape)} -> output "
                  f"{tuple(out.shape)} (expected {want})", "" if ok else "the output layer must match the loss")]


def check_init(p: Pipeline) -> list[Check]:
    init, act = p.config["init"], p.config["activation"]
    family = gain_family(act["name"], init.get("nonlinearity", "auto"))
    out = []
    for name, w in p.model.named_parameters():
        if w.ndim < 2:
            continue
        fan_out, fan_in = w.shape[0], w[0].numel()
        std = w.std().item()
        scheme, fam = init["name"], family
        layer = p.model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else p.model
        if isinstance(layer, Recurrent):  # per gate block, gain 1 (see inits.init_layers), own scheme keys
            fan_out //= GATES[type(layer)]
            scheme = init.get("recurrent" if ".weight_hh" in f".{name}" else "input") or scheme
            fam = "linear" if init.get("nonlinearity", "auto") == "auto" else family
        want = expected_std(scheme, fan_in, fan_out, family=fam, slope=act.get("negative_slope", 0.01),
                            mode=init.get("mode", "fan_in"), std=init.get("std", 0.01))
        if std == 0:
            out.append(Check(f"init: {name}", "fail", "all weights equal (std 0): every unit computes the same "
                             "thing and gets the same gradient", "use init=kaiming_normal (ReLU) or "
                             "init=xavier_normal (tanh/sigmoid)"))
        elif want and abs(std / want - 1) > 0.25:
            out.append(Check(f"init: {name}", "warn", f"std {std:.4f}, the {init['name']} scheme expects {want:.4f}",
                             "re-check the init scheme and its mode/nonlinearity"))
    if not out:
        out.append(Check("init: weight statistics", "pass", f"{init['name']}: every weight matrix has the std "
                         "its scheme expects" if init["name"] != "default" else "PyTorch's default init"))
    return out


def check_gradients(p: Pipeline) -> list[Check]:
    """One batch forward+backward: which parameters get no gradient, a vanishing or an exploding one."""
    model = copy.deepcopy(p.model)
    x, y = _batch(p, 64)
    model.zero_grad(set_to_none=True)
    p.objective(model(x), y).backward()
    missing, vanishing, exploding, norms = [], [], [], []
    for name, q in model.named_parameters():
        if q.grad is None:
            missing.append(name)
            continue
        n = q.grad.norm().item()
        norms.append(n)
        if q.ndim > 1 and n < VANISHING:
            vanishing.append(f"{name} ({n:.1e})")
        if not math.isfinite(n) or n > EXPLODING:
            exploding.append(f"{name} ({n:.1e})")
    out = []
    if missing:
        out.append(Check("gradients: every parameter gets one", "fail", f"no gradient reaches {', '.join(missing)}",
                         "a layer is detached (.detach(), torch.no_grad, or requires_grad=False) or unused"))
    if vanishing:
        out.append(Check("gradients: vanishing", "fail", f"norm < {VANISHING:g}: {', '.join(vanishing[:4])}",
                         "plateaued loss: use Kaiming/Xavier init, skip connections (model=residual) or BatchNorm"))
    if exploding:
        out.append(Check("gradients: exploding", "fail", f"norm > {EXPLODING:g}: {', '.join(exploding[:4])}",
                         "gradient clipping (trainer.clip.mode=norm trainer.clip.max=1.0), lower the lr"))
    if not out:
        out.append(Check("gradients: flow", "pass", f"per-layer grad norms {min(norms):.1e} .. {max(norms):.1e}"))
    return out


def check_dead_units(p: Pipeline) -> list[Check]:
    stats = probe(p.model, p.data.val.x[:256])
    if not stats:
        return []
    from nnlab.diagnostics import dead_fraction

    worst_name, worst = max(((n, dead_fraction(o)) for n, o in stats), key=lambda t: t[1])
    status = "pass" if worst < 0.5 else "warn" if worst < 0.9 else "fail"
    return [Check("activations: dead units", status, f"worst layer {worst_name}: {worst:.0%} of units constant",
                  "" if status == "pass" else "dead ReLUs: activation=leaky_relu, Kaiming init, a lower lr")]


def check_update(p: Pipeline) -> list[Check]:
    """Parameters with a gradient change after optimizer.step(), and the loss on that batch falls."""
    model, opt = _trainable_copy(p)
    x, y = _batch(p, 64)
    before = {n: q.detach().clone() for n, q in model.named_parameters()}
    pushed: set[str] = set()  # parameters that got a non-zero gradient at some step
    losses = []
    for _ in range(10):
        opt.zero_grad()
        loss = p.objective(model(x), y)
        losses.append(loss.item())
        loss.backward()
        pushed |= {n for n, q in model.named_parameters() if q.grad is not None and bool(q.grad.any())}
        opt.step()
    unchanged = [n for n, q in model.named_parameters() if torch.equal(before[n], q.detach())]
    frozen = [n for n in unchanged if n in pushed]  # a gradient, yet no update: the optimizer misses them
    zero = [n for n in unchanged if n not in pushed]  # an exactly zero gradient (e.g. a bias that cancels)
    note = f" (gradient exactly 0, so no update is due: {', '.join(zero)})" if zero else ""
    out = [Check("update: parameters change after a step", "fail" if frozen else "pass",
                 f"got a gradient but unchanged: {', '.join(frozen)}" if frozen else
                 f"every parameter with a gradient moved{note}",
                 "verify requires_grad=True, that the optimizer holds these parameters and optimizer.lr > 0"
                 if frozen else "")]
    final = p.objective(model(x), y).item()
    lr = p.config["optimizer"]["lr"]
    detail = f"loss {losses[0]:.4g} -> {final:.4g} after 10 steps"
    if not math.isfinite(final) or final > losses[0] * 1.5:
        out.append(Check("update: loss falls on one batch", "fail", detail,
                         f"optimizer.lr={lr:g} is likely too high: try 10x lower (Adam: 3e-4)"))
    elif final > losses[0] * (1 - FLAT):
        out.append(Check("update: loss falls on one batch", "fail", detail + f" (less than {FLAT:.0%} lower)",
                         "a flat loss: weights all equal (init=zeros), a learning rate too small "
                         f"(optimizer.lr={lr:g}), or dead units; see the init and gradient lines"))
    else:
        out.append(Check("update: loss falls on one batch", "pass", detail))
    return out


def check_gradcheck(p: Pipeline) -> list[Check]:
    name = p.config["activation"]["name"]
    act = activation_factory(name, **{k: v for k, v in p.config["activation"].items() if k != "name"})()
    x = (torch.randn(16, dtype=torch.float64) + 0.05).requires_grad_()  # away from kinks at 0
    try:
        ok = torch.autograd.gradcheck(act, (x,), eps=1e-6, atol=1e-4, raise_exception=False)
    except RuntimeError:
        ok = False
    return [Check(f"gradcheck: activation {name} (float64)", "pass" if ok else "fail",
                  "analytic and numerical gradients agree" if ok else "backward disagrees with finite differences",
                  "" if ok else "fix the custom backward() of this activation")]


def check_overfit(p: Pipeline, samples: int = 32, max_steps: int = 300) -> list[Check]:
    """The chapter's first protocol step: the model must memorize a tiny batch."""
    model, opt = _trainable_copy(p)
    x, y = _batch(p, samples)
    model.train()
    acc, step = 0.0, 0
    for step in range(1, max_steps + 1):
        opt.zero_grad()
        out = model(x)
        loss = p.objective(out, y)
        if not torch.isfinite(loss):
            break
        loss.backward()
        opt.step()
        if step % 10 == 0:
            model.eval()
            with torch.no_grad():
                acc = (p.objective.predict(model(x)) == y).float().mean().item()
            model.train()
            if acc == 1.0:
                break
    ok = acc == 1.0
    return [Check(f"overfit {len(y)} samples", "pass" if ok else "fail",
                  f"{acc:.0%} accuracy after {step} steps", "" if ok else
                  "a model that cannot memorize 32 samples has an architecture, init or lr problem: "
                  "check the lines above")]


CHECKS = (check_data, check_forward, check_init, check_gradients, check_dead_units, check_update, check_gradcheck,
          check_overfit)


def diagnose(p: Pipeline) -> list[Check]:
    results: list[Check] = []
    for check in CHECKS:
        try:
            results.extend(check(p))
        except (RuntimeError, ValueError, IndexError) as e:  # a broken pipeline breaks a check: that is a finding
            name = check.__name__.removeprefix("check_").replace("_", " ")
            results.append(Check(f"{name}: runs", "fail", f"{type(e).__name__}: {' '.join(str(e).split())[:200]}",
                                 "the lines above name the likely cause (shapes, labels, loss)"))
    return results
