"""Hydra callbacks: the sweep's HPARAMS experiment (at its start, completed at its end), the comparison table
at the end of every sweep with failures listed with their errors, the verdicts, and the commands to look."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

FAILED: list[str] = []  # read by the CLI to set the exit code of a sweep
INTERRUPTED: list[str] = []


class SweepSummary(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """The swept keys and their values as HPARAMS columns, before any job ran (a live TensorBoard sees
        them at once); on_multirun_end completes it with every key of the jobs."""
        from nnlab.hparams import experiment
        from nnlab.tracker import write_experiment

        values = sweep_values(config)
        if not values:
            return
        sweep = Path(str(config.hydra.sweep.dir))
        sweep.mkdir(parents=True, exist_ok=True)
        jobs = [{k: v} for k, vs in values.items() for v in vs]
        write_experiment(sweep, experiment(jobs, list(values), [], description=describe(values)))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from nnlab.cli.compare import failures_text, interruptions_text, print_comparison
        from nnlab.cli.compare_stats import seed_groups_table
        from nnlab.runs import find_runs, seed_groups
        from nnlab.tracker import make_console

        sweep = Path(str(config.hydra.sweep.dir))
        runs = find_runs([sweep])
        if not runs:
            return
        write_sweep_experiment(sweep, runs)
        monitor = config.get("regularizer", {}).get("early_stopping", {}).get("monitor", "val/loss")
        metric = "final/val_acc" if monitor.endswith("acc") or monitor.endswith("loss") else f"final/{monitor}"
        console = make_console()
        print_comparison(runs, metric, f"sweep {sweep}: {len(runs)} jobs", console)
        if any(sum(metric in r.metrics for r in g) > 1 for g in seed_groups(runs).values()):
            console.print(seed_groups_table(runs, metric))
        FAILED[:] = failures_text(runs)
        INTERRUPTED[:] = interruptions_text(runs)
        experiment = config.get("experiment", {}).get("name")
        if experiment:
            report_verdicts(experiment, runs, sweep, console)
        for line in look_hints(sweep, runs):
            console.print(line, soft_wrap=True, highlight=False, markup=False)


def look_hints(sweep: Path, runs: list) -> list[str]:
    """One line each, pasteable into a shell: TensorBoard on the sweep, and the seed-aware comparison."""
    from nnlab.runs import swept_keys

    shown = sweep.relative_to(Path.cwd()) if sweep.is_relative_to(Path.cwd()) else sweep
    where = shlex.quote(str(shown))
    keys = [k for k in swept_keys(runs) if k != "trainer.seed"]
    by = f" --by {shlex.quote(keys[0])}" if keys and len(runs) > 1 else ""
    return [f"look: nnlab board {where}", f"compare: nnlab compare {where}{by}"]


def write_sweep_experiment(sweep: Path, runs: list) -> None:
    """The sweep's one HPARAMS experiment: swept keys first (domains, differs), then every other key."""
    from nnlab.hparams import experiment, final_scalars
    from nnlab.runs import swept_keys
    from nnlab.tracker import write_experiment

    jobs = [r.hparams for r in runs if r.hparams]
    if not jobs:
        return
    swept = swept_keys(runs) if len(runs) > 1 else []
    tags = {t for r in runs for t in final_scalars(r.metrics)}
    seeds = len({r.overrides.get("trainer.seed") for r in runs} - {None})
    note = f"; {seeds} seeds per configuration, grouped" if seeds > 1 else ""
    write_experiment(sweep, experiment(jobs, swept, tags, description=f"{len(runs)} jobs{note}"))


def sweep_values(config: DictConfig) -> dict[str, list[Any]]:
    """Each swept key with its values, from the command line and the sweeper's params (an experiment preset's):
    choice and range sweeps only (an Optuna interval has no list of values)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = config.hydra.sweeper.get("params")  # None for a plain grid sweep (the values are on the line)
    params = OmegaConf.to_container(params, resolve=False) if params is not None else {}
    raw = [f"{k}={v}" for k, v in params.items()] + list(config.hydra.overrides.task)
    values: dict[str, list[Any]] = {}
    try:
        parsed = OverridesParser.create().parse_overrides(raw)
    except Exception:  # noqa: BLE001 - Hydra reports a bad override itself; the columns then wait for the end
        return {}
    for o in parsed:
        if o.is_sweep_override() and not o.is_interval_sweep():
            try:
                values[o.get_key_element().lstrip("+~")] = list(o.sweep_iterator())
            except Exception:  # noqa: BLE001 - e.g. a tagged distribution for Optuna
                continue
    return values


def describe(values: dict[str, list[Any]]) -> str:
    return "sweep of " + ", ".join(f"{k} ({len(v)})" for k, v in values.items())


def report_verdicts(experiment: str, runs: list, sweep: Path, console: Any) -> None:
    """The experiment's claims with effect, CI and n, also saved as verdict.json in the sweep folder."""
    import json

    from rich.table import Table

    from nnlab.verdicts import OUTCOME_STYLE, VERDICTS, as_json

    verdicts = VERDICTS[experiment](runs)
    table = Table(title=f"experiment {experiment}: the chapter's claims, measured")
    for col in ("claim", "measured", "n", "verdict"):
        table.add_column(col)
    for v in verdicts:
        table.add_row(v.claim, v.measured, v.n_text, f"[{OUTCOME_STYLE[v.outcome]}]{v.outcome}")
    console.print(table)
    (sweep / "verdict.json").write_text(json.dumps(as_json(verdicts), indent=2) + "\n")
