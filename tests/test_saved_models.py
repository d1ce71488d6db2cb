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
from tests.grids import ready_store, run_in_process, run_mlpsuite, trial_runs, write_grid

# Loads runs' models with mlflow.pyfunc alone (no mlpsuite import) and prints the outputs of
# each `MODEL_URI::FEATURES` argument, one line `prediction: JSON` each; with `--slices RUN
# TRACKING_URI` first, also the landscape's 1-D slice around RUN's model, as `mlpsuite figures`
# draws it (one process: a framework import costs seconds).
PREDICT = """
import json, sys
import mlflow
import numpy as np
arguments = sys.argv[1:]
if arguments[0] == "--slices":
    from mlpsuite.figures import landscape_slices
    slices = landscape_slices(arguments[1], arguments[2])
    print("slices:", json.dumps({"alphas": slices.alphas.tolist(), "line": slices.line.tolist(),
                                 "plane": slices.plane.shape}))
    arguments = arguments[3:]
for pair in arguments:
    model_uri, features = pair.split("::")
    model = mlflow.pyfunc.load_model(model_uri)
    print("prediction:", json.dumps(np.asarray(model.predict(np.load(features)), dtype=float).tolist()))
"""


def _predictions(backend: str, pairs: list[tuple[str, str]], tracking_uri: str,
                 slices: list[str] = ()) -> tuple[list[np.ndarray], dict | None]:
    """Each (model URI, features file)'s outputs, and the slices, from one `backend` process."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, "-c", PREDICT, *slices, *(f"{uri}::{f}" for uri, f in pairs)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    found = [json.loads(line.removeprefix("prediction: ")) for line in lines if line.startswith("prediction: ")]
    assert len(found) == len(pairs), done.stdout[-2000:]
    sliced = [json.loads(line.removeprefix("slices: ")) for line in lines if line.startswith("slices: ")]
    return [np.array(values) for values in found], (sliced[0] if sliced else None)


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_softmax[np.arange(len(labels)), labels].mean())


def test_a_saved_model_predicts_the_same_on_every_backend_and_scores_like_its_run(tmp_path):
    path = write_grid(tmp_path, "saved", backends=["torch", "sklearn"], training={"epochs": 4, "save_model": True},
                      model={"scaler": "minmax"})
    uri = ready_store(tmp_path)
    done = run_in_process("run", str(path), "--tracking-uri", uri, cwd=tmp_path)
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
    sklearn_uri = f"runs:/{runs.loc['sklearn', 'run_id']}/model"
    outputs = {}
    (outputs["tensorflow"],), _ = _predictions("tensorflow", [(keras_uri, str(features))], uri)
    (outputs["torch"], labels), _ = _predictions("torch", [(keras_uri, str(features)), (sklearn_uri, str(features))],
                                                 uri)
    (outputs["jax"], train_logits), slices = _predictions(
        "jax", [(keras_uri, str(features)), (keras_uri, str(train_features))], uri,
        slices=["--slices", runs.loc["torch", "run_id"], uri])
    for backend in ("tensorflow", "jax"):
        np.testing.assert_allclose(outputs[backend], outputs["torch"], rtol=1e-5, atol=1e-6)
    # The logged model is the one the run scored: its test loss, recomputed in NumPy from raw features.
    assert _cross_entropy(outputs["torch"], data.y_test) == pytest.approx(runs.loc["torch", "metrics.test_loss"],
                                                                          rel=1e-5)
    assert np.mean(labels == data.y_test) == pytest.approx(runs.loc["sklearn", "metrics.test_accuracy"])
    _check_landscape(tmp_path, uri, runs, data, train_logits, slices)


def _check_landscape(tmp_path, uri, runs, data, logits, slices):
    """At alpha 0 the landscape is the saved model's own training loss (`logits`: the saved
    model's outputs on the training split); away from it, higher."""
    keras_run = runs.loc["torch", "run_id"]
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
