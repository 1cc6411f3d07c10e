"""Every shipped config choice composes, validates and builds a real pipeline; bad input is named."""

from __future__ import annotations

import pytest

from nnlab.cli.listing import groups
from nnlab.config.validate import group_choices, validate
from nnlab.registry import ConfigError
from nnlab.runner import build

# what a choice needs beside it to be a sensible run (everything else stays at the defaults)
COMPANIONS = {
    ("model", "siamese"): ["data=fashion_pairs", "data.pairs=40"],
    ("model", "cnn"): ["data=mnist"],
    ("model", "multibranch"): ["data=mnist"],
    ("model", "lstm"): ["data=adding", "data.train=64", "data.val=16", "data.test=16"],
    ("model", "gru"): ["data=adding", "data.train=64", "data.val=16", "data.test=16"],
    ("data", "adding"): ["model=lstm", "data.train=64", "data.val=16", "data.test=16"],
    ("data", "fashion_mnist_seq"): ["model=gru"],
    ("loss", "contrastive"): ["model=siamese", "data=fashion_pairs", "data.pairs=40"],
    ("data", "mnist_pairs"): ["model=siamese"],
    ("data", "fashion_pairs"): ["model=siamese", "data.pairs=40"],
}
PRESET_OF = {("optimizer", "sgd_momentum"): "sgd"}  # preset files that configure another registry entry
SKIP_BUILD = {("device", "cuda"), ("device", "mps")}  # may be absent on the test machine
CHOICES = [(g, c) for g in ("data", "model", "activation", "init", "loss", "optimizer", "scheduler",
                            "regularizer", "trainer", "device", "logger") for c in group_choices(g)]


@pytest.mark.parametrize(("group", "choice"), CHOICES, ids=[f"{g}={c}" for g, c in CHOICES])
def test_every_choice_composes_validates_and_builds(cfg_for, tmp_path, fake_mnist, group, choice):
    """Every shipped choice of every group composes, validates and builds a model with parameters,
    and ends up as that group's `name` (a preset as the entry it configures)."""
    overrides = ["data=xor", f"{group}={choice}", *COMPANIONS.get((group, choice), [])]
    cfg = cfg_for(*overrides)
    if cfg["data"]["name"] in ("mnist", "fashion_mnist", "mnist_pairs", "fashion_pairs", "fashion_mnist_seq"):
        cfg["data"]["root"] = str(fake_mnist)
        if "fashion" in cfg["data"]["name"]:
            (fake_mnist / "FashionMNIST").symlink_to(fake_mnist / "MNIST")
    validate(cfg)
    if (group, choice) in SKIP_BUILD:
        return
    p = build(cfg, tmp_path)
    assert sum(q.numel() for q in p.model.parameters()) > 0
    if group not in ("regularizer", "trainer", "logger"):
        assert cfg[group]["name"] == PRESET_OF.get((group, choice), choice)


def test_groups_are_listed():
    """`groups()` lists every config group a user can choose from, `experiment` included."""
    assert {"data", "model", "activation", "init", "loss", "optimizer", "scheduler", "regularizer",
            "trainer", "device", "experiment"} <= set(groups())


def test_regularizer_presets_reach_their_keys(cfg_for):
    """Regularizer presets set the model, optimizer and regularizer keys they stand for; a CLI override wins."""
    combined = cfg_for("regularizer=combined")
    assert combined["model"]["batchnorm"] and combined["model"]["dropout"] == 0.3
    assert combined["optimizer"]["name"] == "sgd" and combined["optimizer"]["lr"] == 0.1
    assert cfg_for("regularizer=l1")["regularizer"]["l1"] > 0
    assert cfg_for("regularizer=dropout", "model.dropout=0.1")["model"]["dropout"] == 0.1  # CLI wins


BAD = [
    (["optimizer.lr=-1"], "optimizer.lr=-1: must be a number > 0"),
    (["optimizer.lr=0"], "optimizer.lr=0: must be a number > 0"),
    (["optimizer.lr=fast"], "optimizer.lr='fast': must be a number > 0"),
    (["model.dropout=1.5"], "model.dropout=1.5: must be a number ≥ 0 and < 1"),
    (["model.dropout=-0.1"], "model.dropout=-0.1: must be a number ≥ 0 and < 1"),
    (["trainer.epochs=0"], "trainer.epochs=0: must be an integer ≥ 1"),
    (["trainer.epochs=2.5"], "trainer.epochs=2.5: must be an integer ≥ 1"),
    (["trainer.batch_size=0"], "trainer.batch_size=0: must be an integer ≥ 1"),
    (["model.hidden=[256,-3]"], "model.hidden=[256, -3]: must be a non-empty list of positive integers"),
    (["model.hidden=[]"], "model.hidden=[]: must be a non-empty list of positive integers"),
    (["trainer.clip.mode=norma"], "trainer.clip.mode='norma': choose one of: none, norm, value"),
    (["trainer.clip.max=0"], "trainer.clip.max=0: must be a number > 0"),
    (["trainer.amp=maybe"], "trainer.amp='maybe': must be true or false"),
    (["optimizer=sgd", "optimizer.momentum=1.2"], "optimizer.momentum=1.2: must be a number ≥ 0 and < 1"),
    (["optimizer=sgd", "optimizer.momentum=0", "optimizer.nesterov=true"], "Nesterov momentum needs"),
    (["optimizer.betas=[0.9,1.5]"], "optimizer.betas=[0.9, 1.5]: must be two numbers in [0, 1)"),
    (["optimizer.weight_decay=-1"], "optimizer.weight_decay=-1: must be a number ≥ 0"),
    (["data.val_fraction=1"], "data.val_fraction=1: must be a number > 0 and < 1"),
    (["init=kaiming_normal", "init.mode=fan_both"], "init.mode='fan_both': choose one of: fan_in, fan_out"),
    (["init=normal", "init.std=0"], "init.std=0: must be a number > 0"),
    (["activation.name=relux"], "activation.name='relux': choose one of: elu, gelu, leaky_relu, mish, relu"),
    (["scheduler=onecycle", "scheduler.warmup_epochs=1"], "'onecycle' warms up by itself"),
    (["scheduler=cosine", "scheduler.warmup_epochs=20"], "must be shorter than trainer.epochs=10"),
    (["loss=contrastive"], "the contrastive loss needs model=siamese"),
    (["model=siamese"], "model=siamese with data=mnist: a siamese net compares pairs"),
    (["data=xor", "model=cnn"], "model=cnn with data=xor: convolutions need image data"),
    (["data=fashion_pairs"], "pair data needs model=siamese"),
    (["regularizer.early_stopping.monitor=val/acc"], "val/acc should be maximized (mode=max)"),
    (["regularizer.early_stopping.monitor=val/f1"], "monitor='val/f1': choose one of: val/loss, val/acc"),
    (["loss=cross_entropy", "loss.label_smoothing=1"], "loss.label_smoothing=1: must be a number ≥ 0 and < 1"),
    (["data=gates", "data.gate=nor"], "data.gate='nor': choose one of: and, or, nand, xor"),
]


@pytest.mark.parametrize(("overrides", "message"), BAD, ids=[" ".join(o) for o, _ in BAD])
def test_bad_input_is_named_with_what_is_allowed(cfg_for, overrides, message):
    """Each bad value fails validation with a message naming the key, its value and what is allowed."""
    with pytest.raises(ConfigError) as e:
        validate(cfg_for(*overrides))
    assert message in str(e.value)


def test_all_problems_in_one_error(cfg_for):
    """The acceptance example: three problems, one error, each named."""
    with pytest.raises(ConfigError) as e:
        validate(cfg_for("optimizer.lr=-1", "model.dropout=1.5", "trainer.epochs=0"))
    msg = str(e.value)
    assert msg.startswith("3 problems in the configuration")
    assert all(k in msg for k in ("optimizer.lr=-1", "model.dropout=1.5", "trainer.epochs=0"))


def test_new_keys_are_checked_before_any_data(cfg_for):
    """The chapter parts' keys: multi-branch widths split evenly, thresholds in (0, 1], freeze choices, classes."""
    cfg = cfg_for("model=multibranch", "data=fashion_mnist", "model.channels=[30,64]", "init.freeze=head",
                  "data.classes=[3]", "+model.exit_threshold=1.5")
    with pytest.raises(ConfigError) as e:
        validate(cfg)
    text = str(e.value)
    assert "model.channels=[30, 64]: each block's width is split evenly between its 4 paths" in text
    assert "init.freeze='head': choose one of: none, body" in text
    assert "data.classes=[3]: must be null (all classes) or a list of at least two distinct class indices" in text
    assert "model.exit_threshold=1.5: must be a number > 0 and ≤ 1" in text
