"""`nnlab train`: the Hydra app. argv in; one job per composed config; every known failure mapped to one
paragraph and an exit code (nnlab/cli/failures.py has the table).

Imports no torch until a job actually runs.
"""

from __future__ import annotations

import logging
import os
import shlex
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
from nnlab.checkpoint import load_training_state, run_identity, write_text_atomic
from nnlab.cli import failures
from nnlab.cli.failures import EXIT_FAILED, EXIT_INTERRUPTED, resume_hint
from nnlab.config.folders import forget_unused_claims, register
from nnlab.config.paths import config_dir, search_path
from nnlab.config.resume import merge_resume
from nnlab.config.validate import validate
from nnlab.distributed import env_rank
from nnlab.registry import ConfigAbort, ConfigError

log = logging.getLogger("nnlab")
STOPPED: list[str] = []  # the signal that stopped a job of an in-process sweep; the later jobs are skipped
register()  # the resolvers train.yaml uses, before Hydra composes


def main(args: list[str]) -> None:
    """`nnlab train ARGS`: Hydra's own command line, with `train` removed (from COMP_LINE too).

    Every failure a user can cause ends here as one paragraph and its exit code (see `failures`)."""
    _drop_train_from_completion_line()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # optuna's storage layer announces every plugin
    from nnlab.cli.sweep_summary import FAILED, INTERRUPTED

    try:
        args = preflight(_resuming_a_sweep(expand_seeds(args)))
        sys.argv = [sys.argv[0], *name_jobs_by_swept_keys(sweep_if_experiment_sweeps(args))]
        with failures.hydra_raises():
            train()
    except ConfigAbort as e:  # a sweeper's or launcher's refusal, carried past Hydra
        _exit_for(ConfigError(str(e)))
    except (Exception, KeyboardInterrupt) as e:
        _exit_for(e)
    if FAILED:  # a sweep whose other jobs finished still reports failure
        sys.exit(EXIT_FAILED)
    if INTERRUPTED:
        sys.exit(EXIT_INTERRUPTED)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def train(cfg: DictConfig) -> float | str | None:
    """One job. Returns the best monitored validation metric for sweepers (`trial.PRUNED` for a pruned
    Optuna trial, None for a failed job); exits with a code in a single run."""
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    if multirun and STOPPED:  # a signal stopped an earlier job of this in-process sweep: start no more
        write_text_atomic(run_dir / "interrupted.txt", f"not started: the sweep was stopped by {STOPPED[0]}\n")
        return None
    try:
        return _job(_checked(cfg, hc), hc, run_dir, multirun)
    except (Exception, KeyboardInterrupt) as e:
        if not multirun:
            _exit_for(e)  # here, not in main(): Hydra would add its own "Error executing job" line
        if isinstance(e, KeyboardInterrupt):
            raise  # Ctrl-C stops the whole sweep
        code, title, message = failures.classify(e)
        if code is None:
            log.exception("job failed")  # full traceback in the job's train.log
            title, message = "job failed", f"{type(e).__name__}: {e}"
        _console().print(f"[bold red]{title}:[/] {escape(message)}", soft_wrap=True, highlight=False)
        (run_dir / "error.txt").write_text(f"{title}: {message}\n")  # the other jobs go on
        return None


def _checked(cfg: DictConfig, hc: DictConfig) -> dict:
    """The job's config as plain containers, every value checked (ConfigError) before torch is imported: a
    refused run answers in a fraction of a second."""
    from nnlab.plugins import load_plugins

    plain = OmegaConf.to_container(cfg, resolve=True)
    load_plugins(plain.get("plugins"))  # in every process that runs a job: the user's parts register first
    validate(plain, search_path(hc.runtime.config_sources))
    return plain


def _job(plain: dict, hc: DictConfig, run_dir: Path, multirun: bool) -> float | str | None:
    """Train the checked config in `run_dir` (resuming where asked or requeued); the monitored result."""
    with failures.ctrl_c_held():  # torch comes with these
        from nnlab.loop import Interrupted, Pruned
        from nnlab.runner import run
        from nnlab.trial import PRUNED, epoch_hook
    _speedups.freeze_once()

    if multirun and not plain["trainer"]["threads"]:
        plain["trainer"]["threads"] = parallel_threads(hc.launcher)
    resume = None
    if plain.get("resume") or (multirun and _requeued(run_dir)):
        plain, resume = resumed_config(plain, run_dir, list(hc.overrides.task))
    choices = {k: plain[k]["name"] if isinstance(plain.get(k), dict) and "name" in plain[k] else v
               for k, v in hc.runtime.choices.items()}  # a resumed run's own choices, not the defaults
    monitor = plain["regularizer"]["early_stopping"]["monitor"]
    try:
        metrics = run(plain, run_dir, choices, resume=resume, overrides=list(hc.overrides.task), sweep=multirun,
                      epoch_hook=epoch_hook(hc.sweeper, monitor, run_dir) if multirun else None)
    except Pruned:  # only sweep jobs (Optuna trials) are pruned; the tracker logged why and wrote pruned.txt
        return PRUNED
    except Interrupted as e:
        return _stopped(multirun, run_dir, e)
    (run_dir / "interrupted.txt").unlink(missing_ok=True)  # a requeued or resumed job that got to the end
    return metrics.get(f"final/best_{monitor.replace('/', '_')}")


def _requeued(run_dir: Path) -> bool:
    """A sweep job whose own folder already holds checkpoints/last.pt and no final metrics: the same job
    started again (a SLURM job requeued on preemption or at its time limit). It resumes."""
    return (run_dir / "checkpoints" / "last.pt").is_file() and not (run_dir / "metrics.json").is_file()


def _stopped(multirun: bool, run_dir: Path, e: Exception) -> None:
    """A signal stopped training after a step and last.pt is saved. Alone: exit 130. In a sweep: note it in the
    job folder (the sweep table shows "interrupted") and return a result; if SLURM's warning signal came (time
    limit or preemption), hand over to submitit, which requeues the job (it resumes from last.pt) and exits."""
    hint = resume_hint(run_dir)
    if env_rank() == 0:  # one hint, not one per DDP process
        _console().print(f"[yellow]stopped by {e}: checkpoints/last.pt saved. Resume with:\n  {escape(hint)}",
                         soft_wrap=True, highlight=False)
    if not multirun:
        sys.exit(EXIT_INTERRUPTED)
    from nnlab.loop import warning_signal

    warning = warning_signal()
    submitit_job = "SUBMITIT_EXECUTOR" in os.environ
    if submitit_job:  # a warning that follows SIGTERM (preemption) waits until the note is written
        signal.pthread_sigmask(signal.SIG_BLOCK, {warning})
    note = f"stopped by {e}; checkpoints/last.pt saved; resume with: {hint}"
    write_text_atomic(run_dir / "interrupted.txt", note + "\n")
    if not submitit_job:  # the sweep runs in this process (basic launcher): its other jobs do not start
        STOPPED[:] = [str(e)]
        return None
    try:
        if warning.name in getattr(e, "signals", ()) and warning not in signal.sigpending():
            signal.raise_signal(warning)  # blocked: stays pending until the unblock below
        if warning in signal.sigpending():
            log.warning("%s: handing over to submitit to requeue the job", note)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {warning})  # submitit's handler runs here: requeue and exit
    except Exception as not_requeued:  # submitit's UncompletedJobError: e.g. timed out too many times
        write_text_atomic(run_dir / "interrupted.txt", f"{note}; not requeued: {not_requeued}\n")
    return None


def _exit_for(e: BaseException) -> None:
    """One paragraph and the exit code for a known failure; a traceback (re-raised) for anything else."""
    code, title, message = failures.classify(e)
    if code is None:
        raise e
    forget_unused_claims()
    _console().print(f"[bold red]{title}:[/] {escape(message)}", soft_wrap=True, highlight=False)
    sys.exit(code)


def _console() -> Console:
    return Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def resumed_config(composed: dict, run_dir: Path, overrides: list[str]) -> tuple[dict, Path]:
    """The checkpoint's config with the overrides that may change on resume applied (ConfigError for others),
    and the checkpoint, which must belong to `run_dir`."""
    path = run_dir / "checkpoints" / "last.pt"
    state = load_training_state(path)
    saved_id, folder_id = state.get("run_id"), run_identity(run_dir, create=False)
    if saved_id is not None and saved_id != folder_id:
        mine = f"this folder's is {folder_id}" if folder_id else "this folder has none"
        raise ConfigError(f"{path} was written by another run (its run id is {saved_id}; {mine}): it was copied "
                          f"here, and resuming would continue another run's configuration in {run_dir}. Resume "
                          "the run it came from, or start a new one")
    return merge_resume(state["config"], composed, overrides, state["loop"]["epoch"]), path


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


# -- argv ----------------------------------------------------------------------------------------------------
def _resuming_a_sweep(args: list[str]) -> list[str]:
    """`-m ... resume=<sweep folder>` resumes that sweep (as `nnlab resume` does) when its overrides match."""
    if not any(a.startswith("resume=") for a in args):
        return args
    from nnlab.cli.resume import sweep_resume_in_train_args

    try:
        return sweep_resume_in_train_args(args) or args
    except ValueError as e:
        raise ConfigError(str(e)) from None


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


INFO_CHOICES = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")


def preflight(args: list[str]) -> list[str]:
    """Checks of the command line itself, before Hydra composes anything or claims a folder: every override
    parses, and hydra.run.dir / hydra.sweep.dir never name a folder that already holds files."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    if args and args[-1] in ("--info", "-i") or any(  # `--info data=xor`: --info as usual, then the overrides
            a in ("--info", "-i") and b not in INFO_CHOICES for a, b in zip(args, args[1:])):
        at = max(i for i, a in enumerate(args) if a in ("--info", "-i"))
        args = [*args[:at + 1], "all", *args[at + 1:]]
    parser = OverridesParser.create()
    for a in (a for a in args if "=" in a and not a.startswith("-")):
        try:
            (o,) = parser.parse_overrides([a])
        except OverrideParseException as e:
            raise ConfigError(f"cannot read the override {a!r}: {str(e).splitlines()[0]}. A value holding "
                              "= , [ ] { } ( ) quotes or spaces must be quoted for Hydra, e.g. "
                              "'resume=\"outputs/a=b,c=d\"' (the whole word in single quotes for the shell)") from None
        key = o.get_key_element()
        if key in ("hydra.run.dir", "hydra.sweep.dir") and not o.is_sweep_override():
            folder = Path(str(o.value()))
            if folder.is_dir() and any(folder.iterdir()) and not _continues_sweep(key, folder, args):
                how = (f"nnlab resume {shlex.quote(str(folder))}" if key == "hydra.sweep.dir"
                       else resume_hint(folder))
                raise ConfigError(f"{a}: {folder} already holds files (a run?) and nnlab never writes over a run. "
                                  f"To continue it: {how}; for a new run, name a new or empty folder, or leave "
                                  f"{key} out (each run gets a fresh dated folder)")
    return args


def _continues_sweep(key: str, folder: Path, args: list[str]) -> bool:
    """hydra.sweep.dir may name an existing sweep to continue it: `nnlab resume` (hydra.sweeper.resume=true),
    or an Optuna search whose study (optuna.db) lives there."""
    return key == "hydra.sweep.dir" and ("hydra.sweeper.resume=true" in args or (folder / "optuna.db").is_file())


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
        raise ConfigError(problem)
    seeds = f"trainer.seed={','.join(str(i) for i in range(int(value)))}"
    return [*rest, seeds] if {"-m", "--multirun"} & set(rest) else ["-m", *rest, seeds]
