"""Resuming an interrupted sweep in its own folder (`nnlab resume <sweep>`): every job keeps its number and
folder; finished jobs (metrics.json, or pruned.txt) are skipped, unfinished ones continue from their
checkpoints/last.pt (the single-run resume: `resume=<job folder>`), failed ones (error.txt) run again only
when asked. A job whose configuration, composed today, differs from the one saved in its .hydra/config.yaml
stops the resume before anything runs: a sweep would otherwise mix two configurations.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from nnlab.registry import ConfigError

log = logging.getLogger("nnlab")
IGNORED_KEYS = ("resume",)  # differs by design between a job and its resumption


@dataclass
class Plan:
    """What a resumed sweep does with each job, by job number."""

    skip: dict[int, str]  # job number -> why (done, pruned, failed)
    run: dict[int, list[str]]  # job number -> its overrides, with resume=<folder> when it has a last.pt


def job_folders(sweep: Path) -> dict[tuple[str, ...], Path]:
    """The sweep's job folders, by the overrides each recorded in .hydra/overrides.yaml."""
    found = {}
    for marker in sorted(sweep.glob("*/.hydra/overrides.yaml")):
        found[tuple(yaml.safe_load(marker.read_text()) or [])] = marker.parent.parent
    return found


def job_state(folder: Path | None) -> str:
    """done | pruned | failed | interrupted (a last.pt to continue from) | not started."""
    if folder is None:
        return "not started"
    for marker, state in (("metrics.json", "done"), ("pruned.txt", "pruned"), ("error.txt", "failed")):
        if (folder / marker).is_file():
            return state
    return "interrupted" if (folder / "checkpoints" / "last.pt").is_file() else "not started"


def plan(jobs: Sequence[Sequence[str]], first: int, sweep: Path, rerun_failed: bool) -> tuple[Plan, dict]:
    """The plan for jobs numbered `first`, `first + 1`, ...; also each job's folder (None: never started)."""
    folders = job_folders(sweep)
    p, where = Plan({}, {}), {}
    for num, overrides in enumerate(jobs, start=first):
        folder = where[num] = folders.get(tuple(overrides))
        state = job_state(folder)
        if state in ("done", "pruned") or (state == "failed" and not rerun_failed):
            p.skip[num] = state
        elif state == "interrupted":
            p.run[num] = [*overrides, f"resume='{folder.resolve()}'"]
        else:
            p.run[num] = list(overrides)
    return p, where


def config_changes(saved: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    """`key: saved -> now` for every leaf that differs between two config dicts."""
    out = []
    for key in sorted(set(saved) | set(now)):
        path = f"{prefix}{key}"
        a, b = saved.get(key, "<absent>"), now.get(key, "<absent>")
        if path in IGNORED_KEYS:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_changes(a, b, f"{path}.")
        elif a != b:
            out.append(f"{path}: {a} -> {b}")
    return out


class ResumingLauncher:
    """Wraps a Hydra launcher: launches only the jobs the plan runs, each under its original number."""

    def __init__(self, launcher: Any, loader: Any, config: DictConfig, rerun_failed: bool) -> None:
        self.launcher, self.loader, self.config, self.rerun_failed = launcher, loader, config, rerun_failed
        self.sweep = Path(str(config.hydra.sweep.dir))
        self.skipped: dict[int, str] = {}

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Any]:
        p, where = plan(job_overrides, initial_job_idx, self.sweep, self.rerun_failed)
        for num, folder in where.items():
            if folder is not None:
                self.check_unchanged(folder, job_overrides[num - initial_job_idx])
        self.skipped.update(p.skip)
        skipped = ", ".join(f"{n} {state}" for state, n in Counter(p.skip.values()).items())
        continued = sum(any(o.startswith("resume=") for o in line) for line in p.run.values())
        log.info("resuming sweep %s: %d of %d jobs skipped (%s); running %d, %d of them from their last.pt",
                 self.sweep, len(p.skip), len(job_overrides), skipped or "none finished", len(p.run), continued)
        for num in p.run:
            if where[num] is not None and job_state(where[num]) == "failed":
                (where[num] / "error.txt").unlink()  # asked to run it again: its new outcome replaces it
        returns: list[Any] = []
        for block in _contiguous(sorted(p.run)):
            returns += self.launcher.launch([p.run[n] for n in block], initial_job_idx=block[0])
        return returns

    def check_unchanged(self, folder: Path, overrides: Sequence[str]) -> None:
        saved = OmegaConf.to_container(OmegaConf.load(folder / ".hydra" / "config.yaml"))
        composed = self.loader.load_sweep_config(self.config, list(overrides))
        with_hydra = OmegaConf.to_container(composed)
        now = {k: v for k, v in with_hydra.items() if k != "hydra"}
        changes = config_changes(saved, now)
        if changes:
            raise ConfigError(
                f"cannot resume {self.sweep}: job {folder.name} would now run with another configuration than "
                f"it started with ({'; '.join(changes[:8])}). The config files changed since the sweep began; "
                f"resuming would mix two configurations in one sweep. Restore them, or start a new sweep.")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.launcher, name)


def _contiguous(nums: list[int]) -> list[list[int]]:
    blocks: list[list[int]] = []
    for n in nums:
        if blocks and blocks[-1][-1] == n - 1:
            blocks[-1].append(n)
        else:
            blocks.append([n])
    return blocks
