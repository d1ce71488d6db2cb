"""A dataset's train/val/test splits (`Dataset`) and what every source goes through on the way:
feature and target checks, class labels as codes, the deterministic (stratified) split."""

from __future__ import annotations

import dataclasses
import math
from typing import cast

import numpy as np

TASKS = ("classification", "regression")


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
    """Train/val/test splits of one dataset.

    `X_*` are float32 arrays of shape `(rows, features)`; `y_*` are int32 class indices of
    shape `(rows,)` for classification and float32 targets of shape `(rows,)` for regression.
    `n_classes` is None for regression.
    """

    name: str
    task: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int | None
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] = ()  # the label of each class index, in sorted order

    @property
    def input_dim(self) -> int:
        """The number of features: the model's input width."""
        return self.X_train.shape[1]

    def split_rows(self) -> dict[str, int]:
        """Rows of each split: `{"train": 90, "val": 30, "test": 30}`."""
        return {"train": len(self.X_train), "val": len(self.X_val), "test": len(self.X_test)}

    @property
    def output_dim(self) -> int:
        """Units of the model's last layer: one per class, or 1 for regression."""
        # n_classes is set for classification (None for regression only).
        return cast(int, self.n_classes) if self.task == "classification" else 1


def check_fractions(test_size: float, val_size: float) -> None:
    """Refuse split fractions that leave no training rows: 0 < test_size, 0 <= val_size, sum < 1."""
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"Expected 0 < test_size < 1, got {test_size!r}")
    if not 0.0 <= val_size < 1.0 or test_size + val_size >= 1.0:
        raise ValueError(
            f"Expected 0 <= val_size and test_size + val_size < 1, got "
            f"test_size={test_size!r}, val_size={val_size!r}"
        )


def check_task(task: str, label: str) -> str:
    """`task` if it is "classification" or "regression"; else a ValueError naming `label`."""
    if task not in ("classification", "regression"):
        raise ValueError(f"{label}: unknown task {task!r}; valid: classification, regression")
    return task


def checked_features(X: np.ndarray, feature_names: tuple[str, ...], label: str) -> np.ndarray:
    """`X` as float32 `(rows, features)`; a ValueError for no feature columns or for NaN or
    infinite values (naming the columns and the first row)."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] == 0:
        raise ValueError(f"{label}: no feature columns besides the target")
    bad = ~np.isfinite(X)
    if bad.any():
        columns = [feature_names[i] for i in np.flatnonzero(bad.any(axis=0))]
        first_row = int(np.flatnonzero(bad.any(axis=1))[0]) + 1
        raise ValueError(
            f"{label}: {int(bad.sum())} NaN or infinite feature values in columns {columns}, "
            f"the first in data row {first_row}"
        )
    return X.astype(np.float32)


def check_no_missing(y: np.ndarray, label: str) -> None:
    """Refuse a target with missing values (None, NaN or pandas' NA)."""
    import pandas as pd  # isna knows None, NaN and pandas' NA in object columns alike

    missing = int(pd.isna(y).sum())
    if missing:
        raise ValueError(f"{label}: {missing} missing target values")


def encoded_target(
    y: np.ndarray, task: str, label: str
) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Regression targets as float32; class labels (numbers or strings) as int32 codes in the
    labels' sorted order, with the labels themselves."""
    y = np.asarray(y)
    check_no_missing(y, label)
    if task == "regression":
        if not np.issubdtype(y.dtype, np.number):
            raise ValueError(f"{label}: regression needs a numeric target, got dtype {y.dtype}")
        return y.astype(np.float32), None
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"{label}: classification needs at least 2 classes, got {len(classes)}")
    return codes.astype(np.int32), tuple(str(c) for c in classes)


def split(label, task, X, y, classes, feature_names, seed, test_size, val_size) -> Dataset:
    """The deterministic train/val/test split of `X`, `y` in `seed` (stratified for
    classification): test and val take `ceil(fraction * rows)` rows each. A ValueError when the
    rows are too few (or a class too small to stratify)."""
    n_rows = len(X)
    n_test = math.ceil(test_size * n_rows)
    n_val = math.ceil(val_size * n_rows)
    if n_rows - n_test - n_val < 1:
        raise ValueError(
            f"{label}: {n_rows} rows are too few for test_size={test_size} and val_size={val_size}"
        )
    from sklearn.model_selection import train_test_split

    stratify = task == "classification"
    try:
        # scikit-learn annotates no return type: arrays in, arrays out.
        X_rest, X_test, y_rest, y_test = cast(
            "list[np.ndarray]",
            train_test_split(
                X, y, test_size=n_test, random_state=seed, stratify=y if stratify else None
            ),
        )
        if n_val:
            X_train, X_val, y_train, y_val = cast(
                "list[np.ndarray]",
                train_test_split(
                    X_rest,
                    y_rest,
                    test_size=n_val,
                    random_state=seed,
                    stratify=y_rest if stratify else None,
                ),
            )
        else:
            X_train, y_train = X_rest, y_rest
            X_val, y_val = X_rest[:0], y_rest[:0]
    except ValueError:
        smallest = int(np.unique(y, return_counts=True)[1].min()) if stratify else 0
        raise ValueError(
            f"{label}: {n_rows} rows are too few for a stratified split with "
            f"test_size={test_size}, val_size={val_size}: the smallest of {len(np.unique(y))} "
            f"classes has {smallest} rows"
        ) from None
    return Dataset(
        label,
        task,
        X_train,
        y_train,
        X_val,
        y_val,
        X_test,
        y_test,
        len(classes) if classes else None,
        tuple(feature_names),
        classes or (),
    )
