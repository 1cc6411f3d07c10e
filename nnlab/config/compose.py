"""Compose the config the way `nnlab train` would, without running anything (for validate, doctor)."""

from __future__ import annotations

from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf

from nnlab.config.folders import register
from nnlab.config.paths import config_dir
from nnlab.registry import ConfigError


def compose_config(overrides: list[str]) -> dict[str, Any]:
    """The resolved config (without the hydra node) for `overrides`; ConfigError on any problem."""
    register()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
        return OmegaConf.to_container(cfg, resolve=True)
    except HydraException as e:
        raise ConfigError(str(e)) from None
