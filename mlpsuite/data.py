"""Datasets: sklearn's bundled toy sets, synthetic 2-D problems, and CSV/NPZ/Parquet files.

`load_dataset` returns deterministic train/val/test splits (stratified for classification)
with float32 features. It imports no deep-learning framework.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlpsuite.registry import fold_name

# scikit-learn and pandas load on first use: validating a config that names no file and no
# generator options, and `mlpsuite --help`, never pay for them.


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
        return self.X_train.shape[1]

    @property
    def output_dim(self) -> int:
        """Units of the model's last layer: one per class, or 1 for regression."""
        return self.n_classes if self.task == "classification" else 1


# ---------------------------------------------------------------- synthetic generators


def _spirals(n_samples: int = 600, noise: float = 0.2, n_classes: int = 2, turns: float = 1.5,
             *, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class: not separable by any small linear model."""
    labels = np.arange(n_samples) % n_classes
    radius = rng.uniform(0.05, 1.0, n_samples)
    angle = (radius * turns * 2 * np.pi + labels * 2 * np.pi / n_classes
             + rng.normal(0.0, noise, n_samples))
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    return X, labels


def _xor(n_samples: int = 400, noise: float = 0.1, *, rng: np.random.Generator):
    """Four Gaussian clusters at (±1, ±1); label = sign(x0) XOR sign(x1)."""
    corners = rng.integers(0, 2, size=(n_samples, 2))
    X = (2.0 * corners - 1.0) + rng.normal(0.0, noise, size=(n_samples, 2))
    return X, corners[:, 0] ^ corners[:, 1]


class _SklearnGenerator:
    """A scikit-learn `make_*` function behind the `(…, rng=)` signature used here."""

    def __init__(self, function_name: str):
        self.function_name = function_name

    def function(self) -> Callable:
        from sklearn import datasets

        return getattr(datasets, self.function_name)

    def __call__(self, *, rng: np.random.Generator, **options):
        return self.function()(random_state=int(rng.integers(2**31 - 1)), **options)

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self.function())


# name -> (task, generator). Generators take keyword options and `rng`.
SYNTHETIC: dict[str, tuple[str, Callable]] = {
    "moons": ("classification", _SklearnGenerator("make_moons")),
    "circles": ("classification", _SklearnGenerator("make_circles")),
    "spirals": ("classification", _spirals),
    "xor": ("classification", _xor),
    "blobs": ("classification", _SklearnGenerator("make_blobs")),
    "friedman1": ("regression", _SklearnGenerator("make_friedman1")),
}

# name -> (task, sklearn.datasets loader); all ship inside scikit-learn, nothing is downloaded.
BUNDLED: dict[str, tuple[str, str]] = {
    "digits": ("classification", "load_digits"),
    "iris": ("classification", "load_iris"),
    "wine": ("classification", "load_wine"),
    "breast_cancer": ("classification", "load_breast_cancer"),
    "diabetes": ("regression", "load_diabetes"),
}

BUILTIN_NAMES: tuple[str, ...] = (*BUNDLED, *SYNTHETIC)
FILE_SUFFIXES: tuple[str, ...] = (".csv", ".npz", ".parquet")
MAX_AUTO_CLASSES = 50  # more distinct integer labels than this: ask, do not guess
MAX_SYNTHETIC_ROWS = 10_000_000  # a generated set this size is already ~1 GB; more is a typo
_OPTION_DEFAULTS = {"moons": {"n_samples": 500, "noise": 0.2},
                    "circles": {"n_samples": 500, "noise": 0.1, "factor": 0.5},
                    "blobs": {"n_samples": 500, "centers": 3},
                    "friedman1": {"n_samples": 500, "noise": 1.0}}


# ---------------------------------------------------------------- public entry point


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

    Args:
        name_or_path: a built-in name (`BUILTIN_NAMES`) or a `.csv`, `.npz` (arrays `X`,
            `y`) or `.parquet` file.
        seed: seeds the synthetic generators and the splits.
        test_size, val_size: fractions of all rows; val_size may be 0.
        target: the target column of a CSV/Parquet file (default: a column named "target").
        task: "classification" or "regression"; inferred when None (integer, boolean or
            string targets are classes, float targets are regression).
        **options: generator options for synthetic sets, e.g. `n_samples=1000, noise=0.3`.
    Raises:
        ValueError: a one-line message naming the problem, for any bad input.
    """
    _check_fractions(test_size, val_size)
    rng = np.random.default_rng(seed)
    label = check_dataset(name_or_path, options)
    if label in BUILTIN_NAMES:
        if target is not None:
            raise ValueError(f"{label}: target= applies only to .csv and .parquet files, got {target!r}")
        X, y, feature_names, builtin_task = _load_builtin(label, rng, options)
        task = _builtin_task(label, builtin_task, task)
    else:
        X, y, feature_names = _read_file(Path(label), target)
        task = _check_task(task, label) if task else _infer_task(y, label)
    X = _checked_features(X, feature_names, label)
    y, classes = _encoded_target(y, task, label)
    return _split(label, task, X, y, classes, feature_names, seed, test_size, val_size)


def check_dataset(name_or_path: str | Path, options: dict[str, Any]) -> str:
    """Validate a dataset reference without loading it; returns the canonical name or path.

    Raises:
        ValueError: unknown name, missing file, or options the dataset does not take.
    """
    label = str(name_or_path)
    if _looks_like_file(label):
        if not Path(label).is_file():
            raise ValueError(f"Dataset file not found: {label}")
        if options:
            raise ValueError(f"{label}: options {sorted(options)} apply only to synthetic datasets")
        return label
    name = _builtin_name(label)
    _check_options(name, options)
    return name


def dataset_task(name_or_path: str | Path, target: str | None = None, task: str | None = None) -> str:
    """"classification" or "regression": `task` if given, else a built-in's own, else read
    from a file's target column (an ambiguous column raises, asking for `task`)."""
    label = str(name_or_path)
    if label in BUILTIN_NAMES:
        return _builtin_task(label, {**BUNDLED, **SYNTHETIC}[label][0], task)
    if task:
        return _check_task(task, label)
    return _infer_task(_read_file(Path(label), target)[1], label)


# ---------------------------------------------------------------- loading


def _check_options(name: str, options: dict[str, Any]) -> None:
    if name in BUNDLED:
        if options:
            raise ValueError(f"{name}: takes no options, got {sorted(options)}")
        return
    parameters = {p.name: p for p in inspect.signature(SYNTHETIC[name][1]).parameters.values()
                  if p.name not in ("rng", "random_state")}
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        raise ValueError(f"{name}: unknown options {unknown}; allowed: {', '.join(parameters)}")
    for option, value in options.items():
        _check_option_value(name, option, value, parameters[option].default)


def _check_option_value(name: str, option: str, value: Any, default: Any) -> None:
    """An option takes its default's kind (no `true` for a count), and no more rows than fit."""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        if not numeric or (isinstance(default, int) and not isinstance(value, int)):
            kind = "an integer" if isinstance(default, int) else "a number"
            raise ValueError(f"{name}: option {option} must be {kind}, got {value!r}")
    if option == "n_samples" and numeric and value > MAX_SYNTHETIC_ROWS:
        raise ValueError(f"{name}: option n_samples must be at most {MAX_SYNTHETIC_ROWS:,}, got {value:,}")


def _looks_like_file(label: str) -> bool:
    return Path(label).suffix.lower() in FILE_SUFFIXES or "/" in label or "\\" in label


def _builtin_name(label: str) -> str:
    by_folded = {fold_name(name): name for name in BUILTIN_NAMES}
    name = by_folded.get(fold_name(label))
    if name is None:
        raise ValueError(
            f"Unknown dataset {label!r}; valid names: {', '.join(BUILTIN_NAMES)}, "
            f"or a path ending in {', '.join(FILE_SUFFIXES)}"
        )
    return name


def _load_builtin(name: str, rng: np.random.Generator, options: dict[str, Any]):
    if name in BUNDLED:
        from sklearn import datasets

        task, loader = BUNDLED[name]
        bunch = getattr(datasets, loader)()
        return bunch.data, bunch.target, tuple(map(str, bunch.feature_names)), task
    task, generate = SYNTHETIC[name]
    options = {**_OPTION_DEFAULTS.get(name, {}), **options}
    try:
        X, y = generate(rng=rng, **options)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: bad options {options}: {error}") from None
    return X, y, tuple(f"x{i}" for i in range(X.shape[1])), task


def _read_file(path: Path, target: str | None):
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path)
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"{path}: unsupported file type {suffix!r}; use {', '.join(FILE_SUFFIXES)}")
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
        row = int(np.flatnonzero(pd.to_numeric(first, errors="coerce").isna() & first.notna())[0]) + 1
        raise ValueError(f"{path}: non-numeric feature columns {non_numeric}, the first text in "
                         f"column {non_numeric[0]!r} at data row {row}: {first.iloc[row - 1]!r}")
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
        raise ValueError(f"{path}: expected X of shape (rows, features) and y of shape (rows,), "
                         f"got {X.shape} and {y.shape}")
    if not np.issubdtype(X.dtype, np.number):
        raise ValueError(f"{path}: non-numeric X of dtype {X.dtype}")
    return X, y, tuple(f"x{i}" for i in range(X.shape[1]))


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


# ---------------------------------------------------------------- checks and encoding


def _check_fractions(test_size: float, val_size: float) -> None:
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"Expected 0 < test_size < 1, got {test_size!r}")
    if not 0.0 <= val_size < 1.0 or test_size + val_size >= 1.0:
        raise ValueError(f"Expected 0 <= val_size and test_size + val_size < 1, got "
                         f"test_size={test_size!r}, val_size={val_size!r}")


def _check_task(task: str, label: str) -> str:
    if task not in ("classification", "regression"):
        raise ValueError(f"{label}: unknown task {task!r}; valid: classification, regression")
    return task


def _builtin_task(label: str, own: str, asked: str | None) -> str:
    if asked and _check_task(asked, label) != own:
        raise ValueError(f"{label} is a {own} dataset; task must be auto or {own}, got {asked!r}")
    return own


def _infer_task(y: np.ndarray, label: str) -> str:
    """Strings and booleans are classes, fractional floats regression; whole-number floats and
    integers with many values could be either, so the user says which."""
    y = np.asarray(y)
    _check_no_missing(y, label)  # before guessing: pandas makes an integer column with gaps float
    if y.dtype.kind in "bOSU":
        return "classification"
    values = y[np.isfinite(y)] if y.dtype.kind == "f" else y
    distinct = len(np.unique(values))
    if y.dtype.kind == "f" and not np.all(values == np.round(values)):
        return "regression"
    if y.dtype.kind == "f" or distinct > MAX_AUTO_CLASSES:
        what = (f"float target holds only whole numbers ({distinct} distinct values)" if y.dtype.kind == "f"
                else f"integer target has {distinct} distinct values")
        raise ValueError(f"{label}: the {what}: classes or a quantity? "
                         "set dataset.task to classification or regression")
    return "classification"


def _checked_features(X: np.ndarray, feature_names: tuple[str, ...], label: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[1] == 0:
        raise ValueError(f"{label}: no feature columns besides the target")
    bad = ~np.isfinite(X)
    if bad.any():
        columns = [feature_names[i] for i in np.flatnonzero(bad.any(axis=0))]
        first_row = int(np.flatnonzero(bad.any(axis=1))[0]) + 1
        raise ValueError(f"{label}: {int(bad.sum())} NaN or infinite feature values in columns {columns}, "
                         f"the first in data row {first_row}")
    return X.astype(np.float32)


def _check_no_missing(y: np.ndarray, label: str) -> None:
    import pandas as pd  # isna knows None, NaN and pandas' NA in object columns alike

    missing = int(pd.isna(y).sum())
    if missing:
        raise ValueError(f"{label}: {missing} missing target values")


def _encoded_target(y: np.ndarray, task: str, label: str) -> tuple[np.ndarray, tuple[str, ...] | None]:
    """Regression targets as float32; class labels (numbers or strings) as int32 codes in the
    labels' sorted order, with the labels themselves."""
    y = np.asarray(y)
    _check_no_missing(y, label)
    if task == "regression":
        if not np.issubdtype(y.dtype, np.number):
            raise ValueError(f"{label}: regression needs a numeric target, got dtype {y.dtype}")
        return y.astype(np.float32), None
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"{label}: classification needs at least 2 classes, got {len(classes)}")
    return codes.astype(np.int32), tuple(str(c) for c in classes)


def _split(label, task, X, y, classes, feature_names, seed, test_size, val_size) -> Dataset:
    n_rows = len(X)
    n_test = math.ceil(test_size * n_rows)
    n_val = math.ceil(val_size * n_rows)
    if n_rows - n_test - n_val < 1:
        raise ValueError(f"{label}: {n_rows} rows are too few for test_size={test_size} "
                         f"and val_size={val_size}")
    from sklearn.model_selection import train_test_split

    stratify = task == "classification"
    try:
        X_rest, X_test, y_rest, y_test = train_test_split(
            X, y, test_size=n_test, random_state=seed, stratify=y if stratify else None)
        if n_val:
            X_train, X_val, y_train, y_val = train_test_split(
                X_rest, y_rest, test_size=n_val, random_state=seed,
                stratify=y_rest if stratify else None)
        else:
            X_train, y_train = X_rest, y_rest
            X_val, y_val = X_rest[:0], y_rest[:0]
    except ValueError:
        smallest = int(np.unique(y, return_counts=True)[1].min()) if stratify else 0
        raise ValueError(f"{label}: {n_rows} rows are too few for a stratified split with test_size={test_size}, "
                         f"val_size={val_size}: the smallest of {len(np.unique(y))} classes has {smallest} rows") from None
    return Dataset(label, task, X_train, y_train, X_val, y_val, X_test, y_test,
                   len(classes) if classes else None, tuple(feature_names), classes or ())
