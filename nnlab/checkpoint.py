"""Files written whole or not at all (checkpoints, and the small notes beside a run); checkpoints loaded with
weights_only=True. torch is imported only where a checkpoint is written or read."""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from nnlab.registry import ConfigError

if TYPE_CHECKING:
    import torch


def _replace_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """`write` into a temporary file in the same folder, fsync, then rename over `path`.

    A crash mid-write leaves the previous file intact; a reader never sees half a file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """torch.save `state` to `path`, atomically."""
    import torch

    _replace_atomic(path, lambda f: torch.save(state, f))


def write_text_atomic(path: Path, text: str) -> None:
    """`text` as the whole content of `path`, atomically."""
    _replace_atomic(path, lambda f: f.write(text.encode()))


def link_atomic(src: Path, dst: Path) -> None:
    """Make `dst` the same file as `src` (a hard link, renamed into place); a copy where links fail.

    Used for best.pt when it equals the just-written last.pt: the next last.pt is a new file
    (save_atomic renames over it), so best.pt keeps this epoch's content.
    """
    tmp = dst.with_name(f".{dst.name}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        import shutil

        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint at `path`, or a ConfigError saying what is wrong with the file."""
    import torch

    if not path.is_file():
        raise ConfigError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, OSError) as e:
        raise ConfigError(f"checkpoint {path} is corrupt or truncated and cannot be loaded "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'}); "
                          "other checkpoints in its folder are untouched") from None


TRAINING_KEYS = ("model", "optimizer", "schedule", "scaler", "rng", "aug_gen", "shuffle_state", "loop", "config")


def load_training_state(path: Path) -> dict[str, Any]:
    """A checkpoint to resume from: loadable, and holding everything `loop.restore` reads."""
    state = load_checkpoint(path)
    missing = [k for k in TRAINING_KEYS if k not in state] if isinstance(state, dict) else list(TRAINING_KEYS)
    if missing:
        raise ConfigError(f"{path} is not a checkpoint nnlab can resume from: it lacks {', '.join(missing)} "
                          "(nnlab writes checkpoints/last.pt with all of them)")
    if not isinstance(state["loop"], dict) or not isinstance(state["config"], dict):
        raise ConfigError(f"{path} is not a checkpoint nnlab can resume from: its loop state or config is not "
                          "a mapping")
    return state


def check_fits(state: dict[str, Any], model: torch.nn.Module, optimizer: torch.optim.Optimizer, path: Path) -> None:
    """The checkpoint's weights and optimizer state fit the model built from its config (ConfigError if not)."""
    import copy

    try:
        copy.deepcopy(model).load_state_dict(state["model"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as e:
        detail = " ".join(str(e).split())[:400]
        raise ConfigError(f"{path} does not fit the model its config builds: {detail}") from None
    try:
        copy.deepcopy(optimizer).load_state_dict(state["optimizer"])
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        raise ConfigError(f"{path}: its optimizer state does not fit the optimizer: {e}") from None


def run_identity(run_dir: Path, create: bool = True) -> str | None:
    """The run folder's id (run_dir/.run_id, made on first use): a checkpoint records it, and resumes only in
    the folder that holds the same id (not a copy of last.pt in another run's folder)."""
    path = run_dir / ".run_id"
    if path.is_file():
        return path.read_text().strip()
    if not create:
        return None
    import uuid

    path.write_text(uuid.uuid4().hex + "\n")
    return path.read_text().strip()
