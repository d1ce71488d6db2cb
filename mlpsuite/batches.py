"""Training batches in the suite's order: epoch e's rows follow the e-th NumPy permutation
drawn from the trial seed, batch 0 first, on every backend.

The whole order is the suite's: `fit` gets `shuffle=False` (Keras would otherwise shuffle the
batches with Python's global RNG), and the `NewOrder` callback moves to the next epoch's
permutation at each epoch's start, whatever Keras calls on the dataset in between.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from mlpsuite.batch_order import epoch_orders


class SeededBatches(keras.utils.PyDataset):
    """`(X[rows], y[rows])` batches of `batch_size` rows in the current epoch's order."""

    def __init__(self, X: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
        super().__init__()
        self.X, self.y, self.batch_size = X, y, batch_size
        self.orders = epoch_orders(seed, len(X))
        self.order = np.arange(len(X))

    def next_epoch(self) -> None:
        self.order = next(self.orders)

    def __len__(self) -> int:
        return math.ceil(len(self.X) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.X[rows], self.y[rows]


class NewOrder(keras.callbacks.Callback):
    """Gives the batches their next permutation before each epoch's first batch."""

    def __init__(self, batches: SeededBatches):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.next_epoch()
