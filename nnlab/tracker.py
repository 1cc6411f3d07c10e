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


# TensorBoard tags of the learning curves, PyTorch's own convention (`Loss/train`, `Accuracy/val`, as in the
# torch.utils.tensorboard tutorial): capitalized groups sort before every lowercase one, so the curves lead
# the Time Series and Scalars tabs; the loop's own names (`val/loss`: early stopping's monitor) stay.
TAGS = {"train/loss": "Loss/train", "val/loss": "Loss/val", "train/acc": "Accuracy/train", "val/acc": "Accuracy/val",
        "train/loss_step": "Loss/train_step"}

# Custom Scalars tab: train and val on one chart, then the optimizer's step scalars (regexes over tags)
LAYOUT = {
    "learning curves": {"loss (train, val)": ["Multiline", [r"^Loss/train$", r"^Loss/val$"]],
                        "accuracy (train, val)": ["Multiline", [r"^Accuracy/train$", r"^Accuracy/val$"]]},
    "optimization": {"learning rate": ["Multiline", [r"^optim/lr$"]],
                     "gradient norm": ["Multiline", [r"^optim/grad_norm$"]],
                     "loss per logged step": ["Multiline", [r"^Loss/train_step$"]]},
}


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def markdown_table(metrics: Mapping[str, float]) -> str:
    """final/<split>_<metric> as a markdown split x metric table (TEXT tab), then the other final numbers."""
    names = sorted(k.removeprefix("final/test_") for k in metrics if k.startswith("final/test_"))
    rows = ["| split | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for split in ("train", "val", "test"):
        rows.append(f"| {split} | " + " | ".join(f"{metrics.get(f'final/{split}_{n}', float('nan')):.4f}"
                                                 for n in names) + " |")
    split_keys = {f"final/{s}_{n}" for s in ("train", "val", "test") for n in names}
    rest = [f"- {k.removeprefix('final/')}: {v:.4g}" for k, v in metrics.items() if k not in split_keys]
    return "\n".join(rows) + "\n\n" + "\n".join(rest)


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
        self.epochs = self.global_step = 0
        self._session_open = False

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
                self.writer.add_scalar(TAGS.get(tag, tag), value, global_step)

    def end_epoch(self, epoch: int, global_step: int, metrics: Mapping[str, float]) -> None:
        m = metrics
        log.info("epoch %d/%d  loss %.4f acc %.4f | val loss %.4f acc %.4f | lr %.3g", epoch, self.epochs,
                 m["train/loss"], m["train/acc"], m["val/loss"], m["val/acc"], m["lr"])
        if self._epoch_task is not None:
            self.progress.update(self._epoch_task, completed=epoch,
                                 info=f"val/acc {metrics.get('val/acc', float('nan')):.4f}")
        self.global_step = global_step
        if self.writer is not None:  # at the step where the epoch ended: one x axis with the step scalars
            for tag, value in metrics.items():
                if tag != "lr":  # the learning rate is a step scalar (optim/lr); one tag, one cadence
                    self.writer.add_scalar(TAGS.get(tag, tag), value, global_step)

    def histograms(self, epoch: int, named: Mapping[str, Any]) -> None:
        """Weight/gradient (or activation) histograms every `histogram_every_n_epochs` epochs."""
        if self.writer is None or not self.histogram_every or epoch % self.histogram_every:
            return
        for tag, values in named.items():
            self.writer.add_histogram(tag, values, self.global_step)

    def activations(self, epoch: int, global_step: int, outputs: list[tuple[str, Any]]) -> None:
        """Forward-hook statistics per activation layer: output histogram and dead-unit fraction."""
        from nnlab.diagnostics import dead_fraction

        if self.writer is None:
            return
        for name, out in outputs:
            self.writer.add_histogram(f"activations/{name}", out, global_step)
            self.writer.add_scalar(f"dead_fraction/{name}", dead_fraction(out), global_step)

    def scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag, value, step)

    def end(self) -> None:
        self.progress.stop()

    # -- results ------------------------------------------------------------------------
    def session(self, hparams: Mapping[str, Any], *, group: str, final_tags: list[str], config_text: str,
                command: str, own_experiment: bool) -> None:
        """At the start of a run: its HPARAMS session (grouped by `group`), hparams.json (read back by the sweep's
        experiment summary), the custom-scalars layout, and the config and command in the TEXT tab.

        `own_experiment`: a run on its own declares its own columns; a sweep job leaves that to the sweep."""
        import time

        from nnlab import hparams as hp

        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "hparams.json").write_text(json.dumps(dict(hparams), indent=2, default=str) + "\n")
        if self.writer is None:
            return
        fw = self.writer._get_file_writer()
        if own_experiment:
            fw.add_summary(hp.experiment([hparams], [], final_tags, time_created=time.time()))
        fw.add_summary(hp.session_start(hparams, group, time.time()))
        self._session_open = True
        self.writer.add_custom_scalars(LAYOUT)
        self.writer.add_text("run/command", f"reproduce this run:\n\n    {command}", 0)
        self.writer.add_text("run/config", "resolved config:\n\n" + _indent(config_text), 0)

    def final(self, metrics: Mapping[str, float], ok: bool = True) -> None:
        """The run's final numbers: HPARAMS metrics (scalars at the last step), a TEXT table, the session's end."""
        import time

        from nnlab import hparams as hp

        if self.writer is None:
            return
        for tag, value in hp.final_scalars(metrics).items():
            self.writer.add_scalar(tag, value, self.global_step)
        self.writer.add_text("run/summary", markdown_table(metrics), self.global_step)
        self.writer._get_file_writer().add_summary(hp.session_end(ok, time.time()))
        self._session_open = False

    def picture(self, tag: str, image: Any, markdown: str) -> None:
        """One (3, H, W) image at the last step, with its numbers as a TEXT table (confusion matrix)."""
        if self.writer is not None:
            self.writer.add_image(tag, image, self.global_step)
            self.writer.add_text(tag, markdown, self.global_step)

    def images(self, tag: str, images: Any, labels: list[str]) -> None:
        """A grid of images (N, C, H, W in [0, 1]) at the last step, their labels in the TEXT tab."""
        if self.writer is not None and len(images):
            from torchvision.utils import make_grid

            self.writer.add_image(tag, make_grid(images, nrow=8, padding=2, pad_value=1.0), self.global_step)
            self.writer.add_text(tag, "row by row, true → predicted: " + ", ".join(labels), self.global_step)

    def embedding(self, vectors: Any, labels: list[str], images: Any, tag: str) -> None:
        """Vectors in the PROJECTOR tab, with labels and thumbnails."""
        if self.writer is not None:
            self.writer.add_embedding(vectors, metadata=labels, label_img=images, global_step=self.global_step,
                                      tag=tag)

    def pruned(self, epoch: int, message: str) -> None:
        """A search pruned this run after `epoch`: `trial/pruned` 1 (scalar and HParams metric; the session
        ends unsuccessful), the reason as TEXT, and a pruned.txt marker (read back as status "pruned")."""
        (self.run_dir / "pruned.txt").write_text(message + "\n")
        log.info(message)
        if self.writer is not None:
            self.writer.add_text("trial/status", f"pruned after epoch {epoch}: {message}", self.global_step)
            self.final({"trial/pruned": 1.0}, ok=False)

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
        if self._session_open:  # the run stopped before its end: its HPARAMS row says so
            from nnlab import hparams as hp

            self._writer._get_file_writer().add_summary(hp.session_end(False))
            self._session_open = False
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()


def write_experiment(folder: Path, summary: Any) -> None:
    """The sweep's HPARAMS experiment as the one event file at the sweep root, replacing an earlier version
    (TensorBoard keeps the first experiment it reads, so the folder holds one)."""
    import time

    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    old = sorted(folder.glob("events.out.tfevents.*"))
    writer = EventFileWriter(str(folder), filename_suffix=".sweep")
    writer.add_event(Event(wall_time=time.time(), summary=summary))
    writer.close()
    for path in old:
        path.unlink(missing_ok=True)
