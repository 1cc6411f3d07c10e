"""MNIST and Fashion-MNIST: IDX files from `<root>/<Name>/raw`, downloaded by torchvision when absent."""

from __future__ import annotations

from pathlib import Path

import torch

from nnlab.data.bundle import DataBundle, Split, carve_validation
from nnlab.data.idx import read_idx
from nnlab.errors import ConfigError

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
    try:
        cls(str(root), train=train, download=True)
    except Exception as e:  # offline, proxy, disk: all mean "place the files yourself"
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
    return images, labels.long()


def load_vision(name: str, *, root: str, val_fraction: float = 0.1, split_seed: int = 0,
                limit_train: int = 0, download: bool = True) -> DataBundle:
    """Normalized float tensors (N, 1, 28, 28): mean/std from the training split only."""
    root_path = Path(root).expanduser()
    train_img, train_lab = read_split(name, root_path, True, download)
    test_img, test_lab = read_split(name, root_path, False, download)
    x = train_img.float().div_(255).unsqueeze(1)
    train, val = carve_validation(x, train_lab, val_fraction, split_seed)
    if limit_train:
        train = train.take(limit_train)
    mean, std = train.x.mean(), train.x.std()

    def norm(s: Split) -> Split:
        return Split((s.x - mean) / std, s.y)

    test = Split(test_img.float().div_(255).unsqueeze(1), test_lab)
    return DataBundle(name, norm(train), norm(val), norm(test), 10, "image", CLASSES[name])
