"""A non-editable install finds its configs: the built wheel ships configs/ as nnlab/configs."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

from helpers import REPO


def test_wheel_ships_configs_and_finds_them(tmp_path):
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp_path / "dist"), str(REPO)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    [wheel] = (tmp_path / "dist").glob("nnlab-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {p.relative_to(REPO).as_posix() for p in (REPO / "configs").rglob("*.yaml")}
    assert shipped and {f"nnlab/{p}" for p in shipped} <= names
    # install it outside the checkout and ask where the configs are
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    code = "from nnlab.paths import config_dir; print(config_dir())"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(target)})
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(target / "nnlab" / "configs")
