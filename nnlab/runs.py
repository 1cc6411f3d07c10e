"""Run folders read back: each run's overrides, final metrics or error, and which keys a set of runs sweeps.

A run folder is any folder holding `.hydra/overrides.yaml` (written by `nnlab train`); `metrics.json` holds
its final metrics, `error.txt` the error of a failed sweep job, `pruned.txt` why a hyperparameter search
stopped the run early, `interrupted.txt` why a sweep job stopped before the end (its checkpoints/last.pt is
where it resumes). No torch import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HIDDEN_KEYS = ("data.root", "hydra/launcher", "resume", "logger", "logger.progress")


@dataclass
class RunRecord:
    path: Path
    overrides: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    pruned: str | None = None
    interrupted: str | None = None
    hparams: dict[str, object] = field(default_factory=dict)  # hparams.json: the run's flat hyperparameters

    @property
    def status(self) -> str:
        """failed, pruned (stopped early by a search), ok (finished), interrupted (stopped by a signal,
        resumable) or incomplete (still running or killed without a word)."""
        if self.error:
            return "failed"
        if self.pruned:
            return "pruned"
        return "ok" if self.metrics else "interrupted" if self.interrupted else "incomplete"


def read_run(run_dir: Path) -> RunRecord:
    raw = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) or []
    overrides = dict(o.lstrip("+~").split("=", 1) for o in raw if "=" in o)
    overrides = {k: v for k, v in overrides.items() if k not in HIDDEN_KEYS and not k.startswith("hydra.")}
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return RunRecord(run_dir, overrides, metrics, _text(run_dir / "error.txt"), _text(run_dir / "pruned.txt"),
                     _text(run_dir / "interrupted.txt"), read_hparams(run_dir))


def _text(path: Path) -> str | None:
    return path.read_text().strip() if path.is_file() else None


def read_hparams(run_dir: Path) -> dict[str, object]:
    """The run's flat hyperparameters (hparams.json, written when it started); {} if absent or unreadable."""
    try:
        data = json.loads((run_dir / "hparams.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def find_runs(paths: list[Path]) -> list[RunRecord]:
    """Every run folder (one holding .hydra/overrides.yaml) at or below `paths`."""
    dirs: dict[Path, None] = {}
    for root in paths:
        for marker in sorted(root.glob("**/.hydra/overrides.yaml")):
            dirs[marker.parent.parent] = None
    return [read_run(d) for d in dirs]


def swept_keys(runs: list[RunRecord]) -> list[str]:
    """Override keys whose values differ between runs (all of them for a single run)."""
    keys = sorted({k for r in runs for k in r.overrides})
    if len(runs) < 2:
        return keys
    return [k for k in keys if len({r.overrides.get(k) for r in runs}) > 1]


def metric_key(name: str) -> str:
    return name if "/" in name else f"final/{name}"


def higher_is_better(metric: str) -> bool:
    return not metric.endswith("loss")


def ranked(runs: list[RunRecord], metric: str) -> list[RunRecord]:
    """Best first on `metric`; pruned, failed and incomplete runs (no final metrics) last."""
    sign = -1 if higher_is_better(metric) else 1
    return sorted(runs, key=lambda r: (metric not in r.metrics, sign * r.metrics.get(metric, 0.0)))


SEED_KEY = "trainer.seed"


def seed_groups(runs: list[RunRecord]) -> dict[str, list[RunRecord]]:
    """Runs that differ only by `trainer.seed`, by a label of their other swept values (`activation=relu`);
    in the order first seen."""
    keys = [k for k in swept_keys(runs) if k != SEED_KEY] if len(runs) > 1 else []
    groups: dict[str, list[RunRecord]] = {}
    for r in runs:
        others = {k: v for k, v in r.overrides.items() if k != SEED_KEY}
        label = ",".join(f"{k}={others.get(k, '-')}" for k in keys) or "all runs"
        groups.setdefault(label, []).append(r)
    return groups


def by_value(runs: list[RunRecord], key: str) -> dict[str, list[RunRecord]]:
    """Runs by their value of `key` (`-` where a run does not set it), in sorted order of the values."""
    groups: dict[str, list[RunRecord]] = {}
    for r in runs:
        groups.setdefault(r.overrides.get(key, "-"), []).append(r)
    return dict(sorted(groups.items()))
