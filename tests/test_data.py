"""Data: IDX parsing, real offline files, clear errors for missing/corrupt files, batching, augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnlab.data import build_data, shuffled_batches
from nnlab.data.augment import random_affine
from nnlab.data.idx import read_idx, write_idx
from nnlab.data.pairs import make_pairs
from nnlab.data.vision import pixel_standardizer
from nnlab.registry import ConfigError

from helpers import SHARED_DATA, needs_fashion


def test_idx_round_trip(tmp_path):
    """An array written as IDX reads back as the identical tensor."""
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "x-idx3-ubyte", a)
    assert torch.equal(read_idx(tmp_path / "x-idx3-ubyte"), torch.from_numpy(a))


def test_truncated_idx_is_named(tmp_path):
    """A truncated IDX file is named with the shape its header promises; a non-IDX file is named as such."""
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((10, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ConfigError, match="is truncated or corrupt: its header promises shape \\(10, 28, 28\\)"):
        read_idx(path)
    path.write_bytes(b"\x12\x34garbage")
    with pytest.raises(ConfigError, match="is not an IDX file"):
        read_idx(path)


def test_generated_mnist_loads_normalized(fake_mnist):
    """Train mean/std normalize every split; the validation split is carved from train."""
    data = build_data("mnist", root=str(fake_mnist), val_fraction=0.1, download=False)
    assert (len(data.train), len(data.val), len(data.test)) == (540, 60, 200)
    assert data.train.x.shape[1:] == (1, 28, 28) and data.num_classes == 10
    assert abs(data.train.x.mean().item()) < 1e-4 and data.train.x.std().item() == pytest.approx(1, abs=1e-3)


def test_missing_files_error_names_folder_and_files(tmp_path):
    """Missing MNIST files: the error names the expected files, the folder to put them in and NNLAB_DATA."""
    with pytest.raises(ConfigError) as e:
        build_data("mnist", root=str(tmp_path), download=False)
    msg = str(e.value)
    assert "MNIST train split not found: place train-images-idx3-ubyte, train-labels-idx1-ubyte" in msg
    assert str(tmp_path.resolve() / "MNIST" / "raw") in msg and "NNLAB_DATA" in msg


def test_offline_download_failure_is_explained(tmp_path):
    """With download=true and no network, the error still names the folder and adds why the download failed."""
    with pytest.raises(ConfigError, match="The download failed: "):
        build_data("fashion_mnist", root=str(tmp_path), download=True)


def test_pixel_standardizer_matches_float_statistics():
    """Counted from the uint8 histogram, the affine map equals normalizing with float64 mean and std."""
    images = torch.randint(0, 256, (500, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    scale, shift = pixel_standardizer(images)
    pixels = images.double() / 255
    expected = (pixels - pixels.mean()) / pixels.std()
    torch.testing.assert_close(images.double() * scale - shift, expected)


@needs_fashion()
def test_real_fashion_mnist():
    """The real files: 54k/6k/10k, 10 balanced classes."""
    data = build_data("fashion_mnist", root=str(SHARED_DATA), val_fraction=0.1, download=False)
    assert (len(data.train), len(data.val), len(data.test)) == (54000, 6000, 10000)
    counts = torch.bincount(data.test.y)
    assert counts.tolist() == [1000] * 10


def test_xor_and_gates():
    """XOR repeats its 4-row truth table; gates give the right truth table; an unknown gate lists the choices."""
    xor = build_data("xor", repeat=3)
    assert len(xor.train) == 12 and xor.test.y.tolist() == [0, 1, 1, 0]
    assert build_data("gates", gate="nand").test.y.tolist() == [1, 1, 1, 0]
    with pytest.raises(ConfigError, match="unknown gate 'nor'; choose one of: and, nand, or, xor"):
        build_data("gates", gate="nor")


def test_shuffled_batches_cover_each_sample_once():
    """One epoch of shuffled batches yields every sample exactly once, not in the original order."""
    from nnlab.data import Split

    split = Split(torch.arange(10).float()[:, None], torch.arange(10))
    seen = torch.cat([y for _, y in shuffled_batches(split, 3, torch.Generator().manual_seed(0))])
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))


def test_pairs_are_half_same_with_correct_labels(fake_mnist):
    """make_pairs gives half same-class pairs, each labelled 1 exactly when its two members share a class."""
    data = build_data("mnist", root=str(fake_mnist), download=False)
    pairs = make_pairs(data.train, 100, torch.Generator().manual_seed(0))
    assert pairs.x.shape == (100, 2, 1, 28, 28) and pairs.y.sum() == 50
    # recover each member's class from the planted band to check the same/different label
    band = pairs.x.mean(dim=-1).squeeze(2).argmax(-1) // 2 - 1  # row band 2+2c -> c
    assert torch.equal((band[:, 0] == band[:, 1]).long(), pairs.y)


def test_batch_augmentation_keeps_shape_and_changes_pixels():
    """random_affine keeps the batch shape and changes the pixels; with no rotation or shift it is the identity."""
    x = torch.randn(16, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    out = random_affine(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.allclose(out, x)
    still = random_affine(x, torch.Generator().manual_seed(0), degrees=0, translate=0)
    torch.testing.assert_close(still, x, atol=1e-4, rtol=0)  # an identity warp, up to float32 interpolation


def test_spread_takes_evenly_strided_rows_from_every_part_of_the_split():
    """The final train scores use at most trainer.final_train_samples rows: a view spread over the split."""
    from nnlab.data import Split

    split = Split(torch.arange(100).float()[:, None], torch.arange(100) // 10)  # sorted by class
    part = split.spread(20)
    assert len(part) == 20 and part.x.data_ptr() == split.x.data_ptr()  # a view, no copy
    assert sorted(set(part.y.tolist())) == list(range(10))
    assert split.spread(0) is split and split.spread(500) is split
    assert len(split.spread(30)) <= 30
