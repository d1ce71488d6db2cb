"""Run one trial inside a worker: data -> scaler.adapt -> build_mlp -> compile -> fit -> evaluate.

Read top to bottom, `run_trial` is the whole path. Two things make backends comparable:
the weights come from NumPy (`build_mlp`), and so does the batch order
(`batches.training_batches`), so TensorFlow, PyTorch and JAX see the same numbers in the same
order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

import keras
import numpy as np

from mlpsuite import __version__
from mlpsuite.config import OptimizerSpec, Trial
from mlpsuite.data import Dataset
from mlpsuite.executors import wire
from mlpsuite.layers import get_scaler
from mlpsuite.models import build_mlp, find_scaler, initialize_dense_weights, reseed_dropout
from mlpsuite.results import TrialResult, epoch_failure, peak_rss_mb, steady_step_time_ms
from mlpsuite.trial.backends import (
    active_backend,
    framework_version,
    release_compiled,
    seed_everything,
    xla_allowed,
)
from mlpsuite.trial.batches import NewOrder, training_batches
from mlpsuite.trial.diagnostics import PREFIXES as DIAGNOSTIC_PREFIXES
from mlpsuite.trial.diagnostics import Diagnostics, LayerProbe, probe_rows
from mlpsuite.trial.evaluation import Split
from mlpsuite.trial.held_hyperparameters import Held, held_optimizer
from mlpsuite.trial.saved_models import save_trained_model

Emit = Callable[[dict], None]
EPOCH_METRICS = (
    "loss",
    "val_loss",
    "accuracy",
    "val_accuracy",
)  # what Keras logs that an epoch reports
KEPT_DATASETS = 4  # a worker keeps this many loaded datasets (a grid over dataset.seed has more)


class EpochReporter(keras.callbacks.Callback):
    """Streams each epoch's metrics out, times the training part, stops on NaN or time limit."""

    def __init__(self, emit: Emit, key: str, max_seconds: float, started: float):
        super().__init__()
        self.emit, self.key = emit, key
        self.max_seconds, self.started = max_seconds, started
        self.failure: str | None = None
        self.message = ""
        self.history: dict[str, list[float]] = {}

    def on_epoch_begin(self, epoch, logs=None):
        """Start timing the epoch."""
        self.epoch_began = time.perf_counter()
        self.train_ended = None

    def on_test_begin(self, logs=None):
        """Note when the training steps ended: validation follows them."""
        self.train_ended = time.perf_counter()  # validation follows the training steps

    def on_epoch_end(self, epoch, logs=None):
        """Record and send the epoch's metrics with its times; stop training on a NaN or infinite
        loss or past the time limit (the trial's failure)."""
        now = time.perf_counter()
        metrics = {
            name: float(value)
            for name, value in (logs or {}).items()
            if name in EPOCH_METRICS or name.startswith(DIAGNOSTIC_PREFIXES)
        }
        metrics["epoch_time_s"] = now - self.epoch_began
        metrics["train_time_s"] = (self.train_ended or now) - self.epoch_began  # the steps alone
        for name, value in metrics.items():
            self.history.setdefault(name, []).append(value)
        self.emit(wire.epoch(self.key, epoch + 1, metrics))
        stop = epoch_failure(
            metrics.get("loss", 0.0), epoch + 1, now - self.started, self.max_seconds
        )
        if stop:
            self.failure, self.message = stop
            # fit() has set the model; Keras annotates a callback's model as None.
            cast(keras.Model, self.model).stop_training = True


@dataclasses.dataclass
class _Compiled:
    """A built and compiled model, and the values to put it back to its just-built state."""

    program: tuple
    model: keras.Model
    variables: list[np.ndarray]  # every model variable right after build_mlp
    optimizer_variables: list[np.ndarray]  # iterations, learning rate, moments: all unstarted
    extras: dict = dataclasses.field(default_factory=dict)  # more compiled functions of this model


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A dataset as a worker keeps it: the arrays, each split ready for evaluation, and the
    training batches of each batch size used so far (built once, reseeded per trial)."""

    data: Dataset
    train: Split
    val: Split
    test: Split
    _batches: dict = dataclasses.field(default_factory=dict)

    def batches(self, batch_size: int, seed: int):
        """The training split's batches in `seed`'s order."""
        if batch_size not in self._batches:
            self._batches[batch_size] = training_batches(
                self.data.X_train, self.data.y_train, batch_size, seed
            )
        batches = self._batches[batch_size]
        batches.reseed(seed)
        return batches


class TrialRunner:
    """A worker's trials, one after another: each dataset is loaded once, and a trial whose
    compiled program (`Trial.program_key` plus the data's sizes) matches the last one's
    reuses its model: weights redrawn, optimizer state and scaler statistics reset. The
    result is bit-identical to a fresh build; only tracing and compiling are saved.

    Args:
        threads: the intra-op threads the worker runs with (recorded in the result).
        reuse: False builds and compiles a fresh model for every trial.
    """

    def __init__(self, threads: int = 1, reuse: bool = True):
        self.threads, self.reuse = threads, reuse
        self._datasets: dict[str, Prepared] = {}
        self._compiled: _Compiled | None = None
        self.start_rss_mb: float | None = None  # the worker's, once its framework is imported

    def run(self, trial: Trial, emit: Emit) -> TrialResult:
        """Train and evaluate one trial; epoch events go to `emit` as they happen."""
        started = time.perf_counter()
        prepared = self.dataset(trial)
        steps = epoch_steps(prepared.data, trial)
        model, reused = self.model_for(trial, prepared.data, steps)
        seed_everything(trial.seed)
        result = self.new_result(trial, prepared, steps, reused, model)
        diagnostics = [self.diagnostics(trial, prepared, emit)] if trial.diagnostics else []
        _fit(model, trial, prepared, result, emit, started, diagnostics)
        if trial.training.save_model and result.status == "FINISHED":
            result.model_dir = save_trained_model(model, trial.key, prepared.data.X_train)
        result.trial_time_s = time.perf_counter() - started
        result.overhead_s = overhead_s(result)
        result.peak_rss_mb = peak_rss_mb()
        return result

    def new_result(
        self, trial: Trial, prepared: Prepared, steps: int, reused: bool, model: keras.Model
    ) -> TrialResult:
        """The trial's result before training: its starting loss and weights (the parity probes)."""
        result = TrialResult(
            key=trial.key,
            backend=active_backend(),
            threads=self.threads,
            versions=_versions(),
            steps_per_epoch=steps,
            classes=list(prepared.data.class_names),
            reused_model=reused,
            jit_compile=bool(model.jit_compile),
            steps_per_execution=model.steps_per_execution,
            start_rss_mb=self.start_rss_mb,
        )
        began = time.perf_counter()
        result.initial_loss = prepared.train.evaluate(model)["loss"]
        if not reused:  # the first evaluation compiles: its time beyond a second one's is that
            first = time.perf_counter() - began
            began = time.perf_counter()
            prepared.train.evaluate(model)
            result.eval_compile_s = max(0.0, first - (time.perf_counter() - began))
        result.weights_sha256 = weights_sha256(model)
        return result

    def diagnostics(self, trial: Trial, prepared: Prepared, emit: Emit) -> Diagnostics:
        """The diagnostics callback of the current model (its probe is kept with the model)."""
        extras = self.extras
        if "probe" not in extras:
            model = self._current().model
            extras["probe"] = LayerProbe(model, model.loss)
        x, y = probe_rows(prepared.data.X_train, prepared.data.y_train)
        return Diagnostics(extras["probe"], x, y, emit, trial.key)

    def dataset(self, trial: Trial) -> Prepared:
        """The trial's splits, loaded on first use (keyed by the spec and the file's hash)."""
        key = trial.data_key
        if key not in self._datasets:
            data = trial.load_data()
            self._datasets[key] = Prepared(
                data,
                Split(data.X_train, data.y_train),
                Split(data.X_val, data.y_val),
                Split(data.X_test, data.y_test),
            )
            while (
                len(self._datasets) > KEPT_DATASETS
            ):  # the oldest first: a grid sweeps them in order
                self._datasets.pop(next(iter(self._datasets)))
        return self._datasets[key]

    @property
    def extras(self) -> dict:
        """Compiled functions kept with the current model (its diagnostics probe, vmapped steps),
        dropped with it when another program comes."""
        return self._current().extras

    def reset_model(self, trial: Trial, data: Dataset) -> None:
        """Put the current model at `trial`'s starting point (a fresh build's weights and state)."""
        _reset(self._current(), trial, data)

    def _current(self) -> _Compiled:
        assert self._compiled is not None, "no model yet: model_for builds it"
        return self._compiled

    def model_for(
        self, trial: Trial, data: Dataset, steps: int, held: bool = False
    ) -> tuple[keras.Model, bool]:
        """The compiled model of `trial` at its starting point, and whether it was reused (the
        last trial's program) rather than built and compiled. `held`: its optimizer holds
        momentum, beta_1 and weight decay as variables (a population's members differ there)."""
        per_execution = steps_per_execution(trial.training.steps_per_execution, steps)
        program = (
            trial.population_key if held else trial.program_key,
            held,
            data.input_dim,
            data.output_dim,
            per_execution,
            steps if trial.optimizer.schedule is not None else None,
        )
        compiled = self._compiled
        if self.reuse and compiled is not None and compiled.program == program:
            _reset(compiled, trial, data)
            return compiled.model, True
        if compiled is not None:  # another program: let the old one's traces go
            self._compiled = None
            release_compiled()
        model = _build(trial, data)
        with xla_allowed(trial.training.jit_compile):
            model.compile(
                optimizer=make_optimizer(trial.optimizer, steps, trial.training.epochs, held),
                loss=make_loss(trial.loss),
                metrics=["accuracy"] if data.task == "classification" else None,
                # Keras annotates jit_compile as str (its default, "auto"); it takes bools too.
                jit_compile=trial.training.jit_compile,  # pyright: ignore[reportArgumentType]
                steps_per_execution=per_execution,
            )
        model.optimizer.build(model.trainable_variables)
        self._compiled = _Compiled(
            program, model, _values(model.variables), _values(model.optimizer.variables)
        )
        return model, False


def run_trial(trial: Trial, emit: Emit, threads: int) -> TrialResult:
    """One trial on a freshly built model (a worker uses a `TrialRunner` to reuse models)."""
    return TrialRunner(threads, reuse=False).run(trial, emit)


def _fit(
    model: keras.Model,
    trial: Trial,
    prepared: Prepared,
    result: TrialResult,
    emit: Emit,
    started: float,
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> None:
    """Train with the suite's batch order and callbacks, then score the tested weights."""
    reporter = EpochReporter(emit, trial.key, trial.training.max_seconds, started)
    stopper = _early_stopping(trial)
    fit_began = time.perf_counter()
    batches = prepared.batches(trial.training.batch_size, trial.seed)
    model.fit(
        batches.fit_input(),
        epochs=trial.training.epochs,
        # Keras annotates verbose as str (its default, "auto"); it takes 0 too.
        verbose=0,  # pyright: ignore[reportArgumentType]
        shuffle=False,
        **prepared.val.fit_arguments(),
        callbacks=[NewOrder(batches), *callbacks, reporter, *([stopper] if stopper else [])],
    )
    result.fit_time_s = time.perf_counter() - fit_began
    result.history = reporter.history
    assert result.steps_per_epoch is not None  # new_result sets it
    result.step_time_ms = steady_step_time_ms(
        reporter.history.get("train_time_s", []), result.steps_per_epoch
    )
    if reporter.failure:
        result.status, result.failure, result.message = "FAILED", reporter.failure, reporter.message
        return
    result.stopped_epoch, result.tested_epoch = stopping_epochs(
        stopper, len(reporter.history.get("loss", []))
    )
    score_tested_weights(model, prepared, result)


def score_tested_weights(model: keras.Model, prepared: Prepared, result: TrialResult) -> None:
    """Test scores and, for regression, the validation R² and MAE the curve lacks."""
    result.test = prepared.test.scores(model, prepared.data.task)
    if len(prepared.val) and prepared.data.task == "regression":
        scores = prepared.val.scores(model, prepared.data.task)
        result.val = {"r2": scores["r2"], "mae": scores["mae"]}


def _reset(compiled: _Compiled, trial: Trial, data: Dataset) -> None:
    """Put a reused model where `_build` + compile would have left it for this trial."""
    model, optimizer = compiled.model, compiled.model.optimizer
    for variable, value in zip(model.variables, compiled.variables, strict=True):
        variable.assign(value)
    reseed_dropout(model, trial.seed)
    scaler = find_scaler(model)
    if scaler is not None:
        scaler.adapt(data.X_train)
    initialize_dense_weights(model, trial.model.initializer, trial.seed)
    for variable, value in zip(optimizer.variables, compiled.optimizer_variables, strict=True):
        variable.assign(value)
    if trial.optimizer.schedule is None:
        optimizer.learning_rate = trial.optimizer.learning_rate
    if isinstance(optimizer, Held):  # a population's: this member's momentum, beta_1, decay
        optimizer.hold(trial.optimizer)


def _values(variables) -> list[np.ndarray]:
    return [cast(np.ndarray, keras.ops.convert_to_numpy(variable)).copy() for variable in variables]


class Stopper(Protocol):
    """What `stopping_epochs` reads: Keras' `EarlyStopping` after `fit`, or a population
    member's own copy of its rule (trial/vectorized.py)."""

    stopped_epoch: int
    best_epoch: int
    best_weights: Any

    @property
    def restore_best_weights(self) -> bool:
        """Whether the model holds `best_epoch`'s weights after training, not the last's."""
        ...


def stopping_epochs(stopper: Stopper | None, epochs_run: int) -> tuple[int | None, int]:
    """(the epoch early stopping stopped at, or None; the epoch whose weights the model holds).

    Keras restores the best weights at the end of training whenever it was asked to, stopped
    early or not.
    """
    if stopper is None:
        return None, epochs_run
    stopped = stopper.stopped_epoch + 1 if stopper.stopped_epoch else None
    restored = stopper.restore_best_weights and stopper.best_weights is not None
    return stopped, stopper.best_epoch + 1 if restored else epochs_run


def _build(trial: Trial, data: Dataset) -> keras.Model:
    spec = trial.model
    scaler = None
    if spec.scaler != "none":
        scaler = get_scaler(spec.scaler)
        scaler.adapt(data.X_train)
    return build_mlp(
        data.input_dim,
        data.output_dim,
        hidden=spec.hidden,
        activation=spec.activation.name,
        activation_params=spec.activation.params,
        scaler=scaler,
        initializer=spec.initializer,
        dropout=spec.dropout,
        seed=trial.seed,
        name=f"mlp_{trial.key}",
    )


def steps_per_execution(setting: int | str, steps_per_epoch: int) -> int:
    """`training.steps_per_execution` on the active backend: auto is one epoch's steps per
    compiled call where Keras can loop inside one (TensorFlow, JAX), 1 on PyTorch."""
    if setting != "auto":
        return int(setting)
    return 1 if active_backend() == "torch" else steps_per_epoch


def epoch_steps(data: Dataset, trial: Trial) -> int:
    """Training steps in one epoch of `trial` on `data` (the last batch may be short)."""
    return math.ceil(len(data.X_train) / trial.training.batch_size)


def make_optimizer(
    spec: OptimizerSpec, steps_per_epoch: int, epochs: int, held: bool = False
) -> keras.optimizers.Optimizer:
    """The Keras optimizer for `spec`, with its learning-rate schedule counted in steps;
    `held`: its momentum, beta_1 and weight decay as variables where it has them."""
    # Keras annotates learning_rate as float (its default); it takes a schedule too.
    rate: Any = spec.learning_rate
    if spec.schedule is not None and spec.schedule.name == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            rate, decay_steps=steps_per_epoch * epochs, alpha=spec.schedule.alpha
        )
    elif spec.schedule is not None:
        rate = keras.optimizers.schedules.ExponentialDecay(
            rate,
            decay_steps=steps_per_epoch * spec.schedule.decay_epochs,
            decay_rate=spec.schedule.decay_rate,
        )
    holding = held_optimizer(spec, rate) if held else None
    if holding is not None:
        return holding
    optimizers = {
        "sgd": lambda: keras.optimizers.SGD(rate),
        "momentum": lambda: keras.optimizers.SGD(rate, momentum=spec.momentum),
        "nesterov": lambda: keras.optimizers.SGD(rate, momentum=spec.momentum, nesterov=True),
        "rmsprop": lambda: keras.optimizers.RMSprop(rate),
        "adam": lambda: keras.optimizers.Adam(rate, beta_1=spec.beta_1),
        "adamw": lambda: keras.optimizers.AdamW(
            rate, weight_decay=spec.weight_decay, beta_1=spec.beta_1
        ),
        "adagrad": lambda: keras.optimizers.Adagrad(rate),
    }
    return optimizers[spec.name]()


def make_loss(name: str) -> keras.losses.Loss:
    """Classification losses take logits: build_mlp's output layer has no softmax."""
    losses = {
        "sparse_categorical_crossentropy": lambda: keras.losses.SparseCategoricalCrossentropy(
            from_logits=True
        ),
        "mse": keras.losses.MeanSquaredError,
        "mae": keras.losses.MeanAbsoluteError,
        "huber": keras.losses.Huber,
    }
    return losses[name]()


def _early_stopping(trial: Trial) -> keras.callbacks.EarlyStopping | None:
    spec = trial.training.early_stopping
    if spec is None:
        return None
    return keras.callbacks.EarlyStopping(
        monitor=spec.monitor,
        patience=spec.patience,
        # Keras annotates min_delta as int (its default, 0); it takes floats too.
        min_delta=spec.min_delta,  # pyright: ignore[reportArgumentType]
        restore_best_weights=spec.restore_best_weights,
    )


def weights_sha256(model: keras.Model) -> str:
    """A hash of the trainable weights as float32 bytes, in layer order: equal hashes on two
    backends mean bit-identical starting points (the scaler's statistics are left out)."""
    digest = hashlib.sha256()
    for variable in model.trainable_weights:
        digest.update(
            np.ascontiguousarray(keras.ops.convert_to_numpy(variable), dtype=np.float32).tobytes()
        )
    return digest.hexdigest()[:16]


def overhead_s(result: TrialResult) -> float | None:
    """The trial's time beyond its training steps at their steady speed: loading, building,
    tracing and compiling, evaluating, the callbacks. Zero would be the hardware's share only."""
    epochs = len(result.history.get("loss", []))
    if result.step_time_ms is None or not epochs:
        return None
    # The worker sets both before it asks: `run` and `train_seeds`.
    assert result.trial_time_s is not None and result.steps_per_epoch is not None
    return result.trial_time_s - result.step_time_ms / 1000 * result.steps_per_epoch * epochs


def _versions() -> dict[str, str]:
    return {
        "mlpsuite": __version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        active_backend(): framework_version(),
    }
