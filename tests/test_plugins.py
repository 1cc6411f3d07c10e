"""A user's own parts: the README's plugin example run as written, the register_* decorators, entry points,
and validation, `nnlab list` and `nnlab doctor` treating the user's choices like nnlab's own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from nnlab import activations, data, inits, losses, models, optim, plugins
from nnlab.cli.listing import list_command, print_choices
from nnlab.config.compose import compose_with_search_path
from nnlab.config.validate import validate
from nnlab.registry import ConfigError

EXAMPLE = Path(__file__).parent / "plugin_example"
# the README's command, word for word (readme-15.md, "Your own parts")
COMMAND = ("nnlab train -m --config-dir configs '+plugins=[my_parts]' data=xor model=tiny_net loss=confident_ce "
           "loss.beta=0,0.05 optimizer.lr=0.02 trainer.epochs=10 hydra/launcher=joblib")
TABLES = [models.MODELS, losses.LOSSES, inits.INITS, optim.OPTIMIZERS, activations.ACTIVATIONS, data.DATASETS]


@pytest.fixture
def registries():
    """Registries and plugin bookkeeping restored after the test: what a test registers does not leak."""
    saved = [dict(t) for t in TABLES]
    imported, loaded, path = set(plugins._imported), plugins._entry_points_loaded, list(sys.path)
    yield
    for table, before in zip(TABLES, saved):
        table.clear()
        table.update(before)
    plugins._imported.clear()
    plugins._imported.update(imported)
    plugins._entry_points_loaded = loaded
    sys.path[:] = path
    sys.modules.pop("my_parts", None)
    sys.modules.pop("ep_parts", None)


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    """The example copied to a folder outside the repository, as the current folder."""
    folder = tmp_path / "user"
    shutil.copytree(EXAMPLE, folder)
    monkeypatch.chdir(folder)
    return folder


@pytest.mark.slow
def test_readme_example_runs_as_written_in_a_joblib_sweep(user_folder):
    """The README's command, pasted into bash in a folder outside the repository: both jobs of the sweep train
    the user's model with the user's loss in joblib workers (which import the plugin themselves) and solve XOR."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "COLUMNS": "200"}
    r = subprocess.run(["bash", "-c", COMMAND], cwd=user_folder, env=env, text=True, capture_output=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    jobs = sorted(user_folder.glob("outputs/multirun/*/*/loss.beta=*"))
    assert [j.name for j in jobs] == ["loss.beta=0", "loss.beta=0.05"]
    for job in jobs:
        cfg = (job / ".hydra" / "config.yaml").read_text()
        assert "name: tiny_net" in cfg and "name: confident_ce" in cfg
        assert json.loads((job / "metrics.json").read_text())["final/train_acc"] == 1.0
    assert r.stdout.count("solved: tiny_net fits the XOR truth table") == 2


def test_decorators_register_and_refuse_to_replace_builtins(registries, user_folder):
    """Importing the plugin fills the registries through the public decorators; a plugin cannot take a
    built-in's name; a module that cannot be imported is a ConfigError naming it."""
    plugins.load_plugins(["my_parts"])
    assert models.MODELS["tiny_net"].__name__ == "TinyNet"
    assert losses.LOSSES["confident_ce"].target == "index"
    with pytest.raises(ConfigError, match="model 'mlp' is already registered"):
        models.register_model("mlp")(type("Other", (), {}))
    with pytest.raises(ConfigError, match=r"plugins: cannot import 'no_such_parts' \(ModuleNotFoundError"):
        plugins.load_plugins(["no_such_parts"])
    with pytest.raises(ConfigError, match=r"plugins='my_parts': must be a list of module names"):
        plugins.load_plugins("my_parts")


@pytest.mark.slow  # the doctor's checks train a copy for a while (1-13 s here)
def test_user_choices_validate_list_and_doctor_like_builtins(registries, user_folder, capsys):
    """--config-dir makes tiny_net/confident_ce valid choices, listed with their first comment line, and the
    doctor runs its checks on the user's model; without the folder the name is refused with the choices."""
    cfg, folders = compose_with_search_path(["--config-dir", "configs", "+plugins=[my_parts]", "model=tiny_net",
                                             "loss=confident_ce", "data=xor"])
    assert folders == [user_folder / "configs"] and cfg["model"] == {"name": "tiny_net", "width": 16}
    validate(cfg, folders)
    with pytest.raises(ConfigError, match="model.name='tiny_net': choose one of: cnn, dynamic"):
        validate(cfg)
    console = Console(width=200, record=True, file=open(os.devnull, "w"))
    assert print_choices("model", console, extra=[Path("configs")]) == 0
    assert "tiny_net      │ my two-layer net (a plugin)" in console.export_text()
    assert list_command(["loss", "--config-dir", "nowhere"]) == 2
    from nnlab.cli.doctor import doctor_command

    code = doctor_command(["--config-dir", "configs", "+plugins=[my_parts]", "model=tiny_net", "loss=confident_ce",
                           "data=xor", "logger=quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "forward: shapes" in out and "(8, 2)" in out


def test_entry_points_register_installed_parts(registries, tmp_path, monkeypatch):
    """An installed package's `nnlab.models` / `nnlab.losses` entry points register under their names."""
    site = tmp_path / "site"
    dist = site / "ep_parts-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-parts\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[nnlab.models]\nep_net = ep_parts:EPNet\n\n"
                                           "[nnlab.losses]\nep_loss = ep_parts:EPLoss\n")
    (site / "ep_parts.py").write_text("from torch import nn\n"
                                      "class EPNet(nn.Linear):\n"
                                      "    def __init__(self, input_shape, out_units, act):\n"
                                      "        super().__init__(input_shape[0], out_units)\n"
                                      "class EPLoss(nn.CrossEntropyLoss):\n    pass\n")
    monkeypatch.syspath_prepend(str(site))
    plugins._entry_points_loaded = False
    plugins.load_plugins([])
    assert models.MODELS["ep_net"].__name__ == "EPNet" and losses.LOSSES["ep_loss"].build.__name__ == "EPLoss"
    net = models.build_model("ep_net", input_shape=(3,), out_units=2, data_kind="vector", act=None)
    assert net.weight.shape == (2, 3)
