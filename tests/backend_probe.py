"""Run in a subprocess with KERAS_BACKEND set: save models, load the other backends' files.

`python -m tests.backend_probe save DIR` writes DIR/<backend>.keras, DIR/<backend>-outputs.npy
and DIR/<backend>.json (weight hashes of build_mlp per initializer). `... load DIR` writes
DIR/<backend>.json with, for every other backend's file in DIR, the largest difference
between its saved outputs and the outputs this backend computes after loading it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import keras
import numpy as np

from mlpsuite import layers
from mlpsuite.initializers import INITIALIZERS
from mlpsuite.models import build_mlp

BACKENDS = ("tensorflow", "torch", "jax")
PROBE_INPUT = np.random.default_rng(123).normal(2.0, 3.0, size=(16, 6)).astype("float32")


def weights_hash(arrays) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def every_layer_model() -> keras.Model:
    """All scalers, then Dense + each activation in turn (kwargs off their defaults)."""
    train = np.random.default_rng(5).normal(1.0, 4.0, size=(100, 6)).astype("float32")
    inputs = keras.Input(shape=(6,))
    x = inputs
    for scaler in (layers.MinMaxScaling((-1, 1)), layers.RobustScaling((20, 80)),
                   layers.StandardScaling()):
        scaler.adapt(keras.Model(inputs, x).predict(train, verbose=0))
        x = scaler(x)
    options = {"leaky_relu": {"alpha": 0.2}, "elu": {"alpha": 0.5}, "gelu": {"approximate": True},
               "swish": {"beta": 1.7, "trainable_beta": True}, "prelu": {"alpha_init": 0.1}}
    for name in layers.ACTIVATIONS:
        x = keras.layers.Dense(6)(x)
        x = layers.get_activation(name, **options.get(name, {}))(x)
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(9)
    model.set_weights([rng.normal(0, 0.6, size=w.shape).astype("float32") for w in model.get_weights()])
    return model


def main(mode: str, directory: Path) -> None:
    backend = keras.backend.backend()
    report = {"backend": backend, "hashes": {}, "loaded": {}}
    for initializer in INITIALIZERS:
        model = build_mlp(6, 3, hidden=(16, 8), activation="prelu", initializer=initializer, seed=11)
        report["hashes"][initializer] = weights_hash(model.get_weights())
    for other in BACKENDS if mode == "load" else ():
        path = directory / f"{other}.keras"
        if other != backend and path.exists():
            loaded = keras.models.load_model(path)
            saved = np.load(directory / f"{other}-outputs.npy")
            outputs = loaded.predict(PROBE_INPUT, verbose=0)
            report["loaded"][other] = float(np.max(np.abs(outputs - saved)))
    if mode == "save":
        model = every_layer_model()
        model.save(directory / f"{backend}.keras")
        np.save(directory / f"{backend}-outputs.npy", model.predict(PROBE_INPUT, verbose=0))
    (directory / f"{backend}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
