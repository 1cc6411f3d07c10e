"""A user's own parts (model, loss, init, optimizer, activation, data) without touching nnlab.

Two ways in, both ending in the registries nnlab's own parts use:
- modules named in the config, `+plugins=[mypkg.parts]`: imported before validation, in every process that
  runs a job; their `@register_model("name")`, `@register_loss("name")`, ... decorators fill the registries;
- Python entry points of an installed package: group `nnlab.plugins` (each value a module to import), or
  one group per registry (`nnlab.models`, `nnlab.losses`, `nnlab.inits`, `nnlab.optimizers`,
  `nnlab.activations`, `nnlab.data`), the entry point's name being the choice and its object the part.
The choices' config files come from the user's config folder: `--config-dir DIR` or `hydra.searchpath`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any

from nnlab.registry import ConfigError

GROUPS = ("models", "losses", "inits", "optimizers", "activations", "data")
_imported: set[str] = set()
_entry_points_loaded = False


def _registrar(group: str) -> Callable[[str], Callable[[Any], Any]]:
    """The public decorator factory of a registry: register_model, register_loss, ..."""
    if group == "models":
        from nnlab.models import register_model as reg
    elif group == "losses":
        from nnlab.losses import LossSpec, register_loss

        return lambda name: (lambda obj: register_loss(name, obj.target)(obj.build)
                             if isinstance(obj, LossSpec) else register_loss(name)(obj))
    elif group == "inits":
        from nnlab.inits import register_init as reg
    elif group == "optimizers":
        from nnlab.optim import register_optimizer as reg
    elif group == "activations":
        from nnlab.activations import register_activation as reg
    else:
        from nnlab.data import register_data as reg
    return reg


def import_module(name: str) -> None:
    """Import the plugin module `name` (from the current folder too), or a ConfigError saying why not."""
    if name in _imported:
        return
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:  # the `nnlab` script's sys.path lacks the user's folder
        sys.path.insert(0, cwd)
    try:
        importlib.import_module(name)
    except ConfigError:
        raise
    except Exception as e:
        raise ConfigError(f"plugins: cannot import {name!r} ({type(e).__name__}: {e}); a plugin module must be "
                          f"importable from the current folder ({cwd}) or installed (pip install -e <its folder>)"
                          ) from None
    _imported.add(name)


def load_entry_points() -> None:
    """Every installed `nnlab.plugins` module and `nnlab.<registry>` entry point, once per process."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group="nnlab.plugins"):
        import_module(ep.value.split(":")[0])
    for group in GROUPS:
        for ep in entry_points(group=f"nnlab.{group}"):
            try:
                obj = ep.load()
            except Exception as e:
                raise ConfigError(f"entry point {ep.name!r} in group nnlab.{group} ({ep.value}) cannot be "
                                  f"loaded: {type(e).__name__}: {e}") from None
            _registrar(group)(ep.name)(obj)


def load_plugins(modules: Iterable[str] | None = ()) -> None:
    """Import the config's `plugins` modules and the installed entry points, before validating or building."""
    if modules is not None and (isinstance(modules, str) or not all(isinstance(m, str) for m in modules)):
        raise ConfigError(f"plugins={modules!r}: must be a list of module names, e.g. +plugins=[mypkg.parts]")
    load_entry_points()
    for name in modules or ():
        import_module(name)
