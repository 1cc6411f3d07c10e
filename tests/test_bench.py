"""`nnlab bench activations` measures every activation; the memory-efficient Swish saves less for backward."""

from __future__ import annotations

import pytest
import torch

from nnlab.activations import MemoryEfficientSwish, Swish
from nnlab.bench import run, saved_bytes

from helpers import nnlab


def test_saved_memory_of_swish_variants():
    """One float32 tensor of 1000 elements saved (4000 bytes) vs two for the plain module."""
    x = torch.randn(1000)
    assert saved_bytes(MemoryEfficientSwish(), x) == 4000
    assert saved_bytes(Swish(), x) == 8000
    assert saved_bytes(torch.nn.ReLU(), x) == 4000


def test_run_measures_forward_and_backward():
    """Every activation gets a forward and a forward+backward timing and its saved memory (no speed asserted)."""
    results = run(("relu", "swish_efficient"), 10_000, torch.device("cpu"), 0.01)
    assert list(results) == ["relu", "swish_efficient"]
    for r in results.values():
        assert r["forward_ms"] > 0 and r["fwd_bwd_ms"] > 0
        assert r["saved_mb"] == pytest.approx(40_000 / 2**20)


def test_cli_prints_table(tmp_path):
    r = nnlab("bench", "activations", "--numel", "20000", "--min-time", "0.01", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "ratios against ReLU" in r.stdout and "swish_efficient" in r.stdout
    assert "memory-efficient Swish keeps 0.1 MB for backward vs 0.2 MB" in r.stdout
