"""Helpers shared by the tests: where the repo and the offline data are, and the CLI as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def needs_fashion() -> pytest.MarkDecorator:
    return pytest.mark.skipif(not (SHARED_DATA / "FashionMNIST" / "raw").is_dir(),
                              reason=f"Fashion-MNIST files not found in {SHARED_DATA}")


def nnlab(*args: str, cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (as a user would), capturing its output."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "nnlab", *args], cwd=cwd, env=full_env, text=True,
                          capture_output=True, timeout=timeout)
