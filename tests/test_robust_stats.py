"""The comparison's robust statistics and learning-curve measures against independent references:
scipy.stats, brute-force counts and a Monte Carlo simulation of the paired t-test."""

import math

import numpy as np
import pytest
from scipy import stats

from mlpsuite.analysis.stats import (
    mean_interval,
    paired_difference,
    paired_t_power,
    probability_of_improvement,
    robust_summary,
    seeds_for_power,
    stable_seed,
    standardized_effect,
    summaries,
)
from mlpsuite.learning_curves import area_under_curve, epochs_to_target, time_to_target

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)

VALUES = np.array([0.41, 0.39, 0.45, 0.43, 0.40, 0.62, 0.38])


def test_robust_summary_is_scipys_trimmed_mean_median_and_bca_bootstrap():
    summary = robust_summary(VALUES, seed=7)
    assert summary["iqm"] == pytest.approx(stats.trim_mean(VALUES, 0.25))
    # The interquartile mean by hand: drop the lowest and highest quarter (1 of 7 each side).
    assert summary["iqm"] == pytest.approx(np.mean(np.sort(VALUES)[1:-1]))
    assert summary["median"] == pytest.approx(np.median(VALUES))
    reference = stats.bootstrap(
        (VALUES,), np.mean, confidence_level=0.95, method="BCa", rng=np.random.default_rng(7)
    ).confidence_interval
    assert (summary["boot_low"], summary["boot_high"]) == pytest.approx(
        (reference.low, reference.high)
    )
    assert summary["boot_low"] < VALUES.mean() < summary["boot_high"]


def test_bootstrap_is_reproducible_from_names_and_changes_with_them():
    seed = stable_seed("grid-key", "activation=elu", "all", "val_loss")
    assert seed == stable_seed("grid-key", "activation=elu", "all", "val_loss")
    assert robust_summary(VALUES, seed) == robust_summary(VALUES, seed)
    spread = np.random.default_rng(1).normal(
        0.4, 0.05, size=20
    )  # enough values for resamples to differ
    other = robust_summary(spread, stable_seed("grid-key", "activation=relu", "all", "val_loss"))
    assert other["boot_low"] != robust_summary(spread, seed)["boot_low"]


def test_robust_summary_of_one_value_and_of_equal_values():
    one = robust_summary([0.3], seed=0)
    assert one["iqm"] == one["median"] == 0.3 and math.isnan(one["boot_low"])
    equal = robust_summary([0.3, 0.3, 0.3], seed=0)
    assert (equal["boot_low"], equal["boot_high"]) == (0.3, 0.3)


def test_a_cells_metrics_summarised_together_equal_scipy_column_by_column():
    columns = {
        "val_loss": VALUES,
        "test_loss": VALUES[::-1] * 1.1,
        "best_epoch": np.full(7, 9.0),
        "epochs_to_target": np.array([3, 4, np.nan, 5, 3, 4, 6], dtype=float),
    }
    result = summaries(columns, seed=3)
    for name, values in columns.items():
        finite = values[np.isfinite(values)]
        interval = mean_interval(finite)
        assert (result[name]["n"], result[name]["mean"]) == (
            len(finite),
            pytest.approx(finite.mean()),
        ), name
        assert (result[name]["low"], result[name]["high"]) == pytest.approx(
            (interval.low, interval.high)
        ), name
        assert result[name]["iqm"] == pytest.approx(stats.trim_mean(finite, 0.25)), name
    # The two unequal complete columns share one bootstrap: scipy's own vectorised call.
    together = stats.bootstrap(
        (np.vstack([columns["val_loss"], columns["test_loss"]]),),
        np.mean,
        axis=-1,
        method="BCa",
        rng=np.random.default_rng(3),
    ).confidence_interval
    assert result["val_loss"]["boot_low"] == pytest.approx(together.low[0])
    assert result["test_loss"]["boot_high"] == pytest.approx(together.high[1])
    assert result["best_epoch"]["boot_low"] == result["best_epoch"]["boot_high"] == 9.0
    assert result["epochs_to_target"] == {
        **result["epochs_to_target"],
        **robust_summary(columns["epochs_to_target"], 3),
    }


def _brute_force_improvement(level, reference, lower_is_better):
    wins = 0.0
    for a in level:
        for b in reference:
            wins += 0.5 if a == b else float(a < b if lower_is_better else a > b)
    return wins / (len(level) * len(reference))


@pytest.mark.parametrize("direction", ["min", "max"])
def test_probability_of_improvement_counts_wins_and_half_ties(direction):
    level = [0.30, 0.25, 0.40, 0.25, 0.33]
    reference = [0.28, 0.25, 0.35, 0.31]
    expected = _brute_force_improvement(level, reference, direction == "min")
    assert probability_of_improvement(level, reference, direction) == pytest.approx(expected)
    # Better one way is worse the other: the two directions sum to 1.
    flipped = probability_of_improvement(level, reference, "max" if direction == "min" else "min")
    assert expected + flipped == pytest.approx(1.0)


def test_standardised_effect_is_mean_over_standard_deviation_of_differences():
    differences = np.array([0.02, 0.05, 0.01, 0.04, 0.03])
    assert standardized_effect(differences) == pytest.approx(
        differences.mean() / differences.std(ddof=1)
    )
    assert standardized_effect([0.0, 0.0]) == 0 and standardized_effect([0.1, 0.1]) == math.inf
    assert math.isnan(standardized_effect([0.1]))


def test_paired_difference_carries_improvement_and_effect_size():
    level = np.array([0.52, 0.61, 0.49, 0.58, 0.55, 0.60])
    reference = np.array([0.50, 0.55, 0.50, 0.51, 0.49, 0.52])
    result = paired_difference(level, reference, direction="min")
    assert result["effect_size"] == pytest.approx(
        (level - reference).mean() / (level - reference).std(ddof=1)
    )
    assert result["prob_improvement"] == pytest.approx(
        _brute_force_improvement(level, reference, True)
    )


def test_power_is_the_noncentral_t_and_the_seed_budget_is_the_smallest_that_reaches_80_percent():
    effect = 0.8
    n = seeds_for_power(effect)
    assert paired_t_power(int(n), effect) >= 0.8 > paired_t_power(int(n) - 1, effect)
    # The noncentral t against a simulation of the test itself: 20,000 experiments of n pairs
    # whose differences have standardised mean `effect`.
    rng = np.random.default_rng(0)
    for pairs in (int(n), int(n) - 3):
        differences = rng.normal(effect, 1.0, size=(20_000, pairs))
        rejected = stats.ttest_1samp(differences, 0.0, axis=1).pvalue < 0.05  # pyright: ignore[reportAttributeAccessIssue]  # scipy makes its result classes at runtime
        assert rejected.mean() == pytest.approx(paired_t_power(pairs, effect), abs=0.015)
    assert seeds_for_power(0.0) == math.inf and seeds_for_power(math.inf) == 2
    assert seeds_for_power(0.5) > seeds_for_power(1.0) > seeds_for_power(2.0) >= 2


def test_area_under_curve_and_first_epoch_at_a_target():
    curve = [1.2, 0.8, 0.5, 0.31, 0.29, 0.35]
    assert area_under_curve(curve) == pytest.approx(np.mean(curve))
    assert math.isnan(area_under_curve([0.5, math.nan])) and math.isnan(area_under_curve([]))
    assert (
        epochs_to_target(curve, 0.3, "val_loss") == 5
    )  # 1-based: the fifth epoch is the first <= 0.3
    assert epochs_to_target(curve, 0.1, "val_loss") is None
    assert epochs_to_target([0.5, 0.8, 0.93], 0.9, "val_accuracy") == 3  # accuracy: at or over
    times = [2.0, 0.5, 0.5, 0.5, 0.5, 0.5]
    assert time_to_target(curve, times, 0.3, "val_loss") == pytest.approx(sum(times[:5]))
    assert time_to_target(curve, times, 0.1, "val_loss") is None
