"""Initial weights drawn with NumPy, so every backend starts from the same numbers.

Keras' own initializers draw from the backend's RNG (tf.random, torch, jax.random), which
gives different weights for the same seed on each backend. These follow Keras'
`VarianceScaling` formulas exactly, including the normal variants being truncated at two
standard deviations with the standard deviation corrected for the truncation.
"""

from __future__ import annotations

import numpy as np

from mlpsuite.registry import lookup

# Standard deviation of a unit normal truncated to [-2, 2]; Keras divides by the same number.
_TRUNCATED_STD = 0.87962566103423978

# name -> (scale, fan mode, distribution), as keras.initializers defines each of them.
INITIALIZERS: dict[str, tuple[float, str, str]] = {
    "glorot_uniform": (1.0, "fan_avg", "uniform"),
    "glorot_normal": (1.0, "fan_avg", "truncated_normal"),
    "he_uniform": (2.0, "fan_in", "uniform"),
    "he_normal": (2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": (1.0, "fan_in", "uniform"),
    "lecun_normal": (1.0, "fan_in", "truncated_normal"),
}


def target_variance(name: str, fan_in: int, fan_out: int) -> float:
    """The variance each initializer aims for: scale / fan."""
    scale, mode, _ = _spec(name)
    fan = fan_in if mode == "fan_in" else (fan_in + fan_out) / 2.0
    return scale / max(1.0, fan)


def draw_kernel(name: str, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """A `(fan_in, fan_out)` float32 kernel drawn from `rng` by the named initializer."""
    _, _, distribution = _spec(name)
    variance = target_variance(name, fan_in, fan_out)
    shape = (fan_in, fan_out)
    if distribution == "uniform":
        limit = np.sqrt(3.0 * variance)
        kernel = rng.uniform(-limit, limit, size=shape)
    else:
        stddev = np.sqrt(variance) / _TRUNCATED_STD
        from scipy.stats import truncnorm  # loaded on first draw: configs validate without scipy

        kernel = stddev * truncnorm.rvs(-2.0, 2.0, size=shape, random_state=rng)
    return kernel.astype(np.float32)


def _spec(name: str) -> tuple[float, str, str]:
    return lookup(INITIALIZERS, name, "initializer")
