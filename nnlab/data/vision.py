"""MNIST and Fashion-MNIST: IDX files from `<root>/<Name>/raw`, downloaded by torchvision when absent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from nnlab.data.bundle import DataBundle, Split, carve_validation
from nnlab.data.idx import read_idx
from nnlab.registry import ConfigError

FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
CLASSES = {
    "mnist": [str(d) for d in range(10)],
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
}


def _file(raw: Path, stem: str) -> Path | None:
    for candidate in (raw / stem, raw / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _download(name: str, root: Path, train: bool) -> str | None:
    """torchvision's own download into `root`; returns why it failed, or None."""
    from torchvision import datasets

    cls = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}[name]
    made = [d for d in (root / FOLDERS[name] / "raw", root / FOLDERS[name], root) if not d.exists()]
    try:
        cls(str(root), train=train, download=True)
    except Exception as e:  # offline, proxy, disk: all mean "place the files yourself"
        for d in made:  # the folders this download created, if it left them empty (deepest first)
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        reason = " ".join(line.strip() for line in f"{type(e).__name__}: {e}".splitlines() if line.strip())
        return reason[:400]
    return None


def read_split(name: str, root: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N, 28, 28) and int64 labels of one official split."""
    raw = root / FOLDERS[name] / "raw"
    prefix = "train" if train else "t10k"
    stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
    files = [_file(raw, s) for s in stems]
    why = None
    if None in files and download:
        why = _download(name, root, train)
        files = [_file(raw, s) for s in stems]
    if None in files:
        missing = [s for s, f in zip(stems, files) if f is None]
        raise ConfigError(
            f"{FOLDERS[name]} {'train' if train else 'test'} split not found: place {', '.join(missing)} "
            f"(or the .gz files) in {raw.resolve()}, or point data.root (or $NNLAB_DATA) at a folder "
            f"holding {FOLDERS[name]}/raw/." + (f" The download failed: {why}" if why else "")
        )
    images, labels = (read_idx(f) for f in files)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ConfigError(f"{raw}: images {tuple(images.shape)} and labels {tuple(labels.shape)} do not match")
    labels = labels.long()
    if len(labels) and (labels.min() < 0 or labels.max() >= len(CLASSES[name])):
        bad = ((labels < 0) | (labels >= len(CLASSES[name]))).sum().item()
        raise ConfigError(f"{files[1]}: {bad} labels lie outside 0..{len(CLASSES[name]) - 1} (they span "
                          f"{labels.min().item()}..{labels.max().item()}); {FOLDERS[name]} has "
                          f"{len(CLASSES[name])} classes: replace the file with the original")
    return images, labels


def load_vision(name: str, *, root: str, val_fraction: float = 0.1, split_seed: int = 0,
                limit_train: int = 0, download: bool = True, classes: list[int] | None = None) -> DataBundle:
    """Normalized float tensors (N, 1, 28, 28): mean/std from the training split only.

    The split is carved and the statistics counted on the uint8 images; each split is then converted to
    float once, already normalized (a third of the memory traffic of normalizing float copies).
    `classes` keeps only those classes in every split, relabelled 0..k-1 in the order given; the statistics
    are then those of the whole training split, so every class subset sees the same input scale (a model
    pre-trained on some classes and fine-tuned on others gets the pixels it was trained on).
    """
    root_path = Path(root).expanduser()
    train_img, train_lab = read_split(name, root_path, True, download)
    test_img, test_lab = read_split(name, root_path, False, download)
    train, val = carve_validation(train_img, train_lab, val_fraction, split_seed)
    names = CLASSES[name]
    scale, shift = pixel_standardizer(train.x if classes else train.take(limit_train or len(train)).x)
    if classes:
        keep = _class_filter(classes, len(names))
        train, val = keep(train), keep(val)
        test = keep(Split(test_img, test_lab))
        test_img, test_lab = test.x, test.y
        names = [names[c] for c in classes]
    if limit_train:
        train = train.take(limit_train)

    def norm(s: Split) -> Split:
        return Split(s.x.unsqueeze(1).float().mul_(scale).sub_(shift), s.y)  # faster than torch.mul(uint8, float)

    return DataBundle(name, norm(train), norm(val), norm(Split(test_img, test_lab)), len(names), "image", names)


def _class_filter(classes: list[int], n: int) -> Callable[[Split], Split]:
    """A split -> only the samples of `classes`, labelled by their position in `classes`."""
    valid = all(isinstance(c, int) and 0 <= c < n for c in classes)
    if len(classes) < 2 or len(set(classes)) != len(classes) or not valid:
        raise ConfigError(f"data.classes={classes!r}: must be at least two distinct class indices in "
                          f"0..{n - 1}, e.g. [0, 1, 2, 3, 4]")
    relabel = torch.full((n,), -1, dtype=torch.long)
    relabel[torch.tensor(classes)] = torch.arange(len(classes))

    def keep(s: Split) -> Split:
        idx = torch.nonzero(relabel[s.y] >= 0).squeeze(1)
        return Split(s.x.index_select(0, idx), relabel[s.y[idx]])
    return keep


def load_sequence(name: str, **params: Any) -> DataBundle:
    """The same images as sequences (N, 28, 28): 28 time steps (rows) of 28 features (pixels)."""
    images = load_vision(name, **params)

    def rows(s: Split) -> Split:
        return Split(s.x.squeeze(1), s.y)

    return DataBundle(f"{name}_seq", rows(images.train), rows(images.val), rows(images.test), images.num_classes,
                      "sequence", images.classes)


def pixel_standardizer(images: torch.Tensor) -> tuple[float, float]:
    """(scale, shift) with images * scale - shift == (images / 255 - mean) / std, mean and (unbiased) std
    of the pixels in [0, 1], counted exactly in float64 from the 256-bin histogram of the uint8 images."""
    counts = torch.bincount(images.flatten(), minlength=256).double()
    values = torch.arange(256, dtype=torch.float64) / 255
    n = counts.sum()
    mean = (counts * values).sum() / n
    std = ((counts * (values - mean) ** 2).sum() / (n - 1)).sqrt()
    return float(1 / (255 * std)), float(mean / std)
