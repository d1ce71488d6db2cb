"""The ablation protocol on a real grid where it changes the answer: SGD and Adam at three
learning rates on iris (PyTorch, real workers, a real SQLite store). Averaged over the rates SGD
looks better, because Adam is poor at the largest; each at its own best rate, Adam wins. The
selections and reported numbers are checked against the runs read back through MlflowClient."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from mlpsuite import cli
from mlpsuite.analysis import compare
from mlpsuite.tracking import Tracker
from tests.grids import cli_in_process, ready_store, trial_runs, write_grid

RATES = [0.3, 1.0, 3.0]
SEEDS = [0, 1, 2]
NAME, RATE = "optimizer.name", "optimizer.learning_rate"
PROTOCOL = (
    "each optimizer.name at its best optimizer.learning_rate by mean val_loss over 3 seeds; "
    "reported on test_loss"
)


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    directory = tmp_path_factory.mktemp("protocol")
    path = write_grid(
        directory,
        "tuned",
        training={"epochs": 10, "batch_size": 16, "max_seconds": 120},
        backends=["torch"],
        seeds=SEEDS,
        grid={NAME: ["sgd", "adam"], RATE: RATES},
        compare={"nuisance": [RATE]},
    )
    uri = ready_store(directory)
    assert cli.main(["run", str(path), "--tracking-uri", uri, "--jobs", "2"]) == 0
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tuned")
    assert experiment is not None
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
    runs = trial_runs(uri, "tuned")
    assert len(runs) == 2 * len(RATES) * len(SEEDS) and set(runs["status"]) == {"FINISHED"}
    return {"uri": uri, "client": client, "parent": parent, "runs": runs, "directory": directory}


def _compare(capsys, grid, *args: str) -> tuple[int, str, str]:
    return cli_in_process(capsys, "compare", "tuned", *args, "--tracking-uri", grid["uri"])


def _by_hand(runs: pd.DataFrame) -> dict[str, tuple[str, float]]:
    """Per optimizer: the rate with the lowest mean final val_loss, and the mean test_loss there."""
    means = runs.groupby(["params.optimizer.name", "params.optimizer.learning_rate"])[
        ["metrics.val_loss", "metrics.test_loss"]
    ].mean()
    chosen = {}
    for name in ("sgd", "adam"):
        rows = means.loc[name]
        rate = rows["metrics.val_loss"].idxmin()
        chosen[name] = (rate, float(rows.loc[rate, "metrics.test_loss"]))
    return chosen


def test_pooled_says_sgd_each_at_its_best_rate_says_adam(grid):
    tracker = Tracker(grid["uri"])
    pooled = compare(tracker, "tuned", metric="test_loss", protocol={"nuisance": []})
    pooled_effect = pooled.effects[pooled.effects["key"] == NAME].iloc[0]
    assert pooled_effect["reference"] == "sgd" and pooled_effect["level"] == "adam"
    tuned = compare(tracker, "tuned")
    assert tuned.metric == "test_loss" and tuned.protocol_sentence() == PROTOCOL
    by_hand = _by_hand(grid["runs"])
    best = tuned.best()
    assert best is not None
    assert best["cell"] == "name=adam" and by_hand["adam"][1] < by_hand["sgd"][1]
    pooled_cells = tuned.cells[tuned.cells["backend"] == "all"].set_index(NAME)
    for name, (rate, test_loss) in by_hand.items():
        assert float(pooled_cells.loc[name, RATE]) == float(rate), name
        assert pooled_cells.loc[name, "test_loss_mean"] == pytest.approx(test_loss)
    effect = tuned.effects[tuned.effects["key"] == NAME].iloc[0]
    assert (
        effect["reference"] == "adam"
        and effect["n_pairs"] == len(SEEDS)
        and effect["mean_diff"] > 0
    )
    nuisance = tuned.effects[tuned.effects["key"] == RATE]
    assert set(nuisance["role"]) == {"nuisance"} and set(nuisance["n_pairs"]) == {2 * len(SEEDS)}


def test_parent_run_states_the_protocol_and_carries_the_selection_and_isolation_plot(grid):
    parent = grid["client"].get_run(grid["parent"].info.run_id)
    note = parent.data.tags["mlflow.note.content"]
    assert f"- Protocol: {PROTOCOL}." in note and "- Best cell: name=adam at learning_rate=" in note
    listed = {a.path for a in grid["client"].list_artifacts(parent.info.run_id, "comparison")}
    assert {
        "comparison/selection.csv",
        "comparison/isolation.png",
        "comparison/cells.csv",
    } <= listed
    local = grid["client"].download_artifacts(
        parent.info.run_id, "comparison/selection.csv", str(grid["directory"])
    )
    selection = pd.read_csv(local)
    assert len(selection) == 2 * len(RATES) and selection["selected"].sum() == 2
    assert math.isfinite(parent.data.metrics["best_test_loss_iqm"])


def test_compare_flags_override_the_declared_protocol(grid, capsys):
    code, out, err = _compare(capsys, grid, "--nuisance", "none", "--format", "json")
    assert code == 0, err[-2000:]
    report = json.loads(out)
    assert (
        report["protocol"]["nuisance"] == []
        and report["metric"] == "val_loss"
        and report["selection"] == []
    )
    assert len([row for row in report["cells"] if row["backend"] == "all"]) == 2 * len(RATES)
    code, out, err = _compare(
        capsys, grid, "--interval", "bootstrap", "--select-on", "val_accuracy", "--format", "json"
    )
    assert code == 0, err[-2000:]
    report = json.loads(out)
    assert report["protocol"]["interval"] == "bootstrap" and report["metric"] == "test_accuracy"
    best = [row for row in report["cells"] if row["backend"] == "all"][0]
    assert (
        best["test_accuracy_boot_low"]
        <= best["test_accuracy_mean"]
        <= best["test_accuracy_boot_high"]
    )
    assert report["seed_budget"]["best"] == best["cell"]


def test_a_target_gives_epochs_and_time_to_it_per_run_and_per_backend(grid, capsys):
    code, out, err = _compare(
        capsys, grid, "--target", "val_loss=0.25", "--nuisance", "none", "--format", "json"
    )
    assert code == 0, err[-2000:]
    report = json.loads(out)
    client, reached, expected = grid["client"], 0, {}
    for run_id in grid["runs"]["run_id"]:
        curve = [
            m.value
            for m in sorted(client.get_metric_history(run_id, "val_loss"), key=lambda m: m.step)
        ]
        times = [
            m.value
            for m in sorted(client.get_metric_history(run_id, "epoch_time_s"), key=lambda m: m.step)
        ]
        hits = [epoch for epoch, value in enumerate(curve, start=1) if value <= 0.25]
        expected[run_id] = (hits[0], sum(times[: hits[0]])) if hits else None
        reached += bool(hits)
        assert client.get_run(run_id).data.metrics["auc_val_loss"] == pytest.approx(np.mean(curve))
    assert 0 < reached < len(expected)  # some runs got there, some did not: both are counted
    (speed,) = report["speed"]
    assert speed["target_reached"] == reached and speed["trials"] == len(expected)
    times = sorted(seconds for hit in expected.values() if hit for _, seconds in [hit])
    assert speed["time_to_target_s"] == pytest.approx(float(np.median(times)))
    cells = {row["cell"]: row for row in report["cells"] if row["backend"] == "all"}
    runs = grid["runs"]
    for cell, row in cells.items():
        name, rate = (part.split("=")[1] for part in cell.split(", "))
        ids = runs[
            (runs["params.optimizer.name"] == name)
            & (runs["params.optimizer.learning_rate"] == rate)
        ]["run_id"]
        hits = [expected[r][0] for r in ids if expected[r]]
        assert row["epochs_to_target_n"] == len(hits), cell
        if hits:
            assert row["epochs_to_target_mean"] == pytest.approx(np.mean(hits)), cell


@pytest.mark.parametrize(
    "args, expected",
    [
        (
            ["--nuisance", "optimizer.lr"],
            "--nuisance optimizer.lr: 'optimizer.lr' is not a grid key; allowed: "
            "optimizer.name, optimizer.learning_rate",
        ),
        (["--nuisance", NAME, "--nuisance", RATE], "at least one must stay scientific"),
        (
            ["--select-on", "val_r2"],
            "--select-on val_r2: val_r2 is not recorded by this grid's runs; allowed: val_loss, "
            "best_val_loss",
        ),
        (
            ["--select-on", "f1"],
            "--select-on f1: f1 is not recorded by this grid's runs; allowed: val_loss, "
            "best_val_loss",
        ),
        (
            ["--metric", "test_mae"],
            "--metric test_mae: test_mae is not recorded by this grid's runs; allowed:",
        ),
        (
            ["--target", "val_mae=3"],
            "--target: no target on 'val_mae'; allowed: val_loss, loss, val_accuracy, accuracy",
        ),
        (["--target", "val_loss=low"], "expected METRIC=NUMBER such as val_loss=0.3"),
        (["--target", "val_loss"], "expected METRIC=NUMBER such as val_loss=0.3, got 'val_loss'"),
        (["--select-on", "test_loss"], "--select-on test_loss: test_loss is on the test split"),
        (
            ["--nuisance", "none", "--select-on", "val_loss"],
            "--select-on val_loss: selects a nuisance setting, but no nuisance key is given",
        ),
        (["--interval", "percentile"], "invalid choice: 'percentile'"),
    ],
)
def test_a_wrong_protocol_flag_is_one_line_exit_2(grid, capsys, args, expected):
    code, out, err = _compare(capsys, grid, *args)
    assert code == 2 and not out
    assert len(err.strip().splitlines()) == 1 and expected in err, err
