"""The only place that prints or writes logs: rich console output and TensorBoard events."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.tree import Tree

log = logging.getLogger("nnlab")


def make_console(stderr: bool = False) -> Console:
    """A rich console; wide when not a terminal, so logs and captured output keep whole lines."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else 160)


def config_tree(cfg: Mapping[str, Any], label: str = "config") -> Tree:
    """The resolved config as a rich tree, one branch per group."""
    tree = Tree(f"[bold]{label}")
    for key, value in cfg.items():
        if isinstance(value, Mapping):
            name = f": [bold green]{value['name']}" if "name" in value else ""
            tree.add(config_tree({k: v for k, v in value.items() if k != "name"}, f"[cyan]{key}{name}"))
        else:
            tree.add(f"{key}: [green]{value}")
    return tree


def _epochs(n: float) -> str:
    return f"{n:.0f} epoch" if round(n) == 1 else f"{n:.0f} epochs"


def metrics_table(metrics: Mapping[str, float], title: str) -> Table:
    """final/<split>_<metric> keys as a split x metric table."""
    splits = ("train", "val", "test")
    names = sorted(k.removeprefix("final/test_") for k in metrics if k.startswith("final/test_"))
    table = Table(title=title, min_width=len(title))  # a title longer than the table would wrap
    table.add_column("split")
    for name in names:
        table.add_column(name, justify="right")
    for split in splits:
        table.add_row(split, *(f"{metrics.get(f'final/{split}_{n}', float('nan')):.4f}" for n in names))
    return table


class Tracker:
    """Progress bars, epoch lines, TensorBoard scalars/histograms/hparams, metrics.json."""

    def __init__(self, run_dir: Path, *, tensorboard: bool = True, progress: bool = True,
                 histogram_every_n_epochs: int = 1, console: Console | None = None) -> None:
        self.run_dir = run_dir
        self.console = console or make_console()
        self.histogram_every = histogram_every_n_epochs
        self.tensorboard = tensorboard
        self._writer = None
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
            console=self.console, disable=not (progress and self.console.is_terminal), transient=True,
        )
        self._epoch_task = self._step_task = None
        self.epochs = 0

    @property
    def writer(self) -> Any:
        """The run's SummaryWriter, created on first use: a run that fails early leaves no empty event file."""
        if self._writer is None and self.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.run_dir))  # events beside .hydra/: one TensorBoard run
        return self._writer

    # -- start / progress ---------------------------------------------------------------
    def start(self, cfg: Mapping[str, Any], facts: Mapping[str, Any]) -> None:
        self.console.print(config_tree(cfg))
        log.info("run folder: %s", self.run_dir)
        for key, value in facts.items():
            log.info("%s: %s", key, value)

    def begin(self, epochs: int, start_epoch: int) -> None:
        self.epochs = epochs
        self.progress.start()
        self._epoch_task = self.progress.add_task("epoch", total=epochs, completed=start_epoch, info="")

    def begin_epoch(self, steps: int) -> None:
        if self._step_task is not None:
            self.progress.remove_task(self._step_task)
        self._step_task = self.progress.add_task("step", total=steps, info="")

    def step(self, global_step: int, steps_in_epoch: int, scalars: Mapping[str, float]) -> None:
        """Called every log_every_n_steps with already-synced host floats."""
        info = f"loss {scalars['train/loss_step']:.4f}  {scalars['perf/samples_per_s']:,.0f} samples/s"
        if self._step_task is not None:
            self.progress.update(self._step_task, completed=steps_in_epoch, info=info)
        if self.writer is not None:
            for tag, value in scalars.items():
                self.writer.add_scalar(tag, value, global_step)

    def end_epoch(self, epoch: int, global_step: int, metrics: Mapping[str, float]) -> None:
        m = metrics
        log.info("epoch %d/%d  loss %.4f acc %.4f | val loss %.4f acc %.4f | lr %.3g", epoch, self.epochs,
                 m["train/loss"], m["train/acc"], m["val/loss"], m["val/acc"], m["lr"])
        if self._epoch_task is not None:
            self.progress.update(self._epoch_task, completed=epoch,
                                 info=f"val/acc {metrics.get('val/acc', float('nan')):.4f}")
        if self.writer is not None:
            for tag, value in metrics.items():
                self.writer.add_scalar(tag, value, global_step)
            self.writer.add_scalar("epoch", epoch, global_step)

    def histograms(self, epoch: int, named: Mapping[str, Any]) -> None:
        """Weight/gradient (or activation) histograms every `histogram_every_n_epochs` epochs."""
        if self.writer is None or not self.histogram_every or epoch % self.histogram_every:
            return
        for tag, values in named.items():
            self.writer.add_histogram(tag, values, epoch)

    def activations(self, epoch: int, global_step: int, outputs: list[tuple[str, Any]]) -> None:
        """Forward-hook statistics per activation layer: output histogram and dead-unit fraction."""
        from nnlab.diagnostics import dead_fraction

        if self.writer is None:
            return
        for name, out in outputs:
            self.writer.add_histogram(f"activations/{name}", out, epoch)
            self.writer.add_scalar(f"dead_fraction/{name}", dead_fraction(out), global_step)

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step)

    def end(self) -> None:
        self.progress.stop()

    # -- results ------------------------------------------------------------------------
    def hparams(self, hparams: Mapping[str, Any], metrics: Mapping[str, float]) -> None:
        """HPARAMS into this run's own event file (SummaryWriter.add_hparams would nest a new run)."""
        if self.writer is None:
            return
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        exp, ssi, sei = hparams_summary(dict(hparams), dict(metrics))
        fw = self.writer._get_file_writer()
        for summary in (exp, ssi, sei):
            fw.add_summary(summary)
        for tag, value in metrics.items():
            self.writer.add_scalar(tag, value)

    def summary(self, metrics: Mapping[str, float], verdicts: list[str], extra: Mapping[str, Any]) -> None:
        (self.run_dir / "metrics.json").write_text(json.dumps({**extra, **metrics}, indent=2) + "\n")
        self.console.print(metrics_table(metrics, title=f"final metrics ({_epochs(metrics['final/epochs'])}, "
                                                        f"{metrics['final/train_seconds']:.1f} s training)"))
        for line in verdicts:
            log.info(line)

    def warn(self, message: str) -> None:
        log.warning(message)

    def info(self, message: str) -> None:
        log.info(message)

    def close(self) -> None:
        self.progress.stop()
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
