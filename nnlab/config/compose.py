"""Compose the config the way `nnlab train` would, without running anything (for validate, doctor)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

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
    except (HydraException, OmegaConfBaseException, yaml.YAMLError) as e:
        raise ConfigError(explain_composition_error(e)) from None


def explain_composition_error(e: BaseException) -> str:
    """Hydra's or YAML's composition error as nnlab's one paragraph: an unknown key or a misspelt choice with the
    close matches first, a comma list without -m, a config file that is not valid YAML."""
    import difflib
    import re

    from nnlab.config.validate import group_choices, unknown_key_problem

    text = str(e)
    if isinstance(e, yaml.YAMLError) or isinstance(e.__cause__, yaml.YAMLError):
        return "a config file is not valid YAML: " + " ".join(str(e.__cause__ or e).split())
    if m := re.match(r"Could not override '([^']+)'", text):
        return unknown_key_problem(m.group(1))
    if m := re.search(r"Could not find '([\w/]+)/([^']+)'", text):
        group, name = m.group(1).rsplit("/", 1)[-1], m.group(2)
        choices = sorted(group_choices(group))
        close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        return (f"{group}={name}: no such {group}; {hint}choose one of: {', '.join(choices)} "
                f"(`nnlab list {group}` describes each)")
    if "Ambiguous value for argument" in text:
        return (f"{text.splitlines()[0]}. A comma list asks for several runs: add -m (nnlab train -m ...) to sweep "
                "over the values, or quote a value that holds commas")
    return " ".join(text.split())


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
