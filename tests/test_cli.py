"""The CLI as a user types it: Hydra app behaviour, run folders, sweeps, completion, fast paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nnlab.cli.train import name_jobs_by_swept_keys

from helpers import nnlab


def _runs(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.glob("**/metrics.json"))


@pytest.mark.slow
def test_train_xor_writes_a_complete_run_folder(tmp_path):
    """`nnlab train data=xor model=mlp activation=tanh` solves XOR and fills its dated Hydra run folder."""
    r = nnlab("train", "data=xor", "model=mlp", "activation=tanh", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "solved: mlp fits the XOR truth table (100% accuracy)" in r.stdout + r.stderr
    [run] = _runs(tmp_path / "outputs")
    assert run.parent.parent == tmp_path / "outputs"  # outputs/<date>/<time>
    names = {p.name for p in run.iterdir()}
    assert {".hydra", "metrics.json", "checkpoints", "train.log"} <= names
    assert any(n.startswith("events.out.tfevents") for n in names)
    assert json.loads((run / "metrics.json").read_text())["final/test_acc"] == 1.0
    assert "epoch 10/10" in (run / "train.log").read_text()


@pytest.mark.slow
def test_perceptron_on_xor_says_it_failed(tmp_path):
    """A perceptron on XOR still exits 0, but the run reports 'NOT solved'."""
    r = nnlab("train", "data=xor", "model=perceptron", cwd=tmp_path)
    assert r.returncode == 0
    assert "NOT solved: perceptron" in r.stdout + r.stderr


@pytest.mark.slow
def test_multirun_grid_runs_four_named_jobs(tmp_path):
    """-m with a 2x2 grid gives 4 jobs under outputs/multirun/<date>/<time>/<overrides>."""
    r = nnlab("train", "-m", "activation=relu,mish", "init=kaiming_normal,xavier_uniform", "data=xor",
              "trainer.epochs=2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    runs = _runs(tmp_path / "outputs" / "multirun")
    assert sorted(p.name for p in runs) == [
        "activation=mish,init=kaiming_normal", "activation=mish,init=xavier_uniform",
        "activation=relu,init=kaiming_normal", "activation=relu,init=xavier_uniform"]


def test_unknown_activation_lists_the_choices(tmp_path):
    """`activation=relux` exits 2 naming the bad choice, the close match first, then every shipped activation."""
    r = nnlab("train", "activation=relux", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "activation=relux: no such activation; did you mean relu" in r.stderr
    assert all(a in r.stderr for a in ("relu", "mish", "leaky_relu", "swish_efficient"))


def test_all_config_problems_in_one_error_exit_2(tmp_path):
    """Three bad values give one error naming all three, exit code 2 and no traceback."""
    r = nnlab("train", "optimizer.lr=-1", "model.dropout=1.5", "trainer.epochs=0", cwd=tmp_path)
    assert r.returncode == 2
    assert "3 problems in the configuration" in r.stderr and "Traceback" not in r.stderr
    for key in ("optimizer.lr=-1", "model.dropout=1.5", "trainer.epochs=0"):
        assert key in r.stderr


@pytest.mark.slow
def test_hydra_flags_work(tmp_path):
    """Hydra's --cfg job, --help (nnlab's own text with group choices) and --info searchpath all work."""
    cfg = nnlab("train", "--cfg", "job", "data=xor", "activation=mish", cwd=tmp_path)
    assert cfg.returncode == 0 and "name: mish" in cfg.stdout and "name: xor" in cfg.stdout
    helped = nnlab("train", "--help", cwd=tmp_path)
    assert helped.returncode == 0 and "activation: elu, gelu" in helped.stdout
    assert helped.stdout.startswith("nnlab train: one training run, or a sweep with -m")
    info = nnlab("train", "--info", "searchpath", cwd=tmp_path)
    assert info.returncode == 0 and "configs" in info.stdout


def test_user_config_dir_adds_choices(tmp_path):
    """--config-dir adds a user's own group options next to the shipped ones."""
    (tmp_path / "mine" / "model").mkdir(parents=True)
    (tmp_path / "mine" / "model" / "wide.yaml").write_text("name: mlp\nhidden: [512, 512]\ndropout: 0.0\n"
                                                          "batchnorm: false\n")
    r = nnlab("train", "--config-dir", str(tmp_path / "mine"), "model=wide", "--cfg", "job", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "- 512" in r.stdout


def test_shell_completion_install_and_query(tmp_path):
    """`nnlab train -sc install=bash` prints the hook; the hook's query completes after the `train` word."""
    install = nnlab("train", "-sc", "install=bash", cwd=tmp_path)
    assert install.returncode == 0 and "hydra_bash_completion" in install.stdout
    line = "nnlab train activation=mi"
    query = nnlab("-sc", "query=bash", cwd=tmp_path, env={"COMP_LINE": line, "COMP_POINT": str(len(line))})
    assert query.returncode == 0, query.stderr
    assert "activation=mish" in query.stdout


def test_list_and_help_do_not_import_torch():
    """The fast paths (help, list, validate) never import torch."""
    code = ("import sys\nfrom nnlab.cli import main\n"
            "for args in (['--help'], ['list'], ['list', 'activation'], ['validate', 'data=xor']):\n"
            "    try:\n        main(args)\n    except SystemExit as e:\n        assert not e.code, e.code\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "swish_efficient" in r.stdout and "configuration OK" in r.stdout


def test_a_refused_run_answers_before_torch_is_imported(tmp_path):
    """What `nnlab validate` refuses, `nnlab train` refuses too before it imports torch: exit 2 at once."""
    code = ("import sys\nfrom nnlab.cli import main\n"
            "for args in (['optimizer.lr=-1'], ['+foo=1'], ['model=cnn'], ['trainer.clip.mode=sometimes']):\n"
            "    try:\n        main(['train', 'data=xor', *args])\n    except SystemExit as e:\n"
            "        assert e.code == 2, (args, e.code)\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("configuration error") == 4 and not list(tmp_path.glob("outputs/*/*/*/metrics.json"))


def test_list_unknown_group(capsys):
    """`nnlab list` with an unknown group exits 2, naming it and listing the valid groups."""
    from nnlab.cli.listing import list_command

    assert list_command(["activations"]) == 2
    assert "unknown config group 'activations'; choose one of: activation" in " ".join(capsys.readouterr().out.split())


def test_group_listing_from_one_repository_lists_what_hydra_lists(monkeypatch):
    """--help and completion read every group's options from one shared repository: the same options,
    Hydra's own groups and plugin groups included, as Hydra's fresh repository per question gives."""
    from hydra import initialize_config_dir
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.object_type import ObjectType

    from nnlab._speedups.help_listing import share_one_repository
    from nnlab.config.paths import config_dir

    def every_group(loader, parent=""):
        listing = {}
        for group in loader.get_group_options(parent, ObjectType.GROUP):
            name = f"{parent}/{group}" if parent else group
            listing[name] = loader.get_group_options(name, ObjectType.CONFIG)
            listing.update(every_group(loader, name))
        return listing

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        hydras = every_group(GlobalHydra.instance().config_loader())
    monkeypatch.setattr(ConfigLoaderImpl, "get_group_options", ConfigLoaderImpl.get_group_options)  # restored after
    share_one_repository()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        shared = every_group(GlobalHydra.instance().config_loader())
    assert shared == hydras
    assert "mish" in shared["activation"] and "joblib" in shared["hydra/launcher"] and len(shared) > 20


def test_the_name_exclusion_goes_beside_the_other_overrides():
    """Hydra's argparse wants overrides together: the added one must not land after a trailing option."""
    args = name_jobs_by_swept_keys(["-m", "activation=relu,tanh", "data=xor", "--config-dir", "extra"])
    assert args[1].startswith("hydra.job.config.override_dirname.exclude_keys=[") and ",data]" in args[1]
    assert args[2:] == ["activation=relu,tanh", "data=xor", "--config-dir", "extra"]
