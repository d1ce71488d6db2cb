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
    """A new activation layer by name, e.g. `get_activation("leaky_relu", alpha=0.2)`."""
    return lookup(ACTIVATIONS, name, "activation")(**kwargs)


def get_scaler(name: str, /, **kwargs: Any):
    """A new (unadapted) scaling layer by name: "minmax", "robust" or "standard"."""
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
