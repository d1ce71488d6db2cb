"""Name lookups shared by layers, initializers and (later) config validation; no Keras import."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

# How alike a mistyped name must be to a valid one to be suggested (difflib's ratio): 0.7 takes
# 'adma' for 'adam' and 'trainig' for 'training', not 'mnist' for 'moons'.
CLOSE_MATCH_CUTOFF = 0.7


def fold_name(name: str) -> str:
    """Case-insensitive key with `-`/`_` folded away: "Leaky-ReLU" == "leaky_relu"."""
    return name.lower().replace("-", "").replace("_", "")


def close_match(name: Any, names: Iterable[str]) -> str | None:
    """The one of `names` closest to a mistyped `name` (`difflib.get_close_matches`, spellings
    folded as `fold_name` does), or None where none is close."""
    if not isinstance(name, str):
        return None
    by_folded = {fold_name(candidate): candidate for candidate in names}
    close = difflib.get_close_matches(fold_name(name), by_folded, n=1, cutoff=CLOSE_MATCH_CUTOFF)
    return by_folded[close[0]] if close else None


def did_you_mean(name: Any, names: Iterable[str]) -> str:
    """The hint "did you mean 'relu'? " (with its trailing space) for the close match, else
    ""."""
    match = close_match(name, names)
    return f"did you mean {match!r}? " if match else ""


def lookup(registry: dict[str, Any], name: Any, kind: str) -> Any:
    """The entry registered under `name`, or a ValueError that lists the valid names."""
    if not isinstance(name, str):
        raise ValueError(f"Expected a string {kind} name, got {type(name).__name__}: {name!r}")
    by_folded = {fold_name(key): value for key, value in registry.items()}
    entry = by_folded.get(fold_name(name))
    if entry is None:
        valid = ", ".join(sorted(registry))
        hint = did_you_mean(name, registry)
        raise ValueError(f"Unknown {kind} {name!r}; {hint}valid names: {valid}")
    return entry


# The activation layers' names and constructor arguments, without importing Keras, so the
# coordinator can validate a config. tests/test_config_names.py checks them against the layers.
ACTIVATION_PARAMS: dict[str, dict[str, type]] = {
    "identity": {},
    "step": {},
    "sigmoid": {},
    "tanh": {},
    "hard_sigmoid": {},
    "relu": {},
    "leaky_relu": {"alpha": float},
    "elu": {"alpha": float},
    "selu": {},
    "gelu": {"approximate": bool},
    "swish": {"beta": float, "trainable_beta": bool},
    "softplus": {},
    "mish": {},
    "prelu": {"alpha_init": float},
}

SCALER_NAMES: tuple[str, ...] = ("none", "minmax", "robust", "standard")

# The figures of `mlpsuite figures`, so the CLI can offer them without importing Keras;
# mlpsuite/figures/__init__.py checks them against its FIGURES.
FIGURE_NAMES: tuple[str, ...] = (
    "activations",
    "scalers",
    "optimizers",
    "gradients",
    "dead_units",
    "landscape",
)
# Those drawn only from a grid's diagnostics in MLflow: `mlpsuite figures` needs --experiment.
EXPERIMENT_FIGURES: tuple[str, ...] = ("dead_units",)
# Those drawn around one run's saved model: `mlpsuite figures` needs --run.
RUN_FIGURES: tuple[str, ...] = ("landscape",)

BACKENDS: tuple[str, ...] = ("tensorflow", "torch", "jax")  # Keras' backends: a grid's default
REFERENCE_BACKEND = "sklearn"  # scikit-learn's own MLP, run when a grid names it
BACKEND_ALIASES = {
    "tf": "tensorflow",
    "tensorflow": "tensorflow",
    "torch": "torch",
    "pytorch": "torch",
    "jax": "jax",
    "sklearn": REFERENCE_BACKEND,
    "scikit-learn": REFERENCE_BACKEND,
    "scikit_learn": REFERENCE_BACKEND,
}
ALLOWED_BACKENDS = "tensorflow (tf), torch (pytorch), jax, sklearn (scikit-learn)"


def canonical_name(names: Iterable[str], name: Any, kind: str) -> str:
    """The registry's own spelling of `name` ("Leaky-ReLU" -> "leaky_relu")."""
    return lookup({key: key for key in names}, name, kind)


# Metrics a comparison can rank, select on or report, and whether lower ("min") or higher
# ("max") is better: the run's final scores, and the learning-curve measures of
# mlpsuite/learning_curves.py (`epochs_to_target` and `time_to_target_s` with a target only).
RANKABLE: dict[str, str] = {
    "val_loss": "min",
    "best_val_loss": "min",
    "loss": "min",
    "test_loss": "min",
    "test_accuracy": "max",
    "val_accuracy": "max",
    "test_r2": "max",
    "val_r2": "max",
    "test_mae": "min",
    "val_mae": "min",
    "auc_val_loss": "min",
    "epochs_to_target": "min",
    "time_to_target_s": "min",
}
TARGET_MEASURES: tuple[str, ...] = ("epochs_to_target", "time_to_target_s")
