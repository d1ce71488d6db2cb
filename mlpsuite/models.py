"""`build_mlp`: a Dense-layer Keras model whose initial weights come from NumPy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import keras
import numpy as np

from mlpsuite.initializers import draw_kernel
from mlpsuite.layers import get_activation, get_scaler
from mlpsuite.layers.scaling import _Scaling

ActivationArg = str | keras.layers.Layer
ScalerArg = str | keras.layers.Layer | None


def build_mlp(
    input_dim: int,
    output_dim: int,
    hidden: Sequence[int] = (64, 64),
    activation: ActivationArg = "relu",
    activation_params: dict | None = None,
    output_activation: str | None = None,
    scaler: ScalerArg = None,
    initializer: str = "glorot_uniform",
    dropout: float = 0.0,
    seed: int = 0,
    name: str | None = None,
) -> keras.Model:
    """A feed-forward net: [scaler] -> (Dense -> activation [-> Dropout]) x len(hidden) -> Dense.

    Maps `(batch, input_dim)` to `(batch, output_dim)`. Kernels are drawn with NumPy from
    `seed` by `initializer`, biases are zero, so the same call gives bit-identical weights on
    TensorFlow, PyTorch and JAX.

    Args:
        input_dim: number of input features.
        output_dim: number of outputs (classes for classification, 1 for regression).
        hidden: units of each hidden Dense layer.
        activation: an activation name from `mlpsuite.layers.ACTIVATIONS` or a layer
            (copied via its config for each hidden layer).
        activation_params: keyword arguments of a named activation, e.g. `{"alpha": 0.1}`.
        output_activation: None or "linear" for raw outputs (logits), "softmax", or an
            activation name.
        scaler: None/"none", "minmax", "robust", "standard" (an unadapted layer; adapt it
            before training) or a scaling layer, usually already adapted.
        initializer: glorot_uniform, glorot_normal, he_uniform, he_normal, lecun_uniform
            or lecun_normal.
        dropout: dropout rate after each hidden activation; 0 adds no Dropout layer.
        seed: seed of the NumPy generator that draws the kernels (and of Dropout).
        name: the model's name. Defaults to "mlp".

    Returns:
        An uncompiled functional `keras.Model`. Its layers are named `features` (the input),
            `scaling`, `dense_1`, `activation_1`, `dropout_1`, ..., `output` and
            `output_activation`, those that apply.

    Raises:
        ValueError: `input_dim`, `output_dim` or a `hidden` width that is not a positive
            int, `dropout` outside [0, 1), an unknown activation, scaler or initializer name,
            or a `scaler` that is neither a name nor a scaling layer.

    Examples:
        Four features, two hidden layers of 8 ELU units, three classes:

        >>> import numpy as np
        >>> from mlpsuite.models import build_mlp
        >>> model = build_mlp(4, 3, hidden=(8, 8), activation="elu", scaler="standard",
        ...                   output_activation="softmax", seed=0)
        >>> [layer.name for layer in model.layers]
        ['features', 'scaling', 'dense_1', 'activation_1', 'dense_2', 'activation_2',
         'output', 'output_activation']
        >>> X = np.random.default_rng(0).normal(size=(5, 4))
        >>> model.get_layer("scaling").adapt(X)  # the scaler learns from training data
        >>> probabilities = np.asarray(model.predict(X, verbose=0))
        >>> probabilities.shape, np.round(probabilities.sum(axis=1), 4).tolist()
        ((5, 3), [1.0, 1.0, 1.0, 1.0, 1.0])

        The kernels come from NumPy, so the same seed gives the same first weights on
        TensorFlow, PyTorch and JAX:

        >>> print(np.round(model.get_layer("dense_1").get_weights()[0][0], 4))
        [ 0.1937 -0.3256 -0.6492 -0.6837  0.443   0.5837  0.1508  0.3246]
    """
    _check_dims(input_dim, output_dim, hidden, dropout)
    inputs = keras.Input(shape=(input_dim,), name="features")
    x = inputs
    scaling_layer = _scaling_layer(scaler)
    if scaling_layer is not None:
        x = scaling_layer(x)
    for depth, units in enumerate(hidden, start=1):
        x = keras.layers.Dense(units, name=f"dense_{depth}")(x)
        x = _activation_layer(activation, activation_params or {}, name=f"activation_{depth}")(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, seed=seed + depth, name=f"dropout_{depth}")(x)
    outputs = keras.layers.Dense(output_dim, name="output")(x)
    output_layer = _output_activation_layer(output_activation)
    if output_layer is not None:
        outputs = output_layer(outputs)
    model = keras.Model(inputs, outputs, name=name or "mlp")
    initialize_dense_weights(model, initializer, seed)
    return model


def initialize_dense_weights(model: keras.Model, initializer: str, seed: int) -> None:
    """Set every Dense kernel from NumPy (`seed`, in layer order) and every bias to zero."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            # Keras infers `kernel` from its quantized/LoRA branches too; here it is the Variable.
            kernel = cast(keras.Variable, layer.kernel)
            fan_in, fan_out = kernel.shape
            weights = [draw_kernel(initializer, fan_in, fan_out, rng)]
            if layer.use_bias:
                weights.append(np.zeros((fan_out,), dtype=np.float32))
            layer.set_weights(weights)


def reseed_dropout(model: keras.Model, seed: int) -> None:
    """Give each Dropout layer the random state `build_mlp(seed=seed)` gives it."""
    depth = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            depth += 1
        elif isinstance(layer, keras.layers.Dropout):
            state = layer.seed_generator.state
            state.assign(np.array([seed + depth, 0], dtype=state.dtype))


def find_scaler(model: keras.Model) -> _Scaling | None:
    """The model's scaling layer, if it has one."""
    return next((layer for layer in model.layers if isinstance(layer, _Scaling)), None)


def _check_dims(input_dim, output_dim, hidden, dropout) -> None:
    for label, value in (("input_dim", input_dim), ("output_dim", output_dim)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"Expected {label} to be a positive int, got {value!r}")
    if any(not isinstance(units, (int, np.integer)) or units < 1 for units in hidden):
        raise ValueError(f"Expected hidden to be positive ints, got {list(hidden)!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"Expected 0 <= dropout < 1, got {dropout!r}")


def _activation_layer(activation: ActivationArg, params: dict, name: str) -> keras.layers.Layer:
    if isinstance(activation, keras.layers.Layer):
        # A fresh copy per hidden layer: PReLU and a trainable Swish own per-layer weights.
        config = {**activation.get_config(), "name": name}
        return type(activation).from_config(config)
    return get_activation(activation, name=name, **params)


def _output_activation_layer(output_activation: str | None) -> keras.layers.Layer | None:
    if output_activation is None or output_activation.lower() in ("linear", "none"):
        return None
    if output_activation.lower() == "softmax":
        return keras.layers.Softmax(name="output_activation")
    return get_activation(output_activation, name="output_activation")


def _scaling_layer(scaler: ScalerArg) -> keras.layers.Layer | None:
    if scaler is None or (isinstance(scaler, str) and scaler.lower() == "none"):
        return None
    if isinstance(scaler, str):
        return get_scaler(scaler, name="scaling")
    if isinstance(scaler, _Scaling):
        return scaler
    raise ValueError(
        "Expected scaler to be None, 'none', 'minmax', 'robust', 'standard' or a scaling "
        f"layer, got {type(scaler).__name__}"
    )
