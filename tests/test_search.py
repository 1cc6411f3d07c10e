"""Optuna search (nnlab.search): Hydra's sweep syntax mapped onto Optuna distributions, pruning fed by each
trial's per-epoch metric, a SQLite study that a killed search resumes, and failures reported in one paragraph."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from nnlab.registry import ConfigError
from nnlab.runs import find_runs
from nnlab.search import build_pruner, search_space

from helpers import nnlab


def _grid_values(line: str) -> list:
    """The values Hydra's own grid sweeper would take for one sweep override."""
    [o] = OverridesParser.create().parse_overrides([line])
    return list(o.sweep_iterator())


@pytest.mark.parametrize("line", ["x=range(1,5)", "x=range(0,10,3)", "x=range(0.1,0.5,0.1)", "x=choice(relu,tanh)",
                                  "x=relu,tanh,mish"])
def test_discrete_sweeps_cover_exactly_the_values_of_hydras_grid(line):
    """range/choice map to distributions holding exactly Hydra's grid values (range's stop excluded)."""
    [(key, d)] = search_space({}, [line])[0].items()
    grid = _grid_values(line)
    if hasattr(d, "choices"):
        assert list(d.choices) == [str(v) for v in grid]
    else:
        n = round((d.high - d.low) / d.step) + 1
        assert [d.low + i * d.step for i in range(n)] == pytest.approx(grid)
        assert type(d).__name__ == ("IntDistribution" if all(isinstance(v, int) for v in grid) else "FloatDistribution")


def test_intervals_map_to_continuous_distributions_with_their_scale():
    """interval -> uniform, tag(log, interval) -> log scale, tag(int, ...) -> IntDistribution; plain values stay fixed;
    the command line's value for a key replaces the preset's range."""
    space, fixed = search_space({"optimizer.lr": "tag(log, interval(0.0001, 0.1))",
                                 "model.depth": "tag(int, interval(1, 4))",
                                 "optimizer.weight_decay": "interval(0.0, 0.01)"},
                                ["optimizer.weight_decay=0", "trainer.epochs=3"])
    lr, depth = space["optimizer.lr"], space["model.depth"]
    assert (lr.low, lr.high, lr.log) == (0.0001, 0.1, True)
    assert type(depth).__name__ == "IntDistribution" and (depth.low, depth.high, depth.log) == (1, 4, False)
    assert fixed == {"optimizer.weight_decay": "0", "trainer.epochs": "3"}


def test_unknown_pruner_lists_the_choices():
    """A pruner name typo is a configuration error naming every valid pruner."""
    with pytest.raises(ConfigError, match="median, none, successive_halving"):
        build_pruner("medain", {})


OPTUNA_XOR = ["train", "-m", "hparams_search=optuna_lr", "data=xor", "trainer.epochs=4", "logger=quiet",
              "optimizer.lr=tag(log,interval(1e-6,0.1))", "optimizer.weight_decay=0", "hydra.sweeper.sampler=random",
              "hydra.sweeper.pruning.startup_trials=2"]


def _study(sweep):
    import optuna

    return optuna.load_study(study_name="optuna_lr", storage=f"sqlite:///{sweep / 'optuna.db'}")


@pytest.mark.slow
def test_killed_search_resumes_to_n_trials_and_prunes_the_bad_region(tmp_path):
    """lr in [1e-6, 0.1] on XOR: the median pruner stops trials whose val/acc lags (tiny lr); SIGKILL of the
    sweep after 4 finished trials, then `nnlab resume`, ends with exactly 8 finished trials in the study, and
    pruned trials show as "pruned" in the sweep table and in their folders."""
    import optuna

    proc = subprocess.Popen([sys.executable, "-m", "nnlab", *OPTUNA_XOR, "hydra.sweeper.n_trials=8"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline, sweep = time.time() + 240, None
    while time.time() < deadline and proc.poll() is None:
        dbs = list(tmp_path.glob("outputs/multirun/*/*/optuna.db"))
        if dbs:
            sweep = dbs[0].parent
            try:
                if sum(t.state.is_finished() for t in _study(sweep).trials) >= 4:
                    break
            except (KeyError, ValueError, optuna.exceptions.StorageInternalError):
                pass  # the study is being created
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert sweep is not None and 4 <= sum(t.state.is_finished() for t in _study(sweep).trials) < 8
    r = nnlab("resume", str(sweep), cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    trials = _study(sweep).trials
    assert [t.number for t in trials] == list(range(8)) and all(t.state.is_finished() for t in trials)
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned and all(t.params["optimizer.lr"] < 1e-3 for t in pruned)
    runs = {r.path.name: r for r in find_runs([sweep])}
    assert len(runs) == 8 and sum(r.status == "pruned" for r in runs.values()) == len(pruned)
    assert "pruned" in r.stdout and "Traceback" not in r.stdout + r.stderr
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    [cut] = [r for r in runs.values() if r.status == "pruned"][:1]
    events = EventAccumulator(str(cut.path))
    events.Reload()
    assert [e.value for e in events.Scalars("trial/pruned")] == [1.0]  # TensorBoard shows it pruned


@pytest.mark.slow
def test_search_whose_every_trial_fails_ends_in_one_paragraph(tmp_path):
    """Every trial diverging (lr in a region where SGD blows up) ends with exit 1, each failure named, no
    traceback, and no best value claimed."""
    r = nnlab("train", "-m", "hparams_search=optuna_lr", "data=xor", "trainer.epochs=2", "logger=quiet",
              "optimizer=sgd", "optimizer.lr=interval(1e20,1e21)", "trainer.log_every_n_steps=1",
              "hydra.sweeper.n_trials=2", cwd=tmp_path)
    assert r.returncode == 1, r.stderr[-2000:]
    out = r.stdout + r.stderr
    assert "Traceback" not in out
    assert "no trial of study optuna_lr completed (2 failed, 0 pruned)" in out
    assert "2 of 2 runs failed" in out and "training diverged" in out


@pytest.mark.slow
def test_trials_in_joblib_workers_report_every_epoch_to_the_study(tmp_path):
    """With the joblib launcher (2 trials at once, in worker processes), each trial reaches the SQLite study
    itself: every complete trial holds one intermediate val/acc per epoch and its run folder."""
    import optuna

    r = nnlab(*OPTUNA_XOR[:4], "trainer.epochs=3", "logger=quiet", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
              "hydra.sweeper.n_jobs=2", "hydra.sweeper.n_trials=4", "hydra.sweeper.pruner=none", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    [sweep] = tmp_path.glob("outputs/multirun/*/*")
    trials = _study(sweep).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert all(sorted(t.intermediate_values) == [1, 2, 3] for t in trials)
    assert sorted(Path(t.user_attrs["run_dir"]).name for t in trials) == sorted(p.name for p in sweep.glob("trial=*"))
