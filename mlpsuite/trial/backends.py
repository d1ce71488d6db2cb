"""The few places where mlpsuite needs the active backend's own API.

Everything else is written with `keras.ops`. Keras is imported inside the functions that need
the active backend (a worker's environment is `mlpsuite.executors.wire`'s).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from typing import cast

import numpy as np

from mlpsuite.executors.wire import compilation_cache_dir


def active_backend() -> str:
    """The Keras backend this process runs: "tensorflow", "torch" or "jax" (imports Keras)."""
    import keras

    return keras.backend.backend()


@contextlib.contextmanager
def float64_enabled() -> Iterator[None]:
    """Compute in float64 inside the block.

    JAX truncates float64 to float32 unless x64 is on, and Keras resolves Python floats mixed
    with tensors (`ops.tanh`'s promotion) to `floatx`, so both are switched for the block.
    """
    import keras

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
        return cast(tf.Tensor, grad).numpy()  # a Tensor: one dense source, not IndexedSlices
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


ProbeResult = tuple[float, list[np.ndarray], list[np.ndarray]]  # loss, outputs, gradients
ProbeFunction = Callable[[np.ndarray, np.ndarray], ProbeResult]


def probe_function(model, loss) -> ProbeFunction:
    """`probe(x, y) -> (loss, outputs, gradients)` by the backend's autodiff, in inference mode.

    `model` may have several outputs; `loss(y, last output)` is differentiated with respect to
    `model.trainable_variables` at their current values, which are not changed. On JAX the
    function is traced once (a stateless call, jitted) and reused for every later call.
    """
    import keras

    variables = model.trainable_variables
    backend = active_backend()
    if backend == "jax":
        import jax

        def loss_and_outputs(trainable, non_trainable, x, y):
            outputs, _ = model.stateless_call(trainable, non_trainable, x, training=False)
            return loss(y, outputs[-1]), outputs

        step = jax.jit(jax.value_and_grad(loss_and_outputs, has_aux=True))

        def probe(x: np.ndarray, y: np.ndarray) -> ProbeResult:
            (value, outputs), grads = step(
                [v.value for v in variables], [v.value for v in model.non_trainable_variables], x, y
            )
            return float(value), [np.asarray(o) for o in outputs], [np.asarray(g) for g in grads]

        return probe
    if backend == "tensorflow":
        import tensorflow as tf

        def probe(x: np.ndarray, y: np.ndarray) -> ProbeResult:
            with tf.GradientTape() as tape:
                outputs = model(x, training=False)
                value = loss(y, outputs[-1])
            grads = tape.gradient(
                value, variables, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
            return float(value), [o.numpy() for o in outputs], [g.numpy() for g in grads]

        return probe
    if backend == "torch":
        import torch

        def probe(x: np.ndarray, y: np.ndarray) -> ProbeResult:
            with torch.enable_grad():
                outputs = model(keras.ops.convert_to_tensor(x), training=False)
                value = loss(keras.ops.convert_to_tensor(y), outputs[-1])
                grads = torch.autograd.grad(value, [v.value for v in variables], allow_unused=True)
            return (
                float(value.detach()),
                [cast(np.ndarray, keras.ops.convert_to_numpy(o)) for o in outputs],
                [
                    np.zeros(v.shape, np.float32) if g is None else g.detach().cpu().numpy()
                    for v, g in zip(variables, grads, strict=True)
                ],
            )

        return probe
    raise ValueError(f"Unsupported backend {backend!r}; expected tensorflow, torch or jax")


def configure(threads: int, deterministic: bool = True, compile_cache: bool = True) -> None:
    """Pin intra-op threads, switch on deterministic kernels and (JAX) the persistent
    compilation cache for the active backend (torch.compile's: `thread_environment`)."""
    backend = active_backend()
    cache = compilation_cache_dir() if backend == "jax" and compile_cache else None
    if cache is not None:
        import jax

        # Every program here compiles in well under JAX's 1 s default threshold: cache them all.
        jax.config.update("jax_compilation_cache_dir", str(cache / "jax"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        if deterministic:
            tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.set_num_threads(threads)
        if deterministic:
            torch.use_deterministic_algorithms(True)


@contextlib.contextmanager
def xla_allowed(jit_compile: bool | str) -> Iterator[None]:
    """`model.compile(jit_compile=True)` honoured on TensorFlow: Keras turns XLA off whenever
    op determinism is on (not every op has a deterministic XLA kernel), and the workers keep it
    on. It is off only while the model compiles; XLA's CPU kernels for the suite's Dense nets
    are deterministic (the reuse tests, bit-identical across trials, pass with XLA on)."""
    if jit_compile is not True or active_backend() != "tensorflow":
        yield
        return
    from tensorflow.python.framework import config

    deterministic = config.is_op_determinism_enabled()
    if deterministic:
        config.disable_op_determinism()
    try:
        yield
    finally:
        if deterministic:
            config.enable_op_determinism()


def release_compiled() -> None:
    """Drop the compiled programs of models no longer used: Keras' global state and, on JAX,
    jit's caches of traced and compiled functions, which `clear_session` leaves (10 MB and
    more per program, measured)."""
    import keras

    keras.backend.clear_session()
    if active_backend() == "jax":
        import jax

        jax.clear_caches()


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and (PyTorch) the framework's global seeds.

    Not Keras' nor TensorFlow's: nothing here draws from them (weights come from NumPy,
    Dropout layers own seeded generators), and `tf.random.set_seed` clears TensorFlow's kernel
    caches, which cost every reused model 0.3 s of re-instantiated kernels per trial
    (measured). `keras.utils.set_random_seed` would also import TensorFlow into a JAX or
    PyTorch worker (2 s on its first trial).
    """
    random.seed(seed)
    np.random.seed(seed)
    if active_backend() == "torch":
        import torch

        torch.manual_seed(seed)


def framework_version() -> str:
    """The version of the framework behind the active backend."""
    module = {"tensorflow": "tensorflow", "torch": "torch", "jax": "jax"}[active_backend()]
    return __import__(module).__version__
