"""Optuna hyperparameter search (`hparams_search=optuna_lr`): a Hydra sweeper on current Optuna (ask/tell),
and the per-epoch hook through which each trial reports its monitored metric and is pruned.

The sweeper asks the study for trials, launches them as Hydra jobs (basic, joblib or SLURM launcher) and
tells the study each job's result. The study lives in SQLite in the sweep folder
(`sqlite:///<sweep>/optuna.db`), so a search started again on the same folder continues to `n_trials` in
all, and so each job, in whatever process it runs, reaches its own trial there: the sweeper hands the job
the storage URL and the trial number as `hydra.sweeper.storage` / `hydra.sweeper.trial` (Hydra overrides,
so they name no folder), and the job reports every epoch's value through `nnlab.trial.epoch_hook` and stops
with `loop.Pruned` when the study's pruner says so.

The search space is Hydra's sweep syntax in `hydra.sweeper.params`, mapped onto Optuna's distributions:
`interval(a, b)` -> FloatDistribution(a, b); `tag(log, interval(a, b))` the same on a log scale;
`tag(int, interval(a, b))` an IntDistribution (Hydra parses interval bounds as floats); `choice(a, b, c)` or
`a,b,c` -> CategoricalDistribution; `range(a, b[, step])` -> the values Hydra's grid would take (b excluded)
as an Int/FloatDistribution with that step. Anything else is a fixed value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob, Override, Transformer
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from nnlab.registry import ConfigError, choose
from nnlab.trial import PRUNED

log = logging.getLogger("nnlab")
STORAGE_FILE = "optuna.db"


# -- the search space ------------------------------------------------------------------------------------------
def distribution(o: Override) -> Any:
    """The Optuna distribution of one parsed `key=value` override, or its value as a string when fixed."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if not o.is_sweep_override():
        return o.get_value_element_as_str()
    value = o.value()
    if isinstance(value, Glob):
        raise ConfigError(f"{o.input_line}: Optuna cannot sample a glob; list the choices: choice(a, b, ...)")
    if o.is_choice_sweep() or (o.is_range_sweep() and value.shuffle):
        return CategoricalDistribution(list(o.sweep_iterator(transformer=Transformer.encode)))
    if o.is_range_sweep():  # Hydra's range: stop excluded, so the highest value is the last one it reaches
        values = list(o.sweep_iterator())
        if not values:
            raise ConfigError(f"{o.input_line}: the range holds no value")
        if all(isinstance(v, int) for v in (value.start, value.stop, value.step)):
            return IntDistribution(int(values[0]), int(values[-1]), step=int(value.step))
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(value.step))
    if o.is_interval_sweep():
        log_scale = "log" in value.tags
        if "int" in value.tags:  # Hydra's interval() always parses its bounds as floats
            return IntDistribution(int(value.start), int(value.end), log=log_scale)
        return FloatDistribution(float(value.start), float(value.end), log=log_scale)
    raise ConfigError(f"{o.input_line}: Optuna cannot sample this sweep; use interval(a, b), "
                      f"tag(log, interval(a, b)), choice(a, b, ...) or range(a, b[, step])")


def search_space(params: dict[str, Any] | None, arguments: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """(distributions, fixed values) from `hydra.sweeper.params` plus the command line's overrides."""
    from optuna.distributions import BaseDistribution

    lines = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
    try:
        parsed = OverridesParser.create().parse_overrides(lines)
    except Exception as e:  # Hydra's OverrideParseException: the message names the bad override
        raise ConfigError(f"hydra.sweeper.params: {e}") from None
    space: dict[str, Any] = {}
    fixed: dict[str, str] = {}
    for o in parsed:
        key = o.get_key_element()
        d = distribution(o)
        if isinstance(d, BaseDistribution):
            space[key], _ = d, fixed.pop(key, None)
        else:
            fixed[key], _ = d, space.pop(key, None)  # a later plain value wins over the preset's range
    return space, fixed


# -- samplers and pruners --------------------------------------------------------------------------------------
def _tpe(seed: int | None) -> Any:
    import optuna

    return optuna.samplers.TPESampler(seed=seed)


def _random(seed: int | None) -> Any:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


SAMPLERS: dict[str, Callable[[int | None], Any]] = {"tpe": _tpe, "random": _random}


def _median(p: dict[str, Any]) -> Any:
    import optuna

    # warmup_epochs: epochs never pruned (Optuna's steps are our 1-based epochs: no pruning while step < n)
    return optuna.pruners.MedianPruner(n_startup_trials=p.get("startup_trials", 5),
                                       n_warmup_steps=p.get("warmup_epochs", 0) + 1)


def _successive_halving(p: dict[str, Any]) -> Any:
    import optuna

    return optuna.pruners.SuccessiveHalvingPruner(min_resource=p.get("min_epochs", 1),
                                                  reduction_factor=p.get("reduction_factor", 3))


def _no_pruning(_p: dict[str, Any]) -> Any:
    import optuna

    return optuna.pruners.NopPruner()


PRUNERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "median": _median, "successive_halving": _successive_halving, "none": _no_pruning}


def build_pruner(name: str | None, pruning: dict[str, Any] | None) -> Any:
    return choose(PRUNERS, str(name or "none"), "hydra.sweeper.pruner")(dict(pruning or {}))


def storage_url(storage: str | None, sweep_dir: str | Path) -> str:
    """The study's storage: as configured, or SQLite in the sweep folder (an absolute path: jobs may run
    elsewhere, e.g. on SLURM nodes that share the folder)."""
    if storage:
        return str(storage)
    path = Path(sweep_dir).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path / STORAGE_FILE}"


# -- the sweeper -----------------------------------------------------------------------------------------------
class OptunaSearch(Sweeper):
    """Hydra sweeper: Optuna's ask/tell over the space in `params`, trials launched as Hydra jobs."""

    def __init__(self, direction: str = "maximize", study_name: str = "nnlab", storage: str | None = None,
                 n_trials: int = 20, n_jobs: int = 1, sampler: str = "tpe", seed: int | None = None,
                 pruner: str | None = "median", pruning: DictConfig | None = None,
                 params: DictConfig | None = None, resume: bool = False, trial: int | None = None) -> None:
        self.direction, self.study_name, self.storage = direction, study_name, storage
        self.n_trials, self.n_jobs = int(n_trials), max(1, int(n_jobs))
        self.sampler_name, self.seed, self.pruner_name = sampler, seed, pruner
        self.pruning = OmegaConf.to_container(pruning) if pruning is not None else {}
        self.params = OmegaConf.to_container(params, resolve=True) if params is not None else {}
        self.config: DictConfig | None = None
        self.launcher: Any = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)

    def study(self) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if str(self.direction) not in ("minimize", "maximize"):
            raise ConfigError(f"hydra.sweeper.direction={self.direction!r}; choose one of: maximize, minimize")
        stopping = self.config.regularizer.early_stopping
        if (stopping.mode == "max") != (self.direction == "maximize"):  # the pruner compares the monitored values
            raise ConfigError(f"hydra.sweeper.direction={self.direction} but regularizer.early_stopping.mode="
                              f"{stopping.mode} (monitor {stopping.monitor}): each trial returns and reports the "
                              f"monitored value, so maximize goes with mode=max and minimize with mode=min")
        make_sampler = choose(SAMPLERS, str(self.sampler_name), "hydra.sweeper.sampler")
        pruner = build_pruner(self.pruner_name, self.pruning)
        self.storage = storage_url(self.storage, str(self.config.hydra.sweep.dir))
        sampler = make_sampler(None if self.seed is None else int(self.seed) + self._trials_so_far())
        return optuna.create_study(storage=self.storage, study_name=self.study_name, sampler=sampler,
                                   pruner=pruner, direction=str(self.direction), load_if_exists=True)

    def _trials_so_far(self) -> int:
        """Trials already in the study: a resumed search shifts its seed by them, not to replay the samples
        the interrupted one drew (a seeded sampler would draw the same values again)."""
        import optuna

        storage = optuna.storages.get_storage(self.storage)
        try:
            study_id = storage.get_study_id_from_name(self.study_name)
        except KeyError:
            return 0
        return len(storage.get_all_trials(study_id, deepcopy=False))

    def sweep(self, arguments: list[str]) -> None:
        space, fixed = search_space(self.params, arguments)
        if not space:
            raise ConfigError("hparams_search: hydra.sweeper.params holds no range to search (e.g. "
                              "optimizer.lr: tag(log, interval(0.0001, 0.1)))")
        study = self.study()
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # as Hydra's basic sweeper: what `nnlab resume` reads
        run_search(self, study, space, fixed)


def run_search(sweeper: OptunaSearch, study: Any, space: dict[str, Any], fixed: dict[str, str]) -> None:
    """Launch trials n_jobs at a time until the study holds `n_trials` finished ones: first the trials an
    interrupted search left running (same number and parameters, resumed from their last.pt), then new ones."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    finished = sum(t.state.is_finished() for t in trials)
    stale = [t.number for t in trials if t.state == TrialState.RUNNING]
    if trials:
        log.info("study %s in %s: %d trials finished, %d to go (first the %d left running)", study.study_name,
                 sweeper.storage, finished, max(0, sweeper.n_trials - finished), len(stale))
    remaining = sweeper.n_trials - finished
    while remaining > 0:
        batch = [stale.pop(0) if stale else study.ask(fixed_distributions=space).number
                 for _ in range(min(sweeper.n_jobs, remaining))]
        overrides = [_job_overrides(sweeper, study, n, fixed) for n in batch]
        returns = sweeper.launcher.launch(overrides, initial_job_idx=batch[0])
        for number, ret in zip(batch, returns):
            _tell(study, number, ret)
        remaining -= len(batch)
    _write_results(sweeper, study)


def _job_overrides(sweeper: OptunaSearch, study: Any, number: int, fixed: dict[str, str]) -> list[str]:
    """The job's command line: the trial's parameters, the fixed values, and where to find the trial."""
    trial = study.get_trials(deepcopy=False)[number]
    values = {**{k: str(v) for k, v in trial.params.items()}, **fixed}
    line = [f"{k}={v}" for k, v in values.items()]
    line += [f"hydra.sweeper.trial={number}", f"hydra.sweeper.storage='{sweeper.storage}'"]
    run_dir = trial.user_attrs.get("run_dir")
    if run_dir and (Path(run_dir) / "checkpoints" / "last.pt").is_file():  # an interrupted trial's checkpoint
        line.append(f"resume='{run_dir}'")
    return line


def _tell(study: Any, number: int, ret: Any) -> None:
    """Finish the trial with the job's result: a value (complete), `PRUNED`, or anything else (failed)."""
    from hydra.core.utils import JobStatus
    from optuna.trial import TrialState

    value = ret.return_value if ret.status == JobStatus.COMPLETED else None
    if value == PRUNED:
        study.tell(number, state=TrialState.PRUNED)
    elif isinstance(value, (int, float)):
        study.tell(number, float(value))
    else:
        study.tell(number, state=TrialState.FAIL)


def _write_results(sweeper: OptunaSearch, study: Any) -> None:
    """optimization_results.yaml in the sweep folder: the best trial and how many trials ended how."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts = {s.name.lower(): sum(t.state == s for t in trials)
              for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    results: dict[str, Any] = {"name": "optuna", "study_name": study.study_name, "storage": sweeper.storage,
                               "trials": counts}
    if counts["complete"]:
        best = study.best_trial
        results.update(best_trial=best.number, best_params=best.params, best_value=best.value)
        log.info("best trial %d: %s = %s", best.number, best.params, best.value)
    else:
        log.error("no trial of study %s completed (%d failed, %d pruned): there is no best value; each failed "
                  "job's error is in its error.txt, listed below", study.study_name, counts["fail"], counts["pruned"])
    sweep_dir = Path(str(sweeper.config.hydra.sweep.dir))
    OmegaConf.save(OmegaConf.create(results), sweep_dir / "optimization_results.yaml")
