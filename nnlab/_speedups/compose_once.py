"""The default grid sweeper's speed-up: Hydra's basic sweeper, composing each set of config-group choices once.

Hydra composes a job's config twice: the basic sweeper composes every job up front, to reject a bad
override before any job runs, and the launcher composes it again (about 0.1 s each on 2 cores), in this
process (basic launcher) or in a worker (joblib, submitit). Composing is mostly building the defaults
tree and merging the config files it names, and both depend only on the job's config-group choices
(`activation=mish`), not on its plain values (`optimizer.lr=0.1`, `trainer.seed=3`). So this sweeper
composes each set of choices once, in full, and keeps it as a template; every other request for those
choices (the launch of the checked job, or another job that differs only in values) is a copy of the
template with the job's values applied the way Hydra applies command-line values (about 8 ms). A sweep
over seeds or learning rates composes once in all; `activation=relu,mish` composes twice.

Workers (joblib, submitit) receive the loader pickled into every task, with the templates when there are
at most KEEP of them; beyond that, shipping them to every task would cost more than composing there.
Hydra finds the sweeper as `hydra_plugins.nnlab_sweeper.compose_once.ComposeOnceSweeper` (a subclass of
`GridSweeper` below); with `NNLAB_SPEEDUPS` turning compose_once off, it is Hydra's basic sweeper.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from hydra._internal.config_loader_impl import ConfigLoaderImpl, get_overrides_dirname
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_loader import ConfigLoader
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

KEEP = 32


class ComposeOnceLoader:
    """A config loader whose `load_sweep_config` composes each set of config-group choices once and
    derives every other job with those choices from that composition."""

    def __init__(self, loader: ConfigLoader) -> None:
        self._loader = loader
        # config-group choices -> (the shape of the value overrides, a full composition before any launcher
        # touched it)
        self._templates: dict[tuple[str, ...], tuple[tuple, DictConfig]] = {}

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: Sequence[str]) -> DictConfig:
        overrides = list(sweep_overrides)
        parsed = OverridesParser.create().parse_overrides(overrides)
        split = self._split(parsed)
        if split is None:  # something only a full composition gets right
            return self._loader.load_sweep_config(master_config, overrides)
        choices, values = split
        shape = tuple((o.key_or_group, o.type) for o in values)
        template = self._templates.get(choices)
        if template is None or template[0] != shape:
            config = self._loader.load_sweep_config(master_config, overrides)
            self._templates[choices] = (shape, copy.deepcopy(config))
            return config
        config = copy.deepcopy(template[1])
        ConfigLoaderImpl._apply_overrides_to_config(values, config)  # as Hydra applies command-line values
        job = config.hydra.job
        with open_dict(config.hydra):
            config.hydra.overrides.task = overrides
            job.override_dirname = get_overrides_dirname(
                overrides=parsed, exclude_keys=list(job.config.override_dirname.exclude_keys),
                item_sep=job.config.override_dirname.item_sep, kv_sep=job.config.override_dirname.kv_sep)
        OmegaConf.copy_cache(from_config=master_config, to_config=config)  # as Hydra's load_sweep_config does
        return config

    def _split(self, parsed: list[Override]) -> tuple[tuple[str, ...], list[Override]] | None:
        """(the config-group choices, the value overrides), told apart as Hydra's defaults list tells
        them; None when an override is of a kind that a copy could not replay (appends, deletions,
        packages, Hydra's own settings)."""
        choices, values = [], []
        for o in parsed:
            if o.is_hydra_override() or o.package is not None or o.is_delete():
                return None
            if self._loader.repository.group_exists(o.key_or_group) and not isinstance(o.value(), dict):
                choices.append(o.input_line)
            elif o.type in (OverrideType.CHANGE, OverrideType.FORCE_ADD):
                values.append(o)
            else:  # `+key=value` fails when replayed onto a copy that already has the key
                return None
        return tuple(choices), values

    def __getstate__(self) -> dict[str, Any]:
        return {"_loader": self._loader, "_templates": self._templates if len(self._templates) <= KEEP else {}}

    def __getattr__(self, name: str) -> Any:  # every other ConfigLoader method, unchanged
        if name.startswith("_"):  # private and dunder names (pickle's probes) are this object's own
            raise AttributeError(name)
        return getattr(self._loader, name)


class GridSweeper(BasicSweeper):
    """Hydra's basic sweeper (every combination of the -m values), its loader composing each set of
    config-group choices once."""

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from nnlab._speedups import enabled

        if enabled("compose_once"):
            hydra_context = HydraContext(config_loader=ComposeOnceLoader(hydra_context.config_loader),
                                         callbacks=hydra_context.callbacks)
        super().setup(hydra_context=hydra_context, task_function=task_function, config=config)
