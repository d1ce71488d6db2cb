"""scikit-learn as a reference backend: its runs are a plain MLPClassifier/MLPRegressor fit."""

from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from sklearn.metrics import log_loss, r2_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, StandardScaler

from mlpsuite.config import GridSpec, expand
from mlpsuite.config.reference import sklearn_note
from mlpsuite.data import load_dataset
from mlpsuite.trial.sklearn_backend import SklearnRunner
from tests.grids import ready_store, run_in_process, trial_runs, write_grid


def _trial(
    dataset: str, model: dict, optimizer: dict, epochs: int = 6, batch_size: int = 32, seed: int = 4
):
    spec = GridSpec.model_validate(
        {
            "name": "reference",
            "dataset": {"name": dataset},
            "model": model,
            "optimizer": optimizer,
            "training": {"epochs": epochs, "batch_size": batch_size},
            "backends": ["sklearn"],
            "seeds": [seed],
        }
    )
    return expand(spec)[0]


def _direct_fit(estimator, scaler, data, epochs, seed, classes=None):
    """The reference: scikit-learn alone, fed each epoch's rows in NumPy's order for the seed."""
    scaler.fit(data.X_train)
    X, rng, losses = scaler.transform(data.X_train), np.random.default_rng(seed), []
    for _ in range(epochs):
        rows = rng.permutation(len(X))
        estimator.partial_fit(
            X[rows], data.y_train[rows], **({"classes": classes} if classes is not None else {})
        )
        losses.append(estimator.loss_)
    return estimator, np.array(losses), scaler


@pytest.mark.check
def test_classifier_runs_match_a_direct_mlpclassifier_fit():
    trial = _trial(
        "digits",
        {"hidden": [24, 12], "activation": "tanh", "scaler": "standard"},
        {"name": "nesterov", "learning_rate": 0.02, "momentum": 0.8},
    )
    result = SklearnRunner().run(trial, lambda event: None)
    assert result.status == "FINISHED", result.message
    data = load_dataset("digits", seed=0)
    direct = MLPClassifier(
        hidden_layer_sizes=(24, 12),
        activation="tanh",
        solver="sgd",
        alpha=0.0,
        batch_size=32,  # pyright: ignore[reportArgumentType]  # sklearn: int or "auto", inferred str
        learning_rate_init=0.02,
        momentum=0.8,
        nesterovs_momentum=True,
        shuffle=False,
        random_state=4,
        max_iter=6,
    )
    direct, losses, scaler = _direct_fit(
        direct, StandardScaler(), data, 6, seed=4, classes=np.arange(10)
    )
    np.testing.assert_allclose(result.history["loss"], losses, rtol=1e-6)
    X_val, X_test = scaler.transform(data.X_val), scaler.transform(data.X_test)
    assert result.history["val_loss"][-1] == pytest.approx(
        log_loss(data.y_val, direct.predict_proba(X_val)), rel=1e-6
    )
    assert result.test["accuracy"] == pytest.approx(direct.score(X_test, data.y_test), rel=1e-9)
    assert result.test["loss"] == pytest.approx(
        log_loss(data.y_test, direct.predict_proba(X_test)), rel=1e-6
    )
    assert result.step_time_ms is not None
    assert len(result.history["accuracy"]) == 6 and result.step_time_ms > 0


@pytest.mark.check
def test_regressor_reports_keras_mse_not_sklearns_half():
    trial = _trial(
        "diabetes",
        {"hidden": [16], "activation": "relu", "scaler": "minmax"},
        {"name": "adam", "learning_rate": 0.05},
        epochs=5,
        seed=2,
    )
    result = SklearnRunner().run(trial, lambda event: None)
    assert result.status == "FINISHED", result.message
    data = load_dataset("diabetes", seed=0)
    direct = MLPRegressor(
        hidden_layer_sizes=(16,),
        activation="relu",
        solver="adam",
        alpha=0.0,
        batch_size=32,  # pyright: ignore[reportArgumentType]  # sklearn: int or "auto", inferred str
        learning_rate_init=0.05,
        shuffle=False,
        random_state=2,
        max_iter=5,
    )
    direct, losses, scaler = _direct_fit(direct, MinMaxScaler(), data, 5, seed=2)
    np.testing.assert_allclose(
        result.history["loss"], 2 * losses, rtol=1e-6
    )  # sklearn's loss_ is MSE / 2
    predicted = direct.predict(scaler.transform(data.X_test))
    assert result.test["r2"] == pytest.approx(r2_score(data.y_test, predicted), rel=1e-6)
    assert result.test["loss"] == pytest.approx(np.mean((data.y_test - predicted) ** 2), rel=1e-5)


@pytest.mark.check
def test_unscaled_runs_feed_the_raw_features():
    trial = _trial(
        "iris",
        {"hidden": [8], "activation": "relu", "scaler": "none"},
        {"name": "sgd", "learning_rate": 0.01},
        epochs=3,
        batch_size=16,
        seed=1,
    )
    result = SklearnRunner().run(trial, lambda event: None)
    assert result.status == "FINISHED", result.message
    data = load_dataset("iris", seed=0)
    direct = MLPClassifier(
        hidden_layer_sizes=(8,),
        activation="relu",
        solver="sgd",
        alpha=0.0,
        batch_size=16,  # pyright: ignore[reportArgumentType]  # sklearn: int or "auto", inferred str
        learning_rate_init=0.01,
        momentum=0.0,
        nesterovs_momentum=False,
        shuffle=False,
        random_state=1,
        max_iter=3,
    )
    _, losses, _ = _direct_fit(
        direct, FunctionTransformer(), data, 3, seed=1, classes=np.arange(3)
    )  # identity
    np.testing.assert_allclose(result.history["loss"], losses, rtol=1e-6)


@pytest.mark.parametrize(
    "model, optimizer, says",
    [
        (
            {"activation": "elu"},
            {"name": "adam"},
            "activation elu is not available in scikit-learn; it has identity",
        ),
        (
            {"activation": "relu"},
            {"name": "rmsprop"},
            "optimizer rmsprop is not available in scikit-learn",
        ),
        (
            {"activation": "relu", "dropout": 0.2},
            {"name": "adam"},
            "dropout is not available in scikit-learn",
        ),
    ],
)
@pytest.mark.check
def test_what_sklearn_lacks_is_a_failed_trial_saying_so(model, optimizer, says):
    trial = _trial("iris", model, optimizer)
    result = SklearnRunner().run(trial, lambda event: None)
    assert (result.status, result.failure) == ("FAILED", "unsupported")
    assert result.message is not None
    assert result.message.startswith(says)
    note = sklearn_note([trial])
    assert note is not None
    assert note.startswith("sklearn: 1 trials will be FAILED runs")


def test_a_grid_with_sklearn_beside_a_keras_backend(tmp_path):
    path = write_grid(
        tmp_path,
        "reference",
        backends=["torch", "scikit-learn"],
        seeds=[0, 1],
        grid={"model.activation": ["tanh", "elu"]},
    )
    uri = ready_store(tmp_path)
    done = run_in_process("run", str(path), "--tracking-uri", uri, "--jobs", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "sklearn: 2 trials will be FAILED runs" in done.stderr
    runs = trial_runs(uri, "reference")
    sklearn = runs[runs["params.backend"] == "sklearn"]
    assert sorted(sklearn["status"]) == ["FAILED", "FAILED", "FINISHED", "FINISHED"]
    assert set(sklearn[sklearn["status"] == "FAILED"]["params.model.activation"]) == {"elu"}
    finished = sklearn[sklearn["status"] == "FINISHED"]
    history = MlflowClient(uri).get_metric_history(finished["run_id"].iloc[0], "val_loss")
    assert [m.step for m in history] == [1, 2, 3, 4, 5]
    assert "sklearn starts from its own initial weights: not compared" in " ".join(
        done.stdout.split()
    )
    parent = MlflowClient(uri).get_run(runs["tags.mlflow.parentRunId"].iloc[0])
    assert "trial_time_s_sklearn" in parent.data.metrics
    # Memory per backend, scikit-learn's included: the peak never below the worker's start.
    done = runs[runs["status"] == "FINISHED"]
    assert (done["metrics.peak_rss_mb"] >= done["metrics.start_rss_mb"]).all()
    assert (done["metrics.start_rss_mb"] > 20).all()
    assert parent.data.metrics["peak_rss_mb_sklearn"] < parent.data.metrics["peak_rss_mb_torch"]
    local = MlflowClient(uri).download_artifacts(
        parent.info.run_id, "comparison/report.md", str(tmp_path)
    )
    report = Path(local).read_text(encoding="utf-8")
    assert (
        "| activation=tanh | sklearn | 2 |" in report
        and "| activation=tanh | torch | 2 |" in report
    )
