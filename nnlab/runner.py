"""Config in, Pipeline out: the one place that reads the config; everything below takes plain arguments."""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nnlab.activations import activation_factory
from nnlab.checkpoint import check_fits, load_checkpoint, load_training_state
from nnlab.data import build_data, ordered_batches
from nnlab.devices import build_precision, resolve_device
from nnlab.diagnostics import layer_stats
from nnlab.distributed import Ranks, env_rank, setup, teardown
from nnlab.finetune import freeze_body, load_matching
from nnlab.inits import init_layers
from nnlab.loop import EpochHook, Pipeline, Pruned, TrainSettings, evaluate, fit
from nnlab.losses import build_objective, over_exits
from nnlab.models import build_model
from nnlab.models.dynamic import exit_curve
from nnlab.optim import build_optimizer, build_schedule
from nnlab.pictures import test_pictures
from nnlab.registry import ConfigError
from nnlab.seeding import seed_everything
from nnlab.tracker import Tracker
from nnlab.verdicts import run_verdicts

_DEFAULT_THREADS = torch.get_num_threads()


def _without(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


def settings_from(cfg: dict[str, Any], n_train: int, ranks: Ranks | None = None) -> TrainSettings:
    """The loop's settings; `n_train` rows make `steps_per_epoch` (capped by trainer.limit_train_batches)."""
    t, reg, ranks = cfg["trainer"], cfg["regularizer"], ranks or Ranks()
    steps = math.ceil(n_train / t["batch_size"])
    return TrainSettings(
        epochs=t["epochs"], batch_size=t["batch_size"], eval_batch_size=t["eval_batch_size"], seed=t["seed"],
        clip_mode=t["clip"]["mode"], clip_max=t["clip"]["max"], log_every=max(1, t["log_every_n_steps"]),
        steps_per_epoch=min(steps, t["limit_train_batches"]) if t["limit_train_batches"] else steps,
        l1=reg["l1"], augment=reg["augment"],
        patience=reg["early_stopping"]["patience"], monitor=reg["early_stopping"]["monitor"],
        mode=reg["early_stopping"]["mode"], checkpoint=t.get("checkpoint", True) and ranks.is_main,
        activation_stats=cfg.get("logger", {}).get("activation_stats", False), compile=t["compile"],
    )


def build(cfg: dict[str, Any], run_dir: Path, tracker: Tracker | None = None) -> Pipeline:
    """Data, model, loss, optimizer, schedule and precision from a plain (resolved) config dict.

    `tracker` hears what fine-tuning (init.from_run, init.freeze) loaded, re-initialized and froze."""
    t = cfg["trainer"]
    seed_everything(t["seed"], t["deterministic"])
    torch.set_num_threads(t["threads"] or _DEFAULT_THREADS)  # reset too: sweep jobs can share a process
    ranks, device = setup(t.get("strategy", "single"), resolve_device(cfg["device"]["name"]))
    if t["batch_size"] % ranks.world:
        raise ConfigError(f"trainer.batch_size={t['batch_size']} is the global batch: it must divide evenly "
                          f"between the {ranks.world} DDP processes")
    data = build_data(**cfg["data"]).to(device)
    objective = build_objective(**cfg["loss"], num_classes=data.num_classes, pairs=data.kind == "pairs")
    act_name = cfg["activation"]["name"]
    act_params = _without(cfg["activation"], "name")
    model = build_model(cfg["model"]["name"], input_shape=data.input_shape, out_units=objective.out_units,
                        data_kind=data.kind, act=activation_factory(act_name, **act_params),
                        **_without(cfg["model"], "name"))
    if getattr(model, "multi_exit", False):
        objective = over_exits(objective)
    init = cfg["init"]
    init_layers(model, init["name"], activation=act_name, negative_slope=act_params.get("negative_slope", 0.01),
                **_without(init, "name", "from_run", "freeze", "new_head"))
    transfer(model, init.get("from_run"), init.get("freeze", "none"), bool(init.get("new_head", True)), tracker)
    model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not t["deterministic"]
    if data.kind == "image" and device.type in ("cpu", "cuda"):
        # NHWC convolutions: cuDNN's tensor-core kernels and oneDNN's CPU kernels both prefer it (the CNN
        # trains ~1.3x faster on 2 CPU cores); only 4-d weights change, and a 1-channel batch is both layouts
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg["optimizer"]["name"], [q for q in model.parameters() if q.requires_grad],
                                **_without(cfg["optimizer"], "name"))
    settings = settings_from(cfg, len(data.train), ranks)
    schedule = build_schedule(cfg["scheduler"]["name"], optimizer, epochs=t["epochs"],
                              steps_per_epoch=settings.steps_per_epoch,
                              **_without(cfg["scheduler"], "name"))
    return Pipeline(data=data, model=model, objective=objective, optimizer=optimizer, schedule=schedule,
                    precision=build_precision(t["amp"], device), settings=settings, run_dir=run_dir,
                    config=cfg, ranks=ranks)


def transfer(model: torch.nn.Module, from_run: str | None, freeze: str, new_head: bool,
             tracker: Tracker | None) -> None:
    """init.from_run: load the matching weights (the rest, and the head with init.new_head, keeps its fresh
    init); init.freeze=body: train only the head and whatever was re-initialized."""
    say = tracker.info if tracker is not None else (lambda _msg: None)
    fresh: list[str] = []
    if from_run:
        t = load_matching(model, from_run, new_head=new_head)
        params = dict(model.named_parameters())
        fresh = [n for n in t.reinitialized if n in params]
        say(f"init.from_run: loaded {len(t.loaded)} of {len(t.loaded) + len(t.reinitialized)} tensors "
            f"from {t.source}")
        if t.reinitialized:
            say("init.from_run: re-initialized (the new head, or absent from the source or another shape): "
                + ", ".join(t.reinitialized))
        if t.unused:
            say(f"init.from_run: not used (not in this model): {', '.join(t.unused)}")
    if freeze == "body":
        say(f"init.freeze=body: training only {', '.join(freeze_body(model, fresh))}")


EXIT_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


def exit_metrics(p: Pipeline, cfg: dict[str, Any], tracker: Tracker) -> dict[str, float]:
    """A multi-exit model: mean blocks used per split at its threshold (final/<split>_depth), and the test
    split's accuracy/depth trade-off over EXIT_THRESHOLDS (metrics exit/test_*@t; TensorBoard exit/test_acc
    and exit/test_depth with the threshold in percent as the step, and exit/test_acc_by_depth)."""
    size, predict = p.settings.eval_batch_size, p.objective.predict
    splits = {"train": p.data.train.spread(cfg["trainer"].get("final_train_samples", 0)), "val": p.data.val,
              "test": p.data.test}
    threshold = float(p.model.exit_threshold)
    metrics = {}
    for name, split in splits.items():
        [(_, _, depth)] = exit_curve(p.model, lambda s=split: ordered_batches(s, size), predict, [threshold])
        metrics[f"final/{name}_depth"] = depth
    for t, acc, depth in exit_curve(p.model, lambda: ordered_batches(p.data.test, size), predict, EXIT_THRESHOLDS):
        metrics[f"exit/test_acc@{t:g}"], metrics[f"exit/test_depth@{t:g}"] = acc, depth
        tracker.scalar("exit/test_acc", acc, round(t * 100))
        tracker.scalar("exit/test_depth", depth, round(t * 100))
        tracker.scalar("exit/test_acc_by_depth", acc, round(depth * 100))  # x axis: blocks used x 100
    return metrics


def hparams_of(cfg: dict[str, Any], choices: dict[str, str]) -> dict[str, Any]:
    """Flat hyperparameters as a sweep names them: each config group by its choice (`activation`: `relu`),
    then every leaf value (`optimizer.lr`, `model.hidden`); a group's `name` leaf is its choice already."""
    groups = {k: str(choices[k] if choices.get(k) is not None else v["name"]) for k, v in sorted(cfg.items())
              if isinstance(v, dict) and (choices.get(k) is not None or "name" in v) and k != "experiment"}
    flat: dict[str, Any] = dict(groups)

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif node is None or isinstance(node, (str, list, tuple)):
            flat[prefix] = str(node)
        else:
            flat[prefix] = node

    walk("", {k: v for k, v in cfg.items() if k not in ("resume", "experiment", "logger")})  # logger: not a knob
    flat.pop("logger", None)
    for group in groups:
        flat.pop(f"{group}.name", None)
    flat.pop("data.root", None)
    return flat


def tracker_for(logger: dict[str, Any], run_dir: Path) -> Tracker:
    """The run's tracker as `logger` configures it; other DDP ranks than 0 print and write nothing."""
    if env_rank() != 0:
        logging.getLogger("nnlab").setLevel(logging.WARNING)
        from rich.console import Console

        return Tracker(run_dir, tensorboard=False, progress=False, console=Console(file=open(os.devnull, "w")))
    return Tracker(run_dir, tensorboard=logger["tensorboard"], progress=logger["progress"],
                   histogram_every_n_epochs=logger["histogram_every_n_epochs"])


def run(cfg: dict[str, Any], run_dir: Path, choices: dict[str, str], tracker: Tracker | None = None,
        resume: Path | None = None, overrides: list[str] | None = None, sweep: bool = False,
        epoch_hook: EpochHook | None = None) -> dict[str, float]:
    """Build, train, test; write metrics.json and hparams. Returns the final metrics.

    `overrides`: the command line's, for the TEXT tab; `sweep`: a sweep job, whose HPARAMS columns the sweep
    declares and whose seeds share a session group; `epoch_hook(epoch, metrics)` runs after every epoch (a
    search's trial reports there; it may raise Pruned). Without a `tracker`, one is made from `cfg["logger"]`
    and closed at the end, with the process group."""
    job = Job(choices, overrides or [], sweep, epoch_hook)
    if tracker is not None:
        return _run(cfg, run_dir, job, tracker, resume)
    tracker = tracker_for(cfg["logger"], run_dir)
    try:
        return _run(cfg, run_dir, job, tracker, resume)
    finally:
        tracker.close()
        teardown()


@dataclass
class Job:
    """What the job is beside its config: group choices, command-line overrides, sweep or not, search hook."""

    choices: dict[str, str]
    overrides: list[str]
    sweep: bool
    epoch_hook: EpochHook | None = None


def open_session(cfg: dict[str, Any], run_dir: Path, job: Job, tracker: Tracker) -> None:
    """The run's HPARAMS session, its command line and resolved config (TEXT tab)."""
    import shlex

    import yaml

    from nnlab.hparams import session_group

    monitor = "final/best_" + cfg["regularizer"]["early_stopping"]["monitor"].replace("/", "_")
    command = " ".join(["nnlab", "train", *(shlex.quote(o) for o in job.overrides)])
    tracker.session(hparams_of(cfg, job.choices), group=session_group(run_dir.name) if job.sweep else "",
                    final_tags=["final/test_acc", "final/test_loss", "final/epochs", "final/train_seconds", monitor],
                    config_text=yaml.safe_dump(cfg, sort_keys=False), command=command, own_experiment=not job.sweep)


def _run(cfg: dict[str, Any], run_dir: Path, job: Job, tracker: Tracker, resume: Path | None) -> dict[str, float]:
    state = load_training_state(resume) if resume else None  # cfg: the checkpoint's (see config/resume.py)
    p = build(cfg, run_dir, tracker)
    p.epoch_hook = None if p.ranks.active else job.epoch_hook  # DDP ranks would have to agree on a prune: not yet
    if state is not None:
        check_fits(state, p.model, p.optimizer, resume)
    tracker.start(cfg, {"device": p.data.train.y.device, "precision": p.precision.label,
                        "threads": torch.get_num_threads(),
                        "parameters": f"{sum(q.numel() for q in p.model.parameters()):,}",
                        "train/val/test": f"{len(p.data.train)}/{len(p.data.val)}/{len(p.data.test)}"})
    if p.precision.note:
        tracker.warn(p.precision.note)
    if state is None and p.ranks.is_main:
        open_session(cfg, run_dir, job, tracker)
    if state is not None:
        tracker.info(f"resuming from {resume} (epoch {state['loop']['epoch']}, "
                     f"step {state['loop']['global_step']})")
    probe_x = p.data.val.x[:256]
    init_stats = layer_stats(p.model, probe_x)
    if state is None:  # a curve over depth (vanishing/exploding at a glance), once per TensorBoard run
        for i, row in enumerate(init_stats):
            tracker.scalar("init/activation_std_by_layer", row["std"], i)
    t0 = time.perf_counter()
    with torch.autograd.set_detect_anomaly(bool(cfg["trainer"]["detect_anomaly"])):
        try:
            st = fit(p, tracker, state)
        except Pruned as e:
            tracker.pruned(e.epoch, str(e))
            raise
    if p.settings.patience and (run_dir / "checkpoints" / "best.pt").is_file():
        p.model.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "best.pt")["model"])
        tracker.info(f"restored the best weights (epoch {st.best_epoch}) for the final scores")
        if st.best_epoch != st.epoch:
            st.last_val = None  # those scores belonged to the last epoch's weights, not the best epoch's
    scores = {"train": evaluate(p, p.data.train.spread(cfg["trainer"].get("final_train_samples", 0))),
              "val": st.last_val or evaluate(p, p.data.val),  # the last epoch validated these weights already
              "test": evaluate(p, p.data.test)}
    metrics = {f"final/{split}_{k}": v for split, part in scores.items() for k, v in part.items()}
    if getattr(p.model, "multi_exit", False):
        metrics.update(exit_metrics(p, cfg, tracker))
    end_stats = layer_stats(p.model, probe_x)
    if init_stats:
        metrics.update({"init/activation_std_first": init_stats[0]["std"],
                        "init/activation_std_last": init_stats[-1]["std"],
                        "final/dead_fraction": sum(r["dead"] for r in end_stats) / len(end_stats)})
    metrics.update({"final/epochs": float(st.epoch), "final/train_seconds": st.elapsed,
                    "final/best_" + p.settings.monitor.replace("/", "_"): float(st.best or 0.0)})
    if p.epoch_hook is not None:  # a search's trial: the same column as the pruned trials' in the HParams tab
        metrics["trial/pruned"] = 0.0
    if not p.ranks.is_main:
        return metrics  # rank 0 alone writes metrics.json and the hparams
    tracker.final(metrics)
    test_pictures(p, tracker)
    tracker.summary(metrics, run_verdicts(cfg, metrics),
                    {"run_dir": str(run_dir), "wall_seconds": time.perf_counter() - t0})
    return metrics
