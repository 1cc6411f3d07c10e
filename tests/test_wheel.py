"""A non-editable install finds its configs (shipped as nnlab/configs) and its sweeper plugin."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest

from helpers import REPO


@pytest.mark.slow
def test_wheel_ships_configs_and_finds_them(tmp_path):
    """The wheel ships every config and the sweeper plugin, and once installed finds its configs and sweepers."""
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), str(REPO)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    [wheel] = (tmp_path / "dist").glob("nnlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(REPO).as_posix() for p in (REPO / "configs").rglob("*.yaml")}
    assert shipped and {f"nnlab/{p}" for p in shipped} <= names
    assert {"hydra_plugins/nnlab_sweeper/compose_once.py", "hydra_plugins/nnlab_sweeper/optuna_search.py"} <= names
    assert not any(n.startswith("hydra_plugins/__init__") for n in names)  # other plugins share the namespace
    # install it outside the checkout and ask where the configs are
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    code = ("from nnlab.config.paths import config_dir; print(config_dir())\n"
            "from hydra.core.plugins import Plugins; from hydra.plugins.sweeper import Sweeper\n"
            "print(sorted(f'{p.__module__}.{p.__name__}' for p in Plugins.instance().discover(Sweeper)))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(target)})
    assert found.returncode == 0, found.stderr
    where, sweepers = found.stdout.strip().splitlines()
    assert where == str(target / "nnlab" / "configs")
    assert "hydra_plugins.nnlab_sweeper.compose_once.ComposeOnceSweeper" in sweepers
    assert "hydra_plugins.nnlab_sweeper.optuna_search.OptunaSweeper" in sweepers  # nnlab's own, on current Optuna
