"""Trials trained together as one vmapped program on JAX: a cell's seeds (`training.vectorize:
seeds`), or a population, every trial of one compiled program (`vectorize: program`).

Each member keeps its own NumPy-drawn initial weights, batch order and Dropout generator, and in
a population its own learning rate, momentum, β₁ and weight decay (optimizer variables:
trial/held_hyperparameters.py). The model's own stateless `train_step` and `test_step` (Keras'
JAX trainer) are `jax.vmap`-ed over the stacked per-member state and compiled once by `jax.jit`.
Epoch by epoch the members run side by side, and each is reported as its own trial with its own
curve. Keras' running-mean metrics are kept per member exactly as `fit` keeps them, so the
numbers match the trials trained alone to float32 rounding.

Members end on their own: one that diverges or runs out of time (its share of the population's
time past `training.max_seconds`) fails, one whose early stopping
fires stops, one whose `training.epochs` are done finishes, and from then on its state is
masked (a step leaves it as it was) while the rest go on. Early stopping is Keras' rule
(`keras.callbacks.EarlyStopping`) kept per member, best weights included.

Time is shared: a member's `epoch_time_s`, `train_time_s` (so `step_time_ms`) and
`trial_time_s` are the group's divided by the number of members, its amortised cost.
"""

from __future__ import annotations

import dataclasses
import operator
import time
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from mlpsuite.config import Trial
from mlpsuite.config.schema import EarlyStoppingSpec
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
    stopping_epochs,
)


def train_together(runner: TrialRunner, trials: list[Trial], emit: Emit) -> list[TrialResult]:
    """Train `trials` (a cell's seeds, or a population of one program) as one vmapped program;
    one result each, in order."""
    started = time.perf_counter()
    held = trials[0].training.vectorize == "program"
    prepared = runner.dataset(trials[0])
    steps = epoch_steps(prepared.data, trials[0])
    model, reused = runner.model_for(trials[0], prepared.data, steps, held=held)
    results, states = [], []
    for trial in trials:  # each member's starting point, exactly as its own trial would start
        if trial is not trials[0]:  # `model_for` left the model at the first member's
            runner.reset_model(trial, prepared.data)
        results.append(
            runner.new_result(trial, prepared, steps, reused or trial is not trials[0], model)
        )
        states.append(_state(model))
    stacked = jax.tree_util.tree_map(lambda *values: jnp.stack(values), *states)
    members = [_Member(trial, result) for trial, result in zip(trials, results, strict=True)]
    stacked = _train(model, _vmapped_steps(runner, model), members, prepared.data, stacked, emit)
    for index, member in enumerate(members):
        if member.result.status != "FINISHED":
            continue
        _load_weights(model, member.tested_weights(stacked, index))
        member.result.stopped_epoch, member.result.tested_epoch = stopping_epochs(
            member if member.stopping is not None else None, len(member.result.history["loss"])
        )
        score_tested_weights(model, prepared, member.result)
    elapsed = time.perf_counter() - started
    for result in results:
        result.trial_time_s = elapsed / len(trials)
        result.vectorized = len(trials)
        result.overhead_s = overhead_s(result)
        result.peak_rss_mb = peak_rss_mb()
    return results


@dataclasses.dataclass
class _Member:
    """One member's trial, result so far, and early stopping (Keras' rule, kept per member)."""

    trial: Trial
    result: TrialResult
    active: bool = True
    best: float | None = None
    best_epoch: int = 0  # counted from 0, as Keras' callback counts
    wait: int = 0
    stopped_epoch: int = 0
    best_weights: Any = None  # (trainable, non-trainable) at the best epoch, when restoring

    @property
    def stopping(self) -> EarlyStoppingSpec | None:
        return self.trial.training.early_stopping

    def should_stop(self, epoch: int, logs: dict[str, float], weights) -> bool:
        """`keras.callbacks.EarlyStopping.on_epoch_end` at 0-based `epoch` (min mode: the
        monitors are losses); `weights()` gives the member's current weights."""
        spec = self.stopping
        if spec is None or spec.monitor not in logs:
            return False
        current = logs[spec.monitor]
        if spec.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = weights(), epoch
        self.wait += 1
        # Keras compares `current - (-min_delta)` with the best as float32 tensors (ops.less).
        if self.best is None or np.float32(current + spec.min_delta) < np.float32(self.best):
            self.best, self.best_epoch = current, epoch
            if spec.restore_best_weights:
                self.best_weights = weights()
            self.wait = 0
            return False
        if self.wait >= spec.patience and epoch > 0:
            self.stopped_epoch = epoch
            return True
        return False

    @property
    def restore_best_weights(self) -> bool:
        return self.stopping is not None and self.stopping.restore_best_weights

    def tested_weights(self, stacked, index: int):
        """The weights its test scores are taken at: the best epoch's when restoring, else its
        last (a stopped member's state was masked from then on)."""
        if self.restore_best_weights and self.best_weights is not None:
            return self.best_weights
        trainable, non_trainable, _, _ = stacked
        return _row((trainable, non_trainable), index)


def _vmapped_steps(runner: TrialRunner, model: keras.Model):
    """The vmapped train and test steps, jitted once per compiled model (traced per group
    size). The train step takes a mask: a member whose row is False keeps its state."""
    extras = runner.extras
    if "vmapped" not in extras:
        train_step = jax.vmap(model.train_step)

        def masked_train_step(state, data, active):
            logs, stepped = train_step(state, data)
            kept = jax.tree_util.tree_map(
                lambda new, old: jnp.where(active.reshape(-1, *([1] * (new.ndim - 1))), new, old),
                stepped,
                state,
            )
            return logs, kept

        extras["vmapped"] = (
            jax.jit(masked_train_step),
            jax.jit(jax.vmap(model.test_step, in_axes=(0, None))),
        )
    return extras["vmapped"]


def _train(model, vmapped, members: list[_Member], data: Dataset, stacked, emit: Emit):
    """Every epoch: a vmapped step per batch for all members, then a vmapped validation, then
    each active member's epoch end (streamed; failed, stopped or done ends it)."""
    train_step, test_step = vmapped
    n, batch = len(members), members[0].trial.training.batch_size
    orders = [epoch_orders(m.trial.seed, len(data.X_train)) for m in members]  # as SeededBatches
    fresh_metrics = _metric_values(model)
    started = time.perf_counter()
    for epoch in range(1, max(m.trial.training.epochs for m in members) + 1):
        began = time.perf_counter()
        trainable, non_trainable, optimizer, _ = stacked
        permutations = [next(order) for order in orders]
        metrics = _repeat(fresh_metrics, n)
        active = jnp.asarray([member.active for member in members])
        logs = None
        for start in range(0, len(data.X_train), batch):
            rows = np.stack([order[start : start + batch] for order in permutations])
            logs, (trainable, non_trainable, optimizer, metrics) = train_step(
                (trainable, non_trainable, optimizer, metrics),
                (data.X_train[rows], data.y_train[rows]),
                active,
            )
        stacked = (trainable, non_trainable, optimizer, metrics)
        assert logs is not None  # the training split has rows: at least one step ran
        logs = {name: np.asarray(value) for name, value in logs.items()}
        train_ended = time.perf_counter()
        if len(data.X_val):
            logs.update(_validate(test_step, stacked, data, fresh_metrics, n))
        now = time.perf_counter()
        for index, member in enumerate(members):
            if not member.active:
                continue
            metrics_now = {
                name: float(values[index]) for name, values in logs.items() if name in EPOCH_METRICS
            }
            metrics_now["epoch_time_s"] = (now - began) / n
            metrics_now["train_time_s"] = (train_ended - began) / n
            # Its time is its share of the population's, so is its time limit.
            _end_epoch(member, epoch, metrics_now, emit, (now - started) / n, stacked, index)
        if not any(member.active for member in members):
            break
    for member in members:
        result = member.result
        assert result.steps_per_epoch is not None  # new_result sets it
        result.step_time_ms = steady_step_time_ms(
            result.history.get("train_time_s", []), result.steps_per_epoch
        )
    return stacked


def _end_epoch(
    member: _Member,
    epoch: int,
    metrics: dict[str, float],
    emit: Emit,
    elapsed: float,
    stacked,
    index,
) -> None:
    """What a trial's callbacks do at an epoch's end (EpochReporter, then EarlyStopping), for
    one member; a member that must stop is made inactive."""
    result, trial = member.result, member.trial
    for name, value in metrics.items():
        result.history.setdefault(name, []).append(value)
    emit(wire.epoch(trial.key, epoch, metrics))
    stop = epoch_failure(metrics["loss"], epoch, elapsed, trial.training.max_seconds)
    if stop:
        result.status = "FAILED"
        result.failure, result.message = stop
        member.active = False
        return
    weights = lambda: _row(stacked[:2], index)  # noqa: E731  (read only when kept)
    if member.should_stop(epoch - 1, metrics, weights) or epoch == trial.training.epochs:
        member.active = False


def _validate(test_step, stacked, data: Dataset, fresh_metrics, n: int) -> dict[str, np.ndarray]:
    """`model.evaluate` on the validation split for every member: batches of EVAL_BATCH_SIZE,
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


def _state(model: keras.Model):
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in model.optimizer.variables],
        _metric_values(model),
    )


def _row(tree, index: int):
    """One member's slice of stacked state."""
    return jax.tree_util.tree_map(operator.itemgetter(index), tree)


def _metric_values(model: keras.Model) -> list:
    model.reset_metrics()
    return [jnp.array(v.value) for v in model.metrics_variables]


def _repeat(values: list, n: int) -> list:
    return [jnp.broadcast_to(value, (n, *value.shape)) for value in values]


def _load_weights(model: keras.Model, weights) -> None:
    trainable, non_trainable = weights
    for variables, values in (
        (model.trainable_variables, trainable),
        (model.non_trainable_variables, non_trainable),
    ):
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)
