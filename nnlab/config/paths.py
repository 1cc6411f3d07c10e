"""Where nnlab finds its config tree: inside the wheel, or beside the package in a checkout."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]  # nnlab/


def config_dir() -> Path:
    """The `configs/` tree: shipped as `nnlab/configs` in a wheel, `../configs` in a source checkout."""
    for candidate in (_PACKAGE / "configs", _PACKAGE.parent / "configs"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"nnlab's configs/ folder is missing next to {_PACKAGE}; reinstall nnlab")


def default_data_root() -> str:
    """`$NNLAB_DATA`, else `./data`."""
    return os.environ.get("NNLAB_DATA", "./data")
