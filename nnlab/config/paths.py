"""Where nnlab finds its config tree: inside the wheel, or beside the package in a checkout."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

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


def search_path(sources: Iterable[Any]) -> list[Path]:
    """The user's config folders among Hydra's config sources (`--config-dir`, hydra.searchpath): file and
    pkg sources other than nnlab's own tree and Hydra's internals."""
    own = config_dir().resolve()
    found = []
    for src in sources:
        schema, path = getattr(src, "schema", None), getattr(src, "path", "")
        if schema == "file":
            folder = Path(path)
        elif schema == "pkg" and not str(path).startswith(("hydra", "nnlab")):
            import importlib.resources

            try:
                folder = Path(str(importlib.resources.files(str(path).replace("/", "."))))
            except (ModuleNotFoundError, TypeError):
                continue
        else:
            continue
        if folder.is_dir() and folder.resolve() != own:
            found.append(folder)
    return found
