"""A real one-node SLURM cluster for the tests (scripts/slurm_local.sh), started once per session.

The tests skip, saying why, only where it cannot run: not root and SLURM not installed, or no apt-get.
A cluster already running (started by hand or by CI) is used as it is and left running.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from helpers import REPO

SCRIPT = REPO / "scripts" / "slurm_local.sh"
STATE = Path(os.environ.get("NNLAB_SLURM_DIR", "/tmp/nnlab-slurm"))
PARTITION = os.environ.get("NNLAB_SLURM_PARTITION", "cpu")
CANNOT_RUN_HERE = 77  # the script's exit code for "not root / no apt"


def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def slurm() -> dict[str, str]:
    """The environment that reaches the local cluster: SLURM_CONF, and the sacct stand-in first on PATH."""
    was_running = _script("status").returncode == 0
    started = _script("start")
    if started.returncode == CANNOT_RUN_HERE:
        pytest.skip(f"no local SLURM cluster: {started.stderr.strip()}")
    assert started.returncode == 0, started.stderr
    env = {"SLURM_CONF": str(STATE / "etc" / "slurm.conf"), "PATH": f"{STATE / 'bin'}:{os.environ['PATH']}"}
    yield env
    if not was_running:
        _script("stop")


def slurm_cmd(env: dict[str, str], *args: str) -> str:
    """A SLURM client command (squeue, scontrol, scancel) against the local cluster; its stdout."""
    out = subprocess.run(list(args), env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout
