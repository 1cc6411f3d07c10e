"""Whole-config checks before any data is loaded: types, ranges, choices and cross-field rules.

Torch-free, so `nnlab validate` is instant. Every problem is collected; one ConfigError lists them all.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from nnlab.config.paths import config_dir
from nnlab.registry import ConfigError

GROUPS = ("data", "model", "activation", "init", "loss", "optimizer", "scheduler", "device")
IMAGE_DATA = ("mnist", "fashion_mnist")
PAIR_DATA = ("mnist_pairs", "fashion_pairs")
SEQUENCE_DATA = ("fashion_mnist_seq", "adding")
IMAGE_MODELS = ("cnn", "multibranch")
RECURRENT_MODELS = ("lstm", "gru")
BRANCHES = ("1x1", "3x3", "5x5", "dilated", "pool")  # nnlab.models.multibranch.BRANCHES (kept torch-free)
MONITORS = ("val/loss", "val/acc", "train/loss", "train/acc")


def group_choices(group: str, search_path: tuple[Path, ...] | list[Path] = ()) -> list[str]:
    """Valid names of a config group: its YAML files (file name = registry key), nnlab's own and those in the
    user's config folders (`--config-dir`, hydra.searchpath)."""
    return sorted({p.stem for d in (config_dir(), *search_path) for p in (Path(d) / group).glob("*.yaml")})


def _leaves(node: Any, prefix: str) -> set[str]:
    if not isinstance(node, dict) or not node:
        return {prefix} if prefix else set()
    out = {prefix} if prefix else set()
    for k, v in node.items():
        if k != "defaults":
            out |= _leaves(v, f"{prefix}.{k}" if prefix else str(k))
    return out


def known_keys(search_path: tuple[Path, ...] = ()) -> frozenset[str]:
    """Every dotted key some config file sets: nnlab's own and the user's folders (`--config-dir`), plus
    `plugins` (the user's modules to import)."""
    keys = set(_keys_in(config_dir(), root_file=True)) | {"plugins"}
    for folder in search_path:
        keys |= _keys_in(Path(folder), root_file=False)
    return frozenset(keys)


@lru_cache(maxsize=8)
def _keys_in(root: Path, root_file: bool) -> frozenset[str]:
    """The keys the config files under `root` set (each group's package, or the root for `_global_` files)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    keys: set[str] = set()
    if root_file:
        keys |= _leaves({k: v for k, v in yaml.load((root / "train.yaml").read_text(), loader).items()
                         if k != "hydra"}, "")
    for group in (p for p in root.iterdir() if p.is_dir() and p.name != "hydra") if root.is_dir() else ():
        keys.add(group.name)
        for f in group.glob("*.yaml"):
            text = f.read_text()
            try:
                data = yaml.load(text, loader) or {}
            except yaml.YAMLError:
                continue  # Hydra reports a broken file itself, naming it
            if not isinstance(data, dict):
                continue
            if not root_file and (config_dir() / group.name / f"{data.get('name')}.yaml").is_file():
                continue  # the user's preset of a built-in (name: mlp): only the built-in's keys are valid
            keys |= _leaves(data, "" if "@package _global_" in text.split("\n", 1)[0] else group.name)
    return frozenset(k for k in keys if k.split(".")[0] != "hydra")


def unknown_key_problem(key: str, known: frozenset[str] | None = None) -> str:
    """'key: unknown ...' naming the close matches first, then the valid keys beside it."""
    known = known_keys() if known is None else known
    parent = key.rsplit(".", 1)[0] if "." in key else ""
    if key in known:  # a setting of other choices of the group (data.val_fraction with data=xor)
        return (f"{key}: not a setting of the chosen {parent} (other choices of {parent} have it); "
                f"`nnlab train --cfg job {parent}=<choice>` shows a choice's settings")
    names = sorted(k.rsplit(".", 1)[-1] for k in known if (k.rsplit(".", 1)[0] if "." in k else "") == parent)
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(f'{parent}.{c}' if parent else c for c in close)}? " if close else ""
    where = f"under {parent}" if parent else "at the top level"
    return f"{key}: unknown key; {hint}valid keys {where}: {', '.join(names)}"


def _unknown_keys(cfg: dict[str, Any], search_path: tuple[Path, ...]) -> list[str]:
    known = known_keys(search_path)
    found = sorted(k for k in _leaves(cfg, "") if k not in known
                   and not any(p in known and _is_leaf_in_files(p, known) for p in _prefixes(k)))
    return [unknown_key_problem(k, known) for k in found if not any(k.startswith(f + ".") for f in found)]


def _prefixes(key: str) -> list[str]:
    parts = key.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _is_leaf_in_files(key: str, known: frozenset[str]) -> bool:
    """A key some file sets to a plain value (its dict value, if any, is free-form: e.g. a list of dicts)."""
    return not any(k.startswith(key + ".") for k in known)


class _Checks:
    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg, self.problems = cfg, []

    def get(self, key: str) -> Any:
        node: Any = self.cfg
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return _MISSING
            node = node[part]
        return node

    def check(self, key: str, ok: Callable[[Any], bool], allowed: str) -> None:
        value = self.get(key)
        if value is _MISSING:
            return
        try:
            good = ok(value)
        except TypeError:
            good = False
        if not good:
            self.problems.append(f"{key}={value!r}: {allowed}")

    def number(self, key: str, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
               hi_open: bool = False, integer: bool = False) -> None:
        kind = "an integer" if integer else "a number"
        parts = [f"{'>' if lo_open else '≥'} {lo}" if lo is not None else "",
                 f"{'<' if hi_open else '≤'} {hi}" if hi is not None else ""]
        allowed = f"must be {kind}" + (f" {' and '.join(p for p in parts if p)}" if any(parts) else "")

        def ok(v: Any) -> bool:
            if isinstance(v, bool) or not isinstance(v, int if integer else (int, float)):
                return False
            return ((lo is None or (v > lo if lo_open else v >= lo))
                    and (hi is None or (v < hi if hi_open else v <= hi)))

        self.check(key, ok, allowed)

    def one_of(self, key: str, choices: tuple[str, ...] | list[str]) -> None:
        self.check(key, lambda v: v in choices, f"choose one of: {', '.join(choices)}")

    def flag(self, key: str) -> None:
        self.check(key, lambda v: isinstance(v, bool), "must be true or false")


_MISSING = object()


def problems(cfg: dict[str, Any], search_path: tuple[Path, ...] | list[Path] = ()) -> list[str]:
    """Every problem in `cfg` (a resolved plain dict), as 'key=value: what is allowed' lines.

    `search_path`: the user's config folders, whose files are choices like nnlab's own."""
    c = _Checks(cfg)
    c.problems.extend(_unknown_keys(cfg, tuple(Path(f) for f in search_path)))
    for group in GROUPS:
        c.one_of(f"{group}.name", group_choices(group, search_path))
    # trainer
    for key in ("epochs", "batch_size", "eval_batch_size", "log_every_n_steps"):
        c.number(f"trainer.{key}", 1, integer=True)
    for key in ("limit_train_batches", "final_train_samples", "threads", "seed"):
        c.number(f"trainer.{key}", 0, integer=True)
    c.one_of("trainer.clip.mode", ("none", "norm", "value"))
    c.one_of("trainer.strategy", ("single", "ddp"))
    c.number("trainer.clip.max", 0, lo_open=True)
    for key in ("amp", "deterministic", "compile", "detect_anomaly"):
        c.flag(f"trainer.{key}")
    # optimizer
    c.number("optimizer.lr", 0, lo_open=True)
    c.number("optimizer.weight_decay", 0)
    c.number("optimizer.momentum", 0, 1, hi_open=True)
    c.number("optimizer.alpha", 0, 1, lo_open=True, hi_open=True)
    c.check("optimizer.betas", lambda b: len(b) == 2 and all(0 <= x < 1 for x in b),
            "must be two numbers in [0, 1), e.g. [0.9, 0.999]")
    if c.get("optimizer.nesterov") is True and c.get("optimizer.momentum") in (0, 0.0):
        c.problems.append("optimizer.nesterov=True: Nesterov momentum needs optimizer.momentum > 0")
    # model
    c.number("model.dropout", 0, 1, hi_open=True)
    c.flag("model.batchnorm")
    for key in ("hidden", "channels"):
        c.check(f"model.{key}", lambda v: isinstance(v, list) and len(v) > 0 and all(
            isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v),
            "must be a non-empty list of positive integers, e.g. [256, 128]")
    for key in ("width", "depth", "embedding", "head", "hidden_size", "layers"):
        c.number(f"model.{key}", 1, integer=True)
    c.number("model.blocks", 0, integer=True)
    c.number("model.exit_threshold", 0, 1, lo_open=True)
    c.flag("model.bidirectional")
    c.check("model.branches", lambda v: isinstance(v, list) and len(v) > 0 and all(b in BRANCHES for b in v),
            f"must be a non-empty list of paths from: {', '.join(BRANCHES)}")
    branches, channels = c.get("model.branches"), c.get("model.channels")
    if isinstance(branches, list) and branches and isinstance(channels, list) and any(
            isinstance(x, int) and x % len(branches) for x in channels):
        c.problems.append(f"model.channels={channels!r}: each block's width is split evenly between its "
                          f"{len(branches)} paths (model.branches), so use multiples of {len(branches)}")
    # init
    c.one_of("init.mode", ("fan_in", "fan_out"))
    c.one_of("init.nonlinearity", ("auto", "relu", "leaky_relu", "tanh", "sigmoid", "linear", "selu"))
    c.number("init.std", 0, lo_open=True)
    for key in ("bias", "forget_bias"):
        c.check(f"init.{key}", lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)),
                "must be a number, or null to keep PyTorch's bias")
    for key in ("recurrent", "input"):
        c.check(f"init.{key}", lambda v: v is None or v in group_choices("init", search_path),
                f"a scheme for the LSTM/GRU {'weight_hh' if key == 'recurrent' else 'weight_ih'} blocks: null "
                f"(the init's own) or one of {', '.join(group_choices('init', search_path))}")
    c.check("init.from_run", lambda v: v is None or (isinstance(v, str) and v.strip() != ""),
            "must be a run folder or a checkpoint file, or null to start from scratch")
    c.one_of("init.freeze", ("none", "body"))
    c.flag("init.new_head")
    # activation / loss params
    c.number("activation.negative_slope", 0)
    c.number("activation.alpha", 0, lo_open=True)
    c.number("loss.label_smoothing", 0, 1, hi_open=True)
    c.number("loss.gamma", 0)
    c.number("loss.margin", 0, lo_open=True)
    c.number("loss.delta", 0, lo_open=True)
    # scheduler
    c.number("scheduler.warmup_epochs", 0)
    c.number("scheduler.step_size", 1, integer=True)
    c.number("scheduler.gamma", 0, 1, lo_open=True)
    c.number("scheduler.factor", 0, 1, lo_open=True, hi_open=True)
    c.number("scheduler.max_lr", 0, lo_open=True)
    c.number("scheduler.pct_start", 0, 1, lo_open=True, hi_open=True)
    c.one_of("scheduler.mode", ("min", "max"))
    if c.get("scheduler.name") == "onecycle" and c.get("scheduler.warmup_epochs") not in (0, 0.0, _MISSING):
        c.problems.append("scheduler.warmup_epochs: 'onecycle' warms up by itself (pct_start); set it to 0")
    epochs, warm = c.get("trainer.epochs"), c.get("scheduler.warmup_epochs")
    if isinstance(epochs, int) and isinstance(warm, (int, float)) and epochs >= 1 and warm >= epochs:
        c.problems.append(f"scheduler.warmup_epochs={warm!r}: must be shorter than trainer.epochs={epochs}")
    # regularizer
    c.number("regularizer.l1", 0)
    c.flag("regularizer.augment")
    c.number("regularizer.early_stopping.patience", 0, integer=True)
    c.one_of("regularizer.early_stopping.monitor", MONITORS)
    c.one_of("regularizer.early_stopping.mode", ("min", "max"))
    # data
    c.number("data.val_fraction", 0, 1, lo_open=True, hi_open=True)  # 0: no validation split to monitor
    c.number("data.limit_train", 0, integer=True)
    c.number("data.repeat", 1, integer=True)
    c.number("data.noise", 0)
    c.number("data.pairs", 2, integer=True)
    c.one_of("data.gate", ("and", "or", "nand", "xor"))
    c.check("data.classes", lambda v: v is None or (isinstance(v, list) and len(v) >= 2 and len(set(v)) == len(v)
                                                   and all(type(x) is int and 0 <= x <= 9 for x in v)),
            "must be null (all classes) or a list of at least two distinct class indices 0-9, e.g. [0,1,2,3,4]")
    c.number("data.length", 2, integer=True)
    for key in ("train", "val", "test"):
        c.number(f"data.{key}", 1, integer=True)
    c.check("plugins", lambda v: v is None or (isinstance(v, list) and all(isinstance(m, str) and m for m in v)),
            "must be a list of module names to import, e.g. +plugins=[mypkg.parts]")
    _compatibility(c)
    return c.problems


def _compatibility(c: _Checks) -> None:
    data, model, loss = c.get("data.name"), c.get("model.name"), c.get("loss.name")
    if model == "siamese" and data not in PAIR_DATA:
        c.problems.append(f"model=siamese with data={data}: a siamese net compares pairs; "
                          f"use data={' or data='.join(PAIR_DATA)}")
    if data in PAIR_DATA and model != "siamese":
        c.problems.append(f"data={data} with model={model}: pair data needs model=siamese")
    if loss == "contrastive" and model != "siamese":
        c.problems.append(f"loss=contrastive with model={model}: the contrastive loss needs model=siamese "
                          "and pair data")
    if model in IMAGE_MODELS and data not in IMAGE_DATA:
        c.problems.append(f"model={model} with data={data}: convolutions need image data; "
                          f"use data={' or data='.join(IMAGE_DATA)}")
    if model in RECURRENT_MODELS and data not in (*SEQUENCE_DATA, *IMAGE_DATA):
        c.problems.append(f"model={model} with data={data}: a recurrent net reads sequences; "
                          f"use data={' or data='.join(SEQUENCE_DATA)} (or image data, one row per step)")
    mode, monitor = c.get("regularizer.early_stopping.mode"), c.get("regularizer.early_stopping.monitor")
    if isinstance(monitor, str) and mode in ("min", "max") and (monitor.endswith("acc") != (mode == "max")):
        c.problems.append(f"regularizer.early_stopping.mode={mode!r}: {monitor} should be "
                          f"{'maximized (mode=max)' if monitor.endswith('acc') else 'minimized (mode=min)'}")


def validate(cfg: dict[str, Any], search_path: tuple[Path, ...] | list[Path] = ()) -> None:
    """Raise one ConfigError listing every problem in `cfg`."""
    found = problems(cfg, search_path)
    if found:
        raise ConfigError(f"{len(found)} problem{'s' * (len(found) > 1)} in the configuration:\n  - "
                          + "\n  - ".join(found))
