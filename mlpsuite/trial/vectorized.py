"""The seeds of one grid cell trained as one program on JAX (`training.vectorize: seeds`).

Each seed keeps its own NumPy-drawn initial weights, batch order and Dropout generator; the
model's own stateless `train_step` and `test_step` (Keras' JAX trainer) are `jax.vmap`-ed
over the stacked per-seed state and compiled once by `jax.jit`. Epoch by epoch the seeds run
side by side, and each is reported as its own trial with its own curve. Keras' running-mean
metrics are kept per seed exactly as `fit` keeps them, so the numbers match the sequential
trials to float32 rounding.

Time is shared: a seed's `epoch_time_s`, `train_time_s` (so `step_time_ms`) and
`trial_time_s` are the group's divided by the number of seeds, its amortised cost.
"""

from __future__ import annotations

import operator
import time

import jax
import jax.numpy as jnp
import keras
import numpy as np

from mlpsuite.config import Trial
from mlpsuite.data import Dataset
from mlpsuite.executors import wire
from mlpsuite.results import TrialResult, epoch_failure, peak_rss_mb, steady_step_time_ms
from mlpsuite.trial.batch_order import epoch_orders
from mlpsuite.trial.evaluation import EVAL_BATCH_SIZE
from mlpsuite.trial.training import (
    EPOCH_METRICS,
    Emit,
    TrialRunner,
    epoch_steps,
    overhead_s,
    score_tested_weights,
)


def train_seeds(runner: TrialRunner, trials: list[Trial], emit: Emit) -> list[TrialResult]:
    """Train `trials` (one cell, different seeds) as one vmapped program; one result each."""
    started = time.perf_counter()
    prepared = runner.dataset(trials[0])
    steps = epoch_steps(prepared.data, trials[0])
    model, reused = runner.model_for(trials[0], prepared.data, steps)
    results, states = [], []
    for trial in trials:  # each seed's starting point, exactly as its own trial would start
        if trial is not trials[0]:  # `model_for` left the model at the first seed's
            runner.reset_model(trial, prepared.data)
        results.append(
            runner.new_result(trial, prepared, steps, reused or trial is not trials[0], model)
        )
        states.append(_state(model))
    stacked = jax.tree_util.tree_map(lambda *values: jnp.stack(values), *states)
    stacked = _train(
        model, _vmapped_steps(runner, model), trials, prepared.data, stacked, results, emit, started
    )
    for index, result in enumerate(results):
        _load_state(model, jax.tree_util.tree_map(operator.itemgetter(index), stacked))
        if result.status == "FINISHED":
            result.tested_epoch = len(result.history["loss"])
            score_tested_weights(model, prepared, result)
    elapsed = time.perf_counter() - started
    for result in results:
        result.trial_time_s = elapsed / len(trials)
        result.vectorized = len(trials)
        result.overhead_s = overhead_s(result)
        result.peak_rss_mb = peak_rss_mb()
    return results


def _vmapped_steps(runner: TrialRunner, model: keras.Model):
    """The vmapped train and test steps, jitted once per compiled model (traced per group size)."""
    extras = runner.extras
    if "vmapped" not in extras:
        extras["vmapped"] = (
            jax.jit(jax.vmap(model.train_step)),
            jax.jit(jax.vmap(model.test_step, in_axes=(0, None))),
        )
    return extras["vmapped"]


def _train(model, vmapped, trials, data: Dataset, stacked, results, emit: Emit, started: float):
    """Every epoch: a vmapped step per batch for all seeds, then a vmapped validation."""
    spec = trials[0].training
    train_step, test_step = vmapped
    orders = [epoch_orders(trial.seed, len(data.X_train)) for trial in trials]  # as SeededBatches
    fresh_metrics = _metric_values(model)
    n, batch = len(trials), spec.batch_size
    live = list(range(n))
    for epoch in range(1, spec.epochs + 1):
        began = time.perf_counter()
        trainable, non_trainable, optimizer, _ = stacked
        permutations = [next(order) for order in orders]
        metrics = _repeat(fresh_metrics, n)
        logs = None
        for start in range(0, len(data.X_train), batch):
            rows = np.stack([order[start : start + batch] for order in permutations])
            logs, (trainable, non_trainable, optimizer, metrics) = train_step(
                (trainable, non_trainable, optimizer, metrics),
                (data.X_train[rows], data.y_train[rows]),
            )
        stacked = (trainable, non_trainable, optimizer, metrics)
        assert logs is not None  # the training split has rows: at least one step ran
        logs = {name: np.asarray(value) for name, value in logs.items()}
        train_ended = time.perf_counter()
        if len(data.X_val):
            logs.update(_validate(test_step, stacked, data, fresh_metrics, n))
        now = time.perf_counter()
        for index in list(live):  # a seed that must stop (as its own trial would) drops out
            metrics_now = {
                name: float(values[index]) for name, values in logs.items() if name in EPOCH_METRICS
            }
            metrics_now["epoch_time_s"] = (now - began) / n
            metrics_now["train_time_s"] = (train_ended - began) / n
            _record(results[index], trials[index], epoch, metrics_now, emit)
            stop = epoch_failure(metrics_now["loss"], epoch, now - started, spec.max_seconds)
            if stop:
                results[index].status = "FAILED"
                results[index].failure, results[index].message = stop
                live.remove(index)
        if not live:
            break
    for result in results:
        result.step_time_ms = steady_step_time_ms(
            result.history.get("train_time_s", []), result.steps_per_epoch
        )
    return stacked


def _validate(test_step, stacked, data: Dataset, fresh_metrics, n: int) -> dict[str, np.ndarray]:
    """`model.evaluate` on the validation split for every seed: batches of EVAL_BATCH_SIZE,
    Keras' running means carried from batch to batch."""
    trainable, non_trainable, _, _ = stacked
    metrics = _repeat(fresh_metrics, n)
    logs = {}
    for start in range(0, len(data.X_val), EVAL_BATCH_SIZE):
        chunk = (
            data.X_val[start : start + EVAL_BATCH_SIZE],
            data.y_val[start : start + EVAL_BATCH_SIZE],
        )
        logs, (_, _, metrics) = test_step((trainable, non_trainable, metrics), chunk)
    return {f"val_{name}": np.asarray(value) for name, value in logs.items()}


def _record(
    result: TrialResult, trial: Trial, epoch: int, metrics: dict[str, float], emit: Emit
) -> None:
    for name, value in metrics.items():
        result.history.setdefault(name, []).append(value)
    emit(wire.epoch(trial.key, epoch, metrics))


def _state(model: keras.Model):
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        _metric_values(model),
    )


def _metric_values(model: keras.Model) -> list:
    model.reset_metrics()
    return [jnp.array(v.value) for v in model.metrics_variables]


def _repeat(values: list, n: int) -> list:
    return [jnp.broadcast_to(value, (n, *value.shape)) for value in values]


def _load_state(model: keras.Model, state) -> None:
    trainable, non_trainable, optimizer, _ = state
    for variables, values in (
        (model.trainable_variables, trainable),
        (model.non_trainable_variables, non_trainable),
        (model.optimizer.variables, optimizer),
    ):
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
