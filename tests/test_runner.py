"""Real training runs through runner.run: the chapter's claims, real data, TensorBoard contents."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from rich.console import Console
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from nnlab.checkpoint import load_checkpoint
from nnlab.loop import evaluate
from nnlab.runner import build, run
from nnlab.tracker import Tracker

from helpers import SHARED_DATA, needs_fashion


def train(cfg, run_dir, **tracker_kw):
    tracker = Tracker(run_dir, progress=False, console=Console(file=open("/dev/null", "w")), **tracker_kw)
    try:
        return run(cfg, run_dir, {"model": cfg["model"]["name"]}, tracker)
    finally:
        tracker.close()


def test_mlp_solves_xor(cfg_for, tmp_path):
    """A 2-256-2 tanh MLP fits XOR exactly with the default trainer."""
    m = train(cfg_for("data=xor", "model=mlp", "activation=tanh"), tmp_path)
    assert m["final/train_acc"] == 1.0 and m["final/test_acc"] == 1.0


def test_perceptron_cannot_solve_xor(cfg_for, tmp_path, caplog):
    """No linear boundary fits XOR: at most 3 of 4 rows, and the summary says so."""
    caplog.set_level("INFO", logger="nnlab")
    m = train(cfg_for("data=xor", "model=perceptron", "trainer.epochs=30"), tmp_path)
    assert m["final/train_acc"] <= 0.75
    assert "NOT solved: perceptron" in caplog.text and "no line separates" in caplog.text


@pytest.mark.parametrize("gate", ["and", "or", "nand"])
def test_perceptron_learns_linearly_separable_gates(cfg_for, tmp_path, gate):
    """A perceptron fits the linearly separable gates (AND, OR, NAND) to 100% train accuracy."""
    m = train(cfg_for("data=gates", f"data.gate={gate}", "model=perceptron", "loss=bce_logits",
                      "optimizer.lr=0.05", "trainer.epochs=20"), tmp_path)
    assert m["final/train_acc"] == 1.0


def test_run_folder_contents_and_tensorboard_tags(cfg_for, tmp_path, fake_mnist):
    """metrics.json, last/best checkpoints and the expected scalar and histogram tags in the event file."""
    cfg = cfg_for("data=mnist", f"data.root={fake_mnist}", "trainer.epochs=2", "trainer.log_every_n_steps=2",
                  "logger.histogram_every_n_epochs=1")
    train(cfg, tmp_path, histogram_every_n_epochs=1)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"final/train_acc", "final/val_acc", "final/test_acc", "final/epochs"} <= set(metrics)
    assert (tmp_path / "checkpoints" / "last.pt").is_file() and (tmp_path / "checkpoints" / "best.pt").is_file()
    ea = EventAccumulator(str(tmp_path), size_guidance={"histograms": 0, "scalars": 0})
    ea.Reload()
    scalars = set(ea.Tags()["scalars"])
    assert {"Loss/train", "Accuracy/train", "Loss/val", "Accuracy/val", "optim/lr", "optim/grad_norm",
            "perf/samples_per_s", "Loss/train_step", "final/test_acc"} <= scalars
    assert not {"lr", "epoch", "final/train_acc"} & scalars  # one tag per cadence; no one-dot charts of every split
    assert min(scalars) in ("Accuracy/train", "Accuracy/val")  # the learning curves sort first (capitalized)
    assert len(ea.Scalars("Accuracy/val")) == 2
    hists = set(ea.Tags()["histograms"])
    assert "weights/hidden.0.0.weight" in hists and "grads/out.weight" in hists
    # one x axis: epoch scalars and histograms at the global step where the epoch ended
    epoch_steps = [e.step for e in ea.Scalars("Accuracy/val")]
    assert [e.step for e in ea.Histograms("weights/hidden.0.0.weight")] == epoch_steps
    assert epoch_steps[-1] == ea.Scalars("Loss/train_step")[-1].step
    assert [e.step for e in ea.Scalars("final/test_acc")] == [epoch_steps[-1]]


@pytest.mark.parametrize(("regularizer", "final"), [("none", "last.pt"), ("early_stopping", "best.pt")])
def test_final_val_scores_are_those_of_the_final_weights(cfg_for, tmp_path, fake_mnist, regularizer, final):
    """final/val_* reuses the last epoch's validation, unless early stopping restored the best weights:
    either way it equals a fresh evaluation of the weights the run ends with."""
    cfg = cfg_for("data=mnist", f"data.root={fake_mnist}", "trainer.epochs=3", f"regularizer={regularizer}",
                  "optimizer.lr=0.05")
    metrics = train(cfg, tmp_path / "run")
    p = build(cfg, tmp_path / "fresh")
    p.model.load_state_dict(load_checkpoint(tmp_path / "run" / "checkpoints" / final)["model"])
    assert evaluate(p, p.data.val) == {"loss": metrics["final/val_loss"], "acc": metrics["final/val_acc"]}


def test_hparams_are_in_the_runs_own_event_file(cfg_for, tmp_path):
    """hparams + metrics go into this run's folder (no nested run folder as add_hparams would create)."""
    train(cfg_for("data=xor", "trainer.epochs=2"), tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.is_dir() and p.name not in ("checkpoints",)]
    ea = EventAccumulator(str(tmp_path))
    ea.Reload()
    plugin = ea.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"} <= set(plugin)
    from tensorboard.plugins.hparams import plugin_data_pb2

    start = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/session_start_info"])
    hp = start.session_start_info.hparams
    assert hp["activation"].string_value == "relu" and hp["optimizer.lr"].number_value == 0.001
    assert hp["model"].string_value == "mlp" and "model.name" not in hp
    assert start.session_start_info.group_name == ""  # a run on its own: its own row
    exp = plugin_data_pb2.HParamsPluginData.FromString(plugin["_hparams_/experiment"]).experiment
    assert [m.name.tag for m in exp.metric_infos][:2] == ["Accuracy/val", "Loss/val"]
    assert json.loads((tmp_path / "hparams.json").read_text())["activation"] == "relu"


def test_same_seed_same_metrics(cfg_for, tmp_path, fake_mnist):
    """Two runs of one config with one seed on CPU give identical metrics."""
    cfg = cfg_for("data=mnist", f"data.root={fake_mnist}", "trainer.epochs=2", "regularizer=dropout",
                  "regularizer.augment=true")
    a = train(cfg, tmp_path / "a")
    b = train(cfg, tmp_path / "b")
    a.pop("final/train_seconds"), b.pop("final/train_seconds")
    assert a == b


def test_image_models_train_in_channels_last(cfg_for, tmp_path, fake_mnist):
    """On CPU the convolution weights are NHWC (oneDNN's fast layout), and the model computes what the same
    weights compute in PyTorch's default NCHW layout."""
    p = build(cfg_for("data=mnist", f"data.root={fake_mnist}", "model=cnn", "model.blocks=1", "device=cpu"), tmp_path)
    convs = [m for m in p.model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    plain = copy.deepcopy(p.model).to(memory_format=torch.contiguous_format).eval()
    assert not [m for m in plain.modules() if isinstance(m, nn.Conv2d)][1].weight.is_contiguous(
        memory_format=torch.channels_last)  # (a 1-channel conv's weight is both layouts at once)
    x = p.data.val.x[:32]
    torch.testing.assert_close(p.model.eval()(x), plain(x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_compiled_training_ends_like_eager_training(cfg_for, tmp_path):
    """trainer.compile=true compiles the training steps only: the run ends where the eager one does (to float
    tolerance), with the same checkpoint keys and its end-of-run activation statistics."""
    eager = train(cfg_for("data=xor", "trainer.epochs=3"), tmp_path / "eager")
    compiled = train(cfg_for("data=xor", "trainer.epochs=3", "trainer.compile=true"), tmp_path / "compiled")
    for key in ("final/train_loss", "final/test_loss", "final/test_acc", "final/dead_fraction"):
        assert compiled[key] == pytest.approx(eager[key], rel=1e-4, abs=1e-6), key
    eager_keys, compiled_keys = (load_checkpoint(tmp_path / run / "checkpoints" / "last.pt")["model"].keys()
                                 for run in ("eager", "compiled"))
    assert compiled_keys == eager_keys  # no `_orig_mod.` prefixes: a compiled run resumes into an eager model


def test_amp_bf16_on_cpu_trains(cfg_for, tmp_path, fake_mnist):
    """amp=true on CPU runs bf16 autocast (or warns and falls back to fp32) and still learns."""
    m = train(cfg_for("data=mnist", f"data.root={fake_mnist}", "trainer.epochs=3", "trainer.amp=true",
                      "trainer.clip.mode=norm"), tmp_path)
    assert m["final/test_acc"] > 0.8


@pytest.mark.slow
@needs_fashion()
def test_fashion_mnist_short_run_beats_80_percent(cfg_for, tmp_path):
    """One epoch of the default MLP on the real Fashion-MNIST files scores > 80% on the official test split."""
    m = train(cfg_for("data=fashion_mnist", f"data.root={SHARED_DATA}", "trainer.epochs=1"), tmp_path)
    assert m["final/test_acc"] > 0.80
