"""Shared fixtures: the real config composed then shrunk, and small real IDX data."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from nnlab.config.compose import compose_config
from nnlab.data.idx import write_idx


def pytest_configure(config):
    """Under `pytest -n N` each worker, and every run it starts, gets its share of the cores: runs side by side
    with a thread per core each would spin their OpenMP threads against each other. Ctrl-C acts as in a
    terminal."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # started in the background (nohup, some CI): the
        try:  # processes the tests start get Ctrl-C as in a terminal, where the Ctrl-C tests send it
            signal.signal(signal.SIGINT, signal.default_int_handler)
        except ValueError:  # not the main thread
            pass
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture
def cfg_for():
    """compose_config of the real config tree with the quiet logger (no bars, no histograms)."""
    def make(*overrides: str) -> dict:
        return compose_config(["logger=quiet", *overrides])
    return make


@pytest.fixture
def fake_mnist(tmp_path: Path) -> Path:
    """A data root holding a small MNIST in real IDX files: class c is a bright band at rows 2+2c."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 600), ("t10k", 200)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 + 2 * c:4 + 2 * c, :] = 250
        write_idx(tmp_path / "MNIST" / "raw" / f"{split}-images-idx3-ubyte", images)
        write_idx(tmp_path / "MNIST" / "raw" / f"{split}-labels-idx1-ubyte", labels.astype(np.uint8))
    return tmp_path


from slurm_fixtures import slurm  # noqa: E402,F401  (the local SLURM cluster, for tests/test_slurm.py)
