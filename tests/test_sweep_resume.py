"""Resuming an interrupted sweep (`nnlab resume SWEEP`): finished jobs skipped, interrupted ones continued from
last.pt under their own number and folder, failed ones only on request, a changed configuration refused."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from nnlab.cli.resume import resume_args, sweep_resume_in_train_args
from nnlab.sweep_resume import config_changes, plan

from helpers import nnlab


def _job(sweep, name, overrides, *markers):
    folder = sweep / name
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    for m in markers:
        (folder / m).parent.mkdir(parents=True, exist_ok=True)
        (folder / m).write_text("x")
    return folder


def test_plan_skips_finished_continues_interrupted_and_reruns_failed_only_on_request(tmp_path):
    """done/pruned skipped; a last.pt adds resume=<folder>; failed skipped unless rerun_failed; never started runs."""
    jobs = [[f"activation={a}"] for a in ("relu", "tanh", "mish", "gelu", "elu")]
    _job(tmp_path, "activation=relu", jobs[0], "metrics.json")
    _job(tmp_path, "activation=tanh", jobs[1], "pruned.txt")
    mish_folder = _job(tmp_path, "activation=mish", jobs[2], "checkpoints/last.pt")
    _job(tmp_path, "activation=gelu", jobs[3], "error.txt")
    p, where = plan(jobs, 10, tmp_path, rerun_failed=False)
    assert p.skip == {10: "done", 11: "pruned", 13: "failed"}
    assert p.run == {12: ["activation=mish", f"resume='{mish_folder.resolve()}'"], 14: ["activation=elu"]}
    assert where[14] is None
    assert plan(jobs, 10, tmp_path, rerun_failed=True)[0].run[13] == ["activation=gelu"]


def test_config_changes_name_each_changed_leaf():
    """Every differing leaf is named with both values; `resume` is ignored (it differs by design)."""
    saved = {"optimizer": {"lr": 0.01, "name": "adam"}, "resume": None, "trainer": {"epochs": 3}}
    now = {"optimizer": {"lr": 0.02, "name": "adam"}, "resume": "x", "trainer": {"epochs": 3, "amp": False}}
    assert config_changes(saved, now) == ["optimizer.lr: 0.01 -> 0.02", "trainer.amp: <absent> -> False"]


def test_resume_rebuilds_the_command_and_refuses_to_change_the_sweep(tmp_path):
    """The saved command comes back with the folder and the resume flag; Hydra settings may be added (replacing
    the saved ones), a training
    override may not (the message names it and the value it had); a folder without multirun.yaml is refused."""
    saved = {"hydra": {"sweeper": {"_target_": "x.ComposeOnceSweeper"}, "overrides": {
        "hydra": ["hydra.sweep.dir='old'", "hydra/launcher=joblib"], "task": ["activation=relu,tanh", "data=xor"]}}}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(saved))
    args = resume_args(tmp_path, ["hydra.launcher.n_jobs=2"], rerun_failed=True)
    assert args == ["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir='{tmp_path}'",
                    "hydra.sweeper.resume=true", "hydra.sweeper.rerun_failed=true", "activation=relu,tanh", "data=xor"]
    assert resume_args(tmp_path, ["hydra/launcher=basic"], False)[:2] == ["-m", "hydra/launcher=basic"]
    with pytest.raises(ValueError, match=r"'data=mnist' would change .*it was 'data=xor'"):
        resume_args(tmp_path, ["data=mnist"], rerun_failed=False)
    with pytest.raises(ValueError, match="holds no multirun.yaml"):
        resume_args(tmp_path / "nope", [], rerun_failed=False)


def test_train_with_resume_of_a_sweep_folder_resumes_it_only_with_the_same_overrides(tmp_path):
    """`nnlab train -m <overrides> resume=<sweep>` resumes the sweep when the overrides are the saved ones (in
    any order, Hydra settings added); a changed value is refused naming what was added and what is missing;
    resume=<a run folder> is left to the single-run resume."""
    saved = {"hydra": {"sweeper": {"_target_": "x"}, "overrides": {"hydra": [], "task": ["activation=relu,tanh",
                                                                                        "data=xor"]}}}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(saved))
    args = sweep_resume_in_train_args(["-m", "data=xor", "activation=relu,tanh", f"resume={tmp_path}",
                                       "hydra/launcher=joblib"])
    assert args == ["-m", "hydra/launcher=joblib", f"hydra.sweep.dir='{tmp_path}'", "hydra.sweeper.resume=true",
                    "activation=relu,tanh", "data=xor"]
    with pytest.raises(ValueError, match="added: data=mnist; missing: data=xor"):
        sweep_resume_in_train_args(["-m", "data=mnist", "activation=relu,tanh", f"resume={tmp_path}"])
    assert sweep_resume_in_train_args(["-m", "data=xor", f"resume={tmp_path / 'run'}"]) is None


SWEEP = ["train", "-m", "activation=relu,tanh", "trainer.seed=0,1", "data=xor", "trainer.epochs=10", "logger=quiet"]
TIMING = ("final/train_seconds", "wall_seconds", "run_dir")


def _metrics(sweep):
    return {p.parent.name: {k: v for k, v in json.loads(p.read_text()).items() if k not in TIMING}
            for p in sweep.glob("*/metrics.json")}


def _job_numbers(sweep):
    return {p.parent.parent.name: yaml.safe_load(p.read_text())["hydra"]["job"]["num"]
            for p in sweep.glob("*/.hydra/hydra.yaml")}


@pytest.mark.slow
def test_killed_sweep_resumes_to_the_metrics_of_an_uninterrupted_one(tmp_path):
    """SIGKILL of the sweep process while a job trains, then `nnlab resume`: every job's final metrics equal an
    uninterrupted sweep's, job numbers and folders are kept, finished jobs were not run again."""
    (tmp_path / "ref").mkdir()
    ref = nnlab(*SWEEP, cwd=tmp_path / "ref")
    assert ref.returncode == 0, ref.stderr[-2000:]
    [ref_sweep] = (tmp_path / "ref").glob("outputs/multirun/*/*")
    run = tmp_path / "run"
    run.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "nnlab", *SWEEP], cwd=run, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:  # one job done, the next one mid-way
        done = {p.parent for p in run.glob("outputs/multirun/*/*/*/metrics.json")}
        if done and any(p.parent.parent not in done for p in run.glob("outputs/multirun/*/*/*/checkpoints/last.pt")):
            break
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    [sweep] = run.glob("outputs/multirun/*/*")
    finished_before = {n: (sweep / n / "metrics.json").stat().st_mtime_ns for n in _metrics(sweep)}
    assert 1 <= len(finished_before) < 4
    r = nnlab("resume", str(sweep.relative_to(run)), cwd=run)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resuming from" in r.stdout + r.stderr and "4 jobs" in r.stdout
    assert _metrics(sweep) == _metrics(ref_sweep) and len(_metrics(sweep)) == 4
    assert _job_numbers(sweep) == _job_numbers(ref_sweep)
    assert all((sweep / n / "metrics.json").stat().st_mtime_ns == t for n, t in finished_before.items())


@pytest.mark.slow
def test_resume_refuses_a_sweep_whose_configuration_changed(tmp_path):
    """A job whose saved config differs from today's composition stops the resume before anything runs: exit 2,
    one paragraph naming the key and both values, no traceback."""
    r = nnlab("train", "-m", "activation=relu,tanh", "data=xor", "trainer.epochs=2", "logger=quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    [sweep] = tmp_path.glob("outputs/multirun/*/*")
    saved = sweep / "activation=tanh" / ".hydra" / "config.yaml"
    saved.write_text(saved.read_text().replace("epochs: 2", "epochs: 5"))
    (sweep / "activation=tanh" / "metrics.json").unlink()
    r = nnlab("resume", str(sweep), cwd=tmp_path)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "trainer.epochs: 5 -> 2" in r.stderr and "Traceback" not in r.stdout + r.stderr
    assert not (sweep / "activation=tanh" / "metrics.json").exists()
