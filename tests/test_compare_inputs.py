"""`nnlab compare` on imperfect run folders: NaN never ranked best, runs told apart by folder, --by/--metric
names checked (close matches first), one bad folder does not hide the others."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from nnlab.cli.compare import check_args, main, runs_table
from nnlab.runs import find_runs, ranked


def _run(root: Path, name: str, overrides: list[str], metrics: dict | str) -> None:
    (root / name / ".hydra").mkdir(parents=True)
    (root / name / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (root / name / "metrics.json").write_text(metrics if isinstance(metrics, str) else json.dumps(metrics))


def _text(table) -> str:
    console = Console(width=250, record=True, file=open("/dev/null", "w"))
    console.print(table)
    return console.export_text()


def test_nan_is_never_ranked_best(tmp_path):
    """A diverged run (NaN, written by json as NaN) ranks after every finite one, for max and min metrics."""
    _run(tmp_path, "diverged", ["optimizer.lr=10"], '{"final/val_acc": NaN, "final/val_loss": NaN}')
    _run(tmp_path, "good", ["optimizer.lr=0.001"], {"final/val_acc": 0.9, "final/val_loss": 0.3})
    _run(tmp_path, "worse", ["optimizer.lr=0.1"], {"final/val_acc": 0.5, "final/val_loss": 0.9})
    runs = find_runs([tmp_path])
    assert [r.path.name for r in ranked(runs, "final/val_acc")] == ["good", "worse", "diverged"]
    assert [r.path.name for r in ranked(runs, "final/val_loss")] == ["good", "worse", "diverged"]


def test_runs_with_identical_overrides_are_told_apart_by_folder(tmp_path):
    _run(tmp_path, "2026-01-01/10-00-00", ["activation=relu"], {"final/val_acc": 0.9})
    _run(tmp_path, "2026-01-01/10-00-00_1", ["activation=relu"], {"final/val_acc": 0.8})
    text = _text(runs_table(find_runs([tmp_path]), "final/val_acc", "t"))
    assert "│ 10-00-00 " in text and "│ 10-00-00_1 " in text  # relative to the runs' common folder


def test_by_seed_means_trainer_seed(tmp_path, capsys):
    """`--by seed` groups by trainer.seed (it is in overrides.yaml though not in the folder names)."""
    for seed, acc in ((0, 0.9), (1, 0.7), (2, 0.8)):
        _run(tmp_path, f"seed={seed}", [f"trainer.seed={seed}"], {"final/val_acc": acc})
    metric, by, problems = check_args(find_runs([tmp_path]), "val_acc", "seed")
    assert (metric, by, problems) == ("final/val_acc", "trainer.seed", [])
    assert main([str(tmp_path), "--by", "seed"]) == 0
    assert "final/val_acc by trainer.seed" in capsys.readouterr().out


def test_unknown_names_suggest_the_close_ones(tmp_path):
    _run(tmp_path, "a", ["activation=relu"], {"final/val_acc": 0.9})
    _run(tmp_path, "b", ["activation=tanh"], {"final/val_acc": 0.8})
    runs = find_runs([tmp_path])
    [by_problem] = check_args(runs, "val_acc", "activaton")[2]
    assert "did you mean activation?" in by_problem
    [metric_problem] = check_args(runs, "val_accuracy", None)[2]
    assert "did you mean val_acc?" in metric_problem


def test_one_unreadable_run_does_not_hide_the_others(tmp_path):
    _run(tmp_path, "good", ["activation=relu"], {"final/val_acc": 0.9})
    _run(tmp_path, "bad", ["activation=tanh"], "{broken")
    text = _text(runs_table(find_runs([tmp_path]), "final/val_acc", "t"))
    assert "0.9000" in text and "unreadable: metrics.json cannot be read" in text


def test_an_output_path_in_a_missing_folder_is_refused_before_any_table(tmp_path, capsys):
    """`--csv`/`--plot` into a folder that does not exist: exit 2 naming the folder, and no table printed
    first (a configuration error is found before any work)."""
    _run(tmp_path, "a", ["activation=relu"], {"final/val_acc": 0.9})
    for flag in ("--csv", "--plot"):
        assert main([str(tmp_path), flag, str(tmp_path / "no" / "such" / "out")]) == 2
        out = capsys.readouterr().out
        assert f"cannot write {flag}" in out and f"no folder {tmp_path / 'no' / 'such'}" in out
        assert "activation=relu" not in out and "┃" not in out
