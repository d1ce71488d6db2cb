"""Independent NumPy/SciPy formulas the layers are checked against (float64)."""

from __future__ import annotations

import numpy as np
from scipy.special import erf, expit

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


def softplus(x):
    return np.logaddexp(0.0, x)


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def _elu(x, alpha):
    with np.errstate(over="ignore"):
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


# name -> (constructor kwargs, reference function)
ACTIVATION_REFERENCES = {
    "identity": ({}, lambda x: x),
    "step": ({}, lambda x: np.heaviside(x, 0.0)),
    "sigmoid": ({}, expit),
    "tanh": ({}, np.tanh),
    "hard_sigmoid": ({}, lambda x: np.clip(x / 6 + 0.5, 0, 1)),
    "relu": ({}, lambda x: np.maximum(x, 0)),
    "leaky_relu": ({"alpha": 0.2}, lambda x: np.where(x > 0, x, 0.2 * x)),
    "elu": ({"alpha": 0.7}, lambda x: _elu(x, 0.7)),
    "selu": ({}, lambda x: SELU_SCALE * _elu(x, SELU_ALPHA)),
    "gelu": ({}, lambda x: 0.5 * x * (1 + erf(x / np.sqrt(2)))),
    "swish": ({"beta": 1.5}, lambda x: x * expit(1.5 * x)),
    "softplus": ({}, softplus),
    "mish": ({}, lambda x: x * np.tanh(softplus(x))),
    "prelu": ({"alpha_init": 0.3}, lambda x: np.where(x > 0, x, 0.3 * x)),
}

# 0, the kinks (0, ±3), tiny, moderate, saturating and large magnitudes.
GRID = np.array(
    [
        0.0,
        1e-3,
        -1e-3,
        0.5,
        -0.5,
        1.0,
        -1.0,
        2.5,
        -2.5,
        3.0,
        -3.0,
        7.0,
        -7.0,
        20.0,
        -20.0,
        100.0,
        -100.0,
        1e4,
        -1e4,
    ],
)
