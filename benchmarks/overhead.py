"""What the suite costs on top of bare Keras, measured side by side in one run.

1. Per backend, the per-step training time of a suite trial (NumPy-ordered batches through
   a PyDataset, epoch callbacks) against a bare `model.fit(X, y, shuffle=True)` on the same
   model and data. Epoch 1 is left out of both (tracing/compilation), so is validation.
2. Grid wall time with long-lived workers (the local executor) against one fresh worker
   process per trial (the import cost paid every time).

Usage: python benchmarks/overhead.py [--repeats 3] [--epochs 8] [--trials 6]
Prints ratios; the machine is shared and noisy, so read them as ±5%.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BACKENDS = ("tensorflow", "torch", "jax")


def benchmark_trial(epochs: int, backend: str = "tensorflow", activation: str = "relu"):
    from mlpsuite.config import GridSpec, expand

    spec = GridSpec.model_validate({
        "name": "benchmark", "dataset": {"name": "digits"},
        "model": {"hidden": [64, 64], "activation": activation, "scaler": "standard"},
        "optimizer": {"name": "adam", "learning_rate": 0.001},
        "training": {"epochs": epochs, "batch_size": 64}, "backends": [backend], "seeds": [0]})
    return expand(spec)[0]


# ------------------------------------------------------------ 1. step time, inside one backend


def _bare_step_ms(trial) -> float:
    """The same model and data through a plain `model.fit(shuffle=True)`."""
    import keras

    from mlpsuite.training import _build, _load, _steps, make_loss, make_optimizer

    keras.utils.set_random_seed(trial.seed)  # TF's deterministic mode refuses unseeded shuffles
    data = _load(trial)
    model = _build(trial, data)
    model.compile(optimizer=make_optimizer(trial.optimizer, _steps(data, trial), trial.training.epochs),
                  loss=make_loss(trial.loss), metrics=["accuracy"])

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.began = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.began)

    seconds: list[float] = []
    model.fit(data.X_train, data.y_train, batch_size=trial.training.batch_size,
              epochs=trial.training.epochs, shuffle=True, verbose=0, callbacks=[Timer()])
    return statistics.median(seconds[1:]) / _steps(data, trial) * 1000


def _suite_step_ms(trial) -> float:
    from mlpsuite.training import run_trial

    return run_trial(trial, lambda event: None, threads=1).step_time_ms


def step_times_in_this_process(epochs: int, repeats: int) -> dict:
    from mlpsuite.backends import active_backend, configure

    configure(1)
    trial = benchmark_trial(epochs, active_backend())
    bare, suite = [], []
    for _ in range(repeats):  # interleaved, so drift in machine load hits both alike
        bare.append(_bare_step_ms(trial))
        suite.append(_suite_step_ms(trial))
    return {"bare_ms": statistics.median(bare), "suite_ms": statistics.median(suite)}


def step_times(backend: str, epochs: int, repeats: int) -> dict:
    from mlpsuite.backends import thread_environment

    env = {**os.environ, **thread_environment(1), "KERAS_BACKEND": backend}
    done = subprocess.run([sys.executable, __file__, "--inside", "--epochs", str(epochs),
                           "--repeats", str(repeats)], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------ 2. reused workers vs one per trial


def grid_wall_times(n_trials: int, epochs: int) -> tuple[float, float]:
    from mlpsuite.executors.local import LocalExecutor

    activations = ["relu", "elu", "tanh", "sigmoid", "swish", "gelu", "softplus", "selu"]
    trials = [benchmark_trial(epochs, "torch", activations[i % len(activations)]) for i in range(n_trials)]
    began = time.perf_counter()
    LocalExecutor(jobs=1).run(trials, lambda event: None)
    reused = time.perf_counter() - began
    began = time.perf_counter()
    for trial in trials:
        LocalExecutor(jobs=1).run([trial], lambda event: None)
    fresh = time.perf_counter() - began
    return reused, fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(step_times_in_this_process(args.epochs, args.repeats)))
        return
    print(f"digits, MLP 64-64 relu, adam, batch 64, {args.epochs} epochs, 1 thread, "
          f"median of {args.repeats} interleaved runs")
    print(f"{'backend':<11} {'bare fit ms/step':>17} {'suite ms/step':>14} {'suite / bare':>13}")
    for backend in BACKENDS:
        times = step_times(backend, args.epochs, args.repeats)
        print(f"{backend:<11} {times['bare_ms']:>17.3f} {times['suite_ms']:>14.3f} "
              f"{times['suite_ms'] / times['bare_ms']:>13.3f}")
    reused, fresh = grid_wall_times(args.trials, args.epochs)
    print(f"\n{args.trials} torch trials: reused worker {reused:.1f} s, one process per trial "
          f"{fresh:.1f} s, ratio fresh / reused = {fresh / reused:.2f}")


if __name__ == "__main__":
    main()
