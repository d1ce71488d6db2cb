"""Training batches in the suite's order: epoch e's rows follow the e-th NumPy permutation
drawn from the trial seed, batch 0 first, on every backend.

The whole order is the suite's: `fit` gets `shuffle=False` (Keras would otherwise shuffle the
batches with Python's global RNG), and the `NewOrder` callback moves to the next epoch's
permutation at each epoch's start, whatever Keras calls on the dataset in between.

On TensorFlow the batches are a tf.data pipeline built once per split and batch size
(`TensorBatches`): Keras would otherwise wrap a `PyDataset` in a new generator pipeline on
every `fit` and call back into Python for every batch. The rows are the same, so the numbers
are bit-identical.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from mlpsuite.trial.batch_order import epoch_orders


class SeededBatches(keras.utils.PyDataset):
    """`(X[rows], y[rows])` batches of `batch_size` rows in the current epoch's order."""

    def __init__(self, X: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
        super().__init__()
        self.X, self.y, self.batch_size = X, y, batch_size
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Start over with `seed`'s epochs (the first epoch's order comes with `next_epoch`)."""
        self.orders = epoch_orders(seed, len(self.X))
        self.order = np.arange(len(self.X))

    def next_epoch(self) -> None:
        """Take the next epoch's permutation of the rows."""
        self.order = next(self.orders)

    def fit_input(self):
        """What `model.fit` takes as `x`."""
        return self

    def __len__(self) -> int:
        return math.ceil(len(self.X) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.X[rows], self.y[rows]


class TensorBatches:
    """The same batches as `SeededBatches` as one tf.data pipeline: each batch gathers its
    rows through an order variable, which `next_epoch` overwrites with the next permutation."""

    def __init__(self, X: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
        import tensorflow as tf

        rows = len(X)
        # TensorFlow annotates initial_value as a Tensor; it takes any array, as here.
        self.order = tf.Variable(np.arange(rows, dtype=np.int64), trainable=False)  # pyright: ignore[reportArgumentType]
        features, targets = tf.constant(X), tf.constant(y)

        def batch(index):
            begin = index * batch_size
            chosen = self.order[begin : tf.minimum(begin + batch_size, rows)]
            return tf.gather(features, chosen), tf.gather(targets, chosen)

        self.dataset = tf.data.Dataset.range(math.ceil(rows / batch_size)).map(batch)
        self.rows = rows
        self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Start over with `seed`'s epochs (the first epoch's order comes with `next_epoch`)."""
        self.orders = epoch_orders(seed, self.rows)

    def next_epoch(self) -> None:
        """Write the next epoch's permutation into the pipeline's order variable."""
        self.order.assign(next(self.orders))

    def fit_input(self):
        """What `model.fit` takes as `x`: the tf.data pipeline."""
        return self.dataset


def training_batches(X: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
    """The active backend's batches in the suite's order: `TensorBatches` on TensorFlow."""
    kind = TensorBatches if keras.backend.backend() == "tensorflow" else SeededBatches
    return kind(X, y, batch_size, seed)


class NewOrder(keras.callbacks.Callback):
    """Gives the batches their next permutation before each epoch's first batch."""

    def __init__(self, batches: SeededBatches | TensorBatches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        """Move the batches to this epoch's permutation before its first batch."""
        self.batches.next_epoch()
