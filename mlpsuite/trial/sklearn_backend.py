"""scikit-learn's MLP as a reference backend: the same trial with `MLPClassifier`/`MLPRegressor`.

`backends: [..., sklearn]` runs a grid's cells once more with the tool people already know,
in a worker that imports no Keras:

```
model.hidden      -> hidden_layer_sizes       model.activation -> identity, logistic, tanh, relu
model.scaler      -> MinMaxScaler, RobustScaler, StandardScaler, fitted on the training split
optimizer         -> solver sgd (momentum 0), sgd + momentum, sgd + Nesterov, adam (beta_1)
learning_rate     -> learning_rate_init ("constant")   training.batch_size -> batch_size
training.epochs   -> one partial_fit pass per epoch over the training split; alpha (L2) = 0
```

Each epoch's `partial_fit` gets the training rows in the suite's order for that epoch
(`batch_order.epoch_orders`, `shuffle=False`), so scikit-learn trains on the very batches
the Keras backends train on. Its initial weights are its own (Glorot, drawn from
`random_state=seed`), so these runs are left out of backend parity. What sklearn lacks
(other activations and optimizers, Dropout, schedules, losses other than cross-entropy and
squared error) is a FAILED run saying so, not a crash.

sklearn reports half the squared error for regression; `loss` here is the mean squared error,
as Keras reports it. `accuracy` is measured on the whole training split after each epoch
(Keras averages the epoch's batches as they train).
"""

from __future__ import annotations

import math
import time
from typing import Any, cast

import numpy as np

from mlpsuite.config import Trial
from mlpsuite.config.reference import ACTIVATIONS, NAME, SOLVERS, unsupported
from mlpsuite.executors import wire
from mlpsuite.results import TrialResult, epoch_failure, peak_rss_mb, steady_step_time_ms
from mlpsuite.trial.batch_order import epoch_orders


def estimator(trial: Trial, task: str):
    """The unfitted MLPClassifier or MLPRegressor for `trial` (checked by `unsupported`)."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    solver, momentum, nesterov = SOLVERS[trial.optimizer.name]
    kind = MLPClassifier if task == "classification" else MLPRegressor
    return kind(
        hidden_layer_sizes=tuple(trial.model.hidden),
        activation=ACTIVATIONS[trial.model.activation.name],
        solver=solver,
        alpha=0.0,
        # scikit-learn annotates batch_size as str (its default, "auto"); it takes ints too.
        batch_size=trial.training.batch_size,  # pyright: ignore[reportArgumentType]
        learning_rate="constant",
        learning_rate_init=trial.optimizer.learning_rate,
        momentum=trial.optimizer.momentum if momentum is None else momentum,
        nesterovs_momentum=nesterov,
        beta_1=trial.optimizer.beta_1,
        shuffle=False,
        random_state=trial.seed,
        max_iter=trial.training.epochs,
        tol=0.0,
        n_iter_no_change=trial.training.epochs + 1,
    )


def scaler(name: str):
    """scikit-learn's own scaler for mlpsuite's scaler name (None for `none`)."""
    from sklearn.preprocessing import MinMaxScaler, RobustScaler, StandardScaler

    kinds = {
        "none": None,
        "minmax": MinMaxScaler,
        "robust": RobustScaler,
        "standard": StandardScaler,
    }
    return kinds[name]() if kinds[name] is not None else None


class SklearnRunner:
    """A worker's trials on scikit-learn: the `TrialRunner` contract (`run(trial, emit)`)."""

    def __init__(self, threads: int = 1):
        self.threads = threads
        self._datasets: dict[str, Any] = {}
        self.start_rss_mb: float | None = None  # the worker's, once it is ready

    def run(self, trial: Trial, emit) -> TrialResult:
        """Train and test one trial with scikit-learn's MLP, sending each epoch's metrics through
        `emit`; FAILED (not raised) for a setting it cannot run, NaN losses or the time limit."""
        import sklearn

        started = time.perf_counter()
        result = TrialResult(
            key=trial.key,
            backend=NAME,
            threads=self.threads,
            versions={"sklearn": sklearn.__version__, "numpy": np.__version__},
            start_rss_mb=self.start_rss_mb,
        )
        reason = unsupported(trial)
        if reason:
            result.status, result.failure, result.message = "FAILED", "unsupported", reason
            return result
        data = self._dataset(trial)
        fitted_scaler = scaler(trial.model.scaler)
        splits = _scaled(fitted_scaler, data)
        result.classes = list(data.class_names)
        result.steps_per_epoch = math.ceil(len(data.X_train) / trial.training.batch_size)
        model = _train(trial, data.task, splits, data.n_classes, result, emit, started)
        if trial.training.save_model and result.status == "FINISHED":
            result.model_dir = _save(model, fitted_scaler, trial.key, data.X_train)
        result.trial_time_s = time.perf_counter() - started
        result.peak_rss_mb = peak_rss_mb()
        return result

    def _dataset(self, trial: Trial):
        """The last dataset is kept: a grid runs a dataset's trials in a row."""
        key = trial.data_key
        if key not in self._datasets:
            self._datasets = {key: trial.load_data()}
        return self._datasets[key]


def _save(model, fitted_scaler, key: str, X_train: np.ndarray) -> str:
    """The scaler and the MLP as one scikit-learn pipeline, saved as an MLflow sklearn model
    (it takes raw features, as the Keras models do); returns the folder."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.pipeline import make_pipeline

    from mlpsuite.trial.saved_models import EXAMPLE_ROWS, model_requirements, new_model_folder

    pipeline = make_pipeline(*([fitted_scaler] if fitted_scaler is not None else []), model)
    folder = new_model_folder(key)
    example = X_train[:EXAMPLE_ROWS]
    # MLflow's default (skops) format refuses sklearn's own optimizer classes unless trusted.
    trusted = [
        f"sklearn.neural_network._stochastic_optimizers.{name}"
        for name in ("AdamOptimizer", "SGDOptimizer")
    ]
    # mlflow names its flavours lazily, unexported; `import mlflow.sklearn` above loads this one.
    mlflow.sklearn.save_model(  # pyright: ignore[reportPrivateImportUsage]
        pipeline,
        str(folder),
        signature=infer_signature(example, pipeline.predict(example)),
        skops_trusted_types=trusted,
        pip_requirements=model_requirements("sklearn"),
    )
    return str(folder)


def _scaled(fitted, data) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each split's (X, y), scaled by `fitted` (an unfitted scaler or None) fitted on the
    training split alone."""
    splits = {
        "train": (data.X_train, data.y_train),
        "val": (data.X_val, data.y_val),
        "test": (data.X_test, data.y_test),
    }
    if fitted is None:
        return splits
    fitted.fit(data.X_train)
    return {split: (fitted.transform(X) if len(X) else X, y) for split, (X, y) in splits.items()}


def _train(
    trial: Trial,
    task: str,
    splits: dict[str, tuple[np.ndarray, np.ndarray]],
    n_classes: int | None,
    result: TrialResult,
    emit,
    started: float,
):
    """One partial_fit per epoch, each epoch's metrics emitted; the test split scored at the
    end. Returns the trained estimator."""
    X, y = splits["train"]
    model = estimator(trial, task)
    # n_classes is set for classification (None for regression only).
    classes = np.arange(cast(int, n_classes)) if task == "classification" else None
    orders = epoch_orders(trial.seed, len(X))
    fit_began = time.perf_counter()
    for epoch in range(1, trial.training.epochs + 1):
        began = time.perf_counter()
        rows = next(orders)
        extra = {"classes": classes} if classes is not None else {}
        model.partial_fit(X[rows], y[rows], **extra)
        train_time = time.perf_counter() - began
        metrics = {
            "loss": model.loss_ * (2.0 if task == "regression" else 1.0),
            "train_time_s": train_time,
        }
        if task == "classification":
            metrics["accuracy"] = float(model.score(X, y))
        if len(splits["val"][0]):
            metrics.update(
                {
                    f"val_{name}": value
                    for name, value in _scores(model, task, *splits["val"], classes).items()
                    if name in ("loss", "accuracy")
                }
            )
        metrics["epoch_time_s"] = time.perf_counter() - began
        for name, value in metrics.items():
            result.history.setdefault(name, []).append(float(value))
        emit(wire.epoch(trial.key, epoch, metrics))
        stop = epoch_failure(
            metrics["loss"], epoch, time.perf_counter() - started, trial.training.max_seconds
        )
        if stop:
            result.status = "FAILED"
            result.failure, result.message = stop
            return model
    result.fit_time_s = time.perf_counter() - fit_began
    assert result.steps_per_epoch is not None  # set by SklearnRunner.run
    result.step_time_ms = steady_step_time_ms(
        result.history["train_time_s"], result.steps_per_epoch
    )
    result.tested_epoch = trial.training.epochs
    result.test = _scores(model, task, *splits["test"], classes)
    if task == "regression" and len(splits["val"][0]):
        scores = _scores(model, task, *splits["val"], classes)
        result.val = {"r2": scores["r2"], "mae": scores["mae"]}
    return model


def _scores(model, task: str, X: np.ndarray, y: np.ndarray, classes) -> dict[str, float]:
    """Keras' metrics computed with scikit-learn: cross-entropy (natural log) and accuracy, or
    mean squared error, R² and MAE."""
    from sklearn.metrics import log_loss, mean_absolute_error, mean_squared_error, r2_score

    if task == "classification":
        probabilities = model.predict_proba(X)
        return {
            "loss": float(log_loss(y, probabilities, labels=classes)),
            "accuracy": float(model.score(X, y)),
        }
    predicted = model.predict(X)
    return {
        "loss": float(mean_squared_error(y, predicted)),
        "r2": float(r2_score(y, predicted)),
        "mae": float(mean_absolute_error(y, predicted)),
    }
