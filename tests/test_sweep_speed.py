"""The sweep speed-ups: each job composed once, joblib workers forked from a warm server, no teardown wait."""

from __future__ import annotations

import pickle
import subprocess
import sys

from hydra_plugins.nnlab_sweeper import compose_once
from nnlab.cli import _name_jobs_by_swept_keys
from nnlab.compare import find_runs

from helpers import nnlab


class CountingLoader:
    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []

    def load_sweep_config(self, master_config, sweep_overrides):
        self.calls.append(tuple(sweep_overrides))
        return {"composed": list(sweep_overrides), "call": len(self.calls)}

    def get_search_path(self):
        return "search path"


def test_the_check_and_the_launch_share_one_composition():
    inner = CountingLoader()
    loader = compose_once.ComposeOnceLoader(inner)
    jobs = [["activation=relu"], ["activation=tanh"]]
    checked = [loader.load_sweep_config({}, job) for job in jobs]  # validate_batch_is_legal
    launched = [loader.load_sweep_config({}, job) for job in jobs]  # the launcher
    assert inner.calls == [("activation=relu",), ("activation=tanh",)]
    assert [c is lch for c, lch in zip(checked, launched)] == [True, True]
    assert loader.load_sweep_config({}, jobs[0])["call"] == 3  # handed out once: a third load composes again
    assert loader.get_search_path() == "search path"  # the rest of the loader is the wrapped one's


def test_workers_get_the_composed_configs_of_small_batches_only():
    """joblib and submitit pickle the loader into every task: it carries at most KEEP composed configs.

    The class is looked up at call time: Hydra's plugin scan re-executes plugin modules (new class
    objects), and pickle wants the class that sys.modules holds now."""
    inner = CountingLoader()
    loader = compose_once.ComposeOnceLoader(inner)
    KEEP = compose_once.KEEP
    jobs = [[f"trainer.seed={i}"] for i in range(KEEP + 3)]
    for job in jobs:
        loader.load_sweep_config({}, job)
    worker = pickle.loads(pickle.dumps(loader))
    assert worker.load_sweep_config({}, jobs[0])["call"] == 1  # composed by the check, in the main process
    assert worker.load_sweep_config({}, jobs[-1])["call"] == KEEP + 4  # past KEEP: composed in the worker
    assert len(inner.calls) == KEEP + 3  # the main process's own loader was not called again


def test_grid_sweeps_use_the_compose_once_sweeper_and_optuna_replaces_it(tmp_path):
    grid = nnlab("train", "data=xor", "--cfg", "hydra", "-p", "hydra.sweeper", cwd=tmp_path)
    assert "ComposeOnceSweeper" in grid.stdout, grid.stderr
    optuna = nnlab("train", "data=xor", "hparams_search=optuna_lr", "--cfg", "hydra", "-p", "hydra.sweeper",
                   cwd=tmp_path)
    assert "OptunaSweeper" in optuna.stdout, optuna.stderr


def test_joblib_workers_are_forks_of_the_preloaded_server():
    """With the forkserver on, a loky worker has torch and torch._dynamo before its first task."""
    code = (
        "import os, sys\n"
        "from joblib import Parallel, delayed\n"
        "from nnlab.joblib_workers import start_forkserver\n"
        "if __name__ == '__main__':\n"
        "    start_forkserver()\n"
        "    probe = \"[m in __import__('sys').modules for m in ('torch', 'torch._dynamo', 'nnlab.job')]\"\n"
        "    print(Parallel(n_jobs=2, backend='loky')(delayed(eval)(probe) for _ in range(2)))\n"
        "    print('torch' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["[[True, True, True], [True, True, True]]", "False"]


def test_joblib_sweep_without_the_forkserver_still_runs(tmp_path):
    r = nnlab("train", "-m", "hydra/launcher=joblib", "activation=relu,tanh", "data=xor", "trainer.epochs=2",
              "logger=quiet", cwd=tmp_path, env={"NNLAB_FORKSERVER": "0"})
    assert r.returncode == 0, r.stderr
    [sweep] = list((tmp_path / "outputs" / "multirun").glob("*/*"))
    assert len(find_runs([sweep])) == 2


def test_exit_status_and_logs_survive_the_fast_exit(tmp_path):
    """The process leaves without module teardown, but with its exit status and every log line written."""
    ok = nnlab("train", "data=xor", "trainer.epochs=2", "logger=quiet", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    [log] = list(tmp_path.glob("outputs/*/*/train.log"))
    assert "solved: mlp fits the XOR truth table" in log.read_text().splitlines()[-1]  # the last line written
    bad = nnlab("train", "data=xor", "trainer.epochs=0", cwd=tmp_path)
    assert bad.returncode == 2 and "trainer.epochs" in bad.stdout + bad.stderr
    usage = nnlab("frobnicate", cwd=tmp_path)
    assert usage.returncode == 2 and "unknown command" in usage.stderr


def test_the_name_exclusion_goes_beside_the_other_overrides():
    """Hydra's argparse wants overrides together: the added one must not land after a trailing option."""
    args = _name_jobs_by_swept_keys(["-m", "activation=relu,tanh", "data=xor", "--config-dir", "extra"])
    assert args[1].startswith("hydra.job.config.override_dirname.exclude_keys=[") and ",data]" in args[1]
    assert args[2:] == ["activation=relu,tanh", "data=xor", "--config-dir", "extra"]
