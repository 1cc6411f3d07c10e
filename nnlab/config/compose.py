"""Compose the config the way `nnlab train` would, without running anything (for validate, doctor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf, open_dict

from nnlab.config.folders import register
from nnlab.config.paths import config_dir, search_path
from nnlab.registry import ConfigError


def compose_config(overrides: list[str]) -> dict[str, Any]:
    """The resolved config (without the hydra node) for `overrides`; ConfigError on any problem."""
    return compose_with_search_path(overrides)[0]


def compose_with_search_path(overrides: list[str]) -> tuple[dict[str, Any], list[Path]]:
    """The resolved config and the user's config folders (`--config-dir DIR` / `-cd DIR` among `overrides`,
    or hydra.searchpath), whose files are choices like nnlab's own."""
    register()
    overrides = config_dir_as_searchpath(overrides)
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("train", overrides=overrides, return_hydra_config=True)
        folders = search_path(cfg.hydra.runtime.config_sources)
        with open_dict(cfg):
            del cfg["hydra"]
        return OmegaConf.to_container(cfg, resolve=True), folders
    except HydraException as e:
        raise ConfigError(str(e)) from None


def config_dir_as_searchpath(args: list[str]) -> list[str]:
    """`--config-dir DIR` (`-cd DIR`, `--config-dir=DIR`) as the override `hydra.searchpath=[file://DIR]`."""
    out, dirs, rest = [], [], iter(args)
    for a in rest:
        if a in ("--config-dir", "-cd"):
            dirs.append(next(rest, ""))
        elif a.startswith("--config-dir="):
            dirs.append(a.split("=", 1)[1])
        else:
            out.append(a)
    if dirs:
        out.append("hydra.searchpath=[" + ",".join(f"file://{Path(d).resolve()}" for d in dirs) + "]")
    return out
