"""mlpsuite's Keras layers: activations from the lecture and feature scalers.

`ACTIVATIONS` and `SCALERS` map a name to its layer class; `get_activation` and `get_scaler`
build one by name (case-insensitive, `-`/`_` ignored) with keyword arguments.
"""

from __future__ import annotations

from typing import Any

from mlpsuite.layers.activations import (
    ELU,
    GELU,
    SELU,
    HardSigmoid,
    Identity,
    LeakyReLU,
    Mish,
    PReLU,
    ReLU,
    Sigmoid,
    Softplus,
    Step,
    Swish,
    Tanh,
)
from mlpsuite.layers.scaling import MinMaxScaling, RobustScaling, StandardScaling
from mlpsuite.registry import ACTIVATION_PARAMS, fold_name, lookup

ACTIVATIONS: dict[str, type] = {
    "identity": Identity,
    "step": Step,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "hard_sigmoid": HardSigmoid,
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "elu": ELU,
    "selu": SELU,
    "gelu": GELU,
    "swish": Swish,
    "softplus": Softplus,
    "mish": Mish,
    "prelu": PReLU,
}

assert set(ACTIVATIONS) == set(ACTIVATION_PARAMS), "registry.ACTIVATION_PARAMS is out of date"

SCALERS: dict[str, type] = {
    "minmax": MinMaxScaling,
    "robust": RobustScaling,
    "standard": StandardScaling,
}


def get_activation(name: str, /, **kwargs: Any):
    """A new activation layer by name, e.g. `get_activation("leaky_relu", alpha=0.2)`.

    Args:
        name: a key of `ACTIVATIONS`, case-insensitive, `-` and `_` ignored ("Leaky-ReLU" is
            "leaky_relu").
        **kwargs: the layer's constructor arguments (`alpha` of LeakyReLU and ELU,
            `approximate` of GELU, `beta`/`trainable_beta` of Swish, `alpha_init` of PReLU)
            and Keras' own (`name`, `dtype`).

    Returns:
        (keras.layers.Layer): A new, unbuilt activation layer: `(..., units)` in, the same
            shape out, with a closed-form `derivative(x)`.

    Raises:
        ValueError: an unknown name (the message suggests the closest valid one and lists
            them all), or a keyword argument the layer does not take.

    Examples:
        >>> import numpy as np
        >>> from keras import ops
        >>> from mlpsuite.layers import get_activation
        >>> layer = get_activation("Leaky-ReLU", alpha=0.2)
        >>> type(layer).__name__, layer.alpha
        ('LeakyReLU', 0.2)
        >>> x = ops.convert_to_tensor([[-1.0, 3.0]])
        >>> print(np.round(ops.convert_to_numpy(layer(x)), 4))
        [[-0.2  3. ]]
        >>> print(np.round(ops.convert_to_numpy(layer.derivative(x)), 4))
        [[0.2 1. ]]
        >>> get_activation("rleu")
        Traceback (most recent call last):
        ...
        ValueError: Unknown activation 'rleu'; did you mean 'relu'? valid names: elu, ...
    """
    return lookup(ACTIVATIONS, name, "activation")(**kwargs)


def get_scaler(name: str, /, **kwargs: Any):
    """A new (unadapted) scaling layer by name: "minmax", "robust" or "standard".

    Args:
        name: a key of `SCALERS`, case-insensitive, `-` and `_` ignored.
        **kwargs: the layer's constructor arguments (`feature_range` of MinMaxScaling,
            `quantile_range` of RobustScaling) and Keras' own (`name`).

    Returns:
        (keras.layers.Layer): A scaling layer, `(batch, features)` in and out, to `adapt` on
            training data before use.

    Raises:
        ValueError: an unknown name, or a bad range.
    """
    return lookup(SCALERS, name, "scaler")(**kwargs)


# Built from the registries so that it cannot drift from them; pyright reads only literals.
__all__ = [  # pyright: ignore[reportUnsupportedDunderAll]
    "ACTIVATIONS",
    "SCALERS",
    "get_activation",
    "get_scaler",
    "fold_name",
    *(cls.__name__ for cls in ACTIVATIONS.values()),
    *(cls.__name__ for cls in SCALERS.values()),
]
