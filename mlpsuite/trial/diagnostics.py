"""What happens inside the net while it trains: the lecture's claims as per-epoch metrics.

On a fixed probe batch of training rows, before training (epoch 0) and after every epoch:

```
grad_norm/<dense>      ||dL/dW||_F of the layer's kernel      (sigmoid's gradient vanishes)
weight_norm/<dense>    ||W||_F
dead_fraction/<dense>  share of the layer's units whose activation is 0 on every probe row
                       (ReLU units die; LeakyReLU, ELU and Swish keep negative values)
act_mean/<dense>       mean and standard deviation of the layer's activations over the batch
act_std/<dense>        and its units
```

`<dense>` is the Dense layer's name (`dense_1` ... `dense_n`, `output`); the activation
statistics belong to the activation that follows the hidden layer. The probe runs in inference
mode (no Dropout) and changes no variable, so training with diagnostics on gives the same
numbers as without.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import cast

import keras
import numpy as np

from mlpsuite.executors import wire
from mlpsuite.trial.backends import probe_function

PROBE_ROWS = 256  # the first rows of the training split; the split itself is already shuffled
PREFIXES = (
    "grad_norm/",
    "weight_norm/",
    "dead_fraction/",
    "act_mean/",
    "act_std/",
    "diagnostics_time_s",
)


class LayerProbe:
    """A model's Dense kernels and hidden activations, measured in one forward and backward pass.

    Args:
        model: a functional model such as `build_mlp` makes: Dense layers, each hidden one
            followed by its activation layer.
        loss: the training loss, `loss(y_true, y_pred) -> scalar`.
    """

    def __init__(self, model: keras.Model, loss: Callable):
        self.dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
        self.activations = [_following(model, layer) for layer in self.dense[:-1]]
        # One model that shares the trained one's layers and returns every hidden activation.
        self.taps = keras.Model(
            model.inputs, [a.output for a in self.activations] + list(model.outputs)
        )
        self._probe = probe_function(self.taps, loss)
        kernel_ids = {id(layer.kernel): layer.name for layer in self.dense}
        self._kernel_index = {
            kernel_ids[id(v)]: i
            for i, v in enumerate(self.taps.trainable_variables)
            if id(v) in kernel_ids
        }

    def measure(self, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
        """Every diagnostic metric of the model's current weights on `x` (batch, features), `y`."""
        _, outputs, grads = self._probe(x, y)
        metrics = {}
        for layer in self.dense:
            metrics[f"grad_norm/{layer.name}"] = float(
                np.linalg.norm(grads[self._kernel_index[layer.name]])
            )
            # convert_to_numpy's inferred type spans every backend's; it returns np.ndarray.
            metrics[f"weight_norm/{layer.name}"] = float(
                np.linalg.norm(cast(np.ndarray, keras.ops.convert_to_numpy(layer.kernel)))
            )
        # One activation tap per hidden Dense layer; the output layer's has none.
        for layer, values in zip(self.dense[:-1], outputs[:-1], strict=True):
            metrics[f"dead_fraction/{layer.name}"] = dead_fraction(values)
            metrics[f"act_mean/{layer.name}"] = float(np.mean(values))
            metrics[f"act_std/{layer.name}"] = float(np.std(values))
        return metrics


def dead_fraction(activations: np.ndarray) -> float:
    """The share of units (columns of `activations`, shape (batch, units)) that are exactly 0
    on every row: a unit that outputs nothing passes no gradient back and does not learn."""
    return float(np.mean(np.all(activations == 0, axis=0)))


def _following(model: keras.Model, dense: keras.layers.Layer) -> keras.layers.Layer:
    """The layer right after `dense` in the model: its activation."""
    layers = model.layers
    return layers[layers.index(dense) + 1]


class Diagnostics(keras.callbacks.Callback):
    """Measures the probe batch before training (sent as epoch 0) and at each epoch's end
    (added to that epoch's logs), with the seconds it took as `diagnostics_time_s`."""

    def __init__(
        self,
        probe: LayerProbe,
        x: np.ndarray,
        y: np.ndarray,
        emit: Callable[[dict], None],
        key: str,
    ):
        super().__init__()
        self.probe, self.x, self.y = probe, x, y
        self.emit, self.key = emit, key

    def _measure(self) -> dict[str, float]:
        began = time.perf_counter()
        metrics = self.probe.measure(self.x, self.y)
        metrics["diagnostics_time_s"] = time.perf_counter() - began
        return metrics

    def on_train_begin(self, logs=None):
        """Measure the probe batch at initialisation and send it as epoch 0."""
        self.emit(wire.epoch(self.key, 0, self._measure()))

    def on_epoch_end(self, epoch, logs=None):
        """Add the probe batch's measures to this epoch's logs."""
        if logs is not None:
            logs.update(self._measure())


def probe_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fixed probe batch: the first `PROBE_ROWS` training rows."""
    return x[:PROBE_ROWS], y[:PROBE_ROWS]
