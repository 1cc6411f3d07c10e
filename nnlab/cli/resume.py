"""`nnlab resume SWEEP [--rerun-failed] [hydra overrides]`: finish an interrupted sweep in its own folder.

The sweep's command line is read back from SWEEP/multirun.yaml (saved when the sweep started) and run again
with `hydra.sweep.dir=SWEEP hydra.sweeper.resume=true`: a grid sweep skips its finished jobs and continues
the others from their checkpoints/last.pt (nnlab.sweep_resume); an Optuna search continues its study up to
n_trials in all (nnlab.search). Only Hydra's own settings may be added (another launcher, more trials); an
override of the training config would change the sweep and is refused, naming it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

EXIT_USAGE = 2
OWN = ("hydra.sweep.dir=", "hydra.sweeper.resume=", "hydra.sweeper.rerun_failed=")  # set by this command


def saved_command(sweep: Path) -> tuple[list[str], list[str], str]:
    """(Hydra's overrides, the task's overrides, the sweeper's target) the sweep was started with."""
    import yaml

    saved = yaml.safe_load((sweep / "multirun.yaml").read_text())
    overrides = saved["hydra"]["overrides"]
    hydra_overrides = [o for o in overrides.get("hydra") or [] if not o.startswith(OWN)]
    return hydra_overrides, list(overrides.get("task") or []), str(saved["hydra"]["sweeper"].get("_target_", ""))


def resume_args(sweep: Path, extra: list[str], rerun_failed: bool) -> list[str]:
    """The `nnlab train` arguments that resume `sweep`; ValueError (the message) for what cannot be."""
    if not (sweep / "multirun.yaml").is_file():
        raise ValueError(f"{sweep} is not a sweep folder: it holds no multirun.yaml (written when "
                         f"`nnlab train -m ...` starts a sweep)")
    hydra_overrides, task, target = saved_command(sweep)
    keys = {o.split("=", 1)[0].lstrip("+~"): o for o in task}
    for o in extra:
        key = o.split("=", 1)[0].lstrip("+~")
        if not key.startswith(("hydra.", "hydra/")):
            was = f"it was {keys[key]!r}" if key in keys else "the sweep did not set it"
            raise ValueError(f"{o!r} would change the sweep's configuration ({was}); a resumed sweep keeps the "
                             f"overrides it started with: {' '.join(task)}. Only Hydra's settings "
                             f"(hydra/launcher=..., hydra.sweeper.n_trials=...) may be added; for another "
                             f"configuration start a new sweep")
    if rerun_failed and "optuna" in target:
        raise ValueError("--rerun-failed: an Optuna search never runs a finished trial again (failed ones count "
                         "toward n_trials); raise hydra.sweeper.n_trials to run more trials")
    replaced = {o.split("=", 1)[0].lstrip("+~") for o in extra}  # an added setting replaces the saved one
    hydra_overrides = [o for o in hydra_overrides if o.split("=", 1)[0].lstrip("+~") not in replaced]
    own = [f"hydra.sweep.dir='{sweep}'", "hydra.sweeper.resume=true"]
    if rerun_failed:
        own.append("hydra.sweeper.rerun_failed=true")
    return ["-m", *hydra_overrides, *extra, *own, *task]


def sweep_resume_in_train_args(args: list[str]) -> list[str] | None:
    """`nnlab train -m <the sweep's overrides> resume=<sweep folder>`: the `nnlab train` arguments that resume
    it, None when `args` resume no sweep; ValueError when the overrides differ from the sweep's (named)."""
    if not {"-m", "--multirun"} & set(args):
        return None
    folders = [Path(a.split("=", 1)[1]) for a in args if a.startswith("resume=")]
    if not folders or not (folders[-1] / "multirun.yaml").is_file():
        return None
    sweep = folders[-1]
    given = [a for a in args if "=" in a and not a.startswith(("-", "resume="))]
    settings = [a for a in given if a.split("=", 1)[0].lstrip("+~").startswith(("hydra.", "hydra/"))]
    task = [a for a in given if a not in settings]
    saved = saved_command(sweep)[1]
    if sorted(task) != sorted(saved):
        added, missing = [a for a in task if a not in saved], [a for a in saved if a not in task]
        raise ValueError(f"resume={sweep}: these overrides differ from the ones the sweep started with "
                         f"(added: {' '.join(added) or 'none'}; missing: {' '.join(missing) or 'none'}). A resumed "
                         f"sweep keeps its configuration: repeat its overrides ({' '.join(saved)}) or run "
                         f"`nnlab resume {sweep}`")
    return resume_args(sweep, settings, rerun_failed=False)


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="nnlab resume", description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="the sweep folder (outputs/multirun/<date>/<time>)")
    parser.add_argument("--rerun-failed", action="store_true", help="run the failed jobs (error.txt) again too")
    parser.add_argument("overrides", nargs="*", help="Hydra settings only, e.g. hydra/launcher=joblib")
    args, unknown = parser.parse_known_args(argv)
    try:
        train_args = resume_args(args.sweep, [*args.overrides, *unknown], args.rerun_failed)
    except ValueError as e:
        Console(stderr=True).print(f"[bold red]nnlab resume:[/] {escape(str(e))}", soft_wrap=True, highlight=False)
        return EXIT_USAGE
    from nnlab.cli import train

    train.main(train_args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
