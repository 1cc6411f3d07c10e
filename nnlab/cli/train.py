"""`nnlab train`: the Hydra app. argv in; one job per composed config; every known failure mapped to one
paragraph and an exit code (2 configuration error, 3 diverged, 130 interrupted, 1 any other failure).

Imports no torch until a job actually runs.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape

from nnlab import _speedups
from nnlab.config.folders import register
from nnlab.config.paths import config_dir, search_path
from nnlab.config.validate import validate
from nnlab.registry import ConfigAbort, ConfigError

EXIT_FAILED, EXIT_CONFIG, EXIT_NONFINITE, EXIT_INTERRUPTED = 1, 2, 3, 130
log = logging.getLogger("nnlab")
STOPPED: list[str] = []  # the signal that stopped a job of an in-process sweep; the later jobs are skipped
register()  # the resolvers train.yaml uses, before Hydra composes


def main(args: list[str]) -> None:
    """`nnlab train ARGS`: Hydra's own command line, with `train` removed (from COMP_LINE too)."""
    _drop_train_from_completion_line()
    args = _resuming_a_sweep(args)
    sys.argv = [sys.argv[0], *name_jobs_by_swept_keys(sweep_if_experiment_sweeps(expand_seeds(args)))]
    logging.getLogger("alembic").setLevel(logging.WARNING)  # optuna's storage layer announces every plugin
    from nnlab.cli.sweep_summary import FAILED, INTERRUPTED

    try:
        train()
    except ConfigAbort as e:
        exit_config_error(str(e))
    if FAILED:  # a sweep whose other jobs finished still reports failure
        sys.exit(EXIT_FAILED)
    if INTERRUPTED:
        sys.exit(EXIT_INTERRUPTED)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def train(cfg: DictConfig) -> float | str | None:
    """One job. Returns the best monitored validation metric for sweepers (`search.PRUNED` for a pruned
    Optuna trial, None for a failed job); exits with a code in a single run."""
    from nnlab.loop import Interrupted, NonFinite, Pruned
    from nnlab.runner import run
    from nnlab.trial import PRUNED, epoch_hook

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
    if multirun and STOPPED:  # a signal stopped an earlier job of this in-process sweep: start no more
        _write_atomic(run_dir / "interrupted.txt", f"not started: the sweep was stopped by {STOPPED[0]}\n")
        return None
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
        from nnlab.plugins import load_plugins

        load_plugins(plain.get("plugins"))  # in every process that runs a job: the user's parts register first
        validate(plain, search_path(hc.runtime.config_sources))
        if multirun and not plain["trainer"]["threads"]:
            plain["trainer"]["threads"] = parallel_threads(hc.launcher)
        monitor = plain["regularizer"]["early_stopping"]["monitor"]
        hook = epoch_hook(hc.sweeper, monitor, run_dir) if multirun else None
        metrics = run(plain, run_dir, dict(hc.runtime.choices), resume=_resume_point(plain, run_dir, multirun),
                      overrides=list(hc.overrides.task), sweep=multirun, epoch_hook=hook)
    except Pruned:  # only sweep jobs (Optuna trials) are pruned; the tracker logged why and wrote pruned.txt
        return PRUNED
    except ConfigError as e:
        return _fail(console, multirun, run_dir, "configuration error", str(e), EXIT_CONFIG)
    except NonFinite as e:
        return _fail(console, multirun, run_dir, "training diverged", str(e), EXIT_NONFINITE)
    except Interrupted as e:
        return _stopped(console, multirun, run_dir, e)
    except Exception as e:
        if not multirun:
            raise
        log.exception("job failed")  # full traceback in the job's train.log
        return _fail(console, multirun, run_dir, "job failed", f"{type(e).__name__}: {e}", EXIT_FAILED)
    (run_dir / "interrupted.txt").unlink(missing_ok=True)  # a requeued or resumed job that got to the end
    return metrics.get(f"final/best_{monitor.replace('/', '_')}")


def _resume_point(plain: dict, run_dir: Path, multirun: bool) -> Path | None:
    """`resume=...`; or, in a sweep, a job whose own folder already holds checkpoints/last.pt and no final
    metrics: the same job started again (a SLURM job requeued on preemption or at its time limit)."""
    last = run_dir / "checkpoints" / "last.pt"
    if plain.get("resume") or (multirun and last.is_file() and not (run_dir / "metrics.json").is_file()):
        return last
    return None


def _stopped(console: Console, multirun: bool, run_dir: Path, e: Exception) -> None:
    """A signal stopped training after a step and last.pt is saved. Alone: exit 130. In a sweep: note it in the
    job folder (the sweep table shows "interrupted") and return a result; if SLURM's warning signal came (time
    limit or preemption), hand over to submitit, which requeues the job (it resumes from last.pt) and exits."""
    hint = f"nnlab train {resume_override(run_dir)}"
    console.print(f"[yellow]stopped by {e}: checkpoints/last.pt saved. Resume with:\n  {hint}", soft_wrap=True)
    if not multirun:
        sys.exit(EXIT_INTERRUPTED)
    from nnlab.loop import warning_signal

    warning = warning_signal()
    submitit_job = "SUBMITIT_EXECUTOR" in os.environ
    if submitit_job:  # a warning that follows SIGTERM (preemption) waits until the note is written
        signal.pthread_sigmask(signal.SIG_BLOCK, {warning})
    note = f"stopped by {e}; checkpoints/last.pt saved; resume with: {hint}"
    _write_atomic(run_dir / "interrupted.txt", note + "\n")
    if not submitit_job:  # the sweep runs in this process (basic launcher): its other jobs do not start
        STOPPED[:] = [str(e)]
        return None
    try:
        if warning.name in getattr(e, "signals", ()) and warning not in signal.sigpending():
            signal.raise_signal(warning)  # blocked: stays pending until the unblock below
        requeue = warning in signal.sigpending()
        if requeue:
            log.warning("%s: handing over to submitit to requeue the job", note)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {warning})  # submitit's handler runs here: requeue and exit
    except Exception as not_requeued:  # submitit's UncompletedJobError: e.g. timed out too many times
        _write_atomic(run_dir / "interrupted.txt", f"{note}; not requeued: {not_requeued}\n")
    return None


def resume_override(run_dir: Path) -> str:
    """`resume=<folder>` as a shell word Hydra parses: sweep job folders hold '=' and ',' (activation=relu)."""
    import re
    import shlex

    shown = str(run_dir.relative_to(Path.cwd()) if run_dir.is_relative_to(Path.cwd()) else run_dir)
    if not re.fullmatch(r"[\w./-]+", shown):
        shown = '"' + shown.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return shlex.quote(f"resume={shown}")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def parallel_threads(launcher: DictConfig) -> int:
    """Threads per job when jobs run side by side: the CPUs a submitit job asked for (cpus_per_task), or with
    joblib the cores split between the jobs."""
    if launcher.get("cpus_per_task"):
        return int(launcher.cpus_per_task)
    n_jobs = launcher.get("n_jobs") if _speedups.is_joblib(launcher) else None
    if n_jobs is None:
        return 0
    cores = os.cpu_count() or 1
    parallel = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)  # joblib: -1 = all cores
    return max(1, cores // parallel)


def exit_config_error(message: str) -> None:
    """A configuration mistake found outside a job (e.g. by a sweeper): one paragraph, exit 2."""
    Console(stderr=True).print(f"[bold red]configuration error:[/] {escape(message)}", soft_wrap=True,
                               highlight=False)
    sys.exit(EXIT_CONFIG)


def _fail(console: Console, multirun: bool, run_dir: Path, title: str, message: str, code: int) -> None:
    """Print one paragraph; in a sweep, record it in the job folder and let the other jobs go on."""
    console.print(f"[bold red]{title}:[/] {escape(message)}", soft_wrap=True, highlight=False)
    if multirun:
        (run_dir / "error.txt").write_text(f"{title}: {message}\n")
        return None
    sys.exit(code)


# -- argv ----------------------------------------------------------------------------------------------------
def _resuming_a_sweep(args: list[str]) -> list[str]:
    """`-m ... resume=<sweep folder>` resumes that sweep (as `nnlab resume` does) when its overrides match."""
    if not any(a.startswith("resume=") for a in args):
        return args
    from nnlab.cli.resume import sweep_resume_in_train_args

    try:
        return sweep_resume_in_train_args(args) or args
    except ValueError as e:
        exit_config_error(str(e))
        return args


def _drop_train_from_completion_line() -> None:
    """Shell completion hands Hydra `COMP_LINE="nnlab train ..."`; Hydra expects the app's own words only."""
    line = os.environ.get("COMP_LINE")
    if line is None:
        return
    words = line.split(" ")
    if len(words) > 1 and words[1] == "train":
        os.environ["COMP_LINE"] = " ".join([words[0], *words[2:]])
        if "COMP_POINT" in os.environ:
            os.environ["COMP_POINT"] = str(max(0, int(os.environ["COMP_POINT"]) - len(" train")))


def name_jobs_by_swept_keys(args: list[str]) -> list[str]:
    """In a sweep, exclude the constant overrides from job folder names (Hydra's override_dirname).

    `-m activation=relu,mish data=xor` then names its jobs `activation=relu` and `activation=mish`.
    """
    if not {"-m", "--multirun"} & set(args):
        return args
    import yaml
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = [a for a in args if "=" in a and not a.startswith("-")]
    if any(a.startswith("hydra.job.config.override_dirname.exclude_keys=") for a in overrides):
        return args
    parsed = OverridesParser.create().parse_overrides(overrides)
    constant = [o.get_key_element().lstrip("+~") for o in parsed if not o.is_sweep_override()]
    root = yaml.safe_load((config_dir() / "train.yaml").read_text())
    base = root["hydra"]["job"]["config"]["override_dirname"]["exclude_keys"]
    keys = ",".join(dict.fromkeys([*base, *constant]))
    at = args.index(overrides[0]) if overrides else len(args)  # beside the others: argparse wants them together
    return [*args[:at], f"hydra.job.config.override_dirname.exclude_keys=[{keys}]", *args[at:]]


def expand_seeds(args: list[str]) -> list[str]:
    """`seeds=N`: every configuration with N seeds, as a sweep (`-m ... trainer.seed=0,1,...,N-1`); the job
    folders keep their names by the swept keys, `,seed=K` appended."""
    given = [a for a in args if a.startswith("seeds=")]
    if not given:
        return args
    value = given[-1].split("=", 1)[1]
    rest = [a for a in args if not a.startswith("seeds=")]
    problem = None
    if not value.isdigit() or int(value) < 1:
        problem = f"seeds={value}: the number of seeds per configuration, an integer ≥ 1 (e.g. seeds=5)"
    elif any(a.split("=", 1)[0].lstrip("+~") == "trainer.seed" for a in rest if "=" in a):
        problem = "seeds=N and trainer.seed=... both given: seeds=N runs trainer.seed=0..N-1; keep one of them"
    if problem:
        print(f"configuration error: {problem}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    seeds = f"trainer.seed={','.join(str(i) for i in range(int(value)))}"
    return [*rest, seeds] if {"-m", "--multirun"} & set(rest) else ["-m", *rest, seeds]


def sweep_if_experiment_sweeps(args: list[str]) -> list[str]:
    """`experiment=X` whose preset defines a sweep (hydra.sweeper.params) runs as a multirun without -m."""
    if {"-m", "--multirun"} & set(args):
        return args
    import yaml

    for a in args:
        if a.startswith("experiment="):
            path = config_dir() / "experiment" / f"{a.split('=', 1)[1]}.yaml"
            preset = yaml.safe_load(path.read_text()) if path.is_file() else {}
            if (preset or {}).get("hydra", {}).get("sweeper", {}).get("params"):
                return ["-m", *args]
    return args
