"""The built-in datasets: scikit-learn's bundled toy sets and synthetic 2-D problems, with the
options each generator takes (checked against its signature, never guessed)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mlpsuite.data.files import FILE_SUFFIXES
from mlpsuite.data.splits import check_task
from mlpsuite.registry import did_you_mean, fold_name

# scikit-learn loads on first use: validating a config, and `mlpsuite --help`, never pay for it.


def _spirals(
    n_samples: int = 600,
    noise: float = 0.2,
    n_classes: int = 2,
    turns: float = 1.5,
    *,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Interleaved spiral arms, one per class: not separable by any small linear model."""
    labels = np.arange(n_samples) % n_classes
    radius = rng.uniform(0.05, 1.0, n_samples)
    angle = (
        radius * turns * 2 * np.pi
        + labels * 2 * np.pi / n_classes
        + rng.normal(0.0, noise, n_samples)
    )
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
MAX_SYNTHETIC_ROWS = 10_000_000  # a generated set this size is already ~1 GB; more is a typo
_OPTION_DEFAULTS = {
    "moons": {"n_samples": 500, "noise": 0.2},
    "circles": {"n_samples": 500, "noise": 0.1, "factor": 0.5},
    "blobs": {"n_samples": 500, "centers": 3},
    "friedman1": {"n_samples": 500, "noise": 1.0},
}


def check_options(name: str, options: dict[str, Any]) -> None:
    """Refuse options a built-in dataset does not take: any for a bundled set; for a synthetic
    one, names its generator lacks and values not of their default's kind (or too many rows)."""
    if name in BUNDLED:
        if options:
            raise ValueError(f"{name}: takes no options, got {sorted(options)}")
        return
    parameters = {
        p.name: p
        for p in inspect.signature(SYNTHETIC[name][1]).parameters.values()
        if p.name not in ("rng", "random_state")
    }
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        raise ValueError(f"{name}: unknown options {unknown}; allowed: {', '.join(parameters)}")
    for option, value in options.items():
        _check_option_value(name, option, value, parameters[option].default)


def _check_option_value(name: str, option: str, value: Any, default: Any) -> None:
    """An option takes its default's kind (no `true` for a count), and no more rows than fit."""
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    default_numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
    if default_numeric and (
        not numeric or (isinstance(default, int) and not isinstance(value, int))
    ):
        kind = "an integer" if isinstance(default, int) else "a number"
        raise ValueError(f"{name}: option {option} must be {kind}, got {value!r}")
    if option == "n_samples" and numeric and value > MAX_SYNTHETIC_ROWS:
        raise ValueError(
            f"{name}: option n_samples must be at most {MAX_SYNTHETIC_ROWS:,}, got {value:,}"
        )


def builtin_name(label: str) -> str:
    """The built-in dataset's own name for `label` (case-insensitive, `-`/`_` ignored); a
    ValueError suggesting the closest one when there is none."""
    by_folded = {fold_name(name): name for name in BUILTIN_NAMES}
    name = by_folded.get(fold_name(label))
    if name is None:
        raise ValueError(
            f"Unknown dataset {label!r}; {did_you_mean(label, BUILTIN_NAMES)}"
            f"valid names: {', '.join(BUILTIN_NAMES)}, "
            f"or a path ending in {', '.join(FILE_SUFFIXES)}"
        )
    return name


def load_builtin(name: str, rng: np.random.Generator, options: dict[str, Any]):
    """`(X, y, feature names, task)` of a built-in dataset: a bundled one from the cache,
    a synthetic one generated from `rng` with its default options under `options`."""
    if name in BUNDLED:
        return _bundled(name)
    task, generate = SYNTHETIC[name]
    options = {**_OPTION_DEFAULTS.get(name, {}), **options}
    try:
        X, y = generate(rng=rng, **options)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name}: bad options {options}: {error}") from None
    return X, y, tuple(f"x{i}" for i in range(X.shape[1])), task


def _bundled(name: str):
    """A dataset that ships inside scikit-learn, kept as .npz in the user's cache folder per
    scikit-learn version: importing scikit-learn to read 150 rows of iris costs ~1.5 s, a
    price every `mlpsuite run` (its data checks) and every Keras worker paid."""
    task, loader = BUNDLED[name]
    folder = dataset_cache_dir()
    if folder is None:
        return _read_bundled(name)
    version = importlib.metadata.version("scikit-learn")
    cached = folder / f"{name}-sklearn-{version}.npz"
    try:
        with np.load(cached, allow_pickle=False) as stored:
            names = tuple(str(feature) for feature in stored["feature_names"])
            return stored["data"], stored["target"], names, task
    except (OSError, KeyError, ValueError):  # not cached yet, or a damaged file: read it again
        pass
    data, target, names, task = _read_bundled(name)
    with contextlib.suppress(OSError):  # a cache folder not writable: no cache, same data
        cached.parent.mkdir(parents=True, exist_ok=True)
        # Written aside, then renamed: a concurrent reader sees the whole file or none.
        partial = cached.with_name(f"{cached.stem}.{os.getpid()}.partial.npz")
        np.savez(partial, data=data, target=target, feature_names=np.array(names))
        os.replace(partial, cached)
    return data, target, names, task


def _read_bundled(name: str):
    from sklearn import datasets

    task, loader = BUNDLED[name]
    bunch = getattr(datasets, loader)()
    return bunch.data, bunch.target, tuple(map(str, bunch.feature_names)), task


def dataset_cache_dir() -> Path | None:
    """`$MLPSUITE_CACHE_DIR/datasets` (`none`: no cache), else the user's cache folder's
    `mlpsuite/datasets`, as for JAX's compiled programs (executors/wire.py)."""
    chosen = os.environ.get("MLPSUITE_CACHE_DIR")
    if chosen and chosen.lower() == "none":
        return None
    if chosen:
        return Path(chosen) / "datasets"
    return (
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlpsuite" / "datasets"
    )


def builtin_task(label: str, own: str, asked: str | None) -> str:
    """A built-in dataset's own task; a ValueError when `asked` is another."""
    if asked and check_task(asked, label) != own:
        raise ValueError(f"{label} is a {own} dataset; task must be auto or {own}, got {asked!r}")
    return own
