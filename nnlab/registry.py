"""One error type for everything a user can get wrong, and the lookup that names the choices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A problem with the user's configuration or input; printed without a traceback, exit code 2."""


def choose(table: Mapping[str, T], name: str, what: str) -> T:
    """Look up `name`, or fail with every valid option spelled out."""
    key = str(name).strip().lower()
    if key not in table:
        raise ConfigError(f"unknown {what} {name!r}; choose one of: {', '.join(sorted(table))}")
    return table[key]
