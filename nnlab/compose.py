"""Compose the config the way `nnlab train` would, without running anything (for validate, doctor)."""

from __future__ import annotations

import sys
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf

from nnlab.errors import ConfigError
from nnlab.paths import config_dir
from nnlab.resolvers import register


def compose_config(overrides: list[str]) -> dict[str, Any]:
    """The resolved config (without the hydra node) for `overrides`; ConfigError on any problem."""
    register()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
        return OmegaConf.to_container(cfg, resolve=True)
    except HydraException as e:
        raise ConfigError(str(e)) from None


def validate_command(overrides: list[str]) -> int:
    from nnlab.validation import validate

    try:
        validate(compose_config(overrides))
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    print("configuration OK")
    return 0
