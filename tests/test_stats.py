"""Statistics over seeds (nnlab/stats.py) against closed forms and hand-computed values; verdicts with their
four outcomes on planted runs; the seed grouping of runs and of the command line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from rich.console import Console
from scipy import stats as sps

from nnlab.cli.compare_stats import by_table, seed_groups_table
from nnlab.cli.sweep_summary import report_verdicts
from nnlab.cli.train import expand_seeds
from nnlab.registry import ConfigError
from nnlab.runs import RunRecord, seed_groups
from nnlab.stats import FAILS, HOLDS, INCONCLUSIVE, NOT_MEASURED, bounds, decide, holm, mean_ci, welch
from nnlab.verdicts import VERDICTS, as_json


def test_mean_ci_is_the_t_interval():
    """[1, 2, 3]: mean 2, s = 1, half-width t(0.975, 2)·1/√3 with t = 4.302653 (the table value)."""
    e = mean_ci([1.0, 2.0, 3.0])
    half = 4.302652729911275 / math.sqrt(3)
    assert (e.n, e.mean, e.std) == (3, 2.0, 1.0)
    assert e.lo == pytest.approx(2 - half, rel=1e-9) and e.hi == pytest.approx(2 + half, rel=1e-9)


def test_mean_ci_edge_cases():
    """One value has no interval; identical values an exact one; NaN runs are left out."""
    one = mean_ci([0.7])
    assert one.n == 1 and one.mean == 0.7 and math.isnan(one.lo)
    same = mean_ci([1.0, 1.0, 1.0])
    assert (same.lo, same.hi, same.std) == (1.0, 1.0, 0.0)
    assert mean_ci([1.0, float("nan"), 3.0]).n == 2
    assert mean_ci([]).n == 0


def test_an_accuracys_interval_stays_within_0_and_1():
    """Accuracies near 1 whose t interval would pass 1 are cut to [0, 1] (table and plot band); the mean and
    std are untouched, and other metrics keep the whole t interval."""
    xs = [0.99, 1.0, 0.96]
    whole, cut = mean_ci(xs), mean_ci(xs, within=bounds("final/test_acc"))
    assert whole.hi > 1 and cut.hi == 1.0 and cut.lo == whole.lo and (cut.mean, cut.std) == (whole.mean, whole.std)
    assert all(bounds(m) == (0.0, 1.0) for m in ("val/acc", "final/val_acc", "Accuracy/val"))
    assert bounds("final/test_loss") == bounds("Loss/val") == (-math.inf, math.inf)


def test_welch_matches_the_closed_form():
    """Welch: t = (ma - mb)/√(va/na + vb/nb), Welch–Satterthwaite df, two-sided p; CI = diff ± t(df)·se."""
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]
    va, vb = 1.0 / 3, (5.0 / 3) / 4
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 3)
    t = -3.5 / se
    d = welch(a, b)
    assert d.diff == pytest.approx(-3.5)
    assert d.p == pytest.approx(2 * sps.t.sf(abs(t), df), rel=1e-9)
    q = sps.t.ppf(0.975, df)
    assert (d.lo, d.hi) == (pytest.approx(-3.5 - q * se), pytest.approx(-3.5 + q * se))


def test_welch_without_spread_or_runs():
    """No spread on either side: the difference is exact; one run on a side: no interval, no p-value."""
    assert welch([1.0, 1.0], [0.5, 0.5]).p == 0.0 and welch([1.0, 1.0], [1.0, 1.0]).p == 1.0
    assert math.isnan(welch([1.0], [0.5, 0.6]).p) and math.isnan(welch([], [1.0]).diff)


def test_holm_by_hand():
    """p = [0.01, 0.04, 0.03, 0.005]: sorted ×4, ×3, ×2, ×1 with running max -> [0.03, 0.06, 0.06, 0.02]."""
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = holm([0.2, float("nan"), 0.9])
    assert adjusted[0] == pytest.approx(0.4) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.9)


@pytest.mark.parametrize(("lo", "hi", "outcome"), [(0.2, 0.4, HOLDS), (-0.3, -0.1, FAILS), (-0.1, 0.3, INCONCLUSIVE),
                                                   (math.nan, math.nan, INCONCLUSIVE)])
def test_decide(lo, hi, outcome):
    """Claim 'effect > 0' on an interval: inside holds, outside fails, straddling (or none) is inconclusive."""
    assert decide(lo, hi, 0.0) == outcome


def _runs(arms: dict[tuple[str, str], list[float]], metric: str = "final/val_acc") -> list[RunRecord]:
    out = []
    for (depth, skip), values in arms.items():
        for seed, v in enumerate(values):
            over = {"model.depth": depth, "model.skip": skip, "trainer.seed": str(seed)}
            out.append(RunRecord(Path(f"model.depth={depth},model.skip={skip},seed={seed}"), over, {metric: v}))
    return out


def _skip_verdict(residual: list[float], plain: list[float]):
    runs = _runs({("4", "false"): [0.8, 0.81, 0.8], ("4", "true"): [0.8, 0.82, 0.81],
                  ("30", "true"): residual, ("30", "false"): plain})
    return VERDICTS["skip_connections_depth"](runs)[1]


@pytest.mark.parametrize(("residual", "plain", "outcome"), [
    ([0.60, 0.62, 0.61], [0.10, 0.10, 0.11], HOLDS),
    ([0.10, 0.10, 0.11], [0.30, 0.31, 0.30], FAILS),
    ([0.50, 0.90, 0.20], [0.10, 0.50, 0.10], INCONCLUSIVE),  # noisy seeds: the interval straddles zero
    ([0.60], [0.10], INCONCLUSIVE),  # one seed per arm: no interval
])
def test_skip_connection_verdict_outcomes(residual, plain, outcome):
    """The deep-residual claim (residual above plain) decided on Welch's interval, with its n per arm."""
    v = _skip_verdict(residual, plain)
    assert v.outcome == outcome and v.n == [len(residual), len(plain)]
    assert "difference" in v.measured


def test_failed_runs_are_not_measured(tmp_path):
    """Every job failed (no data): each claim is 'not measured' and verdict.json says holds: null, never false."""
    runs = [RunRecord(Path(f"d={d},s={s}"), {"model.depth": d, "model.skip": s}, {}, "job failed: no data")
            for d in ("4", "30") for s in ("false", "true")]
    verdicts = VERDICTS["skip_connections_depth"](runs)
    assert [v.outcome for v in verdicts] == [NOT_MEASURED, NOT_MEASURED]
    report_verdicts("skip_connections_depth", runs, tmp_path, Console(file=open("/dev/null", "w")))
    saved = json.loads((tmp_path / "verdict.json").read_text())
    assert [(v["outcome"], v["holds"]) for v in saved] == [(NOT_MEASURED, None)] * 2
    assert all("nan" not in v["measured"] for v in saved)


@pytest.mark.parametrize("name", sorted(VERDICTS))
def test_every_preset_says_not_measured_without_runs(name):
    """No runs at all: every preset still lists its claims, and none that needs runs holds or fails (exact
    checks still decide)."""
    assert VERDICTS[name]([])
    for v in VERDICTS[name]([]):
        assert v.outcome in (NOT_MEASURED, HOLDS, FAILS) and (v.outcome == NOT_MEASURED or v.n == [])


def test_verdict_json_carries_effect_ci_and_n():
    v = _skip_verdict([0.60, 0.62, 0.61], [0.10, 0.10, 0.11])
    d = as_json([v])[0]
    assert d["holds"] is True and d["n"] == [3, 3] and d["ci"][0] < d["effect"] < d["ci"][1]


def test_seed_groups_pool_runs_that_differ_only_by_seed():
    runs = _runs({("4", "false"): [0.1, 0.2], ("30", "false"): [0.3, 0.4, 0.5]})
    groups = seed_groups(runs)
    assert {k: len(v) for k, v in groups.items()} == {"model.depth=4": 2, "model.depth=30": 3}


def _text(table) -> str:
    console = Console(width=250, record=True, file=open("/dev/null", "w"))
    console.print(table)
    return console.export_text()


def test_by_table_with_baseline_says_no_significant_difference():
    """--by KEY --baseline V: n, 95% CI, Welch difference, Holm p; overlapping noisy arms are not 'better'."""
    runs = _runs({("4", "false"): [0.80, 0.81, 0.79], ("30", "false"): [0.50, 0.90, 0.70],
                  ("8", "false"): [0.10, 0.11, 0.12]})
    text = _text(by_table(runs, "model.depth", "final/val_acc", baseline="4"))
    assert "95% CI" in text and "baseline" in text and "p (Holm)" in text
    row30 = next(ln for ln in text.splitlines() if ln.startswith("│ 30"))
    row8 = next(ln for ln in text.splitlines() if ln.startswith("│ 8"))
    assert "no significant difference" in row30 and "significantly worse" in row8
    assert " 3 " in row30  # n


def test_seed_groups_table_shows_n_and_ci():
    """The seeds table shows n and the t interval; an accuracy's interval is cut to [0, 1]."""
    loss = _text(seed_groups_table(_runs({("4", "false"): [1.0, 2.0, 3.0]}, "final/val_loss"), "final/val_loss"))
    assert "[-0.4841, 4.4841]" in loss and "│ 3 " in loss
    acc = _text(seed_groups_table(_runs({("4", "false"): [0.99, 1.0, 0.96]}), "final/val_acc"))
    assert "1.0000]" in acc and "│ 3 " in acc


@pytest.mark.parametrize(("args", "expected"), [
    (["data=xor", "seeds=3"], ["-m", "data=xor", "trainer.seed=0,1,2"]),
    (["-m", "activation=relu,tanh", "seeds=2"], ["-m", "activation=relu,tanh", "trainer.seed=0,1"]),
    (["data=xor"], ["data=xor"]),
])
def test_seeds_shortcut_expands_to_a_seed_sweep(args, expected):
    assert expand_seeds(args) == expected


@pytest.mark.parametrize("args", [["seeds=0"], ["seeds=two"], ["seeds=2", "trainer.seed=5"]])
def test_bad_seeds_shortcut_is_a_configuration_error(args):
    """A bad seeds=N is a ConfigError naming seeds (nnlab train prints it as one paragraph, exit 2)."""
    with pytest.raises(ConfigError, match="seeds"):
        expand_seeds(args)


def test_ratio_claims_are_decided_on_the_log_scale():
    """Activation-scale ratios: geometric mean and a t interval of log10 (0.5, 1.5, 2.5 keep the scale within
    a factor 10; vanished ones, 1e-21 or so, lie below 0.001; a spread over 3 decades is inconclusive)."""
    runs = [RunRecord(Path(f"init={i},seed={s}"), {"init": i, "trainer.seed": str(s)},
                      {"init/activation_std_first": 1.0, "init/activation_std_last": r, "final/val_acc": 0.5})
            for i, ratios in (("kaiming_normal", [0.5, 1.5, 2.5]), ("normal", [1e-20, 1e-22, 1e-21]),
                              ("xavier_normal", [0.05, 3.0, 40.0]))
            for s, r in enumerate(ratios)]
    kaiming, normal, xavier = VERDICTS["init_depth"](runs)[:3]
    assert kaiming.outcome == HOLDS and kaiming.effect == pytest.approx((0.5 * 1.5 * 2.5) ** (1 / 3))
    assert normal.outcome == HOLDS and xavier.outcome == INCONCLUSIVE
