"""What the cross-backend tests build on every backend: a model with every layer of the suite
(kwargs off their defaults), its probe input, and a hash of a model's weights."""

from __future__ import annotations

import hashlib

import keras
import numpy as np

from mlpsuite import layers

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
    for scaler in (
        layers.MinMaxScaling((-1, 1)),
        layers.RobustScaling((20, 80)),
        layers.StandardScaling(),
    ):
        scaler.adapt(keras.Model(inputs, x).predict(train, verbose=0))  # pyright: ignore[reportArgumentType]  # Keras: verbose "auto" or 0-2
        x = scaler(x)
    options = {
        "leaky_relu": {"alpha": 0.2},
        "elu": {"alpha": 0.5},
        "gelu": {"approximate": True},
        "swish": {"beta": 1.7, "trainable_beta": True},
        "prelu": {"alpha_init": 0.1},
    }
    for name in layers.ACTIVATIONS:
        x = keras.layers.Dense(6)(x)
        x = layers.get_activation(name, **options.get(name, {}))(x)
    model = keras.Model(inputs, x)
    rng = np.random.default_rng(9)
    model.set_weights(
        [rng.normal(0, 0.6, size=w.shape).astype("float32") for w in model.get_weights()]
    )
    return model
