"""training.save_model: each trained model is its run's MLflow model, loadable on every backend."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from mlflow import MlflowClient

from mlpsuite.config import GridSpec, expand
from mlpsuite.data import load_dataset
from tests.grids import run_mlpsuite, sqlite_uri, trial_runs, write_grid

# Loads a run's model with mlflow.pyfunc alone (no mlpsuite import) and prints its outputs for
# each features file, one line `prediction: JSON` each.
PREDICT = """
import json, sys
import mlflow
import numpy as np
model = mlflow.pyfunc.load_model(sys.argv[1])
for features in sys.argv[2:]:
    print("prediction:", json.dumps(np.asarray(model.predict(np.load(features)), dtype=float).tolist()))
"""


def _predict(backend: str | None, model_uri: str, features: str, tracking_uri: str) -> np.ndarray:
    return _predictions(backend, model_uri, [features], tracking_uri)[0]


def _predictions(backend: str | None, model_uri: str, features: list[str], tracking_uri: str) -> list[np.ndarray]:
    """The model's outputs on each features file, from one process (a framework import each costs seconds)."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    env.pop("KERAS_BACKEND", None)
    if backend:
        env["KERAS_BACKEND"] = backend
    done = subprocess.run([sys.executable, "-c", PREDICT, model_uri, *features], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line.removeprefix("prediction: ") for line in done.stdout.splitlines() if line.startswith("prediction: ")]
    assert len(lines) == len(features), done.stdout[-2000:]
    return [np.array(json.loads(line)) for line in lines]


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_softmax[np.arange(len(labels)), labels].mean())


def test_a_saved_model_predicts_the_same_on_every_backend_and_scores_like_its_run(tmp_path):
    path = write_grid(tmp_path, "saved", backends=["torch", "sklearn"], training={"epochs": 4, "save_model": True},
                      model={"scaler": "minmax"})
    uri = sqlite_uri(tmp_path)
    done = run_mlpsuite("run", str(path), "--tracking-uri", uri, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = trial_runs(uri, "saved").set_index("params.backend")
    client = MlflowClient(uri)
    for backend in ("torch", "sklearn"):
        listed = {a.path for a in client.list_artifacts(runs.loc[backend, "run_id"], "model")}
        assert "model/MLmodel" in listed, backend

    data = load_dataset("iris", seed=0, test_size=0.2, val_size=0.2)
    features, train_features = tmp_path / "test_features.npy", tmp_path / "train_features.npy"
    np.save(features, data.X_test)
    np.save(train_features, data.X_train)
    keras_uri = f"runs:/{runs.loc['torch', 'run_id']}/model"
    outputs = {backend: _predict(backend, keras_uri, str(features), uri) for backend in ("tensorflow", "torch")}
    outputs["jax"], train_logits = _predictions("jax", keras_uri, [str(features), str(train_features)], uri)
    for backend in ("tensorflow", "jax"):
        np.testing.assert_allclose(outputs[backend], outputs["torch"], rtol=1e-5, atol=1e-6)
    # The logged model is the one the run scored: its test loss, recomputed in NumPy from raw features.
    assert _cross_entropy(outputs["torch"], data.y_test) == pytest.approx(runs.loc["torch", "metrics.test_loss"],
                                                                          rel=1e-5)
    labels = _predict(None, f"runs:/{runs.loc['sklearn', 'run_id']}/model", str(features), uri)
    assert np.mean(labels == data.y_test) == pytest.approx(runs.loc["sklearn", "metrics.test_accuracy"])
    _check_landscape(tmp_path, uri, runs, data, train_logits)


# Prints the landscape's 1-D slice around a run's saved model, as `mlpsuite figures` draws it.
SLICES = """
import json, sys
from mlpsuite.figures import landscape_slices
slices = landscape_slices(sys.argv[1], sys.argv[2])
print(json.dumps({"alphas": slices.alphas.tolist(), "line": slices.line.tolist(), "plane": slices.plane.shape}))
"""


def _check_landscape(tmp_path, uri, runs, data, logits):
    """At alpha 0 the landscape is the saved model's own training loss (`logits`: the saved
    model's outputs on the training split); away from it, higher."""
    keras_run = runs.loc["torch", "run_id"]
    done = subprocess.run([sys.executable, "-c", SLICES, keras_run, uri], capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": "jax"}, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    slices = json.loads(done.stdout.strip().splitlines()[-1])
    middle = slices["alphas"].index(0.0)
    assert slices["line"][middle] == pytest.approx(_cross_entropy(logits, data.y_train), rel=1e-5)
    assert slices["plane"] == [21, 21]
    drawn = run_mlpsuite("figures", "landscape", "--run", keras_run, "--tracking-uri", uri, "--out",
                         str(tmp_path / "figures"), cwd=tmp_path)
    assert drawn.returncode == 0, drawn.stderr[-2000:]
    assert (tmp_path / "figures" / "landscape.png").stat().st_size > 10_000
    refused = run_mlpsuite("figures", "landscape", "--run", runs.loc["sklearn", "run_id"], "--tracking-uri", uri,
                           "--out", str(tmp_path / "figures"), cwd=tmp_path)
    assert refused.returncode == 2 and "scikit-learn model" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    unknown = run_mlpsuite("figures", "landscape", "--run", "0123abcd", "--tracking-uri", uri, "--out",
                           str(tmp_path / "figures"), cwd=tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.strip() == (
        f"mlpsuite: error: run '0123abcd': no such trial run in {uri}")


def test_save_model_is_in_a_trials_key_only_when_on():
    def trial(**training):
        return expand(GridSpec.model_validate({"name": "k", "dataset": {"name": "iris"}, "training": training,
                                               "backends": ["jax"]}))[0]

    assert trial().key == trial(save_model=False).key != trial(save_model=True).key
