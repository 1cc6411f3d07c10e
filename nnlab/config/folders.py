"""OmegaConf resolvers used by configs/train.yaml (registered before Hydra composes)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from omegaconf import OmegaConf

from nnlab.config.paths import default_data_root
from nnlab.distributed import env_rank, launched_by_torchrun, shared_run_dir
from nnlab.registry import ConfigError

OUTPUTS = Path("outputs")


def latest_run(root: Path = OUTPUTS) -> Path:
    """The most recently written run folder under `root` that holds checkpoints/last.pt."""
    found = sorted(root.glob("**/checkpoints/last.pt"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise ConfigError(f"resume=latest: no run with checkpoints/last.pt under {root.resolve()}")
    return found[-1].parent.parent


def resume_dir(resume: str) -> Path:
    path = latest_run() if resume == "latest" else Path(resume)
    if not (path / "checkpoints" / "last.pt").is_file():
        raise ConfigError(f"resume={resume}: {path} holds no checkpoints/last.pt to resume from")
    return path


CLAIMED: list[Path] = []  # folders this process created for a run or sweep (see forget_unused_claims)
BOOKKEEPING = (".hydra", "multirun.yaml", ".run_id")  # what Hydra/nnlab write before any work is done


def claim_dir(base: Path) -> Path:
    """Create and return `base`, or `base_1`, `base_2`, ... if taken (atomic: safe across processes)."""
    base.parent.mkdir(parents=True, exist_ok=True)
    path, n = base, 1
    while True:
        try:
            path.mkdir()
            CLAIMED.append(path)
            return path
        except FileExistsError:
            path, n = base.with_name(f"{base.name}_{n}"), n + 1


def _unused(folder: Path) -> bool:
    """Nothing but Hydra's bookkeeping and (empty or start-up) logs: no run wrote anything here."""
    for f in folder.rglob("*"):
        top = f.relative_to(folder).parts[0]
        if f.is_file() and top not in BOOKKEEPING and not f.name.endswith(".log"):
            return False
    return True


def forget_unused_claims() -> None:
    """Remove the folders this process claimed where no run wrote anything (a configuration error, Ctrl-C
    at start-up), and their date folder if it became empty; `compare` would list them as incomplete runs."""
    import shutil

    while CLAIMED:
        folder = CLAIMED.pop()
        if folder.is_dir() and _unused(folder):
            shutil.rmtree(folder, ignore_errors=True)
            for parent in folder.parents:
                if parent == OUTPUTS or parent == OUTPUTS.resolve() or not parent.is_dir() or any(parent.iterdir()):
                    break
                parent.rmdir()


def run_dir(resume: str | None) -> str:
    """A fresh dated folder (suffixed if that second is taken), or the folder being resumed."""
    if resume not in (None, "", "None", "null"):
        return str(resume_dir(str(resume)))
    fresh = lambda: claim_dir(OUTPUTS / datetime.now().strftime("%Y-%m-%d/%H-%M-%S"))  # noqa: E731
    if launched_by_torchrun():
        return str(shared_run_dir(fresh, OUTPUTS))
    return str(fresh())


def sweep_dir() -> str:
    """outputs/multirun/<date>/<time>, unique even when two sweeps start in the same second."""
    return str(claim_dir(OUTPUTS / "multirun" / datetime.now().strftime("%Y-%m-%d/%H-%M-%S")))


def output_subdir(resume: str | None) -> str | None:
    """Keep the original .hydra/ of a resumed run, and let only rank 0 of a DDP run write one."""
    return ".hydra" if resume in (None, "", "None", "null") and env_rank() == 0 else None


def log_name(job_name: str) -> str:
    """`train.log`, or `train.rank<N>.log` for the other ranks of a DDP run."""
    return f"{job_name}.log" if env_rank() == 0 else f"{job_name}.rank{env_rank()}.log"


def job_dir(override_dirname: str, num: int, task_overrides: list[str] | None = None, trial: int | None = None) -> str:
    """Sweep job folder named by its overrides ('/' made safe), plus the seed when seeds are swept; an Optuna
    trial's folder starts with its number (two trials may sample the same values)."""
    name = re.sub(r"[/\\:]", "_", override_dirname)
    seeds = [o.split("=", 1)[1] for o in (task_overrides or []) if o.startswith("trainer.seed=")]
    if seeds:
        name = f"{name},seed={seeds[0]}" if name else f"seed={seeds[0]}"
    if trial is not None:
        name = f"trial={int(trial):03d},{name}" if name else f"trial={int(trial):03d}"
    return name or f"job{num}"


def register() -> None:
    cached = ("nnlab_run_dir", "nnlab_sweep_dir")  # resolved once; Hydra copies the cache into each job
    for name, fn in (("nnlab_run_dir", run_dir), ("nnlab_sweep_dir", sweep_dir), ("nnlab_output_subdir", output_subdir),
                     ("nnlab_job_dir", job_dir), ("nnlab_data_root", default_data_root), ("nnlab_log_name", log_name)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn, use_cache=name in cached)
