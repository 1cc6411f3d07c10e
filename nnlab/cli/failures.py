"""Exit codes, and every known failure turned into one paragraph with its exit code (no traceback).

| code | meaning |
| 0    | ok |
| 1    | the run failed (a sweep job failed, an OS error: read-only folder, full disk) |
| 2    | usage or configuration error (bad override, unknown key, bad value, bad file given by the user) |
| 3    | training diverged (non-finite loss or gradient) |
| 130  | interrupted (Ctrl-C, SIGTERM) |
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nnlab.registry import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_NONFINITE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
HYDRA_SPECIAL = set("=,[]{}()'\" \\:$*?~<>|;&")  # characters that make Hydra's override parser (or a shell) stumble


@contextmanager
def ctrl_c_held() -> Iterator[None]:
    """Ctrl-C during the block (a command's heavy imports, torch above all) takes effect when it ends: a
    KeyboardInterrupt raised inside an extension module's import leaves it half loaded, and the process then
    ends in a traceback or, worse, goes on as if nothing had been pressed."""
    pressed: list[int] = []
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:  # ignored (nohup) or someone else's
        yield
        return
    try:
        old = signal.signal(signal.SIGINT, lambda signum, _frame: pressed.append(signum))
    except ValueError:  # not the main thread (a launcher's worker thread): nothing to hold
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if pressed:
        raise KeyboardInterrupt


@contextmanager
def hydra_raises() -> Iterator[None]:
    """Hydra re-raises the original exception (HYDRA_FULL_ERROR=1) instead of printing its own traceback and
    exiting 1, so that `classify` can give it its exit code."""
    old = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = old


def _chain(e: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def classify(e: BaseException) -> tuple[int | None, str, str]:
    """(exit code, title, one-paragraph message) for a known failure; (None, '', '') for a bug (traceback)."""
    import yaml
    from hydra.errors import HydraException
    from omegaconf.errors import InterpolationResolutionError, OmegaConfBaseException

    loop = sys.modules.get("nnlab.loop")  # imported once training code ran: no torch import on the fast paths
    nonfinite = loop.NonFinite if loop else ()
    chain = list(_chain(e))
    for x in chain:  # the outermost known failure decides; a resolver's error is inside OmegaConf's wrapper
        if isinstance(x, ConfigError):
            return EXIT_CONFIG, "configuration error", str(x)
        if isinstance(x, nonfinite):
            return EXIT_NONFINITE, "training diverged", str(x)
        if isinstance(x, KeyboardInterrupt):
            return EXIT_INTERRUPTED, "interrupted", ("stopped by Ctrl-C outside the training steps (start-up or "
                                                     "the final scoring): files already written are kept")
        if isinstance(x, ValueError) and "No trials are completed" in str(x) and _raised_in(x, "optuna"):
            return EXIT_FAILED, "search failed", ("every Optuna trial failed, so there is no best trial; each "
                                                  "trial's error is printed above and kept in its job folder's "
                                                  "error.txt")
        if isinstance(x, InterpolationResolutionError) and x is not chain[-1]:
            continue
        if isinstance(x, OSError) and not isinstance(x, HydraException):  # Hydra's MissingConfigException is one
            return EXIT_FAILED, "run failed", (f"{_one_paragraph(x)}. Check that the folder is writable and "
                                               "the disk has space; files written before are kept")
        if isinstance(x, yaml.YAMLError) or (isinstance(x, HydraException) and any(
                isinstance(y, yaml.YAMLError) for y in chain)):
            bad = next(y for y in chain if isinstance(y, yaml.YAMLError))
            return EXIT_CONFIG, "configuration error", f"a config file is not valid YAML: {_one_paragraph(bad)}"
        if isinstance(x, (HydraException, OmegaConfBaseException)):
            from nnlab.config.compose import explain_composition_error

            return EXIT_CONFIG, "configuration error", explain_composition_error(x)
    return None, "", ""


def _raised_in(e: BaseException, package: str) -> bool:
    tb = e.__traceback__
    while tb is not None:
        if f"{os.sep}{package}{os.sep}" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def _one_paragraph(e: BaseException) -> str:
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    return text.replace("Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.", "").strip()


def hydra_value(text: str) -> str:
    """`text` as Hydra's override parser reads it back unchanged: bare when it can, else double-quoted."""
    if not HYDRA_SPECIAL & set(text) and text not in ("null", "true", "false"):
        return text
    # Hydra keeps backslashes literally except before a quote (and before the closing quote): double those
    inner = re.sub(r'(\\*)"', lambda m: m.group(1) * 2 + '\\"', text)
    inner = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, inner)
    return f'"{inner}"'


def resume_hint(run_dir: Path) -> str:
    """The command that resumes `run_dir`, ready to paste into a shell (torchrun with the same processes
    under DDP)."""
    shown = run_dir.relative_to(Path.cwd()) if run_dir.is_absolute() and run_dir.is_relative_to(Path.cwd()) \
        else run_dir
    word = shlex.quote(f"resume={hydra_value(str(shown))}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if "RANK" in os.environ and world > 1:
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        nodes = f" --nnodes={world // per_node}" if world > per_node else ""
        return f"torchrun{nodes} --nproc_per_node={per_node} -m nnlab train {word}"
    return f"nnlab train {word}"
