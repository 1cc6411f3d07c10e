"""One error type for everything a user can get wrong, and the lookup that names the choices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A problem with the user's configuration or input; printed without a traceback, exit code 2."""


class ConfigAbort(BaseException):
    """A configuration problem found inside Hydra's machinery (a sweeper, a launcher), where Hydra would print
    any Exception as a traceback: a BaseException passes through Hydra to `nnlab train`, which prints the
    message as one paragraph and exits 2."""


def choose(table: Mapping[str, T], name: str, what: str) -> T:
    """Look up `name`, or fail with every valid option spelled out."""
    key = str(name).strip().lower()
    if key not in table:
        raise ConfigError(f"unknown {what} {name!r}; choose one of: {', '.join(sorted(table))}")
    return table[key]


def register(table: dict[str, T], what: str, name: str, value: T) -> T:
    """Add `value` to `table` under `name` (a user's plugin, or nnlab's own part).

    A name already taken by another object is refused, so a plugin cannot silently replace a built-in; the
    same object (a module imported twice, or reloaded) registers again without complaint."""
    key = str(name).strip().lower()
    old = table.get(key)
    if old is not None and old is not value and _origin(old) != _origin(value):
        raise ConfigError(f"{what} {key!r} is already registered (by {_origin(old)[0]}); "
                          f"register {_origin(value)[0]}'s under another name")
    table[key] = value
    return value


def _origin(obj: object) -> tuple[str, str]:
    inner = getattr(obj, "__wrapped__", obj)
    return (getattr(inner, "__module__", "?") or "?", getattr(inner, "__qualname__", repr(inner)))
