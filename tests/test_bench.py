"""`nnlab bench activations` measures every activation; the memory-efficient Swish saves less for backward."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
import torch

from nnlab.activations import MemoryEfficientSwish, Swish
from nnlab.bench import run, saved_bytes, time_ms

from helpers import REPO, SHARED_DATA, needs_fashion, nnlab


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
        assert set(r) == {"forward_ms", "fwd_bwd_ms", "saved_mb"}
        assert r["saved_mb"] == pytest.approx(40_000 / 2**20)


def test_timings_are_in_milliseconds():
    """time_ms reports milliseconds: a statement that sleeps 2 ms measures at least 2 (a unit check, not a speed)."""
    assert time_ms("time.sleep(0.002)", {"time": time}, min_run_time=0.02) >= 2.0


@pytest.mark.slow
def test_cli_prints_table(tmp_path):
    """`nnlab bench activations` exits 0 and prints the ReLU-ratio table and Swish's saved memory (0.1 vs 0.2 MB)."""
    r = nnlab("bench", "activations", "--numel", "20000", "--min-time", "0.01", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "ratios against ReLU" in r.stdout and "swish_efficient" in r.stdout
    assert "memory-efficient Swish keeps 0.1 MB for backward vs 0.2 MB" in r.stdout


@pytest.mark.slow
@needs_fashion()
@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_bench_runner_measures_every_path_and_prints_the_ratios(model):
    """scripts/bench_runner.py on real Fashion-MNIST, shrunk to a few batches: every path is measured and
    every ratio printed with its per-round values (their size is the script's business, not the test's)."""
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "bench_runner.py"), "--model", model,
                        "--repeats", "2", "--samples", "512", "--data-root", str(SHARED_DATA)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    measured = {m["path"]: int(m["rate"].replace(",", ""))
                for m in re.finditer(r"^  (?P<path>\S.*?) +(?P<rate>[\d,]+) samples/s", r.stdout, re.M)}
    paths = {"nnlab", "bare", "dataloader"}
    if model == "mlp":
        paths |= {"nnlab batch 256", "bare batch 256", "nnlab amp=true"}
    assert paths <= set(measured) and all(rate > 0 for rate in measured.values())
    assert re.search(r"time ratio nnlab / bare loop: +[\d.]+ +\(rounds: [\d.]+ [\d.]+\)", r.stdout)
    assert re.search(r"nnlab speed-up over DataLoader: +[\d.]+", r.stdout)
    try:
        import lightning  # noqa: F401
        assert re.search(r"nnlab speed-up over Lightning: +[\d.]+", r.stdout)
    except ImportError:
        assert "Lightning: not installed (pip install 'nnlab[bench]' to compare)" in r.stdout
