"""DistributedDataParallel through torchrun on CPU (gloo, 2 processes): same result as one process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import torch

from nnlab.checkpoint import load_checkpoint

from helpers import nnlab

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "nnlab", "train",
            "trainer.strategy=ddp"]

pytestmark = pytest.mark.slow  # every test here trains real runs in subprocesses



def _torchrun(*args, cwd, timeout=300):
    return subprocess.run([*TORCHRUN, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_two_process_ddp_equals_one_process_with_the_same_global_batch(tmp_path, fake_mnist):
    """2 ranks x 32 samples per step end with the parameters of 1 process x 64 (within 1e-5)."""
    common = ["data=mnist", f"data.root={fake_mnist}", "trainer.batch_size=64", "trainer.epochs=2", "logger=quiet"]
    (tmp_path / "single").mkdir()
    (tmp_path / "ddp").mkdir()
    single = nnlab("train", *common, cwd=tmp_path / "single")
    assert single.returncode == 0, single.stderr
    ddp = _torchrun(*common, cwd=tmp_path / "ddp")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    [a] = list((tmp_path / "single").glob("outputs/*/*/checkpoints/last.pt"))
    [b] = list((tmp_path / "ddp").glob("outputs/*/*/checkpoints/last.pt"))  # one checkpoint folder for 2 ranks
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    assert wa.keys() == wb.keys()  # saved unwrapped (no "module." prefix)
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], atol=1e-5, rtol=0)
    events = list((tmp_path / "ddp").glob("outputs/**/events.out.tfevents.*"))
    assert len(events) == 1 and len(list((tmp_path / "ddp").glob("outputs/**/metrics.json"))) == 1


def test_ddp_run_stops_on_sigterm_and_resumes(tmp_path, fake_mnist):
    """SIGTERM stops a 2-rank DDP run mid-training with a checkpoint; `resume=latest` finishes all 40 epochs."""
    args = ["data=mnist", f"data.root={fake_mnist}", "trainer.epochs=40", "logger=quiet",
            "trainer.log_every_n_steps=1"]
    proc = subprocess.Popen([*TORCHRUN, *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("outputs/*/*/checkpoints/last.pt")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    [ckpt] = list(tmp_path.glob("outputs/*/*/checkpoints/last.pt"))
    stopped = load_checkpoint(ckpt)["loop"]["epoch"]
    assert 0 < stopped < 40
    resumed = _torchrun("resume=latest", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert load_checkpoint(ckpt)["loop"]["epoch"] == 40
