"""`nnlab validate [overrides]`: compose and check a configuration; no data, no torch."""

from __future__ import annotations

import sys

from nnlab.config.compose import compose_with_search_path
from nnlab.config.validate import validate
from nnlab.registry import ConfigError


def validate_command(overrides: list[str]) -> int:
    try:
        cfg, folders = compose_with_search_path(overrides)
        if cfg.get("plugins"):  # the user's parts register themselves (this imports torch)
            from nnlab.plugins import load_plugins

            load_plugins(cfg["plugins"])
        validate(cfg, folders)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    print("configuration OK")
    return 0
