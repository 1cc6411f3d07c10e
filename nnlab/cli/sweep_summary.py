"""Hydra callbacks: the comparison table at the end of every sweep, failures listed with their errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

FAILED: list[str] = []  # read by the CLI to set the exit code of a sweep
INTERRUPTED: list[str] = []


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from nnlab.cli.compare import failures_text, interruptions_text, print_comparison
        from nnlab.runs import find_runs
        from nnlab.tracker import make_console

        sweep = Path(str(config.hydra.sweep.dir))
        runs = find_runs([sweep])
        if not runs:
            return
        monitor = config.get("regularizer", {}).get("early_stopping", {}).get("monitor", "val/loss")
        metric = "final/val_acc" if monitor.endswith("acc") or monitor.endswith("loss") else f"final/{monitor}"
        console = make_console()
        print_comparison(runs, metric, f"sweep {sweep}: {len(runs)} jobs", console)
        FAILED[:] = failures_text(runs)
        INTERRUPTED[:] = interruptions_text(runs)
        experiment = config.get("experiment", {}).get("name")
        if experiment:
            report_verdicts(experiment, runs, sweep, console)


def report_verdicts(experiment: str, runs: list, sweep: Path, console: Any) -> None:
    """The experiment's claims as a pass/fail table, also saved as verdict.json in the sweep folder."""
    import json

    from rich.table import Table

    from nnlab.verdicts import VERDICTS, as_json

    verdicts = VERDICTS[experiment](runs)
    table = Table(title=f"experiment {experiment}: the chapter's claims, measured")
    for col in ("claim", "measured", "verdict"):
        table.add_column(col)
    for v in verdicts:
        table.add_row(v.claim, v.measured, "[green]holds" if v.holds else "[red]does not hold")
    console.print(table)
    (sweep / "verdict.json").write_text(json.dumps(as_json(verdicts), indent=2) + "\n")
