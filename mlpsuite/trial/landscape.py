"""The loss landscape around a trained model: 1-D and 2-D slices along random directions.

Li et al. 2018 ("Visualizing the Loss Landscape of Neural Nets"): a random Gaussian direction
`d`, with each unit's incoming weights rescaled to the norm of that unit's trained weights
(filter normalisation), so a step of 1 along `d` is as large as the weights themselves, layer
by layer and unit by unit:

```
d_j  <-  d_j / ||d_j|| * ||theta_j||      for every unit j of every Dense kernel
d    =   0                                for biases and other 1-D weights
L(a, b) = loss(theta + a d1 + b d2)        on the training rows
```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import keras
import numpy as np

MAX_ROWS = 1024  # the loss is measured on at most this many training rows


def filter_normalized_direction(
    weights: list[np.ndarray], rng: np.random.Generator
) -> list[np.ndarray]:
    """One random direction shaped like `weights`: per 2-D kernel `(fan_in, units)`, Gaussian
    columns scaled to the norm of the matching column of the kernel; zeros elsewhere."""
    direction = []
    for weight in weights:
        if weight.ndim != 2:
            direction.append(np.zeros_like(weight))
            continue
        draw = rng.standard_normal(weight.shape).astype(weight.dtype)
        scale = np.linalg.norm(weight, axis=0) / np.maximum(np.linalg.norm(draw, axis=0), 1e-12)
        direction.append(draw * scale)
    return direction


class Landscape:
    """Losses of `model` at its weights moved along directions, its own weights left as found.

    Args:
        model: a trained Keras model (its scaler layer included: `x` is raw features).
        loss: `loss(y_true, y_pred) -> scalar`, the loss the model was trained with.
        x: features `(rows, features)`; the first `MAX_ROWS` rows are used.
        y: targets `(rows,)`.
        seed: seed of the directions.
    """

    def __init__(
        self, model: keras.Model, loss: Callable, x: np.ndarray, y: np.ndarray, seed: int = 0
    ):
        self.model, self.loss = model, loss
        self.x, self.y = x[:MAX_ROWS], y[:MAX_ROWS]
        self.variables = list(model.trainable_variables)
        # convert_to_numpy's inferred type spans every backend's; it returns np.ndarray.
        self.origin = [
            cast(np.ndarray, keras.ops.convert_to_numpy(v)).copy() for v in self.variables
        ]
        rng = np.random.default_rng(seed)
        self.directions = [filter_normalized_direction(self.origin, rng) for _ in range(2)]

    def loss_at(self, a: float, b: float = 0.0) -> float:
        """loss(theta + a d1 + b d2)."""
        for variable, start, d1, d2 in zip(
            self.variables, self.origin, *self.directions, strict=True
        ):
            variable.assign(start + a * d1 + b * d2)
        try:
            predicted = self.model(self.x, training=False)
            return float(cast(np.ndarray, keras.ops.convert_to_numpy(self.loss(self.y, predicted))))
        finally:
            for variable, start in zip(self.variables, self.origin, strict=True):
                variable.assign(start)

    def line(self, alphas: np.ndarray) -> np.ndarray:
        """The 1-D slice along d1: one loss per alpha."""
        return np.array([self.loss_at(a) for a in alphas])

    def plane(self, alphas: np.ndarray, betas: np.ndarray) -> np.ndarray:
        """The 2-D slice: losses shaped `(len(betas), len(alphas))`."""
        return np.array([[self.loss_at(a, b) for a in alphas] for b in betas])
