"""Sweeps on a real SLURM cluster (one node on 127.0.0.1, scripts/slurm_local.sh): the launcher presets, requests
refused before submission, DDP over SLURM tasks, and jobs stopped by scancel or by SLURM's warning signal."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from slurm_fixtures import PARTITION, slurm_cmd

from nnlab.checkpoint import load_checkpoint
from nnlab.loop import Interrupted, _StopRequest
from nnlab.runs import find_runs, read_run

from helpers import REPO, nnlab

XOR = ["data=xor", "logger=quiet", "trainer.threads=1"]
LONG = [*XOR, "trainer.epochs=300", "trainer.limit_train_batches=2"]  # ~3 s of 1-step epochs: time to stop one
TIMING = ("final/train_seconds", "wall_seconds", "run_dir")


def _sweep_dir(root: Path) -> Path:
    [d] = [p for p in (root / "outputs" / "multirun").glob("*/*") if p.is_dir()]
    return d


def _metrics(run_dir: Path) -> dict:
    return {k: v for k, v in json.loads((run_dir / "metrics.json").read_text()).items() if k not in TIMING}


def _start_sweep(tmp_path: Path, slurm: dict, *args: str) -> subprocess.Popen:
    env = {**os.environ, **slurm, "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "nnlab", "train", "-m", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _final_state(slurm: dict, job_id: str, timeout: float = 60) -> str:
    """The job's state once it has left the node (its result is written a moment before the process ends)."""
    deadline = time.monotonic() + timeout
    while True:
        state = slurm_cmd(slurm, "squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T").strip()
        if state not in ("RUNNING", "COMPLETING") or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def _slurm_job_of(tmp_path: Path, name: str, timeout: float = 120) -> tuple[Path, str]:
    """Wait until sweep job `name` has saved its first checkpoint; its folder and SLURM job id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(tmp_path.glob(f"outputs/multirun/*/*/{name}/checkpoints/last.pt"))
        if found:
            run_dir = found[0].parent.parent
            return run_dir, str(yaml.safe_load((run_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["id"])
        time.sleep(0.2)
    raise AssertionError(f"job {name} saved no checkpoint in {timeout} s")


@pytest.mark.slow
def test_default_preset_runs_a_two_job_sweep_on_a_cpu_partition(tmp_path, slurm):
    """hydra/launcher=slurm with its defaults (no GPU, 1 CPU, 2 GB) runs both jobs of an XOR sweep through sbatch."""
    r = nnlab("train", "-m", "hydra/launcher=slurm", f"hydra.launcher.partition={PARTITION}", "activation=relu,tanh",
              "trainer.epochs=2", *XOR, cwd=tmp_path, env=slurm)
    assert r.returncode == 0, r.stderr[-3000:]
    runs = find_runs([_sweep_dir(tmp_path)])
    assert sorted(x.path.name for x in runs) == ["activation=relu", "activation=tanh"]
    assert all(x.status == "ok" and x.metrics["final/test_acc"] == 1.0 for x in runs)
    for x in runs:  # each ran as a task of a SLURM array job, which the cluster recorded as completed
        job_id = yaml.safe_load((x.path / ".hydra" / "hydra.yaml").read_text())["hydra"]["job"]["id"]
        assert re.fullmatch(r"\d+_[01]", str(job_id))
        assert _final_state(slurm, str(job_id)) == "COMPLETED"
    assert "status" in r.stdout and r.stdout.count(" ok ") == 2


@pytest.mark.slow
@pytest.mark.parametrize(("override", "says"), [
    ("hydra.launcher.gpus_per_node=1", f"hydra.launcher.gpus_per_node=1: partition {PARTITION} has no GPUs"),
    ("hydra.launcher.partition=gpu", "hydra.launcher.partition=gpu: no such partition; choose one of: cpu"),
    ("hydra.launcher.cpus_per_task=64", "hydra.launcher.cpus_per_task=64 x tasks_per_node=1: the nodes of partition"),
    ("+hydra.launcher.additional_parameters.constraint=nope", "sbatch refused the jobs (sbatch: error: Batch job "
                                                              "submission failed: Invalid feature specification)"),
])
def test_a_request_the_cluster_cannot_run_is_refused_with_one_paragraph(tmp_path, slurm, override, says):
    """GPUs on a CPU partition, an unknown partition, too many CPUs, or whatever sbatch itself refuses: exit 2,
    one paragraph naming the setting, no traceback, no job left in the queue."""
    before = slurm_cmd(slurm, "squeue", "-h", "-t", "all", "-o", "%A")
    r = nnlab("train", "-m", "hydra/launcher=slurm", override, "activation=relu,tanh", *XOR, cwd=tmp_path, env=slurm)
    assert r.returncode == 2, r.stderr[-3000:]
    assert "configuration error: 1 problem with the SLURM request; nothing was submitted" in r.stderr
    assert says in " ".join(r.stderr.split()) and "Traceback" not in r.stderr
    assert slurm_cmd(slurm, "squeue", "-h", "-t", "all", "-o", "%A") == before


@pytest.mark.slow
def test_slurm_ddp_job_equals_the_torchrun_two_process_run(tmp_path, slurm):
    """hydra/launcher=slurm_ddp (2 SLURM tasks, trainer.strategy=ddp set by the launcher) ends with the metrics
    and weights of torchrun --nproc_per_node=2 on the same config."""
    args = ["trainer.epochs=3", "trainer.batch_size=64", *XOR]
    (tmp_path / "slurm").mkdir()
    (tmp_path / "torchrun").mkdir()
    r = nnlab("train", "-m", "hydra/launcher=slurm_ddp", f"hydra.launcher.partition={PARTITION}", *args,
              cwd=tmp_path / "slurm", env=slurm)
    assert r.returncode == 0, r.stderr[-3000:]
    torchrun = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "nnlab",
                               "train", "trainer.strategy=ddp", *args], cwd=tmp_path / "torchrun",
                              capture_output=True, text=True, timeout=300)
    assert torchrun.returncode == 0, torchrun.stderr[-3000:]
    [job] = find_runs([_sweep_dir(tmp_path / "slurm")])
    [single] = [p.parent for p in (tmp_path / "torchrun").glob("outputs/*/*/metrics.json")]
    assert (job.path / "train.rank1.log").is_file()  # two processes trained this one run
    assert _metrics(job.path) == _metrics(single)
    wa, wb = (load_checkpoint(d / "checkpoints" / "last.pt")["model"] for d in (job.path, single))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_slurm_ddp_refuses_a_single_process_strategy(tmp_path, slurm):
    """trainer.strategy=single with 2 tasks per job would train 2 copies into one folder: refused before sbatch."""
    r = nnlab("train", "-m", "hydra/launcher=slurm_ddp", "trainer.strategy=single", *XOR, cwd=tmp_path, env=slurm)
    assert r.returncode == 2 and "trainer.strategy=single: hydra.launcher asks for 2 tasks per job" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_scancel_mid_training_shows_interrupted_in_the_sweep_table_and_the_hint_resumes(tmp_path, slurm):
    """scancel of one job: it stops after a step, saves last.pt, the sweep still ends with its table (that job
    "interrupted", the other "ok"), exit 130, no traceback; the printed resume command finishes the run."""
    sweep = _start_sweep(tmp_path, slurm, "hydra/launcher=slurm", f"hydra.launcher.partition={PARTITION}",
                         "activation=relu,tanh", *LONG)
    run_dir, job_id = _slurm_job_of(tmp_path, "activation=relu")
    slurm_cmd(slurm, "scancel", job_id)
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 130, err[-3000:]
    assert "Traceback" not in out + err
    rows = {line.split("│")[2].strip(): line.split("│")[-2].strip() for line in out.splitlines()  # [1]: the run folder
            if line.startswith("│")}
    assert rows == {"relu": "interrupted", "tanh": "ok"}
    assert read_run(run_dir).status == "interrupted"
    stopped = load_checkpoint(run_dir / "checkpoints" / "last.pt")["loop"]
    assert 0 < stopped["epoch"] < 300
    [hint] = re.findall(r"resume with: (nnlab train .*)", out)
    resumed = subprocess.run(["bash", "-c", hint], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                             env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_run(run_dir).status == "ok" and read_run(run_dir).metrics["final/epochs"] == 300


@pytest.mark.slow
def test_a_job_stopped_by_slurms_warning_is_requeued_and_ends_like_an_uninterrupted_one(tmp_path, slurm):
    """SLURM's warning signal (USR2, as before the time limit or on preemption) to one job of a sweep: it stops
    after a step, submitit requeues it, the new run resumes from last.pt and ends with exactly the metrics and
    weights of its twin that ran uninterrupted (log_every_n_steps changes nothing the model sees)."""
    sweep = _start_sweep(tmp_path, slurm, "hydra/launcher=slurm", f"hydra.launcher.partition={PARTITION}",
                         "trainer.log_every_n_steps=50,51", *LONG)
    run_dir, job_id = _slurm_job_of(tmp_path, "trainer.log_every_n_steps=50")
    slurm_cmd(slurm, "scancel", "--signal=USR2", job_id)
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 0, err[-3000:]
    twin = run_dir.parent / "trainer.log_every_n_steps=51"
    log = (run_dir / "train.log").read_text()
    assert "stopped by SIGUSR2" in log and "resuming from" in log and "Traceback" not in out + err
    assert "Restarts=1" in slurm_cmd(slurm, "scontrol", "show", "job", job_id)
    assert read_run(run_dir).status == "ok" and not (run_dir / "interrupted.txt").exists()
    assert _metrics(run_dir) == _metrics(twin)
    wa, wb = (load_checkpoint(d / "checkpoints" / "last.pt")["model"] for d in (run_dir, twin))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_a_job_killed_without_a_result_is_failed_in_the_table_and_the_sweep_ends(tmp_path, slurm):
    """SIGKILL to one job's process (no chance to save or answer): the sweep does not hang or end in submitit's
    UncompletedJobError; the job is "failed" with SLURM's state and its log, the other job "ok", exit 1."""
    sweep = _start_sweep(tmp_path, slurm, "hydra/launcher=slurm", f"hydra.launcher.partition={PARTITION}",
                         "activation=relu,tanh", *LONG)
    run_dir, job_id = _slurm_job_of(tmp_path, "activation=relu")
    [events] = run_dir.glob("events.out.tfevents.*")  # TensorBoard names it ...<host>.<pid>.<n>
    os.kill(int(events.name.split(".")[-2]), signal.SIGKILL)
    out, err = sweep.communicate(timeout=300)
    assert sweep.returncode == 1 and "Traceback" not in out + err, err[-3000:]
    run = read_run(run_dir)
    assert run.status == "failed"
    assert run.error.startswith(f"job failed: SLURM job {job_id} ended without a result (state FAILED); "
                                "checkpoints/last.pt holds its last finished epoch; its log: ")
    assert read_run(run_dir.parent / "activation=tanh").status == "ok"


@pytest.mark.slow
def test_sigterm_to_a_local_sweep_stops_it_and_still_prints_the_table(tmp_path):
    """SIGTERM to an in-process sweep (basic launcher): the running job saves and is "interrupted", the jobs not
    yet started are recorded as such, the table prints, exit 130, no traceback."""
    sweep = subprocess.Popen([sys.executable, "-m", "nnlab", "train", "-m", "activation=relu,tanh", *LONG],
                             cwd=tmp_path, env={**os.environ, "COLUMNS": "200"}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("outputs/multirun/*/*/activation=relu/checkpoints/last.pt")):
        assert time.monotonic() < deadline, "the first job saved no checkpoint"
        time.sleep(0.2)
    sweep.send_signal(signal.SIGTERM)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 130 and "Traceback" not in out + err, err[-3000:]
    runs = {r.path.name: r for r in find_runs([_sweep_dir(tmp_path)])}
    assert [(k, r.status) for k, r in sorted(runs.items())] == [("activation=relu", "interrupted"),
                                                              ("activation=tanh", "interrupted")]
    assert runs["activation=tanh"].interrupted == "not started: the sweep was stopped by SIGTERM"
    assert "2 of 2 runs were interrupted" in out


def test_stop_request_records_every_signal_and_only_a_second_ctrl_c_kills():
    """Preemption sends SIGTERM then SLURM's warning (USR2): both are recorded, neither kills; SIGTERM twice
    (slurmstepd and srun) does not kill either; the second Ctrl-C does."""
    with _StopRequest() as stop:
        for sig in (signal.SIGTERM, signal.SIGUSR2, signal.SIGTERM):
            signal.raise_signal(sig)
        assert stop.names() == ["SIGTERM", "SIGUSR2"]
        assert str(Interrupted(*stop.names())) == "SIGTERM and SIGUSR2"
    with _StopRequest() as stop, pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)


def test_several_launched_processes_refuse_strategy_single(monkeypatch):
    """Under a 2-task SLURM step (or torchrun's WORLD_SIZE=2), trainer.strategy=single is a configuration error."""
    from nnlab.distributed import setup
    from nnlab.registry import ConfigError

    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    with pytest.raises(ConfigError, match=r"trainer.strategy=single but SLURM .* started 2 processes"):
        setup("single", torch.device("cpu"))
    monkeypatch.delenv("SLURM_STEP_NUM_TASKS")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="trainer.strategy=single but torchrun started 2 processes"):
        setup("single", torch.device("cpu"))


def test_the_local_cluster_script_is_where_the_tests_expect_it():
    """scripts/slurm_local.sh answers usage errors with exit 2 (start/stop/status/env are its commands)."""
    r = subprocess.run(["bash", str(REPO / "scripts" / "slurm_local.sh"), "bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "start|stop|status|env" in r.stderr
