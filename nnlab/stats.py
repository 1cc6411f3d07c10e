"""Statistics over seeds, by scipy.stats: a mean with its 95% t interval, Welch's difference of two means with
its interval and p-value, Holm's correction across comparisons, and the three-way decision on a claim.

Why t and Welch: a handful of seeds per configuration, roughly normal final metrics, variances that differ
between configurations (a diverging arm is noisier). With n = 1 there is no interval (nan): one seed says
nothing about noise. No torch import.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

LEVEL = 0.95
HOLDS, FAILS, INCONCLUSIVE, NOT_MEASURED = "holds", "does not hold", "inconclusive", "not measured"


@dataclass(frozen=True)
class Estimate:
    n: int
    mean: float
    std: float  # sample standard deviation (ddof=1); 0 for one value
    lo: float  # 95% t interval of the mean; nan for n < 2
    hi: float


@dataclass(frozen=True)
class Difference:
    diff: float  # mean(a) - mean(b)
    lo: float  # 95% Welch interval of the difference; nan when either side has one value
    hi: float
    p: float  # two-sided Welch t-test p-value; nan when undefined


def finite(xs: Sequence[float]) -> list[float]:
    return [float(x) for x in xs if x is not None and math.isfinite(float(x))]


def bounds(metric: str) -> tuple[float, float]:
    """The values a metric can take: [0, 1] for accuracies (`final/test_acc`, `val/acc`, `Accuracy/val`),
    unbounded for the rest."""
    name = metric.lower()
    return (0.0, 1.0) if name.endswith("acc") or "accuracy" in name else (-math.inf, math.inf)


def mean_ci(xs: Sequence[float], level: float = LEVEL, within: tuple[float, float] = (-math.inf, math.inf)
            ) -> Estimate:
    """Mean, std and the t interval mean ± t(level, n-1)·s/√n (scipy.stats.t), cut to `within` (an accuracy's
    interval never reaches past 1)."""
    from scipy import stats

    xs = finite(xs)
    n = len(xs)
    if n == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan)
    mean = sum(xs) / n
    if n == 1:
        return Estimate(1, mean, 0.0, math.nan, math.nan)
    if max(xs) == min(xs):  # every seed gave the same number: the mean is exact
        return Estimate(n, mean, 0.0, mean, mean)
    std = stats.tstd(xs)
    if std == 0:
        return Estimate(n, mean, 0.0, mean, mean)
    lo, hi = stats.t.interval(level, n - 1, loc=mean, scale=std / math.sqrt(n))
    return Estimate(n, mean, std, max(float(lo), within[0]), min(float(hi), within[1]))


def welch(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Difference:
    """mean(a) - mean(b) with Welch's t interval and p-value (scipy.stats.ttest_ind, equal_var=False).

    Both sides without spread (every seed gave the same number): the difference is exact, and its p-value
    0 when the means differ, 1 when they do not."""
    from scipy import stats

    a, b = finite(a), finite(b)
    if not a or not b:
        return Difference(math.nan, math.nan, math.nan, math.nan)
    diff = sum(a) / len(a) - sum(b) / len(b)
    if len(a) < 2 or len(b) < 2:
        return Difference(diff, math.nan, math.nan, math.nan)
    if max(a) == min(a) and max(b) == min(b):
        return Difference(diff, diff, diff, 0.0 if diff else 1.0)
    with warnings.catch_warnings():  # one side without spread: scipy warns of "precision loss", the test is sound
        warnings.simplefilter("ignore", RuntimeWarning)
        res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(level)
    return Difference(diff, float(ci.low), float(ci.high), float(res.pvalue))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment (controls the family-wise error rate); nan stays nan, order kept.

    Sorted ascending, p_(i) becomes max over j ≤ i of min(1, (m - j + 1)·p_(j)), m the number of real p-values.
    """
    real = sorted((p, i) for i, p in enumerate(pvalues) if not math.isnan(p))
    m, out, running = len(real), [math.nan] * len(pvalues), 0.0
    for rank, (p, i) in enumerate(real):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def decide(lo: float, hi: float, low: float = -math.inf, high: float = math.inf) -> str:
    """A claim 'the effect lies in (low, high)' against its 95% interval [lo, hi]: holds when the interval
    lies inside, does not hold when it lies outside, inconclusive when it straddles a bound or when there is
    no interval (nan: one seed). Missing runs ("not measured") are the caller's to say: it knows n."""
    if math.isnan(lo) or math.isnan(hi):
        return INCONCLUSIVE
    if low < lo and hi < high:
        return HOLDS
    if hi <= low or lo >= high:
        return FAILS
    return INCONCLUSIVE
