"""What a run writes for TensorBoard beyond the curves: the TEXT tab (config, command, summary), the
custom-scalars layout, the confusion matrix and misclassified images of image data, siamese test embeddings."""

from __future__ import annotations

import pytest
import torch
from rich.console import Console
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from nnlab.pictures import confusion, confusion_markdown
from nnlab.runner import run
from nnlab.tracker import Tracker, markdown_table


def _train(cfg, run_dir, overrides=()):
    tracker = Tracker(run_dir, progress=False, console=Console(file=open("/dev/null", "w")))
    try:
        return run(cfg, run_dir, {}, tracker, overrides=list(overrides))
    finally:
        tracker.close()


def test_confusion_counts_rows_true_columns_predicted():
    y, pred = torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([0, 1, 1, 2, 0, 2])
    assert confusion(y, pred, 3).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert "| **c** | 1 | 0 | 2 |" in confusion_markdown(confusion(y, pred, 3), ["a", "b", "c"])


def test_markdown_summary_is_a_split_by_metric_table():
    text = markdown_table({"final/train_acc": 1.0, "final/val_acc": 0.5, "final/test_acc": 0.25,
                           "final/epochs": 3.0})
    assert "| test | 0.2500 |" in text and "- epochs: 3" in text


@pytest.mark.slow
def test_image_run_writes_text_layout_confusion_and_misclassified(cfg_for, tmp_path, fake_mnist):
    """TEXT: command that reproduces the run (quoted), resolved config, final table; a custom-scalars layout;
    at the last step a confusion-matrix image + table and a grid of misclassified test images."""
    cfg = cfg_for("data=mnist", f"data.root={fake_mnist}", "trainer.epochs=1", "optimizer.lr=0.0001")
    _train(cfg, tmp_path, ["data=mnist", "model.hidden=[8, 8]"])
    ea = EventAccumulator(str(tmp_path), size_guidance={"images": 0, "tensors": 0})
    ea.Reload()
    texts = {t: ea.Tensors(t)[-1].tensor_proto.string_val[0].decode() for t in ea.Tags()["tensors"]
             if t.endswith("text_summary")}
    assert "nnlab train data=mnist 'model.hidden=[8, 8]'" in texts["run/command/text_summary"]
    assert "name: mnist" in texts["run/config/text_summary"]
    assert "| test |" in texts["run/summary/text_summary"]
    assert "true ↓ / predicted →" in texts["test/confusion_matrix/text_summary"]
    assert {"test/confusion_matrix", "test/misclassified"} <= set(ea.Tags()["images"])
    last_step = ea.Scalars("Accuracy/val")[-1].step
    assert ea.Images("test/confusion_matrix")[-1].step == last_step
    assert "custom_scalars__config__" in ea.Tags()["tensors"]


@pytest.mark.slow
def test_siamese_run_puts_test_embeddings_in_the_projector(cfg_for, tmp_path, fake_mnist):
    cfg = cfg_for("data=mnist_pairs", f"data.root={fake_mnist}", "model=siamese", "loss=bce_logits",
                  "data.pairs=400", "trainer.epochs=1")
    _train(cfg, tmp_path)
    config = (tmp_path / "projector_config.pbtxt").read_text()
    assert "test_embeddings" in config and "metadata.tsv" in config and "sprite" in config
