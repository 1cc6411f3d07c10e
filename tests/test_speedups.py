"""The process-level speed-ups (nnlab/_speedups): forked joblib workers, the fast exit, and the one switch
that turns them all off without changing a single metric."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nnlab.runs import find_runs

from helpers import nnlab


@pytest.mark.slow
def test_joblib_workers_are_forks_of_the_preloaded_server():
    """With the forkserver on, a loky worker has torch and torch._dynamo before its first task."""
    code = (
        "import os, sys\n"
        "from joblib import Parallel, delayed\n"
        "from nnlab._speedups.forkserver import start\n"
        "if __name__ == '__main__':\n"
        "    start()\n"
        "    probe = \"[m in __import__('sys').modules for m in ('torch', 'torch._dynamo', 'nnlab.runner')]\"\n"
        "    print(Parallel(n_jobs=2, backend='loky')(delayed(eval)(probe) for _ in range(2)))\n"
        "    print('torch' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[:2] == ["[[True, True, True], [True, True, True]]", "False"]


@pytest.mark.slow
def test_joblib_sweep_without_the_forkserver_still_runs(tmp_path):
    """With the forkserver switched off, a joblib sweep still succeeds and runs both jobs."""
    r = nnlab("train", "-m", "hydra/launcher=joblib", "activation=relu,tanh", "data=xor", "trainer.epochs=2",
              "logger=quiet", cwd=tmp_path, env={"NNLAB_SPEEDUPS": "-forkserver"})
    assert r.returncode == 0, r.stderr
    [sweep] = list((tmp_path / "outputs" / "multirun").glob("*/*"))
    assert len(find_runs([sweep])) == 2


@pytest.mark.slow
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


def _sweep_metrics(root) -> dict[str, dict]:
    """{job folder name: its metrics.json without the timings and the folder itself}."""
    [sweep] = list((root / "outputs" / "multirun").glob("*/*"))
    drop = ("wall_seconds", "final/train_seconds", "run_dir")
    return {r.path.name: {k: v for k, v in json.loads((r.path / "metrics.json").read_text()).items() if k not in drop}
            for r in find_runs([sweep])}


@pytest.mark.slow
def test_speedups_off_gives_the_same_metrics(tmp_path):
    """NNLAB_SPEEDUPS=0 (no fast exit, compose-once, gc freeze) trains a sweep to exactly the same metrics."""
    args = ("train", "-m", "data=xor", "activation=relu,tanh", "trainer.epochs=3", "logger=quiet")
    (tmp_path / "on").mkdir()
    (tmp_path / "off").mkdir()
    on = nnlab(*args, cwd=tmp_path / "on")
    off = nnlab(*args, cwd=tmp_path / "off", env={"NNLAB_SPEEDUPS": "0"})
    assert on.returncode == 0 and off.returncode == 0, on.stderr + off.stderr
    metrics = _sweep_metrics(tmp_path / "on")
    assert sorted(metrics) == ["activation=relu", "activation=tanh"]
    assert metrics == _sweep_metrics(tmp_path / "off")


def test_one_switch_turns_every_speedup_off(monkeypatch):
    """NNLAB_SPEEDUPS=0 turns all off, `-name,...` the ones named, unset leaves all on."""
    from nnlab import _speedups

    monkeypatch.delenv("NNLAB_SPEEDUPS", raising=False)
    assert all(_speedups.enabled(n) for n in _speedups.NAMES)
    monkeypatch.setenv("NNLAB_SPEEDUPS", "0")
    assert not any(_speedups.enabled(n) for n in _speedups.NAMES)
    monkeypatch.setenv("NNLAB_SPEEDUPS", "-forkserver, -fastexit")
    assert [n for n in _speedups.NAMES if not _speedups.enabled(n)] == ["fastexit", "forkserver"]


def test_the_switch_turns_compose_once_off(monkeypatch):
    """The grid sweeper wraps Hydra's loader in a ComposeOnceLoader only while compose_once is on."""
    from hydra.core.plugins import Plugins
    from hydra.types import HydraContext
    from omegaconf import OmegaConf

    from nnlab._speedups.compose_once import ComposeOnceLoader, GridSweeper

    monkeypatch.setattr(Plugins.instance(), "instantiate_launcher", lambda **kw: None)  # no launcher needed here
    hydras_loader = object()
    for setting, wrapped in (("1", True), ("-compose_once", False), ("0", False)):
        monkeypatch.setenv("NNLAB_SPEEDUPS", setting)
        sweeper = GridSweeper.__new__(GridSweeper)  # setup() alone is what the switch acts on
        sweeper.setup(hydra_context=HydraContext(config_loader=hydras_loader, callbacks=None), task_function=None,
                      config=OmegaConf.create({}))
        loader = sweeper.hydra_context.config_loader
        assert isinstance(loader, ComposeOnceLoader) == wrapped
        assert (loader._loader if wrapped else loader) is hydras_loader
