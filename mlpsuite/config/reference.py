"""What scikit-learn's MLP, the reference backend, can run: known to the planner (a note before
the grid runs) and to the worker (`trial/sklearn_backend.py`), without importing scikit-learn."""

from __future__ import annotations

from mlpsuite.config.grid import Trial

NAME = "sklearn"
ACTIVATIONS = {"identity": "identity", "sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}
SOLVERS = {
    "sgd": ("sgd", 0.0, False),
    "momentum": ("sgd", None, False),
    "nesterov": ("sgd", None, True),
    "adam": ("adam", 0.9, False),
}  # name -> (solver, momentum or None for the trial's, nesterov)
LOSSES = {"classification": "sparse_categorical_crossentropy", "regression": "mse"}
UNSUPPORTED = "not available in scikit-learn"


def unsupported(trial: Trial) -> str | None:
    """Why scikit-learn cannot run `trial` (one line naming what it offers instead), or None."""
    if trial.model.activation.name not in ACTIVATIONS:
        return (
            f"activation {trial.model.activation.name} is {UNSUPPORTED}; it has identity, "
            "sigmoid (logistic), tanh, relu"
        )
    if trial.model.activation.params:
        return f"activation parameters {trial.model.activation.params} are {UNSUPPORTED}"
    if trial.optimizer.name not in SOLVERS:
        return (
            f"optimizer {trial.optimizer.name} is {UNSUPPORTED}; "
            "it has sgd, momentum, nesterov, adam"
        )
    if trial.optimizer.schedule is not None:
        return (
            f"a {trial.optimizer.schedule.name} learning-rate schedule is {UNSUPPORTED} "
            "(constant rate only)"
        )
    if trial.model.dropout > 0:
        return f"dropout is {UNSUPPORTED}"
    if trial.training.early_stopping is not None:
        return "early stopping on mlpsuite's validation split is " + UNSUPPORTED
    if trial.loss not in LOSSES.values():
        return (
            f"loss {trial.loss} is {UNSUPPORTED}; "
            "it has sparse_categorical_crossentropy (classification), mse"
        )
    return None


def sklearn_note(trials: list[Trial]) -> str | None:
    """One line saying how many sklearn trials will be FAILED runs, and the first reason."""
    reasons = [
        reason for trial in trials if trial.backend == NAME and (reason := unsupported(trial))
    ]
    if not reasons:
        return None
    return (
        f"sklearn: {len(reasons)} trials will be FAILED runs (the grid goes on), e.g. {reasons[0]}"
    )
