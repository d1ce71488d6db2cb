"""The comparison's statistics against independent references, on hand-built grids."""

import math

import numpy as np
import pytest
from scipy import stats

from mlpsuite.analysis import (
    ALL_BACKENDS,
    cell_table,
    counted_run,
    effect_table,
    failure_table,
    grid_column,
    grid_frame,
    holm,
    mean_interval,
    paired_difference,
    parity_table,
    relative_spread,
    speed_table,
)
from tests.runs import mlflow_run as _run

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)


def test_mean_interval_is_scipys_t_interval():
    values = [0.41, 0.39, 0.45, 0.43, 0.40]
    interval = mean_interval(values)
    low, high = stats.t.interval(
        0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values)
    )
    assert interval.n == 5 and interval.mean == pytest.approx(np.mean(values))
    assert (interval.low, interval.high) == pytest.approx((low, high))


def test_mean_interval_of_one_value_has_no_bounds_and_equal_values_have_zero_width():
    one = mean_interval([0.3])
    assert one.n == 1 and one.mean == 0.3 and math.isnan(one.low) and math.isnan(one.high)
    equal = mean_interval([0.3, 0.3, 0.3])
    assert (equal.low, equal.high) == (0.3, 0.3)


def test_paired_difference_matches_scipy_ttest_rel_and_wilcoxon():
    level = np.array([0.52, 0.61, 0.49, 0.58, 0.55, 0.60])
    reference = np.array([0.50, 0.55, 0.50, 0.51, 0.49, 0.52])
    result = paired_difference(level, reference)
    ttest = stats.ttest_rel(level, reference)
    low, high = ttest.confidence_interval(0.95)
    assert result["n_pairs"] == 6
    assert result["mean_diff"] == pytest.approx(np.mean(level - reference))
    assert (result["diff_low"], result["diff_high"]) == pytest.approx((low, high))
    assert result["p_ttest"] == pytest.approx(ttest.pvalue)
    assert result["p_wilcoxon"] == pytest.approx(stats.wilcoxon(level, reference).pvalue)  # pyright: ignore[reportAttributeAccessIssue]  # scipy makes its result classes at runtime


def test_identical_values_give_difference_zero_and_p_one():
    values = [0.3, 0.2, 0.5]
    result = paired_difference(values, values)
    assert result["mean_diff"] == 0 and result["p_ttest"] == 1 and result["p_wilcoxon"] == 1
    assert (result["diff_low"], result["diff_high"]) == (0, 0)


def test_holm_on_a_worked_example():
    # Sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> kept monotone: 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    adjusted = holm([0.01, float("nan")])
    assert adjusted[0] == pytest.approx(0.01) and math.isnan(adjusted[1])  # NaN is not counted


def test_relative_spread():
    assert relative_spread([2.0, 2.0, 2.0]) == 0
    assert relative_spread([1.0, 1.001]) == pytest.approx(0.001 / 1.001)
    assert relative_spread([1.0, float("nan")]) == math.inf


# ---------------------------------------------------------------- a hand-built grid

KEY = "model.activation"


def _grid(values: dict[tuple[str, str, int], float], extra=None):
    """A manifest and runs: (activation, backend, seed) -> val_loss."""
    trials, runs = [], []
    for (activation, backend, seed), val_loss in values.items():
        key = f"{activation}-{backend}-{seed}"
        trials.append({"key": key, "backend": backend, "seed": seed, "cell": {KEY: activation}})
        metrics = {
            "val_loss": val_loss,
            "loss": val_loss,
            "initial_loss": 2.3,
            "step_time_ms": 1.0,
            **(extra or {}).get(backend, {}),
        }
        runs.append(_run(key, tags={"mlpsuite.weights_sha256": f"w{seed}"}, **metrics))
    return {"grid_keys": [KEY], "trials": trials}, runs


def test_cells_average_a_seeds_backends_then_take_the_interval_over_seeds():
    relu = {0: 0.50, 1: 0.54, 2: 0.52}
    elu = {0: 0.20, 1: 0.21, 2: 0.25}
    values = {}
    for seed in range(3):
        values[("relu", "jax", seed)] = relu[seed]
        values[("relu", "torch", seed)] = relu[seed] + 0.002
        values[("elu", "jax", seed)] = elu[seed]
        values[("elu", "torch", seed)] = elu[seed] + 0.002
    manifest, runs = _grid(values)
    table = cell_table(grid_frame(manifest, runs), [KEY], "val_loss")
    pooled = table[table["backend"] == ALL_BACKENDS]
    assert list(pooled["cell"]) == ["activation=elu", "activation=relu"]  # ranked, best first
    best = pooled.iloc[0]
    per_seed = [elu[s] + 0.001 for s in range(3)]
    low, high = stats.t.interval(0.95, 2, loc=np.mean(per_seed), scale=stats.sem(per_seed))
    assert best["n"] == 3 and best["trials"] == 6
    assert (best["val_loss_mean"], best["val_loss_low"], best["val_loss_high"]) == pytest.approx(
        (np.mean(per_seed), low, high)
    )
    assert list(pooled["overlaps_best"]) == [True, False]
    per_backend = table[table["backend"] == "torch"]
    assert per_backend.iloc[0]["val_loss_mean"] == pytest.approx(np.mean(per_seed) + 0.001)


def test_effects_pair_on_seed_with_the_best_level_as_reference():
    values = {("relu", "jax", s): 0.3 + 0.01 * s for s in range(4)}
    values.update({("elu", "jax", s): 0.2 + 0.012 * s for s in range(4)})
    values.update(
        {("sigmoid", "jax", s): 0.2 + 0.01 * s + (0.001 if s % 2 else -0.001) for s in range(4)}
    )
    manifest, runs = _grid(values)
    effects = effect_table(grid_frame(manifest, runs), KEY, [KEY], "val_loss")
    assert set(effects["reference"]) == {"sigmoid"}  # the lowest mean val_loss
    relu = effects[effects["level"] == "relu"].iloc[0]
    relu_values = [0.3 + 0.01 * s for s in range(4)]
    sigmoid_values = [0.2 + 0.01 * s + (0.001 if s % 2 else -0.001) for s in range(4)]
    assert relu["n_pairs"] == 4 and relu["mean_diff"] > 0
    assert relu["p_ttest"] == pytest.approx(stats.ttest_rel(relu_values, sigmoid_values).pvalue)
    assert list(effects["p_holm"]) == pytest.approx(holm(effects["p_ttest"]))


def test_parity_compares_every_epoch_and_lists_dropout_apart():
    values = {("relu", b, 0): 0.3 for b in ("jax", "torch")}
    values.update({("elu", b, 0): 0.2 for b in ("jax", "torch")})
    manifest, runs = _grid(values)
    frame = grid_frame(manifest, runs)
    frame.loc[frame["cell"] == "activation=elu", "dropout"] = 0.5
    losses = {
        row["run_id"]: [1.0, 0.5, 0.25 * (1.001 if row["backend"] == "torch" else 1.0)]
        for _, row in frame.iterrows()
    }
    parity = parity_table(frame, losses).set_index("cell")
    relu = parity.loc["activation=relu"]
    assert relu["max_epoch_rel_diff"] == pytest.approx(0.001 / 1.001) and relu["worst_epoch"] == 3
    assert relu["initial_rel_diff"] == 0 and relu["weights_match"] and relu["expected_to_agree"]
    assert not parity.loc["activation=elu"]["expected_to_agree"]


def test_speed_reports_medians_and_ratios_to_the_fastest():
    values = {("relu", b, s): 0.3 for b in ("jax", "torch", "tensorflow") for s in range(3)}
    extra = {
        "jax": {"step_time_ms": 0.2, "first_epoch_time_s": 1.5, "steady_epoch_time_s": 0.1},
        "torch": {"step_time_ms": 2.0, "first_epoch_time_s": 0.3, "steady_epoch_time_s": 0.25},
        "tensorflow": {
            "step_time_ms": 2.0,
            "first_epoch_time_s": 0.299,
            "steady_epoch_time_s": 0.3,
        },
    }
    manifest, runs = _grid(values, extra)
    speed = speed_table(grid_frame(manifest, runs)).set_index("backend")
    assert speed.loc["jax", "step_time_ms"] == 0.2 and speed.loc[
        "torch", "step_time_ms_x"
    ] == pytest.approx(10)
    assert speed.loc["jax", "first_epoch_overhead_s"] == pytest.approx(1.4)
    # Timing noise below zero (no compilation) counts as 0, and nothing is a ratio to 0.
    assert speed.loc["tensorflow", "first_epoch_overhead_s"] == 0
    assert speed["first_epoch_overhead_s_x"].isna().all()


def test_speed_has_a_row_per_backend_and_execution_setting_with_memory():
    """A grid over training.jit_compile: tensorflow/jit=false and tensorflow/jit=true apart; the
    peak memory's median; a fresh model's first evaluation counted into compile."""
    trials, runs = [], []
    for jit in (False, True):
        for seed in range(3):
            key = f"tf-{jit}-{seed}"
            trials.append(
                {
                    "key": key,
                    "backend": "tensorflow",
                    "seed": seed,
                    "cell": {"training.jit_compile": jit},
                }
            )
            runs.append(
                _run(
                    key,
                    val_loss=0.3,
                    loss=0.3,
                    step_time_ms=1.0 if jit else 2.0,
                    first_epoch_time_s=0.5,
                    steady_epoch_time_s=0.1,
                    peak_rss_mb=700.0 + 10 * seed,
                    **({"eval_compile_s": 0.25} if seed == 0 else {}),  # pyright: ignore[reportArgumentType]  # a metric, for **metrics
                )
            )
    frame = grid_frame({"grid_keys": ["training.jit_compile"], "trials": trials}, runs)
    speed = speed_table(frame).set_index("backend")
    assert sorted(speed.index) == ["tensorflow/jit=false", "tensorflow/jit=true"]
    assert set(speed["framework"]) == {"tensorflow"} and list(speed["trials"]) == [3, 3]
    assert speed.loc["tensorflow/jit=false", "step_time_ms_x"] == pytest.approx(2)
    assert speed.loc["tensorflow/jit=true", "peak_rss_mb"] == 710
    # compile: first epoch - steady (0.4) in every trial, + 0.25 in one: median 0.4
    assert speed.loc["tensorflow/jit=true", "first_epoch_overhead_s"] == pytest.approx(0.4)
    one_setting = speed_table(frame[frame["training.jit_compile"]])
    assert list(one_setting["backend"]) == [
        "tensorflow"
    ]  # a setting the grid does not vary: no label


def test_the_newest_unsuperseded_finished_run_counts_and_failures_are_excluded():
    old = _run("k", start=1, val_loss=0.5, tags={"mlpsuite.superseded_by": "new"})
    new = _run("k", start=2, val_loss=0.4)
    killed = _run("k", status="KILLED", start=3)
    assert counted_run([old, new, killed]) is new
    failed = _run("f", status="FAILED", start=1, tags={"mlpsuite.failure": "diverged"})
    manifest = {
        "grid_keys": [],
        "trials": [
            {"key": "k", "backend": "jax", "seed": 0, "cell": {}},
            {"key": "f", "backend": "torch", "seed": 0, "cell": {}},
            {"key": "never", "backend": "torch", "seed": 1, "cell": {}},
        ],
    }
    frame = grid_frame(manifest, [old, new, killed, failed])
    assert frame.set_index("key").loc["k", "val_loss"] == 0.4
    failures = failure_table(frame)
    assert sorted(zip(failures["failure"], failures["trials"], strict=True)) == [
        ("diverged", 1),
        ("not run", 1),
    ]
    cells = cell_table(frame, [], "val_loss")
    assert list(cells["trials"]) == [1]  # only the FINISHED trial is in the statistics


def test_a_grid_over_the_loss_key_does_not_overwrite_the_loss_metric():
    manifest = {
        "grid_keys": ["loss"],
        "trials": [
            {"key": f"{name}-{seed}", "backend": "jax", "seed": seed, "cell": {"loss": name}}
            for name in ("mse", "mae")
            for seed in range(2)
        ],
    }
    runs = [
        _run(f"{name}-{seed}", loss=value + seed)
        for name, value in (("mse", 1.0), ("mae", 3.0))
        for seed in range(2)
    ]
    frame = grid_frame(manifest, runs)
    column = grid_column("loss")
    assert column == "loss (grid)" and set(frame[column]) == {"mse", "mae"}
    cells = cell_table(frame, [column], "loss")
    assert list(cells["cell"]) == ["loss=mse", "loss=mae"] and list(cells["loss_mean"]) == [
        1.5,
        3.5,
    ]
    effects = effect_table(frame, column, [column], "loss")
    assert list(effects["level"]) == ["mae"] and effects["mean_diff"].iloc[0] == pytest.approx(2.0)
