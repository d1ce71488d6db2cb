"""Datasets from files: CSV and Parquet (a target column) and NPZ (arrays `X`, `y`), each read
with its own checks and one-line errors, and a target's task inferred only where it is clear."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mlpsuite.data.splits import check_no_missing

FILE_SUFFIXES: tuple[str, ...] = (".csv", ".npz", ".parquet")
MAX_AUTO_CLASSES = 50  # more distinct integer labels than this: ask, do not guess
# pandas loads on first use: a config that names no file never pays for it.


def looks_like_file(label: str) -> bool:
    """Whether a dataset reference names a file (a known suffix or a path separator)."""
    return Path(label).suffix.lower() in FILE_SUFFIXES or "/" in label or "\\" in label


def read_file(path: Path, target: str | None):
    """`(X, y, feature names)` of a CSV, Parquet or NPZ file; the target is the `target`
    column (default "target") or the NPZ's `y`. Each problem is one ValueError line naming the
    file (and the row or column)."""
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path)
    if suffix not in (".csv", ".parquet"):
        raise ValueError(
            f"{path}: unsupported file type {suffix!r}; use {', '.join(FILE_SUFFIXES)}"
        )
    import pandas as pd

    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    except Exception as error:  # parser errors come in many types; the message is what matters
        raise ValueError(f"{path}: cannot read: {_first_line(error)}") from None
    if frame.empty:
        raise ValueError(f"{path}: no data rows (columns {list(frame.columns)})")
    column = target or "target"
    if column not in frame.columns:
        hint = "pass target= one of" if target is None else "columns are"
        raise ValueError(f"{path}: no target column {column!r}; {hint} {list(frame.columns)}")
    y = frame[column].to_numpy()
    features = frame.drop(columns=[column])
    non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        first = features[non_numeric[0]]
        row = (
            int(np.flatnonzero(pd.to_numeric(first, errors="coerce").isna() & first.notna())[0]) + 1
        )
        raise ValueError(
            f"{path}: non-numeric feature columns {non_numeric}, the first text in "
            f"column {non_numeric[0]!r} at data row {row}: {first.iloc[row - 1]!r}"
        )
    return features.to_numpy(), y, tuple(map(str, features.columns))


def _read_npz(path: Path):
    try:  # np.load reads a file that is not a zip archive as a pickle, and refuses it
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in ("X", "y") if key in archive.files}
            found = list(archive.files)
    except Exception as error:
        raise ValueError(f"{path}: cannot read as an .npz archive: {_first_line(error)}") from None
    missing = [key for key in ("X", "y") if key not in arrays]
    if missing:
        raise ValueError(f"{path}: missing arrays {missing}; found {found}")
    X, y = arrays["X"], arrays["y"]
    if X.ndim != 2 or y.ndim != 1 or len(X) != len(y):
        raise ValueError(
            f"{path}: expected X of shape (rows, features) and y of shape (rows,), "
            f"got {X.shape} and {y.shape}"
        )
    if not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"{path}: non-numeric X of dtype {X.dtype}")
    return X, y, tuple(f"x{i}" for i in range(X.shape[1]))


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def infer_task(y: np.ndarray, label: str) -> str:
    """Strings and booleans are classes, fractional floats regression; whole-number floats and
    integers with many values could be either, so the user says which."""
    y = np.asarray(y)
    check_no_missing(y, label)  # before guessing: pandas makes an integer column with gaps float
    if y.dtype.kind in "bOSU":
        return "classification"
    values = y[np.isfinite(y)] if y.dtype.kind == "f" else y
    distinct = len(np.unique(values))
    if y.dtype.kind == "f" and not np.all(values == np.round(values)):
        return "regression"
    if y.dtype.kind == "f" or distinct > MAX_AUTO_CLASSES:
        what = (
            f"float target holds only whole numbers ({distinct} distinct values)"
            if y.dtype.kind == "f"
            else f"integer target has {distinct} distinct values"
        )
        raise ValueError(
            f"{label}: the {what}: classes or a quantity? "
            "set dataset.task to classification or regression"
        )
    return "classification"
