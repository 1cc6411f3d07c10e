"""The default grid sweeper composes each set of config-group choices once; every job's config equals the one
Hydra composes for it (Hydra's real loader is the oracle)."""

from __future__ import annotations

import pickle

import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from hydra.types import RunMode
from omegaconf import OmegaConf

from nnlab._speedups import compose_once
from nnlab.config.folders import register
from nnlab.config.paths import config_dir

from helpers import nnlab


class CountingLoader:
    """Hydra's real config loader, counting the full compositions asked of it."""

    def __init__(self, loader) -> None:
        self.loader, self.calls = loader, []

    def load_sweep_config(self, master_config, sweep_overrides):
        self.calls.append(tuple(sweep_overrides))
        return self.loader.load_sweep_config(master_config, sweep_overrides)

    def __getattr__(self, name):
        if name.startswith("_") or name == "loader":  # pickle's probes, before __dict__ is filled
            raise AttributeError(name)
        return getattr(self.loader, name)


@pytest.fixture
def hydra_loader(tmp_path, monkeypatch):
    """(a counting wrapper of Hydra's loader for nnlab's config tree, the sweep's master config)."""
    monkeypatch.chdir(tmp_path)
    register()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        exclude = "hydra.job.config.override_dirname.exclude_keys=[data,model.hidden]"
        yield CountingLoader(loader), loader.load_configuration("train", [exclude], RunMode.MULTIRUN)


def test_the_check_and_the_launch_share_one_composition(hydra_loader):
    """The up-front check composes each job; its launch is a copy of that composition, not a second one."""
    inner, master = hydra_loader
    loader = compose_once.ComposeOnceLoader(inner)
    jobs = [["data=xor", "activation=relu"], ["data=xor", "activation=tanh"]]
    checked = [loader.load_sweep_config(master, job) for job in jobs]  # validate_batch_is_legal
    launched = [loader.load_sweep_config(master, job) for job in jobs]  # the launcher
    assert inner.calls == [tuple(job) for job in jobs]
    assert [OmegaConf.to_yaml(c) for c in checked] == [OmegaConf.to_yaml(lch) for lch in launched]
    assert all(c is not lch for c, lch in zip(checked, launched))  # copies: the launcher writes the job's number
    assert loader.get_search_path() is inner.loader.get_search_path()  # the rest is the wrapped loader's


def test_jobs_that_differ_in_values_only_are_composed_once_and_equal_a_full_composition(hydra_loader):
    """One full composition per set of config-group choices; every other job is a copy with its own
    values, identical (Hydra's own fields included) to what Hydra composes for it, struct mode too."""
    inner, master = hydra_loader
    loader = compose_once.ComposeOnceLoader(inner)
    jobs = [["data=xor", f"activation={a}", f"optimizer.lr={lr}", f"trainer.seed={s}", "model.hidden=[8,8]"]
            for a in ("relu", "mish") for lr in (0.1, 0.01) for s in (0, 1)]
    derived = [loader.load_sweep_config(master, job) for job in jobs]
    assert inner.calls == [tuple(jobs[0]), tuple(jobs[4])]  # relu and mish
    for job, got in zip(jobs, derived):
        want = inner.loader.load_sweep_config(master, job)
        assert OmegaConf.to_yaml(got) == OmegaConf.to_yaml(want)
        assert OmegaConf.is_struct(got)
    assert derived[3].hydra.job.override_dirname == "activation=relu,optimizer.lr=0.01,trainer.seed=1"
    assert derived[3].optimizer.lr == 0.01 and derived[3].trainer.seed == 1 and derived[3].model.hidden == [8, 8]
    assert derived[0].trainer.seed == 0  # copies share nothing with the template or each other


def test_overrides_a_copy_cannot_replay_are_composed_in_full(hydra_loader):
    """Appends (+key) fail on a copy that has the key already, deletions (~key) need the original:
    those jobs go through Hydra's whole composition, as do bad keys, with Hydra's own error."""
    inner, master = hydra_loader
    loader = compose_once.ComposeOnceLoader(inner)
    jobs = [["data=xor", f"+trainer.note={n}"] for n in ("a", "b")] + [["data=xor", "~trainer.clip"]] * 2
    for job in jobs:
        loader.load_sweep_config(master, job)
    assert len(inner.calls) == 4
    loader.load_sweep_config(master, ["data=xor", "trainer.seed=0"])
    with pytest.raises(ConfigCompositionException, match="trainer.sed"):
        loader.load_sweep_config(master, ["data=xor", "trainer.sed=1"])


def test_workers_get_the_templates_of_small_sweeps_only(hydra_loader, monkeypatch):
    """joblib and submitit pickle the loader into every task: with at most KEEP templates it carries them,
    and the worker derives its job without composing; with more, it carries none (each task composes).

    The class is looked up at call time: Hydra's plugin scan re-executes plugin modules (new class
    objects), and pickle wants the class that sys.modules holds now."""
    inner, master = hydra_loader
    loader = compose_once.ComposeOnceLoader(inner)
    jobs = [["data=xor", f"activation={a}", f"trainer.seed={i}"] for a in ("relu", "tanh") for i in range(3)]
    checked = [loader.load_sweep_config(master, job) for job in jobs]
    worker = pickle.loads(pickle.dumps(loader))
    assert OmegaConf.to_yaml(worker.load_sweep_config(master, jobs[-1])) == OmegaConf.to_yaml(checked[-1])
    assert len(inner.calls) == 2 and worker._loader.calls == inner.calls  # derived in the worker, not composed
    monkeypatch.setattr(compose_once, "KEEP", 2)  # now three sets of choices are more than KEEP
    loader.load_sweep_config(master, ["data=xor", "activation=mish", "trainer.seed=0"])
    assert pickle.loads(pickle.dumps(loader))._templates == {}


@pytest.mark.slow
def test_grid_sweeps_use_the_compose_once_sweeper_and_optuna_replaces_it(tmp_path):
    """Grid sweeps use ComposeOnceSweeper by default; hparams_search=optuna_lr switches to OptunaSweeper."""
    grid = nnlab("train", "data=xor", "--cfg", "hydra", "-p", "hydra.sweeper", cwd=tmp_path)
    assert "ComposeOnceSweeper" in grid.stdout, grid.stderr
    optuna = nnlab("train", "data=xor", "hparams_search=optuna_lr", "--cfg", "hydra", "-p", "hydra.sweeper",
                   cwd=tmp_path)
    assert "hydra_plugins.nnlab_sweeper.optuna_search.OptunaSweeper" in optuna.stdout, optuna.stderr
