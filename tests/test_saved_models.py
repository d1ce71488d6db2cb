"""training.save_model: each trained model is its run's MLflow model, loadable on every backend.

One grid (a PyTorch and a scikit-learn trial) is run once per test session and read by every
backend's worker: each loads the PyTorch-trained model with `mlflow.pyfunc` alone and must
score the test split exactly as the run recorded it, recomputed in NumPy from raw features.
"""

from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from mlpsuite.config import GridSpec, expand
from mlpsuite.data import load_dataset
from mlpsuite.environment import installed_distribution, installed_version
from tests.grids import (
    cli_in_process,
    made_once,
    ready_store,
    run_in_process,
    trial_runs,
    write_grid,
)


def _saved_grid() -> dict:
    """The session's grid with saved models: its store and each backend's run."""

    def make(folder) -> dict:
        folder.mkdir(parents=True)
        path = write_grid(
            folder,
            "saved",
            backends=["torch", "sklearn"],
            training={"epochs": 4, "save_model": True},
            model={"scaler": "minmax"},
        )
        uri = ready_store(folder)
        done = run_in_process("run", str(path), "--tracking-uri", uri, cwd=folder)
        assert done.returncode == 0, done.stderr[-2000:]
        runs = trial_runs(uri, "saved").set_index("params.backend")
        return {
            "uri": uri,
            **{
                backend: {
                    "run_id": runs.loc[backend, "run_id"],
                    "test_loss": runs.loc[backend, "metrics.test_loss"],
                    "test_accuracy": runs.loc[backend, "metrics.test_accuracy"],
                }
                for backend in ("torch", "sklearn")
            },
        }

    return made_once("saved-models", make)


def _data():
    return load_dataset("iris", seed=0, test_size=0.2, val_size=0.2)


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_softmax[np.arange(len(labels)), labels].mean())


def _predict(uri: str, run_id: str, features: np.ndarray) -> np.ndarray:
    """The run's logged model through `mlflow.pyfunc` alone, as a user would load it."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    return np.asarray(
        mlflow.pyfunc.load_model(f"runs:/{run_id}/model").predict(features), dtype=float
    )


@pytest.mark.backend
def test_a_saved_model_predicts_on_every_backend_what_its_run_scored(backend):
    grid, data = _saved_grid(), _data()
    logits = _predict(grid["uri"], grid["torch"]["run_id"], data.X_test)
    # The logged model is the one the run scored: its test loss, recomputed in NumPy from raw
    # features (the scaler is inside the model), on this backend.
    assert logits.shape == (len(data.y_test), 3)
    assert _cross_entropy(logits, data.y_test) == pytest.approx(
        grid["torch"]["test_loss"], rel=1e-5
    )
    assert np.mean(logits.argmax(axis=1) == data.y_test) == pytest.approx(
        grid["torch"]["test_accuracy"]
    )


@pytest.mark.backend("jax")
def test_the_landscape_around_a_saved_model_starts_at_its_training_loss(backend, tmp_path, capsys):
    """At alpha 0 the landscape is the saved model's own training loss; `mlpsuite figures
    landscape` draws it."""
    from mlpsuite.figures import landscape_slices

    grid, data = _saved_grid(), _data()
    run_id = grid["torch"]["run_id"]
    slices = landscape_slices(run_id, grid["uri"])
    middle = list(slices.alphas).index(0.0)
    training_loss = _cross_entropy(_predict(grid["uri"], run_id, data.X_train), data.y_train)
    assert slices.line[middle] == pytest.approx(training_loss, rel=1e-5)
    assert slices.plane.shape == (21, 21)
    code, _, err = cli_in_process(
        capsys,
        "figures",
        "landscape",
        "--run",
        run_id,
        "--tracking-uri",
        grid["uri"],
        "--out",
        str(tmp_path / "figures"),
    )
    assert code == 0, err[-2000:]
    assert (tmp_path / "figures" / "landscape.png").stat().st_size > 10_000


def test_each_backends_model_is_logged_with_its_requirements_and_sklearns_scores_like_its_run():
    grid, data = _saved_grid(), _data()
    client = MlflowClient(grid["uri"])
    for backend, libraries in (("torch", ("keras", "torch")), ("sklearn", ("sklearn",))):
        run_id = grid[backend]["run_id"]
        assert "model/MLmodel" in {a.path for a in client.list_artifacts(run_id, "model")}, backend
        requirements = Path(client.download_artifacts(run_id, "model/requirements.txt")).read_text(
            encoding="utf-8"
        )
        for library in (
            "mlpsuite",
            "numpy",
            *libraries,
        ):  # given, not inferred by a process per model
            assert (
                f"{installed_distribution(library)}=={installed_version(library)}"
                in requirements.split()
            ), library
    labels = _predict(grid["uri"], grid["sklearn"]["run_id"], data.X_test)
    assert np.mean(labels == data.y_test) == pytest.approx(grid["sklearn"]["test_accuracy"])


def test_the_landscape_of_a_model_it_cannot_have_is_one_line(capsys, tmp_path):
    grid = _saved_grid()
    code, out, err = cli_in_process(
        capsys,
        "figures",
        "landscape",
        "--run",
        grid["sklearn"]["run_id"],
        "--tracking-uri",
        grid["uri"],
        "--out",
        str(tmp_path / "figures"),
    )
    assert code == 2 and "scikit-learn model" in err and len(err.strip().splitlines()) == 1
    code, out, err = cli_in_process(
        capsys,
        "figures",
        "landscape",
        "--run",
        "0123abcd",
        "--tracking-uri",
        grid["uri"],
        "--out",
        str(tmp_path / "figures"),
    )
    assert (
        code == 2
        and err.strip() == f"mlpsuite: error: run '0123abcd': no such trial run in {grid['uri']}"
    )
    assert not (tmp_path / "figures").exists()


@pytest.mark.check
def test_save_model_is_in_a_trials_key_only_when_on():
    def trial(**training):
        return expand(
            GridSpec.model_validate(
                {
                    "name": "k",
                    "dataset": {"name": "iris"},
                    "training": training,
                    "backends": ["jax"],
                }
            )
        )[0]

    assert trial().key == trial(save_model=False).key != trial(save_model=True).key
