"""Sweeps: launchers for real, failures isolated and reported, `nnlab compare` tables, CSV and plot."""

from __future__ import annotations

import csv
import json

import pytest

from nnlab.config.folders import claim_dir, job_dir
from nnlab.runs import find_runs, swept_keys

from helpers import nnlab


def _sweep_dir(tmp_path):
    [sweep] = list((tmp_path / "outputs" / "multirun").glob("*/*"))
    return sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """One real 2x2 XOR sweep with a failing point (lr=-1), shared by the compare tests."""
    root = tmp_path_factory.mktemp("sweep")
    r = nnlab("train", "-m", "activation=relu,tanh", "optimizer.lr=0.01,-1", "data=xor", "trainer.epochs=3",
              "logger=quiet", cwd=root)
    return root, r


@pytest.mark.slow
def test_failing_job_does_not_stop_the_others(sweep):
    """lr=-1 jobs fail validation; the lr=0.01 jobs finish; the summary lists failures; exit code 1."""
    root, r = sweep
    assert r.returncode == 1, r.stderr
    runs = {tuple(sorted(x.overrides.items())): x for x in find_runs([_sweep_dir(root)])}
    ok = [x for x in runs.values() if x.status == "ok"]
    failed = [x for x in runs.values() if x.status == "failed"]
    assert len(ok) == 2 and len(failed) == 2
    assert all(x.overrides["optimizer.lr"] == "-1" for x in failed)
    assert all("optimizer.lr=-1: must be a number > 0" in x.error for x in failed)
    assert "2 of 4 runs failed" in r.stdout


@pytest.mark.slow  # the module's sweep: a real 4-job multirun
def test_compare_prints_runs_best_first(sweep):
    """`nnlab compare` lists every run, finished runs first, ordered by the metric (lower test loss first)."""
    root, _ = sweep
    r = nnlab("compare", str(_sweep_dir(root)), "--metric", "test_loss", cwd=root)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("│")]
    assert len(lines) == 4 and "activation" in r.stdout and "optimizer.lr" in r.stdout
    assert lines[0].count("ok") == 1 and "failed" in lines[-1]  # finished runs first
    ok_losses = [float(ln.split("│")[5]) for ln in lines[:2]]
    assert ok_losses == sorted(ok_losses)  # test loss: lower is better


@pytest.mark.slow  # the module's sweep: a real 4-job multirun
def test_compare_csv_and_grouping(sweep, tmp_path):
    """--csv writes one row per run with overrides, metrics and status; --by prints final/val_acc per group with ±."""
    root, _ = sweep
    out = tmp_path / "runs.csv"
    r = nnlab("compare", str(_sweep_dir(root)), "--by", "activation", "--csv", str(out), cwd=root)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 and {"activation", "optimizer.lr", "final/test_acc", "status"} <= set(rows[0])
    assert "final/val_acc by activation" in r.stdout and "95% CI" in r.stdout  # n = 1 per value: no std, no CI


@pytest.mark.slow  # the module's sweep: a real 4-job multirun
def test_compare_plot_writes_a_png(sweep, tmp_path):
    """--plot writes a real PNG file (PNG signature, over 10 kB)."""
    root, _ = sweep
    png = tmp_path / "curves.png"
    r = nnlab("compare", str(_sweep_dir(root)), "--plot", str(png), cwd=root)
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_compare_empty_folder_says_so(tmp_path, capsys):
    """compare on a folder with no runs exits 2 and says there are no runs."""
    from nnlab.cli.compare import main

    assert main([str(tmp_path)]) == 2 and "no runs under" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["joblib", "local"])
def test_parallel_launchers_run_real_jobs(tmp_path, launcher):
    """joblib (threads split between jobs) and submitit's local launcher each run a 2-job XOR sweep."""
    r = nnlab("train", "-m", f"hydra/launcher={launcher}", "activation=relu,tanh", "data=xor", "trainer.epochs=2",
              "logger=quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    runs = find_runs([_sweep_dir(tmp_path)])
    assert sorted(x.path.name for x in runs) == ["activation=relu", "activation=tanh"]
    assert all(x.metrics["final/test_acc"] == 1.0 for x in runs)
    if launcher == "joblib":  # n_jobs=-1: one job per core, so one torch thread each
        assert all("threads: 1" in (x.path / "train.log").read_text() for x in runs)


@pytest.mark.slow
def test_seed_sweeps_get_distinct_folders_and_group(tmp_path):
    """Seeds are left out of the name but a seed sweep still gets one folder per seed."""
    r = nnlab("train", "-m", "activation=relu,tanh", "trainer.seed=0,1", "data=xor", "trainer.epochs=2",
              "logger=quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    runs = find_runs([_sweep_dir(tmp_path)])
    assert sorted(x.path.name for x in runs) == ["activation=relu,seed=0", "activation=relu,seed=1",
                                                 "activation=tanh,seed=0", "activation=tanh,seed=1"]
    assert swept_keys(runs) == ["activation", "trainer.seed"]
    metrics = json.loads((runs[0].path / "metrics.json").read_text())
    assert "final/test_acc" in metrics


def test_folder_names_are_unique_and_safe(tmp_path):
    """Two claims of one timestamp never collide; '/' in values cannot make sub-folders."""
    a, b = claim_dir(tmp_path / "12-00-00"), claim_dir(tmp_path / "12-00-00")
    assert a != b and a.is_dir() and b.is_dir() and b.name == "12-00-00_1"
    assert job_dir("data.root=a/b,model=mlp", 3) == "data.root=a_b,model=mlp"
    assert job_dir("", 3) == "job3"


@pytest.mark.slow
def test_optuna_search_maximizes_the_returned_metric(tmp_path):
    """hparams_search=optuna_lr: Optuna samples lr/weight decay per trial and records the best trial."""
    import yaml

    r = nnlab("train", "-m", "hparams_search=optuna_lr", "data=xor", "trainer.epochs=2", "hydra.sweeper.n_trials=3",
              "logger=quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "setup plugin alembic" not in r.stdout + r.stderr
    sweep = _sweep_dir(tmp_path)
    trials = find_runs([sweep])
    assert len(trials) == 3 and all({"optimizer.lr", "optimizer.weight_decay"} <= set(t.overrides) for t in trials)
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == max(t.metrics["final/best_val_acc"] for t in trials)
    assert 1e-4 <= best["best_params"]["optimizer.lr"] <= 0.1
