"""Nothing a user does by mistake loses work: checkpoints, exact resume, signals, non-finite guard."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch
from rich.console import Console

from nnlab.checkpoint import load_checkpoint, save_atomic, write_text_atomic
from nnlab.loop import Interrupted, NonFinite
from nnlab.registry import ConfigError
from nnlab.runner import run
from nnlab.tracker import Tracker

from helpers import nnlab


def _tracker(run_dir):
    return Tracker(run_dir, progress=False, histogram_every_n_epochs=0, console=Console(file=open(os.devnull, "w")))


def _run(cfg, run_dir, resume=None, sigterm_at_forward=None):
    """runner.run; optionally a real SIGTERM is raised inside the forward pass number `sigterm_at_forward`."""
    tracker = _tracker(run_dir)
    handle = None
    if sigterm_at_forward is not None:
        import nnlab.runner as runner_module

        original_build = runner_module.build

        def build_with_kill(*args, **kw):
            p = original_build(*args, **kw)
            calls = {"n": 0}

            def hook(module, inputs):
                calls["n"] += module.training
                if module.training and calls["n"] == sigterm_at_forward:
                    os.kill(os.getpid(), signal.SIGTERM)
            nonlocal handle
            handle = p.model.register_forward_pre_hook(hook)
            return p
        runner_module.build = build_with_kill
    try:
        return run(cfg, run_dir, {}, tracker, resume=resume)
    finally:
        tracker.close()
        if sigterm_at_forward is not None:
            runner_module.build = original_build


def _final(metrics):
    return {k: v for k, v in metrics.items() if k != "final/train_seconds"}


@pytest.mark.slow
@pytest.mark.parametrize("model", [["model=mlp"], ["model=cnn", "model.channels=[4,8]", "model.head=16"]],
                         ids=["mlp", "cnn"])
@pytest.mark.parametrize("kill_at", [8, 12], ids=["mid-epoch", "epoch-boundary"])  # 6 steps an epoch
def test_sigterm_then_resume_equals_uninterrupted(cfg_for, tmp_path, fake_mnist, kill_at, model):
    """A run stopped by SIGTERM (mid-epoch or at an epoch boundary) and resumed ends bitwise equal (the CNN
    in channels_last, its batch-norm statistics included)."""
    cfg = cfg_for("data=mnist", f"data.root={fake_mnist}", *model, "trainer.epochs=3", "trainer.batch_size=100",
                  "regularizer=dropout", "regularizer.augment=true", "scheduler=cosine", "scheduler.warmup_epochs=1",
                  "trainer.log_every_n_steps=3")
    straight = _run(cfg, tmp_path / "straight")
    with pytest.raises(Interrupted, match="SIGTERM"):
        _run(cfg, tmp_path / "cut", sigterm_at_forward=kill_at)
    state = load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")
    assert state["loop"]["global_step"] == kill_at  # the step in flight finished before stopping
    resumed = _run(cfg, tmp_path / "cut", resume=tmp_path / "cut" / "checkpoints" / "last.pt")
    assert _final(resumed) == _final(straight)


@pytest.mark.slow
def test_sigterm_to_real_cli_saves_and_resumes(tmp_path, fake_mnist):
    """SIGTERM to `nnlab train` exits 130 with last.pt and a resume hint; `resume=<folder>` finishes it."""
    import subprocess
    import sys

    args = [sys.executable, "-m", "nnlab", "train", "data=mnist", f"data.root={fake_mnist}", "trainer.epochs=60",
            "logger=quiet"]
    proc = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not list(tmp_path.glob("outputs/*/*/checkpoints/last.pt")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    [run_dir] = [p.parent.parent for p in tmp_path.glob("outputs/*/*/checkpoints/last.pt")]
    assert f"nnlab train resume={run_dir.relative_to(tmp_path)}" in err
    stopped_at = load_checkpoint(run_dir / "checkpoints" / "last.pt")["loop"]["epoch"]
    assert 0 < stopped_at < 60
    resumed = nnlab("train", "resume=latest", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["final/epochs"] == 60
    overrides = (run_dir / ".hydra" / "overrides.yaml").read_text()
    assert "trainer.epochs=60" in overrides  # the original run's record is kept on resume


def test_non_finite_loss_is_diagnosed(cfg_for, tmp_path, fake_mnist):
    """lr=1e10 diverges; the run stops naming the cause and the chapter's fixes."""
    cfg = cfg_for("data=mnist", f"data.root={fake_mnist}", "optimizer=sgd", "optimizer.lr=1e10",
                  "trainer.log_every_n_steps=1")
    with pytest.raises(NonFinite) as e:
        _run(cfg, tmp_path)
    msg = str(e.value)
    assert "non-finite" in msg and "optimizer.lr is 1e+10" in msg and "trainer.clip.mode=norm" in msg


@pytest.mark.slow
def test_non_finite_exit_code_and_message_from_cli(tmp_path):
    """A diverging CLI run exits 3 with 'training diverged: non-finite' and no traceback."""
    r = nnlab("train", "data=xor", "optimizer=sgd", "optimizer.lr=1e30", "trainer.log_every_n_steps=1", cwd=tmp_path)
    assert r.returncode == 3 and "training diverged: non-finite" in r.stderr and "Traceback" not in r.stderr


def test_atomic_save_keeps_previous_file_on_failure(tmp_path):
    """A save that fails midway keeps the previous checkpoint intact and leaves no temp file."""
    path = tmp_path / "last.pt"
    save_atomic({"epoch": 1}, path)

    class Boom:
        def __reduce__(self):
            raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        save_atomic({"epoch": 2, "bad": Boom()}, path)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_atomic_text_replaces_the_whole_file_and_leaves_no_temp_file(tmp_path):
    """The notes beside a run (interrupted.txt, the DDP run-folder note) are written whole: a longer old
    content does not survive a shorter new one, the folder is made, no temp file stays."""
    path = tmp_path / "run" / "interrupted.txt"
    write_text_atomic(path, "stopped by SIGTERM; a long first note\n")
    write_text_atomic(path, "not started\n")
    assert path.read_text() == "not started\n"
    assert [p.name for p in path.parent.iterdir()] == ["interrupted.txt"]


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    """A truncated checkpoint raises a ConfigError saying it is corrupt or truncated."""
    path = tmp_path / "last.pt"
    save_atomic({"model": {"w": torch.ones(1000)}}, path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(ConfigError, match="is corrupt or truncated and cannot be loaded"):
        load_checkpoint(path)


def test_checkpoints_load_with_weights_only(cfg_for, tmp_path):
    """Checkpoints load with torch.load(weights_only=True) and hold the full training state."""
    _run(cfg_for("data=xor", "trainer.epochs=2"), tmp_path)
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert {"model", "optimizer", "schedule", "scaler", "rng", "loop", "config"} <= set(state)
    assert state["loop"]["epoch"] == 2


def test_resume_without_checkpoint_is_refused(tmp_path):
    """resume= a folder without checkpoints/last.pt fails, saying it holds no checkpoint."""
    r = nnlab("train", f"resume={tmp_path / 'nothing'}", cwd=tmp_path)
    assert r.returncode != 0 and "holds no checkpoints/last.pt to resume from" in r.stderr


def test_amp_skipped_steps_are_counted_not_fatal(cfg_for, tmp_path, fake_mnist):
    """With a GradScaler (fp16), an inf gradient skips that step and is counted; training goes on."""
    from nnlab.devices import Precision
    from nnlab.loop import fit
    from nnlab.runner import build

    p = build(cfg_for("data=mnist", f"data.root={fake_mnist}", "trainer.epochs=2"), tmp_path)
    p.precision = Precision(torch.device("cpu"), torch.float16)
    calls = {"n": 0}

    def poison_once(grad):
        calls["n"] += 1
        return torch.full_like(grad, float("inf")) if calls["n"] == 3 else grad
    p.model.out.weight.register_hook(poison_once)
    st = fit(p, _tracker(tmp_path))
    assert st.amp_skipped == 1 and st.epoch == 2
    assert torch.isfinite(p.model.out.weight).all()


def test_best_checkpoint_survives_later_epochs(cfg_for, tmp_path, fake_mnist):
    """best.pt is the best epoch's state even after later, worse epochs rewrite last.pt."""
    # "best" = the highest validation loss: the first epoch, since the loss falls every epoch after it
    cfg = cfg_for("data=mnist", f"data.root={fake_mnist}", "trainer.epochs=6")
    cfg["regularizer"]["early_stopping"]["mode"] = "max"
    _run(cfg, tmp_path)
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["loop"]["epoch"] == 6 and last["loop"]["best_epoch"] == 1 and best["loop"]["epoch"] == 1
    assert not torch.equal(best["model"]["out.weight"], last["model"]["out.weight"])


def test_resume_does_not_log_the_init_curve_twice(cfg_for, tmp_path, fake_mnist):
    """The run's TensorBoard holds one init/activation_std_by_layer point per layer, also after a resume."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = cfg_for("data=mnist", f"data.root={fake_mnist}", "trainer.epochs=2", "trainer.batch_size=100")
    with pytest.raises(Interrupted):
        _run(cfg, tmp_path, sigterm_at_forward=3)
    _run(cfg, tmp_path, resume=tmp_path / "checkpoints" / "last.pt")
    ea = EventAccumulator(str(tmp_path), size_guidance={"scalars": 0})
    ea.Reload()
    assert [e.step for e in ea.Scalars("init/activation_std_by_layer")] == [0]  # one ReLU layer in the MLP


def test_ctrl_c_while_torch_is_imported_takes_effect_when_the_import_is_done():
    """Ctrl-C inside the block that imports torch does not cut the import short (a half-loaded extension
    module ends in a traceback or in the interrupt being lost): the block finishes, then KeyboardInterrupt."""
    from nnlab.cli.failures import ctrl_c_held

    finished = []
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (CI may ignore SIGINT)
    try:
        with pytest.raises(KeyboardInterrupt), ctrl_c_held():
            signal.raise_signal(signal.SIGINT)
            finished.append(True)
        assert finished
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # ignored (nohup): stays ignored, nothing is raised
        with ctrl_c_held():
            signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_signal_after_the_last_step_still_stops_the_run(tmp_path, cfg_for):
    """SIGTERM after the last training step (here during the last epoch's end, as in its validation or
    checkpoint) is not lost: the run ends as Interrupted with last.pt holding every epoch, and resuming it
    only scores the run."""
    cfg = cfg_for("data=xor", "trainer.epochs=2")
    tracker = _tracker(tmp_path)

    def hook(epoch, _metrics):
        if epoch == 2:
            signal.raise_signal(signal.SIGTERM)
    try:
        with pytest.raises(Interrupted, match="SIGTERM"):
            run(cfg, tmp_path, {}, tracker, epoch_hook=hook)
    finally:
        tracker.close()
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["loop"]["epoch"] == 2
    assert not (tmp_path / "metrics.json").exists()
    resumed = _run(cfg, tmp_path, resume=tmp_path / "checkpoints" / "last.pt")
    assert resumed["final/epochs"] == 2
