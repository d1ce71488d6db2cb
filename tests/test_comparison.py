"""The comparison of a real grid, on its parent run and from `mlpsuite compare`: real workers,
a real SQLite store, numbers read back through MlflowClient."""

import json
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from mlpsuite import cli
from mlpsuite.analysis import compare
from mlpsuite.present import plots
from mlpsuite.tracking import Tracker
from tests.grids import (
    cli_in_process,
    ready_store,
    run_in_process,
    run_mlpsuite,
    trial_runs,
    write_grid,
)

LEARNING_RATES = [0.0001, 0.01]
SEEDS = [0, 1, 2]
BACKENDS = ["torch", "jax"]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """Digits, learning rate 1e-4 against 1e-2 (Adam, 5 epochs), 3 seeds, on torch and JAX."""
    directory = tmp_path_factory.mktemp("comparison")
    path = write_grid(
        directory,
        "rates",
        dataset={"name": "digits"},
        model={"hidden": [16]},
        training={"epochs": 5, "batch_size": 64},
        backends=BACKENDS,
        seeds=SEEDS,
        grid={"optimizer.learning_rate": LEARNING_RATES},
    )
    uri = ready_store(directory)
    code = cli.main(["run", str(path), "--tracking-uri", uri, "--jobs", "2"])
    assert code == 0
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("rates")
    assert experiment is not None
    parents = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
    assert len(parents) == 1
    return {
        "uri": uri,
        "path": path,
        "directory": directory,
        "client": client,
        "experiment_id": experiment.experiment_id,
        "parent": parents[0],
    }


def _artifact_text(grid, path: str) -> str:
    local = grid["client"].download_artifacts(
        grid["parent"].info.run_id, path, str(grid["directory"])
    )
    with open(local, encoding="utf-8") as handle:
        return handle.read()


def test_parent_run_carries_tables_report_figures_description_and_headline_metrics(grid):
    parent = grid["parent"]
    listed = {a.path for a in grid["client"].list_artifacts(parent.info.run_id, "comparison")}
    for name in (
        "cells.csv",
        "effects.csv",
        "parity.csv",
        "speed.csv",
        "report.md",
        "curves.png",
        "final_metric.png",
        "parity.png",
        "speed.png",
    ):
        assert f"comparison/{name}" in listed, name
    assert parent.info.status == "FINISHED"
    assert (
        0 < parent.data.metrics["record_s_per_trial"] < 5
    )  # the coordinator's MLflow time per trial
    note = parent.data.tags["mlflow.note.content"]
    assert "- Best cell: learning_rate=0.01" in note and "- Backend parity" in note
    assert "#### Backend parity" not in note  # the short report; report.md has the parity table
    metrics = parent.data.metrics
    for name in (
        "best_val_loss",
        "parity_max_rel_diff",
        "step_time_ms_torch",
        "step_time_ms_jax",
        "trial_time_s_torch",
        "trial_time_s_jax",
        "peak_rss_mb_torch",
        "peak_rss_mb_jax",
    ):
        assert math.isfinite(metrics[name]), name
    assert metrics["parity_max_rel_diff"] < 1e-4  # the same trial on two backends agrees
    runs = trial_runs(grid["uri"], "rates")
    for (
        backend
    ) in BACKENDS:  # the worker's clock, not the run's wall time (that spans its claim's wait)
        measured = runs[runs["params.backend"] == backend]["metrics.trial_time_s"]
        assert metrics[f"trial_time_s_{backend}"] == pytest.approx(measured.median())
    assert metrics["trials_counted"] == len(LEARNING_RATES) * len(SEEDS) * len(BACKENDS)
    cells = pd.read_csv(
        grid["client"].download_artifacts(
            parent.info.run_id, "comparison/cells.csv", str(grid["directory"])
        )
    )
    pooled = cells[cells["backend"] == "all"]
    assert list(pooled["n"]) == [3, 3] and list(pooled["trials"]) == [6, 6]
    assert metrics["best_val_loss"] == pytest.approx(pooled.iloc[0]["val_loss_mean"])


def test_a_real_difference_has_the_right_sign_and_a_small_p(grid):
    comparison = compare(Tracker(grid["uri"]), "rates")
    effects = comparison.effects
    assert len(effects) == 1
    slow = effects.iloc[0]
    assert slow["reference"] == "0.01" and slow["level"] == "0.0001"
    assert slow["n_pairs"] == len(SEEDS)
    assert slow["mean_diff"] > 0 and slow["diff_low"] > 0  # 1e-4 ends with a higher val_loss
    assert slow["p_ttest"] < 0.05


def test_figures_hold_finite_data_from_the_runs(grid):
    comparison = compare(Tracker(grid["uri"]), "rates")
    for draw in (plots.loss_curves, plots.final_metric, plots.backend_parity, plots.backend_speed):
        figure = draw(comparison)
        assert figure is not None, draw.__name__
        values = []
        for axes in figure.axes:
            values += [np.asarray(line.get_ydata(), dtype=float) for line in axes.get_lines()]
            values += [np.asarray([p.get_height() for p in axes.patches], dtype=float)]  # pyright: ignore[reportAttributeAccessIssue]  # bars: Rectangles
        values = np.concatenate([v.ravel() for v in values])
        assert values.size > 0 and np.all(np.isfinite(values)), draw.__name__
        plt.close(figure)
    curves = plots.loss_curves(comparison)
    assert curves is not None
    assert len(curves.axes[0].get_lines()) == len(LEARNING_RATES)  # one mean curve per cell
    plt.close(curves)


def test_child_runs_carry_cell_tag_dataset_input_and_curve_metrics(grid):
    runs = grid["client"].search_runs([grid["experiment_id"]], "tags.`mlpsuite.kind` = 'trial'")
    for run in runs:
        rate = run.data.params["optimizer.learning_rate"]
        assert run.data.tags["mlpsuite.cell"] == f"learning_rate={rate}"
        assert len(run.data.tags["mlpsuite.weights_sha256"]) == 16
        for name in ("best_val_loss", "best_epoch", "first_epoch_time_s", "steady_epoch_time_s"):
            assert math.isfinite(run.data.metrics[name]), name
        (dataset_input,) = run.inputs.dataset_inputs
        assert dataset_input.dataset.name == "digits" and dataset_input.dataset.digest
    assert sum("worker_start_s" in run.data.metrics for run in runs) >= len(BACKENDS)


def test_compare_prints_the_same_report_as_json_csv_and_markdown(grid, tmp_path):
    common = ["--tracking-uri", grid["uri"]]
    as_json = run_in_process("compare", "rates", "--format", "json", *common, cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr[-2000:]
    report = json.loads(as_json.stdout)
    assert report["parent_run_id"] == grid["parent"].info.run_id and report["metric"] == "val_loss"
    assert report["trials"] == report["trials_counted"] == 12
    assert {row["backend"] for row in report["speed"]} == set(BACKENDS)
    assert report["parity_summary"]["compared"] == len(LEARNING_RATES) * len(SEEDS)
    best = [row for row in report["cells"] if row["backend"] == "all"][0]
    assert best["val_loss_mean"] == pytest.approx(grid["parent"].data.metrics["best_val_loss"])

    as_csv = run_in_process(
        "compare",
        "rates",
        "--format",
        "csv",
        "--metric",
        "test_accuracy",
        "--out",
        str(tmp_path / "out"),
        *common,
        cwd=tmp_path,
    )
    assert as_csv.returncode == 0, as_csv.stderr[-2000:]
    assert as_csv.stdout.splitlines()[0].startswith(
        "cell,optimizer.learning_rate,backend,backends,n,trials"
    )
    assert {p.name for p in (tmp_path / "out").iterdir()} >= {
        "cells.csv",
        "report.md",
        "curves.png",
    }
    as_markdown = run_in_process("compare", "rates", "--format", "markdown", *common, cwd=tmp_path)
    assert (
        "#### Ranking by final val_loss" in as_markdown.stdout
        and "#### Backend parity" in as_markdown.stdout
    )
    assert "| 1 | learning_rate=0.01 | 3 (6 runs) |" in as_markdown.stdout

    logged = run_in_process(
        "compare", "rates", "--metric", "test_loss", "--log", *common, cwd=tmp_path
    )
    assert logged.returncode == 0, logged.stderr[-2000:]
    parent = grid["client"].get_run(grid["parent"].info.run_id)
    assert "best_test_loss" in parent.data.metrics  # the report was rewritten onto the parent


@pytest.mark.parametrize(
    "args, expected",
    [
        (["nope"], "no experiment 'nope'"),
        (["rates", "--by", "model.activation"], "allowed: optimizer.learning_rate"),
        (
            ["rates", "--metric", "accuracy_top5"],
            "allowed: val_loss, best_val_loss, loss, test_loss, test_accuracy",
        ),
        (["rates", "--parent", "0123456789abcdef"], "not a grid run of experiment 'rates'"),
        (
            ["rates", "--where", "optimizer.learning_rate=0.5"],
            "no such value; allowed: 0.0001, 0.01",
        ),
        (
            ["rates", "--where", "model.activation=relu"],
            "not a grid key of this grid; allowed: optimizer.learning_rate",
        ),
        (["rates", "--where", "optimizer.learning_rate=0.01", "--log"], "--log with --where"),
    ],
)
def test_compare_refuses_unknown_names_in_one_line_with_exit_2(grid, capsys, args, expected):
    code, out, err = cli_in_process(capsys, "compare", *args, "--tracking-uri", grid["uri"])
    assert code == 2 and not out
    assert len(err.strip().splitlines()) == 1 and expected in err, err


def test_compare_where_keeps_one_grid_value(grid):
    part = compare(Tracker(grid["uri"]), "rates", where={"optimizer.learning_rate": "0.01"})
    assert part.n_trials == len(SEEDS) * len(BACKENDS)
    assert set(part.frame["optimizer.learning_rate"].map(str)) == {"0.01"}
    whole = compare(Tracker(grid["uri"]), "rates")
    kept = whole.cells[
        (whole.cells["optimizer.learning_rate"].map(str) == "0.01")
        & (whole.cells["backend"] == "all")
    ]
    best = part.best()
    assert best is not None
    assert best["val_loss_mean"] == pytest.approx(kept["val_loss_mean"].iloc[0])
    assert part.effects.empty  # one level left: nothing to pair


def test_running_the_grid_again_reopens_its_parent_and_force_supersedes(grid):
    uri, client = grid["uri"], grid["client"]
    assert (
        cli.main(
            ["run", str(grid["path"]), "--tracking-uri", uri, "--force", "--backends", "torch"]
        )
        == 0
    )
    assert cli.main(["run", str(grid["path"]), "--tracking-uri", uri]) == 0
    parents = client.search_runs([grid["experiment_id"]], "tags.`mlpsuite.kind` = 'grid'")
    # --backends torch is another set of keys, so another grid; the full grid reopened its own.
    assert len(parents) == 2
    full = client.get_run(grid["parent"].info.run_id)
    assert full.data.tags["mlpsuite.invocations"] == "2" and full.info.status == "FINISHED"
    runs = trial_runs(uri, "rates")
    assert len(runs) == 12 + 6  # the forced torch trials ran again
    superseded = runs[runs["tags.mlpsuite.superseded_by"].notna()]
    assert len(superseded) == 6 and set(superseded["params.backend"]) == {"torch"}
    assert set(superseded["tags.mlpsuite.superseded_by"]) <= set(runs["run_id"])
    comparison = compare(Tracker(uri), "rates", grid["parent"].info.run_id)
    assert comparison.n_trials == comparison.n_counted == 12  # one counted run per key
    assert not set(comparison.frame["run_id"]) & set(superseded["run_id"])


def test_compare_without_a_store_says_so_and_creates_none(tmp_path):
    done = run_mlpsuite("compare", "quickstart", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]  # one line
    assert "no store at" in done.stderr and "--tracking-uri" in done.stderr
    assert not (tmp_path / "mlruns").exists()
