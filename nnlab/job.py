"""One Hydra job: validate, run, and map every known failure to a clear message and an exit code.

Imported lazily by the app, since it pulls in torch.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape

from nnlab.distributed import env_rank, teardown
from nnlab.errors import ConfigError
from nnlab.joblib_workers import is_joblib
from nnlab.loop import Interrupted, NonFinite
from nnlab.runner import run
from nnlab.tracker import Tracker, make_console
from nnlab.validation import validate

log = logging.getLogger("nnlab")
_frozen: list[bool] = []


def _freeze_once() -> None:
    """Before a process's first job: every object alive (torch and torch._dynamo alone make about a million)
    into the garbage collector's permanent generation. A full collection (loky runs one after every task,
    Python its own generation-2 passes) then costs microseconds instead of ~0.16 s. Once: what later jobs
    leave behind stays collectable."""
    if not _frozen:
        gc.freeze()
        _frozen.append(True)
EXIT_CONFIG, EXIT_NONFINITE, EXIT_INTERRUPTED = 2, 3, 130


def run_job(cfg: DictConfig) -> float | None:
    """Returns the monitored validation metric (for sweepers); exits with a code in a single run."""
    _freeze_once()
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    console = make_console(stderr=True)
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
        validate(plain)
        if multirun and not plain["trainer"]["threads"]:
            plain["trainer"]["threads"] = parallel_threads(hc.launcher)
        lg, main_rank = plain["logger"], env_rank() == 0
        if not main_rank:  # other DDP ranks train silently: rank 0 prints and writes for all
            logging.getLogger("nnlab").setLevel(logging.WARNING)
        tracker = Tracker(run_dir, tensorboard=lg["tensorboard"] and main_rank, progress=lg["progress"] and main_rank,
                          histogram_every_n_epochs=lg["histogram_every_n_epochs"],
                          console=None if main_rank else Console(file=open(os.devnull, "w")))
        resume = run_dir / "checkpoints" / "last.pt" if plain.get("resume") else None
        try:
            metrics = run(plain, run_dir, dict(hc.runtime.choices), tracker, resume=resume)
        finally:
            tracker.close()
            teardown()
    except ConfigError as e:
        return _fail(console, multirun, run_dir, "configuration error", str(e), EXIT_CONFIG)
    except NonFinite as e:
        return _fail(console, multirun, run_dir, "training diverged", str(e), EXIT_NONFINITE)
    except Interrupted as e:
        shown = run_dir.relative_to(Path.cwd()) if run_dir.is_relative_to(Path.cwd()) else run_dir
        console.print(f"[yellow]stopped by {e}: checkpoints/last.pt saved. Resume with:\n"
                      f"  nnlab train resume={shown}", soft_wrap=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as e:
        if not multirun:
            raise
        log.exception("job failed")  # full traceback in the job's train.log
        return _fail(console, multirun, run_dir, "job failed", f"{type(e).__name__}: {e}", 1)
    monitor = plain["regularizer"]["early_stopping"]["monitor"].replace("/", "_")
    return metrics.get(f"final/best_{monitor}")


def parallel_threads(launcher: DictConfig) -> int:
    """Threads per job when a joblib launcher runs jobs side by side: the cores split between them."""
    n_jobs = launcher.get("n_jobs") if is_joblib(launcher) else None
    if n_jobs is None:
        return 0
    cores = os.cpu_count() or 1
    parallel = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)  # joblib: -1 = all cores
    return max(1, cores // parallel)


def _fail(console: Console, multirun: bool, run_dir: Path, title: str, message: str, code: int) -> None:
    """Print one paragraph; in a sweep, record it in the job folder and let the other jobs go on."""
    console.print(f"[bold red]{title}:[/] {escape(message)}", soft_wrap=True, highlight=False)
    if multirun:
        (run_dir / "error.txt").write_text(f"{title}: {message}\n")
        return None
    sys.exit(code)
