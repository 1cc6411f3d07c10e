"""Config in, Pipeline out: the one place that reads the config; everything below takes plain arguments."""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import torch

from nnlab.activations import activation_factory
from nnlab.checkpoint import check_fits, load_checkpoint, load_training_state
from nnlab.data import build_data
from nnlab.devices import build_precision, resolve_device
from nnlab.diagnostics import layer_stats
from nnlab.distributed import Ranks, env_rank, setup, teardown
from nnlab.inits import init_layers
from nnlab.loop import Pipeline, TrainSettings, evaluate, fit
from nnlab.losses import build_objective
from nnlab.models import build_model
from nnlab.optim import build_optimizer, build_schedule
from nnlab.registry import ConfigError
from nnlab.seeding import seed_everything
from nnlab.tracker import Tracker
from nnlab.verdicts import run_verdicts

_DEFAULT_THREADS = torch.get_num_threads()


def _without(d: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k not in keys}


def settings_from(cfg: dict[str, Any], ranks: Ranks | None = None) -> TrainSettings:
    t, reg, ranks = cfg["trainer"], cfg["regularizer"], ranks or Ranks()
    return TrainSettings(
        epochs=t["epochs"], batch_size=t["batch_size"], eval_batch_size=t["eval_batch_size"], seed=t["seed"],
        clip_mode=t["clip"]["mode"], clip_max=t["clip"]["max"], log_every=max(1, t["log_every_n_steps"]),
        limit_train_batches=t["limit_train_batches"], l1=reg["l1"], augment=reg["augment"],
        patience=reg["early_stopping"]["patience"], monitor=reg["early_stopping"]["monitor"],
        mode=reg["early_stopping"]["mode"], checkpoint=t.get("checkpoint", True) and ranks.is_main,
        activation_stats=cfg.get("logger", {}).get("activation_stats", False), compile=t["compile"],
    )


def build(cfg: dict[str, Any], run_dir: Path) -> Pipeline:
    """Data, model, loss, optimizer, schedule and precision from a plain (resolved) config dict."""
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
    init = cfg["init"]
    init_layers(model, init["name"], activation=act_name, negative_slope=act_params.get("negative_slope", 0.01),
                **_without(init, "name"))
    model.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not t["deterministic"]
    if data.kind == "image" and device.type in ("cpu", "cuda"):
        # NHWC convolutions: cuDNN's tensor-core kernels and oneDNN's CPU kernels both prefer it (the CNN
        # trains ~1.3x faster on 2 CPU cores); only 4-d weights change, and a 1-channel batch is both layouts
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg["optimizer"]["name"], model.parameters(), **_without(cfg["optimizer"], "name"))
    steps = math.ceil(len(data.train) / t["batch_size"])
    if t["limit_train_batches"]:
        steps = min(steps, t["limit_train_batches"])
    schedule = build_schedule(cfg["scheduler"]["name"], optimizer, epochs=t["epochs"], steps_per_epoch=steps,
                              **_without(cfg["scheduler"], "name"))
    return Pipeline(data=data, model=model, objective=objective, optimizer=optimizer, schedule=schedule,
                    precision=build_precision(t["amp"], device), settings=settings_from(cfg, ranks), run_dir=run_dir,
                    config=cfg, ranks=ranks)


def hparams_of(cfg: dict[str, Any], choices: dict[str, str]) -> dict[str, Any]:
    """Flat hyperparameters, the same keys in every run: group choices plus every leaf value."""
    flat: dict[str, Any] = {f"choice/{k}": str(v) for k, v in sorted(choices.items()) if not k.startswith("hydra")}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif isinstance(node, bool) or node is None or isinstance(node, (str, list, tuple)):
            flat[prefix] = str(node)
        else:
            flat[prefix] = node

    walk("", {k: v for k, v in cfg.items() if k not in ("resume", "experiment")})
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
        resume: Path | None = None) -> dict[str, float]:
    """Build, train, test; write metrics.json and hparams. Returns the final metrics.

    Without a `tracker`, one is made from `cfg["logger"]` and closed at the end, with the process group."""
    if tracker is not None:
        return _run(cfg, run_dir, choices, tracker, resume)
    tracker = tracker_for(cfg["logger"], run_dir)
    try:
        return _run(cfg, run_dir, choices, tracker, resume)
    finally:
        tracker.close()
        teardown()


def _run(cfg: dict[str, Any], run_dir: Path, choices: dict[str, str], tracker: Tracker,
         resume: Path | None) -> dict[str, float]:
    state = load_training_state(resume) if resume else None  # cfg: the checkpoint's (see config/resume.py)
    p = build(cfg, run_dir)
    if state is not None:
        check_fits(state, p.model, p.optimizer, resume)
    tracker.start(cfg, {"device": p.data.train.y.device, "precision": p.precision.label,
                        "threads": torch.get_num_threads(),
                        "parameters": f"{sum(q.numel() for q in p.model.parameters()):,}",
                        "train/val/test": f"{len(p.data.train)}/{len(p.data.val)}/{len(p.data.test)}"})
    if p.precision.note:
        tracker.warn(p.precision.note)
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
        st = fit(p, tracker, state)
    if p.settings.patience and (run_dir / "checkpoints" / "best.pt").is_file():
        p.model.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "best.pt")["model"])
        tracker.info(f"restored the best weights (epoch {st.best_epoch}) for the final scores")
        if st.best_epoch != st.epoch:
            st.last_val = None  # those scores belonged to the last epoch's weights, not the best epoch's
    scores = {"train": evaluate(p, p.data.train.spread(cfg["trainer"].get("final_train_samples", 0))),
              "val": st.last_val or evaluate(p, p.data.val),  # the last epoch validated these weights already
              "test": evaluate(p, p.data.test)}
    metrics = {f"final/{split}_{k}": v for split, part in scores.items() for k, v in part.items()}
    end_stats = layer_stats(p.model, probe_x)
    if init_stats:
        metrics.update({"init/activation_std_first": init_stats[0]["std"],
                        "init/activation_std_last": init_stats[-1]["std"],
                        "final/dead_fraction": sum(r["dead"] for r in end_stats) / len(end_stats)})
    metrics.update({"final/epochs": float(st.epoch), "final/train_seconds": st.elapsed,
                    "final/best_" + p.settings.monitor.replace("/", "_"): float(st.best or 0.0)})
    if not p.ranks.is_main:
        return metrics  # rank 0 alone writes metrics.json and the hparams
    tracker.hparams(hparams_of(cfg, choices), metrics)
    tracker.summary(metrics, run_verdicts(cfg, metrics),
                    {"run_dir": str(run_dir), "wall_seconds": time.perf_counter() - t0})
    return metrics
