"""End to end: real worker processes on all three backends, a real SQLite MLflow store."""

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from mlpsuite import cli
from mlpsuite.config import expand, load_config
from tests.grids import (
    clean_env,
    mlpsuite_command,
    ready_store,
    run_in_process,
    run_mlpsuite,
    trial_runs,
    write_grid,
)

EPOCHS = 5


@pytest.fixture(scope="module")
def grid_run(tmp_path_factory):
    """One grid: 2 activations x 3 backends, run through the CLI in this process."""
    directory = tmp_path_factory.mktemp("engine")
    path = write_grid(
        directory,
        "engine",
        training={"epochs": EPOCHS},
        grid={"model.activation": ["relu", "tanh"]},
    )
    uri = ready_store(directory)
    code = cli.main(["run", str(path), "--tracking-uri", uri, "--jobs", "2"])
    return {
        "code": code,
        "uri": uri,
        "path": path,
        "runs": trial_runs(uri, "engine"),
        "trials": expand(load_config(path)),
        "directory": directory,
    }


def test_grid_exits_zero_with_one_finished_run_per_trial(grid_run):
    runs = grid_run["runs"]
    assert grid_run["code"] == 0
    assert len(runs) == len(grid_run["trials"]) == 6
    assert set(runs["status"]) == {"FINISHED"}
    assert set(runs["tags.mlpsuite.trial_key"]) == {t.key for t in grid_run["trials"]}


def test_child_runs_carry_params_tags_and_parent(grid_run):
    runs = grid_run["runs"]
    client = MlflowClient(grid_run["uri"])
    parents = set(runs["tags.mlflow.parentRunId"])
    assert len(parents) == 1
    parent = client.get_run(parents.pop())
    assert parent.data.tags["mlpsuite.kind"] == "grid" and parent.info.status == "FINISHED"
    assert parent.data.params["grid_size"] == "6"
    for _, run in runs.iterrows():
        assert run["params.backend"] == run["tags.mlpsuite.backend"]
        assert run["params.model.activation"] in ("relu", "tanh")
        assert run["params.optimizer.learning_rate"] == "0.05"
        assert run["tags.mlpsuite.seed"] == "0" and run["tags.mlpsuite.kind"] == "trial"
        assert run["tags.mlpsuite.version.keras"]
    tanh_on_jax = runs[
        (runs["params.model.activation"] == "tanh") & (runs["params.backend"] == "jax")
    ]
    assert len(tanh_on_jax) == 1  # params.`model.activation` is filterable, as in the UI


def test_every_epoch_is_a_metric_step(grid_run):
    client = MlflowClient(grid_run["uri"])
    for run_id in grid_run["runs"]["run_id"]:
        for name in ("loss", "val_loss", "accuracy", "val_accuracy", "epoch_time_s"):
            steps = [m.step for m in client.get_metric_history(run_id, name)]
            assert sorted(steps) == list(range(1, EPOCHS + 1)), name
        metrics = client.get_run(run_id).data.metrics
        for name in ("initial_loss", "test_loss", "test_accuracy", "fit_time_s", "step_time_ms"):
            assert np.isfinite(metrics[name]), name


def test_trial_json_artifact_reproduces_the_trial(grid_run):
    client = MlflowClient(grid_run["uri"])
    run = grid_run["runs"].iloc[0]
    path = client.download_artifacts(run["run_id"], "trial.json", str(grid_run["directory"]))
    logged = json.loads(Path(path).read_text())
    assert logged["backend"] == run["params.backend"] and logged["training"]["epochs"] == EPOCHS


def _loss_curves(uri, runs, activation):
    client = MlflowClient(uri)
    chosen = runs[runs["params.model.activation"] == activation]
    return {
        row["params.backend"]: (
            row["metrics.initial_loss"],
            [
                m.value
                for m in sorted(
                    client.get_metric_history(row["run_id"], "loss"), key=lambda m: m.step
                )
            ],
        )
        for _, row in chosen.iterrows()
    }


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_backends_agree_on_initial_loss_and_every_epoch(grid_run, activation):
    curves = _loss_curves(grid_run["uri"], grid_run["runs"], activation)
    assert set(curves) == {"tensorflow", "torch", "jax"}
    reference_initial, reference_losses = curves["tensorflow"]
    for backend, (initial, losses) in curves.items():
        assert initial == pytest.approx(reference_initial, rel=1e-5), backend
        assert len(losses) == EPOCHS
        np.testing.assert_allclose(losses, reference_losses, rtol=1e-5, err_msg=backend)


def test_running_again_reuses_every_finished_trial(grid_run, capsys):
    # Counted before and after, not against 6: the rerun test shares this store
    # and, in a shuffled order, may already have added its rerun.
    before = set(trial_runs(grid_run["uri"], "engine")["run_id"])
    code = cli.main(["run", str(grid_run["path"]), "--tracking-uri", grid_run["uri"]])
    assert code == 0
    assert "0 trials to run, 6 reused" in capsys.readouterr().err
    after = set(trial_runs(grid_run["uri"], "engine")["run_id"])
    assert after == before  # no trial ran again


def test_rerun_on_the_same_backend_gives_identical_losses(grid_run):
    runs = grid_run["runs"]
    original = runs[runs["params.backend"] == "torch"].iloc[0]
    done = run_in_process(
        "rerun", original["run_id"], "--tracking-uri", grid_run["uri"], cwd=grid_run["directory"]
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "largest relative difference in final losses: 0\n" in done.stdout
    client = MlflowClient(grid_run["uri"])
    reruns = client.search_runs(
        [original["experiment_id"]], f"tags.`mlpsuite.rerun_of` = '{original['run_id']}'"
    )
    assert len(reruns) == 1
    old = [m.value for m in client.get_metric_history(original["run_id"], "loss")]
    new = [m.value for m in client.get_metric_history(reruns[0].info.run_id, "loss")]
    assert sorted(old) == sorted(new) and len(new) == EPOCHS


def test_diverging_trial_is_a_failed_run(tmp_path):
    path = write_grid(
        tmp_path,
        "diverge",
        backends=["jax"],
        optimizer={"name": "sgd", "learning_rate": 1.0e6},
        model={"scaler": "none", "activation": "identity"},
    )
    uri = ready_store(tmp_path)
    done = run_in_process("run", str(path), "--tracking-uri", uri, "--strict", cwd=tmp_path)
    assert done.returncode == 1, done.stderr[-2000:]
    runs = trial_runs(uri, "diverge")
    assert list(runs["status"]) == ["FAILED"] and list(runs["tags.mlpsuite.failure"]) == [
        "diverged"
    ]
    assert re.fullmatch(
        r"loss became (nan|inf) at epoch \d+", runs["tags.mlpsuite.failure_message"].iloc[0]
    )


def test_trial_over_its_time_limit_is_a_failed_timeout_run(tmp_path):  # 6 s: make test's
    path = write_grid(
        tmp_path, "slow", backends=["sklearn"], training={"epochs": 100000, "max_seconds": 1}
    )
    uri = ready_store(tmp_path)
    done = run_in_process("run", str(path), "--tracking-uri", uri, cwd=tmp_path)
    # Its only trial failed: nothing finished, so exit 1 with the reason (issue 47).
    assert done.returncode == 1, done.stderr[-2000:]
    runs = trial_runs(uri, "slow")
    assert list(runs["status"]) == ["FAILED"] and list(runs["tags.mlpsuite.failure"]) == ["timeout"]
    message = runs["tags.mlpsuite.failure_message"].iloc[0]
    assert "is past training.max_seconds=1" in message
    assert f"  1 timeout (sklearn): {message}" in done.stderr.splitlines()
    parent_id = runs["tags.mlflow.parentRunId"].iloc[0]
    parent = MlflowClient(uri).get_run(parent_id)
    assert parent.info.status == "FAILED"
    assert parent.data.tags["mlflow.note.content"] == (
        f"No trial finished, so there is nothing to compare:\n\n- 1 timeout (sklearn): {message}\n"
    )
    # Compared on request, it says what it left out, and logs that on the parent.
    compared = run_in_process("compare", "slow", "--tracking-uri", uri, "--log", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert "no FINISHED trial, nothing to rank" in compared.stdout
    assert "excluded from the statistics: 1 timeout (sklearn)" in compared.stdout
    parent = MlflowClient(uri).get_run(parent_id)
    assert parent.data.metrics["trials_excluded"] == 1
    assert "#### Failures" in parent.data.tags["mlflow.note.content"]


def test_rerun_from_another_folder_and_refusing_changed_data(tmp_path):
    from sklearn.datasets import load_iris

    iris = load_iris(as_frame=True).frame  # pyright: ignore[reportAttributeAccessIssue]  # a Bunch: not return_X_y
    data = tmp_path / "project" / "iris.csv"
    data.parent.mkdir()
    iris.to_csv(data, index=False)
    path = write_grid(data.parent, "csvrun", dataset={"name": "iris.csv"}, backends=["sklearn"])
    uri = ready_store(tmp_path)
    done = run_in_process("run", str(path), "--tracking-uri", uri, cwd=data.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    run_id = trial_runs(uri, "csvrun")["run_id"].iloc[0]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    again = run_in_process(
        "rerun", run_id, "--tracking-uri", uri, "--tolerance", "0", cwd=elsewhere
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "largest relative difference in final losses: 0\n" in again.stdout

    # Squared, not scaled: the grid standardises its inputs, so a scaled column would train the
    # same.
    iris.assign(**{"sepal length (cm)": iris["sepal length (cm)"] ** 2}).to_csv(data, index=False)
    refused = run_mlpsuite("rerun", run_id, "--tracking-uri", uri, cwd=elsewhere)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "changed since the run" in refused.stderr and "--allow-changed-data" in refused.stderr
    changed = run_in_process(
        "rerun",
        run_id,
        "--tracking-uri",
        uri,
        "--allow-changed-data",
        "--tolerance",
        "0",
        cwd=elsewhere,
    )
    assert changed.returncode == 1, changed.stderr[-2000:]  # new data, new losses: over tolerance 0
    assert "over --tolerance 0" in changed.stderr


def test_regression_runs_log_r2_and_mae_on_val_and_test(tmp_path):
    path = write_grid(
        tmp_path,
        "regress",
        dataset={"name": "diabetes"},
        backends=["torch"],
        training={"epochs": 3, "early_stopping": {"patience": 1}},
    )
    uri = ready_store(tmp_path)
    done = run_in_process("run", str(path), "--tracking-uri", uri, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    run = trial_runs(uri, "regress").iloc[0]
    for name in ("test_r2", "test_mae", "val_r2", "val_mae", "tested_epoch"):
        assert np.isfinite(run[f"metrics.{name}"]), name
    assert "test_r2" in done.stdout  # the ranking shows R² for regression


def test_a_worker_reuses_its_model_for_the_same_program_and_no_reuse_agrees(tmp_path):
    # The grid's order interleaves the two programs (activations); the queue groups them.
    path = write_grid(
        tmp_path,
        "reuse",
        backends=["torch"],
        grid={"optimizer.learning_rate": [0.01, 0.05], "model.activation": ["relu", "tanh"]},
    )
    uri = ready_store(tmp_path)
    assert cli.main(["run", str(path), "--tracking-uri", uri, "--jobs", "1"]) == 0
    assert (
        cli.main(["run", str(path), "--tracking-uri", uri, "--jobs", "1", "--force", "--no-reuse"])
        == 0
    )
    runs = trial_runs(uri, "reuse")
    reused, fresh = (
        runs[runs["tags.mlpsuite.superseded_by"].notna()],
        runs[runs["tags.mlpsuite.superseded_by"].isna()],
    )
    assert len(reused) == len(fresh) == 4
    # One build per program, the other trial of each program reused (each backend's reuse is
    # tested bit by bit in test_reuse.py; here: the queue groups what the grid interleaves).
    assert sorted(reused["tags.mlpsuite.reused_model"]) == ["false", "false", "true", "true"]
    assert set(fresh["tags.mlpsuite.reused_model"]) == {"false"}
    # Recorded for every trial and less than its time (not asserted above zero: it is the time
    # beyond the steps at their *median* speed, seen at -0.08 s for a reused model under load).
    assert runs["metrics.overhead_s"].notna().all()
    assert (runs["metrics.overhead_s"] < runs["metrics.trial_time_s"]).all()
    by_key = fresh.set_index("tags.mlpsuite.trial_key")
    for _, run in reused.iterrows():  # another process, no reuse: the very same numbers
        other = by_key.loc[run["tags.mlpsuite.trial_key"]]
        for name in (
            "metrics.loss",
            "metrics.val_loss",
            "metrics.test_loss",
            "metrics.initial_loss",
        ):
            assert run[name] == other[name], name


def test_a_population_through_the_cli_agrees_with_another_backend(tmp_path):
    """`vectorize: program` end to end: JAX's six trials (3 seeds × 2 momentums: momentum is held
    as a variable) train as one population, PyTorch's one at a time; seed by seed they agree."""
    path = write_grid(
        tmp_path,
        "vectorized",
        backends=["torch", "jax"],
        seeds=[0, 1, 2],
        optimizer={"name": "momentum", "learning_rate": 0.05},
        training={"epochs": 4, "vectorize": "program"},
        grid={"optimizer.momentum": [0.5, 0.9]},
    )
    uri = ready_store(tmp_path)
    planned = run_in_process("run", str(path), "--dry-run", cwd=tmp_path)
    assert "6 trials train as 1 population of one program each (members per population: 6)" in (
        planned.stdout.replace("\n", " ")
    )
    done = run_in_process("run", str(path), "--tracking-uri", uri, "--jobs", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "does not apply to 6 trials, because of torch (JAX only)" in done.stderr
    shown = " ".join(done.stdout.split())
    assert "jax/population" in shown  # the speed table's row of the population's trials
    assert "per member, up to 6 trials trained as one population" in shown
    runs = trial_runs(uri, "vectorized")
    assert len(runs) == 12 and set(runs["status"]) == {"FINISHED"}
    jax, torch = runs[runs["params.backend"] == "jax"], runs[runs["params.backend"] == "torch"]
    assert list(jax["tags.mlpsuite.vectorized"]) == ["6"] * 6
    assert torch["tags.mlpsuite.vectorized"].isna().all()
    parent = MlflowClient(uri).get_run(runs["tags.mlflow.parentRunId"].iloc[0])
    assert (
        parent.data.metrics["parity_max_rel_diff"] < 1e-4
    )  # seed by seed and momentum by momentum, jax (a population) vs torch (alone)


def test_a_worker_whose_memory_grew_retires_and_a_fresh_one_takes_over(tmp_path):
    # A growth limit below zero: every worker retires after its second trial.
    path = write_grid(
        tmp_path,
        "retire",
        backends=["sklearn"],
        grid={"model.activation": ["relu", "tanh", "identity", "sigmoid"]},
    )
    uri = ready_store(tmp_path)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    done = subprocess.run(
        mlpsuite_command("run", str(path), "--tracking-uri", uri, "--jobs", "1"),
        cwd=tmp_path,
        env={**clean_env(), "MLPSUITE_MAX_GROWTH": "-1", "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "worker died" not in done.stderr and "log is kept" not in done.stderr
    runs = trial_runs(uri, "retire")
    assert len(runs) == 4 and set(runs["status"]) == {"FINISHED"}
    assert runs["metrics.worker_start_s"].notna().sum() == 2  # two workers, two trials each
    assert not list(scratch.glob("mlpsuite-workers-*"))  # the workers' log folders go with the grid
