"""What resume may change, and the printed resume command working when pasted into a shell."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from nnlab.cli.failures import resume_hint
from nnlab.config.resume import merge_resume
from nnlab.registry import ConfigError

from helpers import nnlab

SAVED = {"trainer": {"epochs": 3, "seed": 0, "threads": 0}, "model": {"name": "mlp", "hidden": [8]},
         "logger": {"progress": True}, "scheduler": {"name": "none"}, "resume": None}


def _composed(**changes):
    cfg = json.loads(json.dumps(SAVED))
    cfg["model"] = {"name": "cnn", "channels": [4]}  # what the defaults compose to: not the run's own model
    for key, value in changes.items():
        group, leaf = key.split(".")
        cfg[group][leaf] = value
    return cfg


def test_resume_applies_more_epochs_and_logging():
    """trainer.epochs and logger.* given on the command line replace the checkpoint's values; nothing else
    of the (default) composed config leaks in."""
    cfg = merge_resume(SAVED, _composed(**{"trainer.epochs": 6, "logger.progress": False}),
                       ["resume=x", "trainer.epochs=6", "logger.progress=false"], epochs_done=3)
    assert cfg["trainer"]["epochs"] == 6 and cfg["logger"]["progress"] is False
    assert cfg["model"] == SAVED["model"]


def test_resume_refuses_other_changes_naming_them():
    """A change of the model or the seed is refused, with every key named and what may change listed."""
    with pytest.raises(ConfigError) as e:
        merge_resume(SAVED, _composed(**{"trainer.seed": 5}), ["model=cnn", "trainer.seed=5"], epochs_done=1)
    assert "model (mlp -> cnn)" in str(e.value) and "trainer.seed (0 -> 5)" in str(e.value)
    assert "trainer.epochs" in str(e.value)


def test_resume_refuses_fewer_epochs_and_epoch_schedules():
    with pytest.raises(ConfigError, match="already trained 3 epochs"):
        merge_resume(SAVED, _composed(**{"trainer.epochs": 2}), ["trainer.epochs=2"], epochs_done=3)
    cosine = {**SAVED, "scheduler": {"name": "cosine"}}
    with pytest.raises(ConfigError, match="laid out over"):
        merge_resume(cosine, _composed(**{"trainer.epochs": 9}), ["trainer.epochs=9"], epochs_done=3)


@pytest.mark.slow
def test_resume_with_more_epochs_trains_them(tmp_path):
    """`nnlab train resume=<run> trainer.epochs=3` after a 2-epoch run trains the third epoch."""
    first = nnlab("train", "data=xor", "trainer.epochs=2", "logger=quiet", "hydra.run.dir=run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    more = nnlab("train", "resume=run", "trainer.epochs=3", cwd=tmp_path)
    assert more.returncode == 0, more.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["final/epochs"] == 3.0
    assert "epoch 3/3" in more.stdout + more.stderr


def _bash(line: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "COLUMNS": "200"}
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, text=True, capture_output=True, timeout=300)


@pytest.mark.slow
def test_resume_hint_of_a_sweep_job_works_in_bash(tmp_path, monkeypatch):
    """A sweep job's folder holds '=' and ','; the hint quotes it so that bash and Hydra read it back."""
    sweep = nnlab("train", "-m", "data=xor", "activation=relu", "init=kaiming_normal,xavier_uniform",
                  "trainer.epochs=1", "logger=quiet", "hydra.sweep.dir=sw", cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stderr
    job = tmp_path / "sw" / "init=xavier_uniform"
    assert (job / "checkpoints" / "last.pt").is_file()
    monkeypatch.chdir(tmp_path)
    line = resume_hint(job)
    assert line == "nnlab train 'resume=\"sw/init=xavier_uniform\"'"
    r = _bash(line + " trainer.epochs=2", tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((job / "metrics.json").read_text())["final/epochs"] == 2.0


def test_resume_hint_under_torchrun_keeps_the_processes(monkeypatch, tmp_path):
    """Under DDP the hint is the torchrun command with the same number of processes, and bash splits it
    into the words torchrun needs."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    line = resume_hint(tmp_path / "outputs" / "multirun" / "x" / "a=b,c=d")
    assert shlex.split(line) == ["torchrun", "--nproc_per_node=4", "-m", "nnlab", "train",
                                 'resume="outputs/multirun/x/a=b,c=d"']
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")  # two nodes of two
    assert resume_hint(tmp_path / "run").startswith("torchrun --nnodes=2 --nproc_per_node=2 -m nnlab train")


@pytest.mark.slow
def test_ddp_resume_hint_works_in_bash(tmp_path, monkeypatch):
    """The hint a DDP run prints (rank 0 alone prints it) resumes the run when pasted into bash."""
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "nnlab", "train"]
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run([*torchrun, "data=xor", "trainer.strategy=ddp", "trainer.epochs=1", "logger=quiet",
                           "hydra.run.dir=ddp"], cwd=tmp_path, env=env, text=True, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    monkeypatch.chdir(tmp_path)
    with monkeypatch.context() as m:
        for k, v in {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}.items():
            m.setenv(k, v)
        line = resume_hint(tmp_path / "ddp")
    assert line == "torchrun --nproc_per_node=2 -m nnlab train resume=ddp"
    shim = tmp_path / "bin" / "torchrun"  # this interpreter's torchrun, whatever script PATH would find
    shim.parent.mkdir()
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m torch.distributed.run "$@"\n')
    shim.chmod(0o755)
    r = _bash(f"PATH={shim.parent}:$PATH; {line} trainer.epochs=2", tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "ddp" / "metrics.json").read_text())["final/epochs"] == 2.0
