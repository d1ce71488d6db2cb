"""Scoring a model on one split: the loss, accuracy or R² and MAE of its current weights.

`Split` holds a split's arrays and the input `model.evaluate` and `model.predict` take
cheapest on the active backend. On TensorFlow, Keras turns NumPy arrays into a new tf.data
pipeline on every call, 40 ms for 180 rows where the evaluation itself takes 2 ms; a Split
builds its pipelines once, and a worker keeps it as long as the dataset.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from mlpsuite.trial.backends import active_backend

EVAL_BATCH_SIZE = 1024


class Split:
    """`X` (rows, features) float32 and `y` (rows,), in batches of EVAL_BATCH_SIZE."""

    def __init__(self, X: np.ndarray, y: np.ndarray):
        self.X, self.y = X, y
        self._pairs = self._features = None
        if len(X) and active_backend() == "tensorflow":
            import tensorflow as tf

            self._pairs = tf.data.Dataset.from_tensor_slices((X, y)).batch(EVAL_BATCH_SIZE)
            self._features = tf.data.Dataset.from_tensor_slices(X).batch(EVAL_BATCH_SIZE)

    def __len__(self) -> int:
        return len(self.X)

    def fit_arguments(self) -> dict[str, Any]:
        """`model.fit` keyword arguments that validate on this split after every epoch."""
        if not len(self):
            return {}
        if self._pairs is not None:
            return {"validation_data": self._pairs}
        return {"validation_data": (self.X, self.y), "validation_batch_size": EVAL_BATCH_SIZE}

    def evaluate(self, model: keras.Model) -> dict[str, float]:
        """`model.evaluate`'s logs: `loss`, plus `accuracy` when compiled with it."""
        # Keras annotates verbose as str (its default, "auto"); it takes 0 too.
        if self._pairs is not None:
            logs = model.evaluate(self._pairs, verbose=0, return_dict=True)  # pyright: ignore[reportArgumentType]
        else:
            logs = model.evaluate(
                self.X,
                self.y,
                batch_size=EVAL_BATCH_SIZE,
                verbose=0,  # pyright: ignore[reportArgumentType]
                return_dict=True,
            )
        return {name: float(value) for name, value in logs.items()}

    def predict(self, model: keras.Model) -> np.ndarray:
        """The model's outputs, (rows, outputs) float64."""
        inputs = self._features if self._features is not None else self.X
        batch_size = None if self._features is not None else EVAL_BATCH_SIZE
        # Keras annotates verbose as str, as in `evaluate`.
        return np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0), dtype=np.float64)  # pyright: ignore[reportArgumentType]

    def scores(self, model: keras.Model, task: str) -> dict[str, float]:
        """Loss and accuracy (classification) or loss, R² and MAE (regression)."""
        scores = self.evaluate(model)
        if task == "regression":
            scores.update(r2_and_mae(self.predict(model), self.y))
        return scores


def regression_scores(model: keras.Model, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """R² and MAE of the model's predictions on (X, y)."""
    return r2_and_mae(Split(X, y).predict(model), y)


def r2_and_mae(predicted: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """R² and MAE of `predicted` against `y`, pooled over outputs as scikit-learn does."""
    target = np.asarray(y, dtype=np.float64).reshape(predicted.shape)
    residual = float(np.sum((target - predicted) ** 2))
    spread = float(np.sum((target - target.mean(axis=0)) ** 2))
    r2 = 1.0 - residual / spread if spread > 0 else float("nan")
    return {"r2": r2, "mae": float(np.mean(np.abs(target - predicted)))}
