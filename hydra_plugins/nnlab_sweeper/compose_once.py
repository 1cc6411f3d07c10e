"""nnlab's default sweeper: Hydra's basic sweeper, composing each job's config once, and most only in part.

The basic sweeper composes every job up front, to reject a bad override before any job runs; the
launcher then composes the same job again (about 0.1 s each on 2 cores), in this process (basic
launcher) or in a worker (joblib, submitit). This sweeper keeps what the check composed and hands it to
the launcher: in this process directly, and to workers inside the pickled loader, for batches of up to
KEEP jobs (beyond that the extra configs would cost more to ship to every task than to compose again).

Composing is mostly Hydra building the defaults tree and merging the config files it names; both depend
only on the jobs' config-group choices (`activation=mish`), not on plain values (`optimizer.lr=0.1`,
`trainer.seed=3`). So jobs that differ only in values share one composition: the first is composed in
full, the others copy it and apply their own values the way Hydra applies command-line values. A sweep
over seeds or learning rates composes once in all; `activation=relu,mish` composes twice.
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
    """A config loader whose `load_sweep_config` hands each composed config out twice: to the up-front
    check, then (the same object) to the job; and derives jobs that differ only in values from one
    composition. The check only composes; it keeps nothing."""

    def __init__(self, loader: ConfigLoader) -> None:
        self._loader = loader
        self._composed: dict[tuple[str, ...], DictConfig] = {}
        # config-group choices -> (the shape of the value overrides, a full composition before any launcher
        # touched it); a plain tuple: Hydra's plugin scan executes this module outside sys.modules
        self._templates: dict[tuple[str, ...], tuple[tuple, DictConfig]] = {}

    def load_sweep_config(self, master_config: DictConfig, sweep_overrides: Sequence[str]) -> DictConfig:
        key = tuple(sweep_overrides)
        if key in self._composed:
            return self._composed.pop(key)
        config = self._compose(master_config, list(sweep_overrides))
        if len(self._composed) < KEEP:
            self._composed[key] = config
        return config

    def _compose(self, master_config: DictConfig, overrides: list[str]) -> DictConfig:
        parsed = OverridesParser.create().parse_overrides(overrides)
        split = self._split(parsed)
        if split is None:  # something only a full composition gets right
            return self._loader.load_sweep_config(master_config, overrides)
        choices, values = split
        value_keys = tuple((o.key_or_group, o.type) for o in values)
        shape, template = self._templates.get(choices, (None, None))
        if template is None or shape != value_keys:
            config = self._loader.load_sweep_config(master_config, overrides)
            self._templates[choices] = (value_keys, copy.deepcopy(config))
            return config
        config = copy.deepcopy(template)
        ConfigLoaderImpl._apply_overrides_to_config(values, config)  # as Hydra applies command-line values
        job = config.hydra.job
        with open_dict(config.hydra):
            config.hydra.overrides.task = overrides
            job.override_dirname = get_overrides_dirname(
                overrides=parsed, exclude_keys=list(job.config.override_dirname.exclude_keys),
                item_sep=job.config.override_dirname.item_sep, kv_sep=job.config.override_dirname.kv_sep)
        OmegaConf.copy_cache(from_config=master_config, to_config=config)  # as load_sweep_config does
        return config

    def _split(self, parsed: list[Override]) -> tuple[tuple[str, ...], list[Override]] | None:
        """(the config-group choices, the value overrides), told apart as Hydra's defaults list tells
        them; None when an override is of a kind that a copy could not replay (appends, deletions,
        packages, Hydra's own settings)."""
        choices, values = [], []
        for o in parsed:
            value = o.value()
            if o.is_hydra_override() or o.package is not None or o.is_delete():
                return None
            if self._loader.repository.group_exists(o.key_or_group) and not isinstance(value, dict):
                choices.append(o.input_line)
            elif o.type in (OverrideType.CHANGE, OverrideType.FORCE_ADD):
                values.append(o)
            else:  # `+key=value` fails when replayed onto a copy that already has the key
                return None
        return tuple(choices), values

    def __getattr__(self, name: str) -> Any:  # every other ConfigLoader method, unchanged
        if name.startswith("_"):  # private and dunder names (pickle's probes) are this object's own
            raise AttributeError(name)
        return getattr(self._loader, name)


class ComposeOnceSweeper(BasicSweeper):
    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        context = HydraContext(config_loader=ComposeOnceLoader(hydra_context.config_loader),
                               callbacks=hydra_context.callbacks)
        super().setup(hydra_context=context, task_function=task_function, config=config)
