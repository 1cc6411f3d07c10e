"""What `resume=<run>` may change: the run continues with its checkpoint's config, plus the overrides that
do not change what was trained so far (more epochs, logging, evaluation, where the data lives, threads).

Torch-free; any other override that differs from the checkpoint's config is refused with the keys named.
"""

from __future__ import annotations

import copy
from typing import Any

from nnlab.registry import ConfigError

# keys (or whole groups) that may differ from the checkpoint's config when resuming
MAY_CHANGE = ("trainer.epochs", "trainer.eval_batch_size", "trainer.log_every_n_steps", "trainer.final_train_samples",
              "trainer.threads", "trainer.detect_anomaly", "logger", "device", "data.root", "data.download")
EPOCH_SCHEDULES = ("cosine", "onecycle")  # laid out over trainer.epochs: more epochs would change the past


def _get(cfg: dict[str, Any], key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _set(cfg: dict[str, Any], key: str, value: Any) -> None:
    *parents, last = key.split(".")
    node = cfg
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = copy.deepcopy(value)


def may_change(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in MAY_CHANGE)


def merge_resume(saved: dict[str, Any], composed: dict[str, Any], overrides: list[str],
                 epochs_done: int) -> dict[str, Any]:
    """`saved` (the checkpoint's config) with the command line's allowed changes, taken from `composed`."""
    cfg, refused = copy.deepcopy(saved), []
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        if key == "resume" or key.startswith("hydra") or "=" not in o:
            continue
        new, old = _get(composed, key), _get(saved, key)
        if may_change(key):
            _set(cfg, key, new)
        elif new != old:
            refused.append(f"{key} ({_show(old)} -> {_show(new)})")
    if refused:
        raise ConfigError(f"resume continues the run with the config it started with; these overrides would "
                          f"change it: {', '.join(refused)}. Resume may change only {', '.join(MAY_CHANGE)}. "
                          "Start a new run for a different configuration")
    epochs = cfg["trainer"]["epochs"]
    if epochs != saved["trainer"]["epochs"]:
        if epochs < epochs_done:
            raise ConfigError(f"trainer.epochs={epochs}: the run has already trained {epochs_done} epochs; "
                              f"resume with trainer.epochs ≥ {epochs_done}")
        if cfg.get("scheduler", {}).get("name") in EPOCH_SCHEDULES:
            raise ConfigError(f"trainer.epochs={epochs}: scheduler={cfg['scheduler']['name']} is laid out over "
                              f"the run's {saved['trainer']['epochs']} epochs, so more epochs would change the "
                              "schedule already followed; start a new run with the longer schedule")
    cfg["resume"] = composed.get("resume")
    return cfg


def _show(value: Any) -> str:
    if isinstance(value, dict) and "name" in value:
        return str(value["name"])
    return "unset" if value is None else str(value)
