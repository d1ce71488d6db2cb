"""Run one trial inside a worker: data -> scaler.adapt -> build_mlp -> compile -> fit -> evaluate.

Read top to bottom, `run_trial` is the whole path. Two things make backends comparable:
the weights come from NumPy (`build_mlp`), and so does the batch order (`SeededBatches`), so
TensorFlow, PyTorch and JAX see the same numbers in the same order.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable

import keras
import numpy as np

from mlpsuite import __version__
from mlpsuite.backends import active_backend, framework_version
from mlpsuite.config import OptimizerSpec, Trial
from mlpsuite.data import Dataset, load_dataset
from mlpsuite.layers import get_activation, get_scaler
from mlpsuite.models import build_mlp
from mlpsuite.results import DIVERGED, TIMEOUT, TrialResult

Emit = Callable[[dict], None]
EVAL_BATCH_SIZE = 1024


class SeededBatches(keras.utils.PyDataset):
    """Training batches in an order drawn with NumPy from the trial seed, new each epoch.

    One thread, no prefetch (the PyDataset defaults): `on_epoch_end` runs between epochs, so
    epoch e always uses the e-th permutation of the generator.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, batch_size: int, seed: int):
        super().__init__()
        self.X, self.y, self.batch_size = X, y, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(X))

    def __len__(self) -> int:
        return math.ceil(len(self.X) / self.batch_size)

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        return self.X[rows], self.y[rows]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.X))


class EpochReporter(keras.callbacks.Callback):
    """Streams each epoch's metrics out, times the training part, stops on NaN or time limit."""

    def __init__(self, emit: Emit, key: str, max_seconds: float, started: float):
        super().__init__()
        self.emit, self.key = emit, key
        self.max_seconds, self.started = max_seconds, started
        self.failure: str | None = None
        self.message = ""
        self.history: dict[str, list[float]] = {}
        self.train_seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_began = time.perf_counter()
        self.train_ended = None

    def on_test_begin(self, logs=None):
        self.train_ended = time.perf_counter()  # validation follows the training steps

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        self.train_seconds.append((self.train_ended or now) - self.epoch_began)
        metrics = {name: float(value) for name, value in (logs or {}).items()
                   if name in ("loss", "val_loss", "accuracy", "val_accuracy")}
        metrics["epoch_time_s"] = now - self.epoch_began
        for name, value in metrics.items():
            self.history.setdefault(name, []).append(value)
        self.emit({"event": "epoch", "key": self.key, "epoch": epoch + 1, "metrics": metrics})
        if not math.isfinite(metrics.get("loss", 0.0)):
            self.failure = DIVERGED
            self.message = f"loss became {metrics['loss']} at epoch {epoch + 1}"
        elif now - self.started > self.max_seconds:
            self.failure = TIMEOUT
            self.message = (f"stopped after epoch {epoch + 1}: {now - self.started:.1f} s is past "
                            f"training.max_seconds={self.max_seconds:g}")
        if self.failure:
            self.model.stop_training = True


def run_trial(trial: Trial, emit: Emit, threads: int) -> TrialResult:
    """Train and evaluate one trial; epoch events go to `emit` as they happen."""
    started = time.perf_counter()
    keras.utils.set_random_seed(trial.seed)  # only Dropout draws from the backend RNG
    data = _load(trial)
    model = _build(trial, data)
    steps = _steps(data, trial)
    model.compile(optimizer=make_optimizer(trial.optimizer, steps, trial.training.epochs),
                  loss=make_loss(trial.loss),
                  metrics=["accuracy"] if data.task == "classification" else None)
    result = TrialResult(key=trial.key, backend=active_backend(), threads=threads,
                         versions=_versions(), steps_per_epoch=steps, classes=list(data.class_names))
    result.initial_loss = _loss_on(model, data.X_train, data.y_train)
    result.weights_sha256 = weights_sha256(model)

    reporter = EpochReporter(emit, trial.key, trial.training.max_seconds, started)
    stopper = _early_stopping(trial)
    fit_began = time.perf_counter()
    model.fit(SeededBatches(data.X_train, data.y_train, trial.training.batch_size, trial.seed),
              epochs=trial.training.epochs, verbose=0,
              validation_data=(data.X_val, data.y_val) if len(data.X_val) else None,
              validation_batch_size=EVAL_BATCH_SIZE,
              callbacks=[reporter, *([stopper] if stopper else [])])
    result.fit_time_s = time.perf_counter() - fit_began
    result.history = reporter.history
    result.step_time_ms = _step_time_ms(reporter.train_seconds, result.steps_per_epoch)
    if reporter.failure:
        result.status, result.failure, result.message = "FAILED", reporter.failure, reporter.message
        return result
    result.stopped_epoch, result.tested_epoch = _stopping_epochs(stopper, len(reporter.history.get("loss", [])))
    result.test = _scores(model, data.X_test, data.y_test, data.task)
    if len(data.X_val) and data.task == "regression":  # the val curve has the loss; these it lacks
        scores = _scores(model, data.X_val, data.y_val, data.task)
        result.val = {"r2": scores["r2"], "mae": scores["mae"]}
    return result


def _scores(model: keras.Model, X: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """Loss and accuracy (classification) or loss, R² and MAE (regression) of the current weights."""
    scores = {name: float(value) for name, value in model.evaluate(
        X, y, batch_size=EVAL_BATCH_SIZE, verbose=0, return_dict=True).items()}
    if task == "regression":
        scores.update(regression_scores(model, X, y))
    return scores


def _stopping_epochs(stopper: keras.callbacks.EarlyStopping | None, epochs_run: int) -> tuple[int | None, int]:
    """(the epoch early stopping stopped at, or None; the epoch whose weights the model holds).

    Keras restores the best weights at the end of training whenever it was asked to, stopped
    early or not.
    """
    if stopper is None:
        return None, epochs_run
    stopped = stopper.stopped_epoch + 1 if stopper.stopped_epoch else None
    restored = stopper.restore_best_weights and stopper.best_weights is not None
    return stopped, stopper.best_epoch + 1 if restored else epochs_run


def _load(trial: Trial) -> Dataset:
    return load_dataset(trial.data_path or trial.dataset.name, **trial.dataset.load_options())


def _build(trial: Trial, data: Dataset) -> keras.Model:
    spec = trial.model
    scaler = None
    if spec.scaler != "none":
        scaler = get_scaler(spec.scaler)
        scaler.adapt(data.X_train)
    return build_mlp(data.input_dim, data.output_dim, hidden=spec.hidden,
                     activation=get_activation(spec.activation.name, **spec.activation.params),
                     scaler=scaler, initializer=spec.initializer, dropout=spec.dropout,
                     seed=trial.seed, name=f"mlp_{trial.key}")


def _steps(data: Dataset, trial: Trial) -> int:
    return math.ceil(len(data.X_train) / trial.training.batch_size)


def make_optimizer(spec: OptimizerSpec, steps_per_epoch: int, epochs: int) -> keras.optimizers.Optimizer:
    """The Keras optimizer for `spec`, with its learning-rate schedule counted in steps."""
    rate = spec.learning_rate
    if spec.schedule is not None and spec.schedule.name == "cosine":
        rate = keras.optimizers.schedules.CosineDecay(
            rate, decay_steps=steps_per_epoch * epochs, alpha=spec.schedule.alpha)
    elif spec.schedule is not None:
        rate = keras.optimizers.schedules.ExponentialDecay(
            rate, decay_steps=steps_per_epoch * spec.schedule.decay_epochs,
            decay_rate=spec.schedule.decay_rate)
    optimizers = {
        "sgd": lambda: keras.optimizers.SGD(rate),
        "momentum": lambda: keras.optimizers.SGD(rate, momentum=spec.momentum),
        "nesterov": lambda: keras.optimizers.SGD(rate, momentum=spec.momentum, nesterov=True),
        "rmsprop": lambda: keras.optimizers.RMSprop(rate),
        "adam": lambda: keras.optimizers.Adam(rate),
        "adamw": lambda: keras.optimizers.AdamW(rate, weight_decay=spec.weight_decay),
        "adagrad": lambda: keras.optimizers.Adagrad(rate),
    }
    return optimizers[spec.name]()


def make_loss(name: str) -> keras.losses.Loss:
    """Classification losses take logits: build_mlp's output layer has no softmax."""
    losses = {
        "sparse_categorical_crossentropy": lambda: keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "mse": keras.losses.MeanSquaredError,
        "mae": keras.losses.MeanAbsoluteError,
        "huber": keras.losses.Huber,
    }
    return losses[name]()


def _early_stopping(trial: Trial) -> keras.callbacks.EarlyStopping | None:
    spec = trial.training.early_stopping
    if spec is None:
        return None
    return keras.callbacks.EarlyStopping(monitor=spec.monitor, patience=spec.patience, min_delta=spec.min_delta,
                                         restore_best_weights=spec.restore_best_weights)


def _loss_on(model: keras.Model, X: np.ndarray, y: np.ndarray) -> float:
    """The loss before any update: the parity probe (same weights -> same number everywhere)."""
    logs = model.evaluate(X, y, batch_size=EVAL_BATCH_SIZE, verbose=0, return_dict=True)
    return float(logs["loss"])


def weights_sha256(model: keras.Model) -> str:
    """A hash of the trainable weights as float32 bytes, in layer order: equal hashes on two
    backends mean bit-identical starting points (the scaler's statistics are left out)."""
    digest = hashlib.sha256()
    for variable in model.trainable_weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(variable), dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]


def regression_scores(model: keras.Model, X: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """R² and MAE of the predictions on (X, y), pooled over outputs as scikit-learn does."""
    predicted = np.asarray(model.predict(X, batch_size=EVAL_BATCH_SIZE, verbose=0), dtype=np.float64)
    target = np.asarray(y, dtype=np.float64).reshape(predicted.shape)
    residual = float(np.sum((target - predicted) ** 2))
    spread = float(np.sum((target - target.mean(axis=0)) ** 2))
    r2 = 1.0 - residual / spread if spread > 0 else float("nan")
    return {"r2": r2, "mae": float(np.mean(np.abs(target - predicted)))}


def _step_time_ms(train_seconds: list[float], steps_per_epoch: int) -> float | None:
    """Median per-step time, leaving out epoch 1 (it pays for tracing and compilation)."""
    timed = train_seconds[1:] or train_seconds
    return float(np.median(timed)) / steps_per_epoch * 1000 if timed else None


def _versions() -> dict[str, str]:
    return {"mlpsuite": __version__, "keras": keras.__version__, "numpy": np.__version__,
            active_backend(): framework_version()}
