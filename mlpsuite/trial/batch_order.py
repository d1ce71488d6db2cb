"""The suite's batch order, with NumPy only: epoch e's rows follow the e-th permutation drawn
from the trial seed. Keras backends read it through `batches.training_batches`; scikit-learn's
worker, which imports no Keras, feeds it to `partial_fit`."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


def epoch_orders(seed: int, rows: int) -> Iterator[np.ndarray]:
    """The row order of each epoch in turn: permutations drawn with NumPy from the seed."""
    rng = np.random.default_rng(seed)
    while True:
        yield rng.permutation(rows)
