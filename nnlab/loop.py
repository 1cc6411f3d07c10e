"""The training loop, read top to bottom as in the chapter's anatomy.

per step:  zero_grad -> forward (autocast) -> loss (+ L1) -> scaled backward -> unscale -> clip -> step
per epoch: validate -> scheduler -> best/last checkpoint -> early stopping -> tracker
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
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
    """Ctrl-C, SIGTERM (scancel, preemption) or SLURM's warning signal: the step finished, last.pt is saved."""

    def __init__(self, *signals: str) -> None:
        super().__init__(" and ".join(signals) or "SIGTERM")
        self.signals = signals  # names, in the order they came (SLURM preemption: SIGTERM, then SIGUSR2)


class NonFinite(Exception):
    """A NaN/inf loss or gradient; the message is the diagnosis."""


class Pruned(Exception):
    """A hyperparameter search stopped this trial after `epoch` (last.pt saved); the message says why."""

    def __init__(self, message: str, epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch


EpochHook = Callable[[int, dict[str, float]], None]  # (epoch, that epoch's metrics); may raise Pruned


@dataclass
class TrainSettings:
    epochs: int
    batch_size: int
    eval_batch_size: int
    seed: int
    clip_mode: str = "none"
    clip_max: float = 1.0
    log_every: int = 50
    steps_per_epoch: int = 1  # batches per epoch: the split's, or trainer.limit_train_batches
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
    epoch_hook: EpochHook | None = None  # called after each epoch's checkpoint (e.g. an Optuna trial's report)


@dataclass
class EpochTotals:
    """Training totals of an epoch so far, on the host (summed over ranks at the epoch's end)."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0


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
    partial: EpochTotals = field(default_factory=lambda: EpochTotals())  # the current epoch's, after an interrupt
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


def warning_signal() -> signal.Signals:
    """The signal SLURM sends before the time limit (sbatch --signal; submitit's USR2 unless told otherwise)."""
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    return getattr(signal, f"SIG{name}", signal.SIGUSR2)


def _steps(step_from: int, step_to: int) -> str:
    return f"at step {step_to}" if step_from >= step_to else f"between steps {step_from} and {step_to}"


class _StopRequest:
    """SIGINT, SIGTERM or SLURM's warning signal asks the loop to stop after the current step (every signal is
    recorded: a preempted SLURM job gets SIGTERM and then the warning). Only a second Ctrl-C kills at once:
    SIGTERM may come twice (slurmstepd and srun) and must not cut a checkpoint write short."""

    def __init__(self) -> None:
        self.received: list[signal.Signals] = []
        self._old: dict[int, Any] = {}

    @property
    def signal(self) -> int | None:
        return self.received[0] if self.received else None

    def __enter__(self) -> _StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM, warning_signal()):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. some launchers): no graceful stop
                pass
        return self

    def _handle(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGINT and signal.SIGINT in self.received:
            raise KeyboardInterrupt
        if signum not in self.received:
            self.received.append(signal.Signals(signum))

    def names(self) -> list[str]:
        return [s.name for s in self.received]

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def checkpoint_state(p: Pipeline, st: LoopState, aug_gen: torch.Generator) -> dict[str, Any]:
    return {
        "model": p.model.state_dict(), "optimizer": p.optimizer.state_dict(),
        "schedule": p.schedule.state_dict(), "scaler": p.precision.scaler.state_dict(),
        "rng": rng_state(), "aug_gen": aug_gen.get_state(), "shuffle_state": st.shuffle_state,
        "loop": {**{k: v for k, v in vars(st).items() if k != "shuffle_state"}, "partial": asdict(st.partial)},
        "config": p.config, "run_id": run_identity(p.run_dir),
    }


def restore(p: Pipeline, state: dict[str, Any], aug_gen: torch.Generator) -> LoopState:
    p.model.load_state_dict(state["model"])
    p.optimizer.load_state_dict(state["optimizer"])
    p.schedule.load_state_dict(state["schedule"])
    p.precision.scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    aug_gen.set_state(state["aug_gen"])
    loop = state["loop"]
    return LoopState(**{**loop, "partial": EpochTotals(**loop["partial"])}, shuffle_state=state["shuffle_state"])


def _save(p: Pipeline, st: LoopState, aug_gen: torch.Generator, name: str) -> None:
    if p.settings.checkpoint:
        save_atomic(checkpoint_state(p, st, aug_gen), p.run_dir / "checkpoints" / name)


def _improved(value: float, best: float | None, mode: str) -> bool:
    return best is None or (value < best if mode == "min" else value > best)


def train_step(p: Pipeline, model: nn.Module, xb: Tensor, yb: Tensor, l1_weights: list[Tensor]) -> StepResult:
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
    return StepResult(out.detach(), loss.detach(), grad_norm, skipped)


@dataclass
class StepResult:
    """What one train_step leaves on the device (nothing synced to the host)."""

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
    def resume(cls, totals: EpochTotals, device: torch.device) -> EpochAccumulator:
        return cls(torch.tensor(totals.loss_sum, device=device),
                   torch.tensor(int(totals.correct), device=device, dtype=torch.long), int(totals.seen),
                   torch.zeros((), device=device, dtype=torch.long))

    def add(self, p: Pipeline, step: StepResult, yb: Tensor) -> None:
        self.loss_sum += step.loss.float() * len(yb)
        self.correct += (p.objective.predict(step.out) == yb).sum()
        self.seen += len(yb)
        if step.skipped is not None:
            self.skipped += step.skipped

    def host(self) -> EpochTotals:
        return EpochTotals(self.loss_sum.item(), int(self.correct.item()), self.seen)


@dataclass
class Clock:
    """When the epoch started, and where the last log step was (time, samples seen, global step)."""

    epoch_start: float
    log_time: float
    log_seen: int
    log_step: int

    @classmethod
    def start(cls, acc: EpochAccumulator, st: LoopState) -> Clock:
        now = time.perf_counter()
        return cls(now, now, acc.seen, st.global_step)


@dataclass
class Training:
    """What fit() sets up once: the model it steps (DDP / compiled wrapper of p.model), its generators."""

    model: nn.Module
    shuffle_gen: torch.Generator
    aug_gen: torch.Generator
    l1_weights: list[Tensor]

    @classmethod
    def setup(cls, p: Pipeline) -> Training:
        s, model, device = p.settings, p.model, p.data.train.y.device
        if p.ranks.active:  # gradients are averaged over ranks inside backward()
            from torch.nn.parallel import DistributedDataParallel

            model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        if s.compile:  # the training steps only: p.model stays the eager module that checkpoints, evaluation,
            model = torch.compile(model)  # forward hooks and histograms see (plain parameter names, no recompiles)
        return cls(model, torch.Generator(device=device).manual_seed(s.seed),
                   torch.Generator(device=device).manual_seed(s.seed + 1),
                   [q for q in p.model.parameters() if q.ndim > 1] if s.l1 else [])


def _log_step(p: Pipeline, tracker: Tracker, model: nn.Module, st: LoopState, step: StepResult,
              acc: EpochAccumulator, clock: Clock) -> None:
    """Every log_every_n_steps: the one host sync, the non-finite guard, and the step scalars."""
    loss_now = step.loss.item()
    if not math.isfinite(loss_now) or not torch.isfinite(acc.loss_sum):
        raise NonFinite(_diagnose(p, "loss", clock.log_step + 1, st.global_step))
    gn = step.grad_norm if step.grad_norm is not None else _grad_norm(model)
    if not torch.isfinite(gn) and not p.precision.scaler.is_enabled():
        raise NonFinite(_diagnose(p, "gradient", clock.log_step + 1, st.global_step))
    now = time.perf_counter()
    tracker.step(st.global_step, st.batch, {
        "train/loss_step": loss_now, "optim/lr": p.schedule.lr, "optim/grad_norm": float(gn),
        "perf/samples_per_s": (acc.seen - clock.log_seen) / max(now - clock.log_time, 1e-9),
    })
    clock.log_time, clock.log_seen, clock.log_step = now, acc.seen, st.global_step


def _begin_epoch(p: Pipeline, tracker: Tracker, st: LoopState, t: Training) -> tuple[EpochAccumulator, Clock]:
    """Position the shuffle at this epoch's permutation (exact resume) and start its accumulators."""
    if st.shuffle_state is not None:
        t.shuffle_gen.set_state(st.shuffle_state)
    st.shuffle_state = t.shuffle_gen.get_state()
    acc = EpochAccumulator.resume(st.partial if st.batch else EpochTotals(), p.data.train.y.device)
    t.model.train()
    tracker.begin_epoch(p.settings.steps_per_epoch)
    return acc, Clock.start(acc, st)


def _epoch_batches(p: Pipeline, st: LoopState, t: Training) -> Iterator[tuple[Tensor, Tensor]]:
    """This rank's batches of the epoch from batch `st.batch` on, at most steps_per_epoch in all."""
    batches = shuffled_batches(p.data.train, p.settings.batch_size, t.shuffle_gen, st.batch, p.ranks.rank,
                               p.ranks.world)
    return itertools.islice(batches, max(0, p.settings.steps_per_epoch - st.batch))


def _augment(p: Pipeline, xb: Tensor, aug_gen: torch.Generator) -> Tensor:
    """regularizer.augment: a random rotation/shift of a whole image batch."""
    return random_affine(xb, aug_gen) if p.settings.augment and xb.ndim == 4 else xb


def _stop_agreed(p: Pipeline, stop: _StopRequest) -> bool:
    """Whether a signal asked to stop, on any rank (every rank calls this at the same step)."""
    if p.ranks.active:
        return any_rank(stop.signal is not None, p.data.train.y.device)
    return stop.signal is not None


def _log_or_stop(p: Pipeline, tracker: Tracker, st: LoopState, t: Training, step: StepResult,
                 acc: EpochAccumulator, clock: Clock, stop: _StopRequest) -> None:
    """Log at log steps; on a stop request, save last.pt mid-epoch and raise Interrupted.

    Ranks stop together: the flag is agreed on at log steps (a rank stopping alone would hang DDP)."""
    log_now = st.global_step % p.settings.log_every == 0
    stopping = _stop_agreed(p, stop) if log_now or not p.ranks.active else False
    if log_now or stopping:
        _log_step(p, tracker, t.model, st, step, acc, clock)
    if stopping:
        st.partial = acc.host()
        st.elapsed += time.perf_counter() - clock.epoch_start
        _save(p, st, t.aug_gen, "last.pt")
        raise Interrupted(*stop.names())


def _end_epoch(p: Pipeline, tracker: Tracker, st: LoopState, acc: EpochAccumulator, aug_gen: torch.Generator) -> bool:
    """Validate, schedule, report, checkpoint (best and last); True when early stopping says stop."""
    s, device = p.settings, p.data.train.y.device
    totals = acc.host()
    loss_total, correct_total, seen_total = all_sum([totals.loss_sum, totals.correct, totals.seen], device)
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
    if p.epoch_hook is not None:
        p.epoch_hook(st.epoch, metrics)
    if s.patience and st.bad_epochs >= s.patience:
        tracker.info(f"early stopping: {s.monitor} has not improved for {s.patience} epochs "
                     f"(best {st.best:.4f} at epoch {st.best_epoch})")
        return True
    return False


def fit(p: Pipeline, tracker: Tracker, resume: dict[str, Any] | None = None) -> LoopState:
    """Train for `settings.epochs`; returns the loop state (checkpoints written on the way)."""
    s, t = p.settings, Training.setup(p)
    st = restore(p, resume, t.aug_gen) if resume else LoopState()
    tracker.begin(s.epochs, st.epoch)
    with _StopRequest() as stop:
        while st.epoch < s.epochs:
            acc, clock = _begin_epoch(p, tracker, st, t)
            for xb, yb in _epoch_batches(p, st, t):
                xb = _augment(p, xb, t.aug_gen)
                step = train_step(p, t.model, xb, yb, t.l1_weights)
                acc.add(p, step, yb)
                st.batch, st.global_step = st.batch + 1, st.global_step + 1
                _log_or_stop(p, tracker, st, t, step, acc, clock, stop)
            st.shuffle_state = t.shuffle_gen.get_state()  # the next epoch starts here
            st.elapsed += time.perf_counter() - clock.epoch_start
            if _end_epoch(p, tracker, st, acc, t.aug_gen):
                break
        if _stop_agreed(p, stop):  # came after the last step (last validation, checkpoint): last.pt holds it all
            raise Interrupted(*stop.names())
    tracker.end()
    return st
