"""`load_dataset`: a built-in name or a file, as deterministic train/val/test splits (stratified
for classification) with float32 features; `check_dataset` and `dataset_task` without loading.

Imports no deep-learning framework.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mlpsuite.data.builtin import (
    BUILTIN_NAMES,
    BUNDLED,
    SYNTHETIC,
    builtin_name,
    builtin_task,
    check_options,
    load_builtin,
)
from mlpsuite.data.files import infer_task, looks_like_file, read_file
from mlpsuite.data.splits import (
    Dataset,
    check_fractions,
    check_task,
    checked_features,
    encoded_target,
    split,
)


def load_dataset(
    name_or_path: str | Path,
    *,
    seed: int = 0,
    test_size: float = 0.2,
    val_size: float = 0.1,
    target: str | None = None,
    task: str | None = None,
    **options: Any,
) -> Dataset:
    """Load a built-in dataset or a file and split it deterministically in `seed`.

    The test and validation splits take `ceil(fraction * rows)` rows each, the training
    split the rest; classification splits are stratified (each keeps the classes'
    proportions). Imports no deep-learning framework.

    Args:
        name_or_path: a built-in name (`BUILTIN_NAMES`) or a `.csv`, `.npz` (arrays `X`,
            `y`) or `.parquet` file.
        seed: seeds the synthetic generators and the splits.
        test_size: the test split's fraction of all rows, in (0, 1).
        val_size: the validation split's fraction of all rows; may be 0 (no validation
            split). `test_size + val_size` must be below 1.
        target: the target column of a CSV/Parquet file (default: a column named "target").
        task: "classification" or "regression"; inferred when None (integer, boolean or
            string targets are classes, float targets are regression).
        **options: generator options for synthetic sets, e.g. `n_samples=1000, noise=0.3`.

    Returns:
        The train/val/test splits (`Dataset`): float32 features of shape `(rows, features)`;
            int32 class indices (the labels' sorted order, `class_names`) or float32 targets of
            shape `(rows,)`.

    Raises:
        ValueError: a one-line message naming the problem, for any bad input: an unknown
            name, a missing or unreadable file, a missing target column, non-numeric or
            NaN features, options the dataset does not take, a task it cannot be, fractions
            out of range or too few rows to split.

    Examples:
        >>> from mlpsuite.data import load_dataset
        >>> iris = load_dataset("iris", seed=0)
        >>> iris.task, iris.n_classes, iris.split_rows()
        ('classification', 3, {'train': 105, 'val': 15, 'test': 30})
        >>> iris.X_train.shape, iris.X_train.dtype, iris.y_train.dtype
        ((105, 4), dtype('float32'), dtype('int32'))

        A synthetic set takes generator options; `val_size=0` leaves no validation rows:

        >>> moons = load_dataset("moons", seed=1, n_samples=200, noise=0.3, val_size=0)
        >>> moons.split_rows()
        {'train': 160, 'val': 0, 'test': 40}
        >>> load_dataset("moons", n_sample=200)
        Traceback (most recent call last):
        ...
        ValueError: moons: unknown options ['n_sample']; allowed: n_samples, shuffle, noise
    """
    check_fractions(test_size, val_size)
    rng = np.random.default_rng(seed)
    label = check_dataset(name_or_path, options)
    if label in BUILTIN_NAMES:
        if target is not None:
            raise ValueError(
                f"{label}: target= applies only to .csv and .parquet files, got {target!r}"
            )
        X, y, feature_names, own_task = load_builtin(label, rng, options)
        task = builtin_task(label, own_task, task)
    else:
        X, y, feature_names = read_file(Path(label), target)
        task = check_task(task, label) if task else infer_task(y, label)
    X = checked_features(X, feature_names, label)
    y, classes = encoded_target(y, task, label)
    return split(label, task, X, y, classes, feature_names, seed, test_size, val_size)


def check_dataset(name_or_path: str | Path, options: dict[str, Any]) -> str:
    """Validate a dataset reference without loading it; returns the canonical name or path.

    Raises:
        ValueError: unknown name, missing file, or options the dataset does not take.
    """
    label = str(name_or_path)
    if looks_like_file(label):
        if not Path(label).is_file():
            raise ValueError(f"Dataset file not found: {_where(label)}")
        if options:
            raise ValueError(f"{label}: options {sorted(options)} apply only to synthetic datasets")
        return label
    name = builtin_name(label)
    check_options(name, options)
    return name


def _where(label: str) -> str:
    """A missing file's resolved absolute path and, when it was given relative, what to."""
    if Path(label).is_absolute():
        return str(Path(label).resolve())
    return f"{Path(label).resolve()} (paths are relative to the working directory, {Path.cwd()})"


def dataset_task(
    name_or_path: str | Path, target: str | None = None, task: str | None = None
) -> str:
    """The task, "classification" or "regression": `task` if given, else a built-in's own,
    else read from a file's target column (an ambiguous column raises, asking for `task`)."""
    label = str(name_or_path)
    if label in BUILTIN_NAMES:
        return builtin_task(label, {**BUNDLED, **SYNTHETIC}[label][0], task)
    if task:
        return check_task(task, label)
    return infer_task(read_file(Path(label), target)[1], label)
