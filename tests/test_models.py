"""build_mlp: structure, shapes, NumPy initialisation and argument checks, on every backend."""

from typing import cast

import keras
import numpy as np
import pytest

from mlpsuite import layers
from mlpsuite.initializers import draw_kernel
from mlpsuite.models import build_mlp

pytestmark = [pytest.mark.backend, pytest.mark.check]


def _dense_layers(model):
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def test_shapes_and_layer_order(backend):
    model = build_mlp(7, 4, hidden=(32, 16, 8), activation="elu", scaler="standard")
    assert model.input_shape == (None, 7) and model.output_shape == (None, 4)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer",
        "StandardScaling",
        "Dense",
        "ELU",
        "Dense",
        "ELU",
        "Dense",
        "ELU",
        "Dense",
    ]
    # Dense.kernel is unannotated: pyright infers a union that includes None.
    kernels = [cast(keras.Variable, layer.kernel) for layer in _dense_layers(model)]
    assert [tuple(kernel.shape) for kernel in kernels] == [
        (7, 32),
        (32, 16),
        (16, 8),
        (8, 4),
    ]


def test_kernels_are_the_numpy_draws_and_biases_zero(backend):
    model = build_mlp(5, 2, hidden=(6, 3), initializer="he_uniform", seed=21)
    rng = np.random.default_rng(21)
    for layer, (fan_in, fan_out) in zip(
        _dense_layers(model), ((5, 6), (6, 3), (3, 2)), strict=True
    ):
        kernel, bias = layer.get_weights()
        np.testing.assert_array_equal(kernel, draw_kernel("he_uniform", fan_in, fan_out, rng))
        assert not bias.any()


def test_seed_changes_weights_and_same_seed_repeats(backend):
    weights = lambda seed: build_mlp(4, 3, hidden=(8,), seed=seed).get_weights()  # noqa: E731
    for a, b in zip(weights(1), weights(1), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(weights(1)[0], weights(2)[0])


def test_no_hidden_layers_is_a_linear_model(backend):
    model = build_mlp(3, 1, hidden=())
    assert len(_dense_layers(model)) == 1
    x = np.random.default_rng(0).normal(size=(5, 3)).astype("float32")
    kernel, bias = model.layers[-1].get_weights()
    np.testing.assert_allclose(model.predict(x, verbose=0), x @ kernel + bias, rtol=1e-5, atol=1e-6)  # pyright: ignore[reportArgumentType]  # Keras: verbose "auto" or 0-2


def test_forward_pass_matches_numpy(backend):
    scaler = layers.MinMaxScaling()
    X = np.random.default_rng(3).normal(size=(20, 4)).astype("float32")
    scaler.adapt(X)
    model = build_mlp(
        4, 3, hidden=(5,), activation="tanh", output_activation="softmax", scaler=scaler
    )
    (k1, b1), (k2, b2) = (layer.get_weights() for layer in _dense_layers(model))
    scaled = (X - X.min(0)) / (X.max(0) - X.min(0))
    logits = np.tanh(scaled @ k1 + b1) @ k2 + b2
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(X, verbose=0), expected, rtol=1e-5, atol=1e-6)  # pyright: ignore[reportArgumentType]  # Keras: verbose "auto" or 0-2


def test_activation_layer_is_copied_per_hidden_layer(backend):
    model = build_mlp(3, 2, hidden=(4, 6), activation=layers.PReLU(alpha_init=0.05))
    prelus = [layer for layer in model.layers if isinstance(layer, layers.PReLU)]
    assert len(prelus) == 2 and prelus[0] is not prelus[1]
    assert [tuple(p.alpha.shape) for p in prelus] == [(4,), (6,)]
    assert all(np.allclose(p.get_weights()[0], 0.05) for p in prelus)


def test_dropout_layers_only_when_asked(backend):
    plain = build_mlp(3, 2, hidden=(4, 4))
    dropped = build_mlp(3, 2, hidden=(4, 4), dropout=0.25)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in plain.layers)
    rates = [layer.rate for layer in dropped.layers if isinstance(layer, keras.layers.Dropout)]
    assert rates == [0.25, 0.25]


def test_string_scaler_must_be_adapted_before_use(backend):
    with pytest.raises(ValueError, match="not adapted"):
        build_mlp(3, 1, hidden=(2,), scaler="robust").predict(np.ones((2, 3), "float32"), verbose=0)  # pyright: ignore[reportArgumentType]  # Keras: verbose "auto" or 0-2
    # A fresh model: Keras' JAX predict leaves a model's variables purged after any exception.
    model = build_mlp(3, 1, hidden=(2,), scaler="robust")
    model.layers[1].adapt(np.random.default_rng(0).normal(size=(10, 3)))
    assert np.all(np.isfinite(model.predict(np.ones((2, 3), dtype="float32"), verbose=0)))  # pyright: ignore[reportArgumentType]  # Keras: verbose "auto" or 0-2


def test_model_trains_with_fit(backend):
    X = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
    y = (X[:, 0] * X[:, 1] > 0).astype("int32")
    model = build_mlp(2, 2, hidden=(16,), activation="swish")
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = model.fit(X, y, epochs=30, batch_size=16, verbose=0, shuffle=False)  # pyright: ignore[reportArgumentType]  # Keras: verbose "auto" or 0-2
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_dim": 0}, "input_dim to be a positive int"),
        ({"hidden": (4, -1)}, "hidden to be positive ints"),
        ({"dropout": 1.0}, "0 <= dropout < 1"),
        ({"activation": "relu6"}, "Unknown activation 'relu6'"),
        ({"scaler": "zscore"}, "Unknown scaler 'zscore'.*standard"),
        ({"scaler": 3}, "Expected scaler to be None"),
        ({"initializer": "orthogonal"}, "Unknown initializer 'orthogonal'"),
    ],
)
def test_bad_arguments_raise_value_error(backend, kwargs, message):
    arguments = {"input_dim": 3, "output_dim": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        build_mlp(**arguments)
