"""The training loop, read top to bottom as in the chapter's anatomy.

per step:  zero_grad -> forward (autocast) -> loss (+ L1) -> scaled backward -> unscale -> clip -> step
per epoch: validate -> scheduler -> best/last checkpoint -> early stopping -> tracker
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from nnlab.checkpoint import link_atomic, run_identity, save_atomic
from nnlab.data import DataBundle, Split, ordered_batches, shuffled_batches
from nnlab.data.augment import random_affine
from nnlab.devices import Precision
from nnlab.diagnostics import probe
from nnlab.distributed import Ranks, all_sum, any_rank
from nnlab.losses import Objective
from nnlab.optim import Schedule
from nnlab.seeding import rng_state, set_rng_state
from nnlab.tracker import Tracker


class Interrupted(Exception):
    """Ctrl-C / SIGTERM: the step finished, last.pt is saved."""


class NonFinite(Exception):
    """A NaN/inf loss or gradient; the message is the diagnosis."""


@dataclass
class TrainSettings:
    epochs: int
    batch_size: int
    eval_batch_size: int
    seed: int
    clip_mode: str = "none"
    clip_max: float = 1.0
    log_every: int = 50
    limit_train_batches: int = 0
    l1: float = 0.0
    augment: bool = False
    patience: int = 0
    monitor: str = "val/loss"
    mode: str = "min"
    checkpoint: bool = True
    activation_stats: bool = False
    compile: bool = False  # torch.compile the training forward; the model itself stays eager (see fit)


@dataclass
class Pipeline:
    """Everything `runner.build()` assembled; `fit()` only reads the config values in `settings`."""

    data: DataBundle
    model: nn.Module
    objective: Objective
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    precision: Precision
    settings: TrainSettings
    run_dir: Path
    config: dict[str, Any] = field(default_factory=dict)
    ranks: Ranks = field(default_factory=Ranks)


@dataclass
class LoopState:
    epoch: int = 0  # completed epochs
    batch: int = 0  # batches done in the current epoch (non-zero only after an interrupt)
    global_step: int = 0
    best: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    elapsed: float = 0.0
    amp_skipped: int = 0  # GradScaler steps skipped for inf/NaN gradients (fp16): counted, not fatal
    accum: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])  # loss sum, correct, seen
    shuffle_state: Tensor | None = None  # shuffle generator state at the start of the current epoch
    last_val: dict[str, float] | None = None  # the last epoch's validation scores (of the current weights)


@torch.no_grad()
def evaluate(p: Pipeline, split: Split) -> dict[str, float]:
    """Mean loss and accuracy over `split` in eval mode (dropout off, BatchNorm running stats)."""
    was_training = p.model.training
    p.model.eval()
    loss_sum = torch.zeros((), device=split.y.device)
    correct = torch.zeros((), device=split.y.device, dtype=torch.long)
    for xb, yb in ordered_batches(split, p.settings.eval_batch_size):
        with p.precision.autocast():
            out = p.model(xb)
            loss_sum += p.objective(out, yb).float() * len(yb)
        correct += (p.objective.predict(out) == yb).sum()
    p.model.train(was_training)
    n = max(1, len(split))
    return {"loss": loss_sum.item() / n, "acc": correct.item() / n}


def _grad_norm(model: nn.Module) -> Tensor:
    grads = [q.grad.detach().norm() for q in model.parameters() if q.grad is not None]
    return torch.stack(grads).norm() if grads else torch.zeros(())


def _diagnose(p: Pipeline, what: str, step_from: int, step_to: int) -> str:
    bad = [name for name, q in p.model.named_parameters()
           if not torch.isfinite(q).all() or (q.grad is not None and not torch.isfinite(q.grad).all())]
    lr = p.schedule.lr
    return (
        f"non-finite {what} {_steps(step_from, step_to)} "
        f"(non-finite parameters or gradients: {', '.join(bad[:6]) or 'none yet'}). Likely causes, from the "
        f"chapter's debugging table: a learning rate too high (optimizer.lr is {lr:g}; try 10x lower), "
        f"bad inputs (NaN/inf in the data: run `nnlab doctor`), exploding gradients (add "
        f"trainer.clip.mode=norm trainer.clip.max=1.0). checkpoints/last.pt, if present, holds the last "
        f"good epoch."
    )


def _steps(step_from: int, step_to: int) -> str:
    return f"at step {step_to}" if step_from >= step_to else f"between steps {step_from} and {step_to}"


class _StopRequest:
    """First SIGINT/SIGTERM asks the loop to stop after the current step; a second one kills."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. some launchers): no graceful stop
                pass
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def checkpoint_state(p: Pipeline, st: LoopState, aug_gen: torch.Generator) -> dict[str, Any]:
    return {
        "model": p.model.state_dict(), "optimizer": p.optimizer.state_dict(),
        "schedule": p.schedule.state_dict(), "scaler": p.precision.scaler.state_dict(),
        "rng": rng_state(), "aug_gen": aug_gen.get_state(), "shuffle_state": st.shuffle_state,
        "loop": {k: v for k, v in vars(st).items() if k != "shuffle_state"}, "config": p.config,
        "run_id": run_identity(p.run_dir),
    }


def restore(p: Pipeline, state: dict[str, Any], aug_gen: torch.Generator) -> LoopState:
    p.model.load_state_dict(state["model"])
    p.optimizer.load_state_dict(state["optimizer"])
    p.schedule.load_state_dict(state["schedule"])
    p.precision.scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    aug_gen.set_state(state["aug_gen"])
    return LoopState(**state["loop"], shuffle_state=state["shuffle_state"])


def _save(p: Pipeline, st: LoopState, aug_gen: torch.Generator, name: str) -> None:
    if p.settings.checkpoint:
        save_atomic(checkpoint_state(p, st, aug_gen), p.run_dir / "checkpoints" / name)


def _improved(value: float, best: float | None, mode: str) -> bool:
    return best is None or (value < best if mode == "min" else value > best)


def train_step(p: Pipeline, model: nn.Module, xb: Tensor, yb: Tensor, l1_weights: list[Tensor]) -> Step:
    """One optimization step, the chapter's anatomy: zero_grad -> forward (autocast) -> loss (+ L1)
    -> scaled backward -> unscale -> clip -> step -> scheduler. No host sync."""
    s, scaler = p.settings, p.precision.scaler
    p.optimizer.zero_grad(set_to_none=True)
    with p.precision.autocast():
        out = model(xb)
        loss = p.objective(out, yb)
        if l1_weights:
            loss = loss + s.l1 * sum(w.abs().sum() for w in l1_weights)
    scaler.scale(loss).backward()
    grad_norm = None
    if s.clip_mode != "none":
        scaler.unscale_(p.optimizer)
        if s.clip_mode == "norm":
            grad_norm = nn.utils.clip_grad_norm_(model.parameters(), s.clip_max)
        else:
            nn.utils.clip_grad_value_(model.parameters(), s.clip_max)
    scale_before = scaler._scale.clone() if scaler.is_enabled() else None  # device op, no sync
    scaler.step(p.optimizer)
    scaler.update()
    skipped = (scaler._scale < scale_before).sum() if scale_before is not None else None  # backs off on a skip
    p.schedule.after_step()
    return Step(out.detach(), loss.detach(), grad_norm, skipped)


@dataclass
class Step:
    out: Tensor
    loss: Tensor
    grad_norm: Tensor | None
    skipped: Tensor | None  # 1 when the GradScaler skipped this step (inf/NaN gradients), else 0


@dataclass
class EpochAccumulator:
    """Running epoch metrics kept on the device, so the hot loop never waits for the host."""

    loss_sum: Tensor
    correct: Tensor
    seen: int
    skipped: Tensor

    @classmethod
    def resume(cls, accum: list[float], device: torch.device) -> EpochAccumulator:
        return cls(torch.tensor(accum[0], device=device), torch.tensor(int(accum[1]), device=device,
                   dtype=torch.long), int(accum[2]), torch.zeros((), device=device, dtype=torch.long))

    def add(self, p: Pipeline, step: Step, yb: Tensor) -> None:
        self.loss_sum += step.loss.float() * len(yb)
        self.correct += (p.objective.predict(step.out) == yb).sum()
        self.seen += len(yb)
        if step.skipped is not None:
            self.skipped += step.skipped

    def host(self) -> list[float]:
        return [self.loss_sum.item(), self.correct.item(), self.seen]


def _log_step(p: Pipeline, tracker: Tracker, model: nn.Module, st: LoopState, step: Step, acc: EpochAccumulator,
              since: list[float]) -> None:
    """Every log_every_n_steps: the one host sync, the non-finite guard, and the step scalars."""
    t_log, seen_log, step_log = since
    loss_now = step.loss.item()
    if not math.isfinite(loss_now) or not torch.isfinite(acc.loss_sum):
        raise NonFinite(_diagnose(p, "loss", int(step_log) + 1, st.global_step))
    gn = step.grad_norm if step.grad_norm is not None else _grad_norm(model)
    if not torch.isfinite(gn) and not p.precision.scaler.is_enabled():
        raise NonFinite(_diagnose(p, "gradient", int(step_log) + 1, st.global_step))
    now = time.perf_counter()
    tracker.step(st.global_step, st.batch, {
        "train/loss_step": loss_now, "lr": p.schedule.lr, "grad_norm": float(gn),
        "perf/samples_per_s": (acc.seen - seen_log) / max(now - t_log, 1e-9),
    })
    since[:] = [now, acc.seen, st.global_step]


def _end_epoch(p: Pipeline, tracker: Tracker, st: LoopState, acc: EpochAccumulator, aug_gen: torch.Generator) -> bool:
    """Validate, schedule, report, checkpoint (best and last); True when early stopping says stop."""
    s, device = p.settings, p.data.train.y.device
    loss_total, correct_total, seen_total = all_sum(acc.host(), device)
    train_loss, train_acc = loss_total / max(seen_total, 1), correct_total / max(seen_total, 1)
    if not math.isfinite(train_loss):
        raise NonFinite(_diagnose(p, "loss", st.global_step, st.global_step))
    val = st.last_val = evaluate(p, p.data.val)
    metrics = {"train/loss": train_loss, "train/acc": train_acc, "val/loss": val["loss"],
               "val/acc": val["acc"], "lr": p.schedule.lr}
    if p.precision.scaler.is_enabled():
        st.amp_skipped += int(acc.skipped.item())
        metrics["amp/skipped_steps"] = float(st.amp_skipped)
    st.epoch, st.batch = st.epoch + 1, 0
    p.schedule.after_epoch(metrics.get(s.monitor, val["loss"]))
    tracker.end_epoch(st.epoch, st.global_step, metrics)
    tracker.histograms(st.epoch, {
        **{f"weights/{n}": q.detach() for n, q in p.model.named_parameters()},
        **{f"grads/{n}": q.grad.detach() for n, q in p.model.named_parameters() if q.grad is not None},
    })
    if s.activation_stats:
        tracker.activations(st.epoch, st.global_step, probe(p.model, p.data.val.x[:256]))
    improved = _improved(metrics[s.monitor], st.best, s.mode)
    if improved:
        st.best, st.best_epoch, st.bad_epochs = metrics[s.monitor], st.epoch, 0
    else:
        st.bad_epochs += 1
    _save(p, st, aug_gen, "last.pt")
    if improved and s.checkpoint:  # same content: one write, best.pt linked to it
        link_atomic(p.run_dir / "checkpoints" / "last.pt", p.run_dir / "checkpoints" / "best.pt")
    if s.patience and st.bad_epochs >= s.patience:
        tracker.info(f"early stopping: {s.monitor} has not improved for {s.patience} epochs "
                     f"(best {st.best:.4f} at epoch {st.best_epoch})")
        return True
    return False


def fit(p: Pipeline, tracker: Tracker, resume: dict[str, Any] | None = None) -> LoopState:
    """Train for `settings.epochs`; returns the loop state (checkpoints written on the way)."""
    s, model, device = p.settings, p.model, p.data.train.y.device
    shuffle_gen = torch.Generator(device=device).manual_seed(s.seed)
    aug_gen = torch.Generator(device=device).manual_seed(s.seed + 1)
    st = restore(p, resume, aug_gen) if resume else LoopState()
    n_batches = math.ceil(len(p.data.train) / s.batch_size)
    if s.limit_train_batches:
        n_batches = min(n_batches, s.limit_train_batches)
    l1_weights = [q for q in model.parameters() if q.ndim > 1] if s.l1 else []
    if p.ranks.active:  # gradients are averaged over ranks inside backward()
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if s.compile:  # the training steps only: p.model stays the eager module that checkpoints, evaluation,
        model = torch.compile(model)  # forward hooks and histograms see (plain parameter names, no recompiles)
    tracker.begin(s.epochs, st.epoch)
    with _StopRequest() as stop:
        while st.epoch < s.epochs:
            if st.shuffle_state is not None:  # start of this epoch's permutation (exact resume)
                shuffle_gen.set_state(st.shuffle_state)
            st.shuffle_state = shuffle_gen.get_state()
            acc = EpochAccumulator.resume(st.accum if st.batch else [0.0, 0.0, 0.0], device)
            model.train()
            tracker.begin_epoch(n_batches)
            t0 = time.perf_counter()
            since = [t0, acc.seen, st.global_step]  # last log: time, samples, step
            for xb, yb in shuffled_batches(p.data.train, s.batch_size, shuffle_gen, st.batch, p.ranks.rank,
                                           p.ranks.world):
                if st.batch >= n_batches:
                    break
                if s.augment and xb.ndim == 4:
                    xb = random_affine(xb, aug_gen)
                step = train_step(p, model, xb, yb, l1_weights)
                acc.add(p, step, yb)
                st.batch += 1
                st.global_step += 1
                log_now = st.global_step % s.log_every == 0
                # ranks stop together: the flag is agreed on at log steps (a lone rank would hang DDP)
                stopping = any_rank(stop.signal is not None, device) if p.ranks.active and log_now else (
                    stop.signal is not None and not p.ranks.active)
                if log_now or stopping:
                    _log_step(p, tracker, model, st, step, acc, since)
                if stopping:
                    st.accum = acc.host()
                    st.elapsed += time.perf_counter() - t0
                    _save(p, st, aug_gen, "last.pt")
                    raise Interrupted(signal.Signals(stop.signal or signal.SIGTERM).name)
            st.shuffle_state = shuffle_gen.get_state()  # the next epoch starts here
            st.elapsed += time.perf_counter() - t0
            if _end_epoch(p, tracker, st, acc, aug_gen):
                break
    tracker.end()
    return st
