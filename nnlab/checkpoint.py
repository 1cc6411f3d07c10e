"""Atomic checkpoint files, loaded with weights_only=True."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

from nnlab.registry import ConfigError


def save_atomic(state: dict[str, Any], path: Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`.

    A crash mid-write leaves the previous file intact.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
    if not path.is_file():
        raise ConfigError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, OSError) as e:
        raise ConfigError(f"checkpoint {path} is corrupt or truncated and cannot be loaded "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'}); "
                          "other checkpoints in its folder are untouched") from None
