"""An Optuna trial seen from inside its job: the per-epoch report to the study, and pruning.

The sweeper (nnlab.search) gives each job `hydra.sweeper.storage` and `hydra.sweeper.trial`; the job opens
the study there (SQLite in the sweep folder, so joblib workers and SLURM nodes reach it too), reports its
monitored metric after every epoch and stops with `loop.Pruned` when the study's pruner says so. A pruned
job returns `PRUNED` to the sweeper, which tells the study.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

PRUNED = "pruned"  # what a pruned trial's job returns to the sweeper

WHY_PRUNED = {"median": "is worse than the median of the other trials at that epoch",
              "successive_halving": "is not among the best trials at this rung"}


def epoch_hook(sweeper: Any, monitor: str, run_dir: Path) -> Callable[[int, dict[str, float]], None] | None:
    """For a job that is an Optuna trial (its `hydra.sweeper.trial` set): a per-epoch callback that reports
    `metrics[monitor]` to the trial and raises `loop.Pruned` when the study's pruner stops it. Else None."""
    if not sweeper or sweeper.get("trial") is None or not sweeper.get("storage"):
        return None
    import optuna

    from nnlab.loop import Pruned
    from nnlab.search import build_pruner

    storage = optuna.storages.get_storage(str(sweeper["storage"]))
    name = str(sweeper["study_name"])
    study = optuna.load_study(study_name=name, storage=storage,
                              pruner=build_pruner(sweeper.get("pruner"), sweeper.get("pruning")))
    study_id = storage.get_study_id_from_name(name)
    number = int(sweeper["trial"])
    trial = optuna.trial.Trial(study, storage.get_trial_id_from_study_id_trial_number(study_id, number))
    trial.set_user_attr("run_dir", str(run_dir.resolve()))  # where a resumed search finds its checkpoint

    def report(epoch: int, metrics: dict[str, float]) -> None:
        value = metrics[monitor]
        trial.report(value, epoch)
        if trial.should_prune():
            why = WHY_PRUNED.get(str(sweeper.get("pruner")), "")
            raise Pruned(f"trial {number} pruned by the {sweeper.get('pruner')} pruner after epoch {epoch}: "
                         f"{monitor} {value:.4f} {why}", epoch)

    return report
