"""The comparison's statistics as pure functions of arrays: intervals, paired tests, robust
summaries, the probability of improvement and the seeds a paired test would need.

Every number comes from scipy.stats (result objects passed on, not recomputed), so each can be
checked against scipy on hand-built values.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import warnings
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
ALPHA = 0.05
POWER = 0.8
BOOTSTRAP_RESAMPLES = 9999
# Resamples drawn and averaged at a time: the same draws from the same generator, so the same
# interval to the bit, without a 9,999 × seeds × metrics array (600 MB for 500 seeds of 15
# metrics): a third faster at 500 seeds, the same at 5.
BOOTSTRAP_BATCH = 250
# A paired test that needs more seeds than this is reported as "more than" it.
MAX_SEEDS = 100_000


@dataclasses.dataclass(frozen=True)
class Interval:
    """A mean over n values with its 95% t-interval (NaN bounds when n < 2)."""

    n: int
    mean: float
    low: float
    high: float


def finite(values: Any) -> np.ndarray:
    """The finite values of `values` as a float array (NaN and ±inf dropped)."""
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def mean_interval(values: Any, confidence: float = CONFIDENCE) -> Interval:
    """Mean and t-interval of `values` (scipy.stats.ttest_1samp's confidence_interval)."""
    values = finite(values)
    n = len(values)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan)
    mean = float(values.mean())
    if n == 1:
        return Interval(1, mean, math.nan, math.nan)
    if np.all(values == values[0]):
        return Interval(n, mean, mean, mean)
    low, high = stats.ttest_1samp(values, 0.0).confidence_interval(confidence)
    return Interval(n, mean, float(low), float(high))


def stable_seed(*parts: Any) -> int:
    """A seed from names (the grid, the cell, the metric): the same report every time, and a
    cell's interval does not change when another cell is added to the grid."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def robust_summary(values: Any, seed: int, confidence: float = CONFIDENCE) -> dict[str, float]:
    """Interquartile mean (`trim_mean(x, 0.25)`), median and a BCa bootstrap interval of the mean.

    Fewer than two values give NaN bounds; equal values give a zero-width interval (BCa's
    acceleration is 0/0 there, so scipy answers NaN).
    """
    values = finite(values)
    summary = {"iqm": math.nan, "median": math.nan, "boot_low": math.nan, "boot_high": math.nan}
    if len(values) == 0:
        return summary
    summary.update(iqm=float(stats.trim_mean(values, 0.25)), median=float(np.median(values)))
    if len(values) < 2:
        return summary
    if np.all(values == values[0]):
        return {**summary, "boot_low": float(values[0]), "boot_high": float(values[0])}
    with warnings.catch_warnings():  # two or three values: BCa may warn of a degenerate jackknife
        warnings.simplefilter("ignore")
        interval = stats.bootstrap(
            (values,),
            np.mean,
            confidence_level=confidence,
            method="BCa",
            n_resamples=BOOTSTRAP_RESAMPLES,
            batch=BOOTSTRAP_BATCH,
            rng=np.random.default_rng(seed),
        ).confidence_interval
    return {**summary, "boot_low": float(interval.low), "boot_high": float(interval.high)}


def summaries(
    columns: dict[str, Any], seed: int, confidence: float = CONFIDENCE
) -> dict[str, dict]:
    """Per column (a cell's metrics over its seeds): n, mean and t-interval (`mean_interval`)
    and the robust summary (`robust_summary`), as `{"n", "mean", "low", "high", "iqm", ...}`.

    The columns with two or more finite, unequal values go through scipy together, one t-test
    and one bootstrap (the same resamples for each column) per cell instead of one per metric:
    scipy's per-call cost, not the arithmetic, is what a 200-trial report spends here.
    """
    result, batch = {}, []
    for name, values in columns.items():
        values = np.asarray(values, dtype=float)
        if len(values) >= 2 and np.all(np.isfinite(values)) and not np.all(values == values[0]):
            batch.append(name)
        else:
            interval = mean_interval(values, confidence)
            result[name] = {
                "n": interval.n,
                "mean": interval.mean,
                "low": interval.low,
                "high": interval.high,
                **robust_summary(values, seed, confidence),
            }
    if not batch:
        return result
    data = np.vstack([np.asarray(columns[name], dtype=float) for name in batch])
    low, high = stats.ttest_1samp(data, 0.0, axis=1).confidence_interval(confidence)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boot = stats.bootstrap(
            (data,),
            np.mean,
            confidence_level=confidence,
            method="BCa",
            axis=-1,
            n_resamples=BOOTSTRAP_RESAMPLES,
            batch=BOOTSTRAP_BATCH,
            rng=np.random.default_rng(seed),
        ).confidence_interval
    means, iqm, median = (
        data.mean(axis=1),
        stats.trim_mean(data, 0.25, axis=1),
        np.median(data, axis=1),
    )
    for i, name in enumerate(batch):
        result[name] = {
            "n": data.shape[1],
            "mean": float(means[i]),
            "low": float(low[i]),
            "high": float(high[i]),
            "iqm": float(iqm[i]),
            "median": float(median[i]),
            "boot_low": float(boot.low[i]),
            "boot_high": float(boot.high[i]),
        }
    return result


def paired_difference(
    level: Any, reference: Any, confidence: float = CONFIDENCE, direction: str = "min"
) -> dict[str, float]:
    """`level - reference` on pairs: mean difference, its t-interval, paired t and Wilcoxon p,
    the standardised effect (mean difference / its standard deviation) and the probability
    that the level is better than the reference (`direction`: "min" when lower is better).

    Identical pairs give difference 0 and p = 1 (scipy would answer NaN); one pair gives NaN p.
    """
    level, reference = np.asarray(level, dtype=float), np.asarray(reference, dtype=float)
    differences = level - reference
    n = len(differences)
    result = {
        "n_pairs": n,
        "mean_diff": float(differences.mean()) if n else math.nan,
        "diff_low": math.nan,
        "diff_high": math.nan,
        "p_ttest": math.nan,
        "p_wilcoxon": math.nan,
        "effect_size": standardized_effect(differences),
        "prob_improvement": probability_of_improvement(level, reference, direction),
    }
    if n and np.all(differences == 0):
        return {**result, "diff_low": 0.0, "diff_high": 0.0, "p_ttest": 1.0, "p_wilcoxon": 1.0}
    if n < 2:
        return result
    with warnings.catch_warnings():  # near-identical pairs: scipy warns, the numbers stand
        warnings.simplefilter("ignore", RuntimeWarning)
        ttest = stats.ttest_rel(level, reference)
        low, high = ttest.confidence_interval(confidence)
        # scipy builds the result class at run time: pyright cannot see its `pvalue`
        wilcoxon_p = stats.wilcoxon(level, reference, zero_method="zsplit").pvalue  # pyright: ignore[reportAttributeAccessIssue]
    if np.all(differences == differences[0]):  # no spread: the difference is exact
        low = high = float(differences[0])
    return {
        **result,
        "diff_low": float(low),
        "diff_high": float(high),
        "p_ttest": float(ttest.pvalue),
        "p_wilcoxon": float(wilcoxon_p),
    }


def standardized_effect(differences: Any) -> float:
    """Mean paired difference over its standard deviation (Cohen's d_z): 0 for no difference,
    ±inf for a difference without spread, NaN for fewer than two pairs."""
    differences = np.asarray(differences, dtype=float)
    if len(differences) < 2:
        return math.nan
    mean, spread = float(differences.mean()), float(differences.std(ddof=1))
    if spread == 0:
        return 0.0 if mean == 0 else math.copysign(math.inf, mean)
    return mean / spread


def probability_of_improvement(level: Any, reference: Any, direction: str = "min") -> float:
    """P(a level's value is better than a reference value), ties counted half: the
    Mann-Whitney U of the better-side sample over n·m (rliable's probability of improvement)."""
    level, reference = finite(level), finite(reference)
    if not len(level) or not len(reference):
        return math.nan
    # U of the first sample counts the pairs where it is the larger one.
    larger, smaller = (reference, level) if direction == "min" else (level, reference)
    return float(stats.mannwhitneyu(larger, smaller).statistic) / (len(level) * len(reference))


def paired_t_power(n: int, effect_size: float, alpha: float = ALPHA) -> float:
    """Power of a two-sided paired t-test on n pairs for a standardised effect (noncentral t)."""
    df = n - 1
    critical = stats.t.ppf(1 - alpha / 2, df)
    noncentrality = abs(effect_size) * math.sqrt(n)
    power = float(
        stats.nct.sf(critical, df, noncentrality) + stats.nct.cdf(-critical, df, noncentrality)
    )
    if not math.isfinite(power):  # scipy's noncentral t gives NaN far into its tail
        power = 1.0 if noncentrality > critical else 0.0
    return power


def seeds_for_power(effect_size: float, power: float = POWER, alpha: float = ALPHA) -> float:
    """The fewest pairs (seeds) for which a paired t-test reaches `power` at `alpha` when the
    true standardised effect is `effect_size`; inf when no effect or past MAX_SEEDS."""
    if not math.isfinite(effect_size) or effect_size == 0:
        return 2.0 if math.isinf(effect_size) else math.inf
    high = 2  # power grows with n: double until enough, then halve the bracket
    while paired_t_power(high, effect_size, alpha) < power:
        if high >= MAX_SEEDS:
            return math.inf
        high = min(2 * high, MAX_SEEDS)
    low = max(2, high // 2)
    while low < high:
        middle = (low + high) // 2
        if paired_t_power(middle, effect_size, alpha) >= power:
            high = middle
        else:
            low = middle + 1
    return float(low)


def holm(pvalues: Any) -> list[float]:
    """Holm's step-down adjustment (family-wise error); NaN stays NaN and is not counted."""
    pvalues = [float(p) for p in pvalues]
    ordered = sorted((p, i) for i, p in enumerate(pvalues) if math.isfinite(p))
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(ordered):
        running = max(running, min(1.0, (len(ordered) - rank) * p))
        adjusted[i] = running
    return adjusted


def relative_spread(values: Any) -> float:
    """(max - min) / max |value| over backends: 0 when they agree exactly, inf if any is not
    finite."""
    values = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(values)):
        return math.inf
    scale = float(np.max(np.abs(values)))
    return float(values.max() - values.min()) / scale if scale > 0 else 0.0
