"""Where a training step's time goes: the suite against bare Keras, each framework by hand,
scikit-learn and the matmul floor, for a small and a large MLP at 1 and 2 threads.

Per problem and thread count, each backend runs in its own process (threads pinned as a
worker pins them) and measures ms per training step, median over epochs 2..E:
- suite: `TrialRunner` (NumPy-ordered batches through a PyDataset, epoch callbacks);
- bare fit: the same compiled model, `model.fit(X, y, shuffle=True)`;
- native: the same net and Adam written in the framework itself (a torch loop; `jax.jit` of
  a hand-written Adam step; `tf.function(jit_compile=True)` with a GradientTape).
Then, in a NumPy process: scikit-learn's MLPClassifier (adam, same batch and epochs; its fit
time over its steps), and the floor: the step's eight float32 matmuls (3 forward, 3 weight
gradients, 2 input gradients) timed in NumPy/BLAS on the spot.

Usage: python benchmarks/backends.py [--threads 1,2] [--problems small,large]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BACKENDS, ROOT, markdown_table, write_results  # noqa: E402

PROBLEMS = {
    "small": {"dataset": {"name": "digits"}, "hidden": [64, 64], "batch_size": 64, "epochs": 6},
    "large": {
        "dataset": {
            "name": "blobs",
            "options": {"n_samples": 16000, "centers": 10, "n_features": 64, "cluster_std": 8.0},
        },
        "hidden": [256, 256],
        "batch_size": 128,
        "epochs": 4,
    },
}
LEARNING_RATE = 0.001


def _trial(problem: dict, backend: str):
    from mlpsuite.config import GridSpec, expand

    return expand(
        GridSpec.model_validate(
            {
                "name": "backends",
                "dataset": problem["dataset"],
                "model": {"hidden": problem["hidden"], "activation": "relu", "scaler": "standard"},
                "optimizer": {"name": "adam", "learning_rate": LEARNING_RATE},
                "training": {"epochs": problem["epochs"], "batch_size": problem["batch_size"]},
                "backends": [backend],
                "seeds": [0],
            }
        )
    )[0]


def _steady_ms(epoch_seconds: list[float], steps: int) -> float:
    return statistics.median(epoch_seconds[1:]) / steps * 1000


def _epochs(problem: dict, X: np.ndarray, run_epoch) -> float:
    """ms/step of `run_epoch(order)` over the problem's epochs, each with a NumPy permutation."""
    rng = np.random.default_rng(0)
    seconds = []
    for _ in range(problem["epochs"]):
        order = rng.permutation(len(X))
        began = time.perf_counter()
        run_epoch(order)
        seconds.append(time.perf_counter() - began)
    return _steady_ms(seconds, math.ceil(len(X) / problem["batch_size"]))


def _scaled(data):
    mean, std = data.X_train.mean(axis=0), data.X_train.std(axis=0)
    return ((data.X_train - mean) / np.where(std > 0, std, 1)).astype(np.float32), data.y_train


def _glorot(sizes: list[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    return [
        (
            rng.uniform(-1, 1, (a, b)).astype(np.float32) * np.float32(math.sqrt(6 / (a + b))),
            np.zeros(b, np.float32),
        )
        for a, b in zip(sizes, sizes[1:], strict=True)
    ]


# ------------------------------------------------------------ inside one backend's process


def suite_and_bare(problem: dict, backend: str) -> dict:
    import keras

    from mlpsuite.trial.training import TrialRunner, make_loss, make_optimizer

    trial = _trial(problem, backend)
    runner = TrialRunner(1)
    suite = runner.run(trial, lambda event: None).step_time_ms
    data = runner.dataset(trial).data
    compiled = runner._compiled
    assert compiled is not None, "run() keeps the model it compiled for the next trial"
    model = compiled.model  # the suite's own compiled model, trained again plainly
    model.compile(optimizer=make_optimizer(trial.optimizer, 1, 1), loss=make_loss(trial.loss))
    keras.utils.set_random_seed(0)  # TensorFlow's deterministic mode refuses unseeded shuffles
    seconds = []

    class Timer(
        keras.callbacks.Callback
    ):  # epoch hooks only: a batch hook makes Keras sync each step
        def on_epoch_begin(self, epoch, logs=None):
            self.began = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):  # no validation: the suite's train_time_s too
            seconds.append(time.perf_counter() - self.began)

    model.fit(
        data.X_train,
        data.y_train,
        batch_size=problem["batch_size"],
        epochs=problem["epochs"],
        shuffle=True,
        verbose=0,
        callbacks=[Timer()],
    )
    return {
        "suite": suite,
        "bare fit": _steady_ms(seconds, math.ceil(len(data.X_train) / problem["batch_size"])),
    }


def native_torch(problem: dict, X: np.ndarray, y: np.ndarray, sizes: list[int]) -> float:
    import torch

    layers = []
    for index, (W, b) in enumerate(_glorot(sizes)):
        linear = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear] + ([torch.nn.ReLU()] if index < len(sizes) - 2 else [])
    net = torch.nn.Sequential(*layers)
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    batch = problem["batch_size"]

    def epoch(order):
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            optimizer.zero_grad()
            loss = loss_fn(net(torch.from_numpy(X[rows])), torch.from_numpy(y[rows]).long())
            loss.backward()
            optimizer.step()

    return _epochs(problem, X, epoch)


def _adam(params, grads, m, v, t, xp):
    beta1, beta2, eps = 0.9, 0.999, 1e-7
    m = [beta1 * a + (1 - beta1) * g for a, g in zip(m, grads, strict=True)]
    v = [beta2 * a + (1 - beta2) * g * g for a, g in zip(v, grads, strict=True)]
    rate = LEARNING_RATE * xp.sqrt(1 - beta2**t) / (1 - beta1**t)
    return [p - rate * a / (xp.sqrt(b) + eps) for p, a, b in zip(params, m, v, strict=True)], m, v


def native_jax(problem: dict, X: np.ndarray, y: np.ndarray, sizes: list[int]) -> float:
    import jax
    import jax.numpy as jnp

    def loss(params, x, labels):
        h = x
        for W, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
            h = jax.nn.relu(h @ W + b)
        logits = h @ params[-2] + params[-1]
        return jnp.mean(
            jax.nn.logsumexp(logits, axis=1) - jnp.take_along_axis(logits, labels[:, None], 1)[:, 0]
        )

    @jax.jit
    def step(params, m, v, t, x, labels):
        grads = jax.grad(loss)(params, x, labels)
        return _adam(params, grads, m, v, t, jnp)

    params = [jnp.asarray(a) for pair in _glorot(sizes) for a in pair]
    state = {
        "params": params,
        "m": [jnp.zeros_like(p) for p in params],
        "v": [jnp.zeros_like(p) for p in params],
        "t": 0,
    }
    batch = problem["batch_size"]

    def epoch(order):
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            state["t"] += 1
            state["params"], state["m"], state["v"] = step(
                state["params"], state["m"], state["v"], jnp.float32(state["t"]), X[rows], y[rows]
            )
        jax.block_until_ready(state["params"])

    return _epochs(problem, X, epoch)


def native_tensorflow(problem: dict, X: np.ndarray, y: np.ndarray, sizes: list[int]) -> float:
    import tensorflow as tf

    # tf.Variable takes anything convertible to a tensor; its stub narrows that to Tensor.
    params = [tf.Variable(a) for pair in _glorot(sizes) for a in pair]  # pyright: ignore[reportArgumentType]
    m = [tf.Variable(tf.zeros_like(p)) for p in params]
    v = [tf.Variable(tf.zeros_like(p)) for p in params]
    t = tf.Variable(0.0)  # pyright: ignore[reportArgumentType]  # a float is tensor-like too

    @tf.function(jit_compile=True, reduce_retracing=True)
    def step(x, labels):
        with tf.GradientTape() as tape:
            h = x
            for W, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
                h = tf.nn.relu(h @ W + b)
            logits = h @ params[-2] + params[-1]
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))
        grads = tape.gradient(loss, params)
        t.assign_add(1.0)
        new, new_m, new_v = _adam(params, grads, m, v, t, tf.math)
        for variable, value in zip(params + m + v, new + new_m + new_v, strict=True):
            variable.assign(value)

    batch = problem["batch_size"]

    def epoch(order):
        for start in range(0, len(order), batch):
            rows = order[start : start + batch]
            step(X[rows], y[rows].astype(np.int32))

    return _epochs(problem, X, epoch)


def inside_backend(problem_name: str) -> dict:
    from mlpsuite.data import load_dataset
    from mlpsuite.trial.backends import active_backend, configure

    backend = active_backend()
    configure(1 if os.environ.get("OMP_NUM_THREADS") == "1" else 2, compile_cache=False)
    problem = PROBLEMS[problem_name]
    times = suite_and_bare(problem, backend)
    data = load_dataset(problem["dataset"]["name"], **problem["dataset"].get("options", {}))
    X, y = _scaled(data)
    sizes = [X.shape[1], *problem["hidden"], data.n_classes]
    native = {"torch": native_torch, "jax": native_jax, "tensorflow": native_tensorflow}[backend]
    times["native"] = native(problem, X, y, sizes)
    return times


# ------------------------------------------------------------ NumPy: scikit-learn and the floor


def inside_numpy(problem_name: str) -> dict:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from mlpsuite.data import load_dataset

    problem = PROBLEMS[problem_name]
    data = load_dataset(problem["dataset"]["name"], **problem["dataset"].get("options", {}))
    X, y = _scaled(data)
    batch, epochs = problem["batch_size"], problem["epochs"]
    steps = math.ceil(len(X) / batch)
    model = MLPClassifier(
        tuple(problem["hidden"]),
        solver="adam",
        learning_rate_init=LEARNING_RATE,
        batch_size=batch,
        max_iter=epochs,
        tol=0.0,
        n_iter_no_change=epochs + 1,
        random_state=0,
    )
    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    sklearn_ms = (time.perf_counter() - began) / (epochs * steps) * 1000
    sizes = [X.shape[1], *problem["hidden"], data.n_classes]
    return {"scikit-learn": sklearn_ms, **matmul_floor(sizes, batch)}


def matmul_floor(sizes: list[int], batch: int, repeats: int = 200) -> dict:
    """ms of one step's matmuls in NumPy float32, and the GFLOP/s they ran at."""
    rng = np.random.default_rng(0)
    weights = [
        rng.standard_normal((a, b), dtype=np.float32) for a, b in zip(sizes, sizes[1:], strict=True)
    ]
    activations = [rng.standard_normal((batch, a), dtype=np.float32) for a in sizes]
    flops = (
        sum(2 * batch * W.shape[0] * W.shape[1] for W in weights) * 3
        - 2 * batch * sizes[0] * sizes[1]
    )

    def step():
        for h, W in zip(activations, weights, strict=True):  # forward
            _ = h @ W
        for index, (h, W) in enumerate(zip(activations, weights, strict=True)):
            grad = activations[index + 1]
            _ = h.T @ grad  # weight gradient
            if index:
                _ = grad @ W.T  # input gradient (none for the first layer)

    step()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    seconds = statistics.median(times)
    return {"matmul floor": seconds * 1000, "gflops": flops / seconds / 1e9}


# ------------------------------------------------------------ the driver


def measure(kind: str, problem: str, threads: int) -> dict:
    from mlpsuite.executors.wire import thread_environment

    env = {
        **os.environ,
        **thread_environment(threads),
        "KERAS_BACKEND": "numpy" if kind == "numpy" else kind,
    }
    done = subprocess.run(
        [sys.executable, __file__, "--inside", kind, "--problems", problem],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode:
        raise RuntimeError(f"{kind} {problem} x{threads}: {done.stderr.strip().splitlines()[-1]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--problems", default="small,large")
    parser.add_argument("--inside", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        sys.path.insert(0, str(ROOT))
        inside = inside_numpy if args.inside == "numpy" else inside_backend
        print(json.dumps(inside(args.problems)))
        return
    results, rows = {}, []
    for problem in args.problems.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            reference = measure("numpy", problem, threads)
            entry = {"reference": reference}
            for backend in BACKENDS:
                entry[backend] = times = measure(backend, problem, threads)
                rows.append(
                    [
                        problem,
                        threads,
                        backend,
                        times["suite"],
                        times["bare fit"],
                        times["native"],
                        times["suite"] / times["bare fit"],
                        reference["scikit-learn"],
                        reference["matmul floor"],
                        times["suite"] / reference["matmul floor"],
                    ]
                )
                print(
                    f"{problem} x{threads} {backend:<10} suite {times['suite']:.3f} ms/step, bare "
                    f"fit {times['bare fit']:.3f}, native {times['native']:.3f}; sklearn "
                    f"{reference['scikit-learn']:.3f}, floor {reference['matmul floor']:.4f} "
                    f"({reference['gflops']:.1f} GFLOP/s)",
                    flush=True,
                )
            results[f"{problem}/{threads}"] = entry
    table = markdown_table(
        [
            "problem",
            "threads",
            "backend",
            "suite ms/step",
            "bare fit",
            "native",
            "suite / bare",
            "scikit-learn",
            "matmul floor",
            "suite / floor",
        ],
        rows,
    )
    write_results(
        "backends",
        {"problems": PROBLEMS, "results": results},
        "Milliseconds per training step (median of epochs 2..E). small: digits, MLP 64-64, "
        "batch 64; large: blobs 16k rows (11.2k train) x 64 features, 10 classes, MLP 256-256, "
        f"batch 128. Adam everywhere.\n\n{table}",
    )


if __name__ == "__main__":
    main()
