"""The tuning protocol on hand-built grids: each scientific cell at its best nuisance setting,
checked against the same selection done by hand with NumPy."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mlpsuite.analysis import (
    ALL_BACKENDS,
    cell_table,
    effect_table,
    grid_frame,
    seed_budget,
    seeds_for_power,
    selected_frame,
    selection_table,
    with_curve_measures,
)
from tests.runs import mlflow_run

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)

NAME, RATE = "optimizer.name", "optimizer.learning_rate"
RATES = ["0.1", "0.01", "0.001"]
SEEDS = range(4)
# Mean val_loss per (optimizer, rate): SGD is best at its largest rate, Adam in the middle and
# awful at 0.1, so averaged over the rates SGD wins (0.60 < 0.70), each at its best Adam does.
VAL = {
    ("sgd", "0.1"): 0.30,
    ("sgd", "0.01"): 0.60,
    ("sgd", "0.001"): 0.90,
    ("adam", "0.1"): 1.50,
    ("adam", "0.01"): 0.20,
    ("adam", "0.001"): 0.40,
}


def _noise(seed: int) -> float:
    return (0.01, -0.02, 0.015, -0.005)[seed]


def _grid(val=VAL, statuses=None, backends=("jax",)):
    """Manifest and runs of optimizer x rate x 4 seeds; test_loss = val_loss + 0.05."""
    trials, runs = [], []
    for (name, rate), value in val.items():
        for seed in SEEDS:
            for backend in backends:
                key = f"{name}-{rate}-{seed}-{backend}"
                trials.append(
                    {"key": key, "backend": backend, "seed": seed, "cell": {NAME: name, RATE: rate}}
                )
                status = (statuses or {}).get((name, rate, seed), "FINISHED")
                loss = value + _noise(seed)
                runs.append(
                    mlflow_run(key, status=status, val_loss=loss, test_loss=loss + 0.05, loss=loss)
                )
    return grid_frame({"grid_keys": [NAME, RATE], "trials": trials}, runs)


def _selected_rates(selection: pd.DataFrame) -> dict[str, str]:
    chosen = selection[selection["selected"]]
    return dict(zip(chosen[NAME], chosen[RATE], strict=True))


def test_each_cell_gets_the_rate_with_the_lowest_mean_val_loss_and_edges_are_named():
    selection = selection_table(_grid(), [NAME], [RATE], "val_loss")
    by_hand = {
        name: min(RATES, key=lambda rate: np.mean([VAL[name, rate] + _noise(s) for s in SEEDS]))
        for name in ("sgd", "adam")
    }
    assert _selected_rates(selection) == by_hand == {"sgd": "0.1", "adam": "0.01"}
    chosen = selection[selection["selected"]].set_index(NAME)
    assert (
        chosen.loc["sgd", "edge"] == "learning_rate: largest tried"
        and chosen.loc["adam", "edge"] == ""
    )
    assert set(selection[~selection["selected"]]["edge"]) == {""}
    assert len(selection) == 6 and set(selection.groupby(NAME).size()) == {3}
    adam = selection[(selection[NAME] == "adam") & (selection[RATE] == "0.01")].iloc[0]
    assert adam["n"] == 4 and adam["val_loss_mean"] == pytest.approx(
        0.20 + np.mean([_noise(s) for s in SEEDS])
    )


def test_at_its_best_rate_the_answer_changes_from_the_pooled_one():
    frame = _grid()
    pooled = effect_table(frame, NAME, [NAME, RATE], "test_loss")
    assert set(pooled["reference"]) == {"sgd"}  # averaged over the rates, SGD looks better
    selection = selection_table(frame, [NAME], [RATE], "val_loss")
    ranked = selected_frame(frame, selection, [NAME], [RATE])
    assert set(ranked["cell"]) == {"name=sgd", "name=adam"}  # cells labelled by the scientific key
    cells = cell_table(ranked, [NAME, RATE, "selected", "edge"], "test_loss")
    pooled_cells = cells[cells["backend"] == ALL_BACKENDS]
    assert list(pooled_cells["cell"]) == ["name=adam", "name=sgd"]
    adam = pooled_cells.iloc[0]
    assert adam["selected"] == "learning_rate=0.01" and adam[RATE] == "0.01"
    assert adam["test_loss_mean"] == pytest.approx(np.mean([0.25 + _noise(s) for s in SEEDS]))
    effects = effect_table(ranked, NAME, [NAME], "test_loss")
    (sgd,) = effects.itertuples()
    assert sgd.reference == "adam" and sgd.level == "sgd" and sgd.n_pairs == 4
    assert sgd.mean_diff == pytest.approx(0.30 - 0.20)  # paired on seed: the noise cancels
    assert sgd.prob_improvement == 0  # no SGD run at its best beats an Adam run at its best


def test_a_rate_that_failed_on_one_seed_is_not_selected_however_good_its_others():
    val = {**VAL, ("adam", "0.001"): 0.05}
    frame = _grid(val, statuses={("adam", "0.001", 2): "FAILED"})
    selection = selection_table(frame, [NAME], [RATE], "val_loss")
    assert _selected_rates(selection)["adam"] == "0.01"
    failed = selection[(selection[NAME] == "adam") & (selection[RATE] == "0.001")].iloc[0]
    assert not failed["complete"] and failed["finished"] == 3 and failed["trials"] == 4
    # When no rate of a cell finished everywhere, the ones that finished most compete.
    everywhere = {
        (name, rate, 0): "FAILED" for name, rate in VAL if name == "adam" and rate != "0.001"
    }
    everywhere[("adam", "0.001", 1)] = "FAILED"
    everywhere[("adam", "0.001", 2)] = "FAILED"
    selection = selection_table(_grid(val, statuses=everywhere), [NAME], [RATE], "val_loss")
    assert _selected_rates(selection)["adam"] == "0.01"  # 3 of 4 finished beats 2 of 4 at 0.05


def test_selection_averages_a_seeds_backends_and_ties_go_to_the_first_setting():
    frame = _grid(backends=("jax", "torch"))
    selection = selection_table(frame, [NAME], [RATE], "val_loss")
    assert set(selection["n"]) == {4} and set(selection["trials"]) == {8}
    tied = selection_table(
        _grid({("sgd", "0.1"): 0.3, ("sgd", "0.01"): 0.3}), [NAME], [RATE], "val_loss"
    )
    assert _selected_rates(tied) == {"sgd": "0.1"}


def test_bootstrap_intervals_can_decide_the_overlap_marks():
    # Four seeds: the t-interval is 3.18 standard errors wide, the bootstrap one about 1.7.
    frame = _grid({("sgd", "0.1"): 0.2, ("adam", "0.1"): 0.4})
    frame.loc[frame[NAME] == "sgd", "val_loss"] = [0.20, 0.26, 0.23, 0.17]
    frame.loc[frame[NAME] == "adam", "val_loss"] = [0.26, 0.27, 0.265, 0.268]
    t_marks = cell_table(frame, [NAME, RATE], "val_loss", interval="t")
    boot_marks = cell_table(frame, [NAME, RATE], "val_loss", interval="bootstrap")
    assert list(t_marks["overlaps_best"]) == [True, True]
    assert list(boot_marks["overlaps_best"]) == [True, False]
    best = boot_marks.iloc[0]
    assert (
        best["val_loss_boot_high"] < boot_marks.iloc[1]["val_loss_boot_low"] < best["val_loss_high"]
    )


def test_curve_measures_and_a_cell_that_missed_the_target_ranks_last():
    frame = _grid({("sgd", "0.1"): 0.3, ("adam", "0.1"): 0.3})
    curves = {
        run_id: (
            [1.0, 0.5, 0.2] if name == "sgd" else [1.0, 0.25, 0.25] if seed else [1.0, 0.8, 0.6]
        )
        for run_id, name, seed in zip(frame["run_id"], frame[NAME], frame["seed"], strict=True)
    }
    times = {run_id: [1.0, 0.1, 0.1] for run_id in frame["run_id"]}
    measured = with_curve_measures(frame, curves, ("val_loss", 0.3), curves, times)
    sgd = measured[measured[NAME] == "sgd"]
    assert list(sgd["auc_val_loss"]) == pytest.approx([np.mean([1.0, 0.5, 0.2])] * 4)
    assert set(sgd["epochs_to_target"]) == {3.0} and list(sgd["time_to_target_s"]) == pytest.approx(
        [1.2] * 4
    )
    adam = measured[measured[NAME] == "adam"]
    assert list(adam["reached_target"]) == [False, True, True, True]  # seed 0 never got to 0.3
    cells = cell_table(measured, [NAME, RATE], "epochs_to_target")
    pooled = cells[cells["backend"] == ALL_BACKENDS].set_index(NAME)
    assert (
        pooled.loc["adam", "epochs_to_target_mean"]
        == 2
        < pooled.loc["sgd", "epochs_to_target_mean"]
    )
    assert pooled.loc["adam", "epochs_to_target_n"] == 3 and pooled.loc["adam", "n"] == 4
    # Every SGD seed reached it: ranked ahead of a cell that got there sooner but not on every seed.
    assert list(pooled.index) == ["sgd", "adam"] and list(pooled["rank"]) == [1, 2]


def test_seed_budget_names_the_closest_pair_a_paired_test_does_not_separate():
    frame = _grid({("sgd", "0.1"): 0.30, ("adam", "0.1"): 0.31, ("sgd", "0.01"): 0.9})
    frame.loc[frame[NAME] == "adam", "val_loss"] += [0.0, 0.03, -0.03, 0.0]
    cells = cell_table(frame, [NAME, RATE], "val_loss")
    budget = seed_budget(frame, cells, "val_loss")
    assert budget is not None
    assert (
        budget["best"] == "name=sgd, learning_rate=0.1"
        and budget["rival"] == "name=adam, learning_rate=0.1"
    )
    differences = np.array([0.01, 0.04, -0.02, 0.01])
    assert budget["pairs"] == 4 and budget["mean_diff"] == pytest.approx(differences.mean())
    assert (
        budget["p_ttest"] == pytest.approx(stats.ttest_1samp(differences, 0.0).pvalue)  # pyright: ignore[reportAttributeAccessIssue]  # scipy makes its result classes at runtime
        and budget["p_ttest"] > 0.05
    )
    assert budget["effect_size"] == pytest.approx(differences.mean() / differences.std(ddof=1))
    assert budget["seeds_needed"] == seeds_for_power(budget["effect_size"]) > 4
    # The same seed noise on both: a constant difference the paired test separates at once,
    # though the cells' intervals overlap; the next cell is far apart, so none is left.
    steady = _grid({("sgd", "0.1"): 0.30, ("adam", "0.1"): 0.31, ("sgd", "0.01"): 0.9})
    steady_cells = cell_table(steady, [NAME, RATE], "val_loss")
    assert steady_cells.iloc[1]["overlaps_best"]
    assert seed_budget(steady, steady_cells, "val_loss") == {
        "best": "name=sgd, learning_rate=0.1",
        "rival": None,
        "metric": "val_loss",
    }
    assert math.isinf(seeds_for_power(0.0))


def test_a_sampled_key_is_on_the_edge_only_in_the_outer_tenth_of_its_range():
    # SGD's best rate 0.1 is in the top 10% of log 1e-4..0.12 (log position 0.97) but not of
    # log 1e-4..1 (0.75); Adam's 0.01 is inside both. Positions by hand with NumPy.
    frame = _grid()
    for high, sgd_edge in ((0.12, True), (1.0, False)):
        space = {RATE: {"low": 1e-4, "high": high, "log": True}}
        selection = selection_table(frame, [NAME], [RATE], "val_loss", space)
        edges = dict(zip(selection[NAME], selection["edge"], strict=True))
        chosen = selection[selection["selected"]]
        position = (np.log(0.1) - np.log(1e-4)) / (np.log(high) - np.log(1e-4))
        assert (position >= 0.9) == sgd_edge
        expected = f"learning_rate: top 10% of its log range 0.0001..{high:g}" if sgd_edge else ""
        assert chosen[chosen[NAME] == "sgd"]["edge"].item() == expected
        assert chosen[chosen[NAME] == "adam"]["edge"].item() == ""
        assert "smallest tried" not in "".join(edges.values())
    # Linear: 0.1 sits at a tenth of 0..1's span: its bottom 10%.
    linear = selection_table(frame, [NAME], [RATE], "val_loss", {RATE: {"low": 0.0, "high": 1.0}})
    sgd = linear[linear["selected"] & (linear[NAME] == "sgd")]
    assert sgd["edge"].item() == "learning_rate: bottom 10% of its range 0..1"
