"""Process-level speed-ups: switched on by one call from the CLI, all off with `NNLAB_SPEEDUPS=0`.

None changes what a run computes; each only removes waiting around the runs:

- fastexit      the `nnlab` process leaves without CPython's module teardown (about 1 s with torch loaded)
- help_listing  `nnlab train --help` and shell completion list every config group from one config repository
- forkserver    joblib workers are forks of a server that imported torch once, not fresh interpreters
- compose_once  the default sweeper composes each set of config-group choices once, not every job twice
- gcfreeze      before a process's first job, every object alive moves to the GC's permanent generation

`NNLAB_SPEEDUPS=0` turns them all off; `NNLAB_SPEEDUPS=-forkserver,-fastexit` turns off the ones named.
This package is the only place in nnlab that touches private parts of Hydra, loky (joblib) or atexit.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

NAMES = ("fastexit", "help_listing", "forkserver", "compose_once", "gcfreeze")


def enabled(name: str) -> bool:
    """Whether the speed-up `name` is on under `NNLAB_SPEEDUPS`."""
    setting = os.environ.get("NNLAB_SPEEDUPS", "1").replace(" ", "")
    return setting != "0" and f"-{name}" not in setting.split(",")


@contextmanager
def process(args: list[str], *, whole_process: bool) -> Iterator[None]:
    """Around one `nnlab` command: the speed-ups its arguments call for.

    `whole_process` is False when `nnlab.cli.main` is called from Python: the caller's process is not ours
    to end early, so the fast exit stays off there.
    """
    from nnlab._speedups import fastexit

    if whole_process and enabled("fastexit"):
        fastexit.install()
    train = args[1:] if args[:1] == ["train"] else args
    if enabled("help_listing") and (os.environ.get("COMP_LINE") is not None or any(
            a in ("-h", "--help", "--hydra-help") or a.startswith(("-sc", "--shell-completion")) for a in train)):
        from nnlab._speedups.help_listing import share_one_repository

        share_one_repository()
    if {"-m", "--multirun"} & set(train) and "hydra/launcher=joblib" in train:
        start_forkserver()  # early: its imports overlap Hydra's start-up
    try:
        yield
    except BaseException as e:
        fastexit.record(e)
        raise


def start_forkserver() -> None:
    if enabled("forkserver"):
        from nnlab._speedups.forkserver import start

        start()


def is_joblib(launcher: Any) -> bool:
    """Whether a launcher config (hydra.launcher) is hydra-joblib-launcher's."""
    return "joblib" in str(launcher.get("_target_", ""))


_frozen: list[bool] = []


def freeze_once() -> None:
    """Before a process's first job (its config checked, the runner imported): every object alive (torch and
    torch._dynamo alone make about a million) into the garbage collector's permanent generation. A full
    collection (loky runs one after every task, Python its own generation-2 passes) then costs microseconds
    instead of ~0.16 s. Once: what later jobs leave behind stays collectable."""
    if not _frozen and enabled("gcfreeze"):
        gc.freeze()
        _frozen.append(True)
