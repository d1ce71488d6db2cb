"""Trained models as MLflow Keras models: saved by the worker, logged by the coordinator.

A worker never writes to the store: with `training.save_model: true` it saves the trained
model with `mlflow.keras.save_model` into a folder of its own, and the coordinator logs that
folder as the run's `model` artifact. The model is the whole net, scaler included, so it
takes raw features:

    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    logits = model.predict(X)  # (rows, features) float32 -> (rows, outputs), any backend

Keras resolves a saved model's custom layers only from its registry, so the pyfunc flavor
loads through this module, which imports `mlpsuite.layers` first. `mlflow.keras.load_model`
needs `import mlpsuite.layers` before it; `load_trained_model` does both.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np

from mlpsuite.executors.wire import MODEL_DIR_ENV

if TYPE_CHECKING:  # Keras is imported by the functions that need it, not with this module
    import keras

EXAMPLE_ROWS = 5  # rows MLflow derives the model's signature (input and output shapes) from


def save_trained_model(model, key: str, X_example: np.ndarray) -> str:
    """Save `model` as an MLflow Keras model in a new folder under `$MLPSUITE_MODEL_DIR`
    (else the temporary folder); returns the folder."""
    import mlflow.keras
    from mlflow.models import infer_signature

    folder = new_model_folder(key)
    example = np.asarray(X_example[:EXAMPLE_ROWS], dtype=np.float32)
    signature = infer_signature(example, np.asarray(model.predict(example, verbose=0)))
    from mlpsuite.trial.backends import active_backend

    # mlflow names its flavours lazily, unexported; `import mlflow.keras` above loads this one.
    mlflow.keras.save_model(  # pyright: ignore[reportPrivateImportUsage]
        model,
        str(folder),
        signature=signature,
        pip_requirements=model_requirements("keras", active_backend()),
    )
    _load_through_mlpsuite(folder)
    return str(folder)


def model_requirements(*libraries: str) -> list[str]:
    """The pip requirements of a saved model: mlpsuite (its loader module), NumPy and
    `libraries` (names as a trial records them: keras, torch, sklearn ...) at their installed
    versions. Given, not inferred: MLflow's inference loads the model again in a new Python
    process per saved model (measured: 13.9 s each on PyTorch, and it still fell back to keras
    alone after failing to import TensorFlow)."""
    from mlpsuite.environment import installed_distribution, installed_version

    return [
        f"{installed_distribution(library) or library}=={installed_version(library)}"
        for library in ("mlpsuite", "numpy", *libraries)
        if installed_version(library) is not None
    ]


def _load_through_mlpsuite(folder: Path) -> None:
    """Point the model's pyfunc flavor at this module, so `mlflow.pyfunc.load_model` imports
    mlpsuite's layers before Keras reads the model (the `keras` flavor is left as it is)."""
    from mlflow.models import Model

    saved = Model.load(str(folder / "MLmodel"))
    saved.flavors["python_function"]["loader_module"] = __name__
    saved.save(str(folder / "MLmodel"))


def _load_pyfunc(path: str):
    """`mlflow.pyfunc`'s entry point for models saved here: the Keras flavor's own loader,
    after registering mlpsuite's layers."""
    from mlflow.keras.load import _load_pyfunc as load_keras_pyfunc

    import mlpsuite.layers  # noqa: F401

    return load_keras_pyfunc(path)


def new_model_folder(key: str) -> Path:
    """A new, not yet existing `model` folder under `$MLPSUITE_MODEL_DIR` (else the
    temporary folder); the coordinator removes its parent once logged."""
    root = Path(os.environ.get(MODEL_DIR_ENV) or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"model-{key}-", dir=root)) / "model"


def load_trained_model(model_uri: str) -> keras.Model:
    """The Keras model logged at `model_uri` (e.g. `runs:/<run id>/model`), on the active
    backend."""
    import mlflow.keras

    import mlpsuite.layers  # noqa: F401  (registers the custom layers the saved config names)

    # mlflow.keras: loaded above, though unexported (as in save_trained_model); its loader
    # has no return annotation and returns the Keras model.
    model = mlflow.keras.load_model(model_uri)  # pyright: ignore[reportPrivateImportUsage]
    return cast("keras.Model", model)
