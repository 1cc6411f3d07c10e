"""`nnlab validate [overrides]`: compose and check a configuration; no data, no torch."""

from __future__ import annotations

import sys

from nnlab.config.compose import compose_config
from nnlab.config.validate import validate
from nnlab.registry import ConfigError


def validate_command(overrides: list[str]) -> int:
    try:
        validate(compose_config(overrides))
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    print("configuration OK")
    return 0
