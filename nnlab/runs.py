"""Run folders read back: each run's overrides, final metrics or error, and which keys a set of runs sweeps.

A run folder is any folder holding `.hydra/overrides.yaml` (written by `nnlab train`); `metrics.json` holds
its final metrics, `error.txt` the error of a failed sweep job, `pruned.txt` why a hyperparameter search
stopped the run early, `interrupted.txt` why a sweep job stopped before the end (its checkpoints/last.pt is
where it resumes). No torch import.
"""

from __future__ import annotations

import json
import math
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
    unreadable: str | None = None  # what is wrong with the folder's files, when one cannot be read

    @property
    def status(self) -> str:
        """unreadable, failed, pruned (stopped early by a search), ok (finished), interrupted (stopped by a
        signal, resumable) or incomplete (still running or killed without a word)."""
        if self.unreadable:
            return "unreadable"
        if self.error:
            return "failed"
        if self.pruned:
            return "pruned"
        return "ok" if self.metrics else "interrupted" if self.interrupted else "incomplete"


def _read_overrides(path: Path) -> tuple[dict[str, str], str | None]:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        return {}, f"{path.name} cannot be read ({type(e).__name__}: {' '.join(str(e).split())[:120]})"
    if raw is None:
        raw = []
    if not isinstance(raw, list) or not all(isinstance(o, str) for o in raw):
        return {}, f"{path.name} is not a list of overrides (key=value strings)"
    overrides = dict(o.lstrip("+~").split("=", 1) for o in raw if "=" in o)
    return {k: v for k, v in overrides.items() if k not in HIDDEN_KEYS and not k.startswith("hydra.")}, None


def _read_metrics(path: Path) -> tuple[dict[str, float], str | None]:
    if not path.is_file():
        return {}, None
    try:
        raw = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return {}, f"metrics.json cannot be read ({type(e).__name__}: {' '.join(str(e).split())[:120]})"
    if not isinstance(raw, dict):
        return {}, f"metrics.json holds a {type(raw).__name__}, not a mapping of metric names to numbers"
    numbers = {k: float(v) for k, v in raw.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    wrong = sorted(k for k in raw if k.startswith("final/") and k not in numbers)
    if wrong:
        return numbers, f"metrics.json: {', '.join(wrong[:3])} not a number"
    return numbers, None


def read_run(run_dir: Path) -> RunRecord:
    """One run folder; a file that cannot be read is reported in `unreadable`, never raised."""
    overrides, bad_overrides = _read_overrides(run_dir / ".hydra" / "overrides.yaml")
    metrics, bad_metrics = _read_metrics(run_dir / "metrics.json")
    problems = "; ".join(p for p in (bad_overrides, bad_metrics) if p) or None
    return RunRecord(run_dir, overrides, metrics, _text(run_dir / "error.txt"), _text(run_dir / "pruned.txt"),
                     _text(run_dir / "interrupted.txt"), read_hparams(run_dir), problems)


def _text(path: Path) -> str | None:
    """A marker file's text (error.txt, pruned.txt, interrupted.txt); None when absent."""
    if not path.is_file():
        return None
    try:
        return path.read_text(errors="replace").strip()
    except OSError as e:
        return f"{path.name} cannot be read ({e})"


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
    """Best first on `metric`; runs without a finite value (NaN, inf, pruned, failed, incomplete) last."""
    sign = -1 if higher_is_better(metric) else 1

    def key(r: RunRecord) -> tuple[bool, float]:
        value = r.metrics.get(metric)
        finite = value is not None and math.isfinite(value)
        return (not finite, sign * value if finite else 0.0)
    return sorted(runs, key=key)


def metric_names(runs: list[RunRecord]) -> list[str]:
    """Every metric some run recorded, as `--metric` takes it (final/ dropped)."""
    return sorted({m.removeprefix("final/") for r in runs for m in r.metrics})


def resolve_key(name: str, runs: list[RunRecord]) -> str | None:
    """The override key `name` means: itself, else the one key ending in `.name` (`seed` -> `trainer.seed`)."""
    keys = {k for r in runs for k in r.overrides}
    if name in keys:
        return name
    ending = [k for k in keys if k.endswith("." + name)]
    return ending[0] if len(ending) == 1 else None


def folder_names(runs: list[RunRecord]) -> dict[Path, str]:
    """Each run's folder relative to the runs' common parent: tells apart runs with identical overrides."""
    import os

    if not runs:
        return {}
    paths = [r.path.resolve() for r in runs]
    common = Path(os.path.commonpath(paths)) if len(paths) > 1 else paths[0].parent
    return {r.path: str(p.relative_to(common)) or p.name for r, p in zip(runs, paths)}


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
