"""The few places where mlpsuite needs the active backend's own API.

Everything else is written with `keras.ops`. Import this module only in a process whose
`KERAS_BACKEND` is already fixed (a worker, a test subprocess), never in the coordinator.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import keras
import numpy as np


def active_backend() -> str:
    return keras.backend.backend()


@contextlib.contextmanager
def float64_enabled() -> Iterator[None]:
    """Compute in float64 inside the block.

    JAX truncates float64 to float32 unless x64 is on, and Keras resolves Python floats mixed
    with tensors (`ops.tanh`'s promotion) to `floatx`, so both are switched for the block.
    """
    previous_floatx = keras.config.floatx()
    keras.config.set_floatx("float64")
    try:
        if active_backend() == "jax":
            import jax

            with jax.enable_x64(True):
                yield
        else:
            yield
    finally:
        keras.config.set_floatx(previous_floatx)


def elementwise_gradient(fn: Callable, x: np.ndarray, dtype: str = "float32") -> np.ndarray:
    """d(sum fn(x))/dx by the backend's autodiff: fn'(x) for an elementwise fn.

    Args:
        fn: maps a backend tensor to a tensor of the same shape.
        x: the points, any shape.
        dtype: the dtype to differentiate in.
    Returns:
        A NumPy array shaped like `x`.
    """
    backend = active_backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.convert_to_tensor(x, dtype=dtype)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            total = tf.reduce_sum(fn(xt))
        # A constant fn (Step) is "unconnected": ask for zeros rather than None.
        grad = tape.gradient(total, xt, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return grad.numpy()
    if backend == "torch":
        import torch

        xt = torch.tensor(np.asarray(x), dtype=getattr(torch, dtype), requires_grad=True)
        total = fn(xt).sum()
        if not total.requires_grad:  # a constant fn (Step) has no graph back to x
            return np.zeros_like(np.asarray(x, dtype=dtype))
        (grad,) = torch.autograd.grad(total, xt)
        return grad.detach().cpu().numpy()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        return np.asarray(jax.grad(lambda v: jnp.sum(fn(v)))(jnp.asarray(x, dtype=dtype)))
    raise ValueError(f"Unsupported backend {backend!r}; expected tensorflow, torch or jax")
