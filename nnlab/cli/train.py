"""`nnlab train`: the Hydra app. argv in; one job per composed config; every known failure mapped to one
paragraph and an exit code (2 configuration error, 3 diverged, 130 interrupted, 1 any other failure).

Imports no torch until a job actually runs.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape

from nnlab import _speedups
from nnlab.cli import failures
from nnlab.cli.failures import EXIT_FAILED, EXIT_INTERRUPTED, resume_hint
from nnlab.config.folders import forget_unused_claims, register
from nnlab.config.paths import config_dir
from nnlab.config.resume import merge_resume
from nnlab.config.validate import validate
from nnlab.distributed import env_rank
from nnlab.registry import ConfigError

log = logging.getLogger("nnlab")
register()  # the resolvers train.yaml uses, before Hydra composes


def main(args: list[str]) -> None:
    """`nnlab train ARGS`: Hydra's own command line, with `train` removed (from COMP_LINE too).

    Every failure a user can cause ends here as one paragraph and its exit code (see `failures`)."""
    _drop_train_from_completion_line()
    logging.getLogger("alembic").setLevel(logging.WARNING)  # optuna's storage layer announces every plugin
    from nnlab.cli.sweep_summary import FAILED

    try:
        args = preflight(args)
        sys.argv = [sys.argv[0], *name_jobs_by_swept_keys(sweep_if_experiment_sweeps(args))]
        with failures.hydra_raises():
            train()
    except (Exception, KeyboardInterrupt) as e:
        _exit_for(e)
    if FAILED:  # a sweep whose other jobs finished still reports failure
        sys.exit(EXIT_FAILED)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def train(cfg: DictConfig) -> float | None:
    """One job. Returns the monitored validation metric (for sweepers); exits with a code in a single run."""
    from nnlab.loop import Interrupted
    from nnlab.runner import run

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
        validate(plain)
        if multirun and not plain["trainer"]["threads"]:
            plain["trainer"]["threads"] = parallel_threads(hc.launcher)
        resume = None
        if plain.get("resume"):
            plain, resume = resumed_config(plain, run_dir, list(hc.overrides.task))
        choices = {k: plain[k]["name"] if isinstance(plain.get(k), dict) and "name" in plain[k] else v
                    for k, v in hc.runtime.choices.items()}  # a resumed run's own choices, not the defaults
        metrics = run(plain, run_dir, choices, resume=resume)
    except Interrupted as e:
        if env_rank() == 0:  # one hint, not one per DDP process
            _console().print(
                f"[yellow]stopped by {e}: checkpoints/last.pt saved. Resume with:\n  {escape(resume_hint(run_dir))}",
                soft_wrap=True, highlight=False)
        sys.exit(EXIT_INTERRUPTED)
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
    monitor = plain["regularizer"]["early_stopping"]["monitor"].replace("/", "_")
    return metrics.get(f"final/best_{monitor}")


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
    from nnlab.checkpoint import load_training_state, run_identity

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
    """Threads per job when a joblib launcher runs jobs side by side: the cores split between them."""
    n_jobs = launcher.get("n_jobs") if _speedups.is_joblib(launcher) else None
    if n_jobs is None:
        return 0
    cores = os.cpu_count() or 1
    parallel = n_jobs if n_jobs > 0 else max(1, cores + 1 + n_jobs)  # joblib: -1 = all cores
    return max(1, cores // parallel)


# -- argv ----------------------------------------------------------------------------------------------------
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
        if o.get_key_element() in ("hydra.run.dir", "hydra.sweep.dir") and not o.is_sweep_override():
            folder = Path(str(o.value()))
            if folder.is_dir() and any(folder.iterdir()):
                raise ConfigError(f"{a}: {folder} already holds files (a run?) and nnlab never writes over a run. "
                                  f"To continue that run: {resume_hint(folder)}; for a new run, name a new or "
                                  f"empty folder, or leave {o.get_key_element()} out (each run gets a fresh "
                                  "dated folder)")
    return args
