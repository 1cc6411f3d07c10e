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
from nnlab.config.folders import register
from nnlab.config.paths import config_dir
from nnlab.config.validate import validate
from nnlab.registry import ConfigError

EXIT_FAILED, EXIT_CONFIG, EXIT_NONFINITE, EXIT_INTERRUPTED = 1, 2, 3, 130
log = logging.getLogger("nnlab")
register()  # the resolvers train.yaml uses, before Hydra composes


def main(args: list[str]) -> None:
    """`nnlab train ARGS`: Hydra's own command line, with `train` removed (from COMP_LINE too)."""
    _drop_train_from_completion_line()
    sys.argv = [sys.argv[0], *name_jobs_by_swept_keys(sweep_if_experiment_sweeps(expand_seeds(args)))]
    logging.getLogger("alembic").setLevel(logging.WARNING)  # optuna's storage layer announces every plugin
    from nnlab.cli.sweep_summary import FAILED

    train()
    if FAILED:  # a sweep whose other jobs finished still reports failure
        sys.exit(EXIT_FAILED)


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def train(cfg: DictConfig) -> float | None:
    """One job. Returns the monitored validation metric (for sweepers); exits with a code in a single run."""
    from nnlab.loop import Interrupted, NonFinite
    from nnlab.runner import run

    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    multirun = hc.mode == RunMode.MULTIRUN
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)
    try:
        plain = OmegaConf.to_container(cfg, resolve=True)
        validate(plain)
        if multirun and not plain["trainer"]["threads"]:
            plain["trainer"]["threads"] = parallel_threads(hc.launcher)
        resume = run_dir / "checkpoints" / "last.pt" if plain.get("resume") else None
        metrics = run(plain, run_dir, dict(hc.runtime.choices), resume=resume, overrides=list(hc.overrides.task),
                      sweep=multirun)
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
        return _fail(console, multirun, run_dir, "job failed", f"{type(e).__name__}: {e}", EXIT_FAILED)
    monitor = plain["regularizer"]["early_stopping"]["monitor"].replace("/", "_")
    return metrics.get(f"final/best_{monitor}")


def parallel_threads(launcher: DictConfig) -> int:
    """Threads per job when a joblib launcher runs jobs side by side: the cores split between them."""
    n_jobs = launcher.get("n_jobs") if _speedups.is_joblib(launcher) else None
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
