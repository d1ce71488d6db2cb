"""Checks of a whole grid that need more than its schema: settings that no cell reads, every
dataset loaded once (readable, a task its loss fits, a model that fits in memory), and a
`compare:` protocol the grid's keys and recorded metrics can carry out.

A layer above `mlpsuite.config`: the API runs them before any store is opened (`plan`, so
`--dry-run`, through `checked_config`), never `load_config` itself. Each failure is one
`ConfigError` line naming the file and key.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import itertools
import json
import os
import shutil
from pathlib import Path
from typing import Any, cast

from mlpsuite.config import GridSpec, cell_spec, file_digest, load_config, source_path
from mlpsuite.config.compare import protocol_problem, recorded_metrics
from mlpsuite.config.grid import checked_cells
from mlpsuite.config.loading import Source
from mlpsuite.data import load_dataset
from mlpsuite.data.builtin import dataset_cache_dir
from mlpsuite.errors import ConfigError


def checked_config(source: Source, backends: str | None = None) -> GridSpec:
    """`load_config`, then every check of this module: a grid ready to run."""
    spec = load_config(source, backends)
    check_grid(spec, source_path(source))
    return spec


def check_grid(spec: GridSpec, path: Path) -> list[dict[str, Any]]:
    """Every check above the schema; the first failure raises one ConfigError line. Returns
    the rows of each dataset's splits (`[{"dataset": "iris", "train": 90, "val": 30, "test":
    30}]`; the grid's manifest keeps them for its comparison)."""
    resolved = [cell_spec(spec, cell, path) for cell in checked_cells(spec)]  # once, for all
    _check_grid_axes_matter(spec, resolved, path)
    _check_execution(spec, resolved, path)
    tasks, splits = _check_grid_data(resolved, path)
    _check_comparison(spec, resolved, tasks, path)
    return splits


def _check_comparison(
    spec: GridSpec, resolved: list[GridSpec], tasks: set[str], path: Path
) -> None:
    """Nuisance keys that are grid keys and leave one scientific; metrics every run records."""
    validation = all(cell.dataset.val_size > 0 for cell in resolved)
    recorded = recorded_metrics(tasks, validation, bool(spec.compare.target))
    curves = ["loss", *(["val_loss"] if validation else [])]
    if tasks == {"classification"}:
        curves += ["accuracy", *(["val_accuracy"] if validation else [])]
    problem = protocol_problem(
        spec.protocol(), spec.keys(), recorded, curves, searched=spec.search is not None
    )
    if problem is not None:
        field, message = problem
        raise ConfigError(f"{path}: compare.{field}: {message}")


def _check_grid_axes_matter(spec: GridSpec, resolved: list[GridSpec], path: Path) -> None:
    """A grid axis over a setting that no cell reads would make trials with identical results
    under different labels, so an ablation would seem to show that the setting has no effect."""
    for key in spec.grid:
        reasons = {cell.optimizer.ignored().get(key) for cell in resolved}
        if None not in reasons:
            ignored = cast("set[str]", reasons)  # no None: a reason from every cell
            raise ConfigError(
                f"{path}: grid.{key}: every cell ignores this setting ({sorted(ignored)[0]}); "
                "its values would give identical trials"
            )


def _check_execution(spec: GridSpec, resolved: list[GridSpec], path: Path) -> None:
    """Keras' speed switches where the backends can honour them."""
    if "training.steps_per_execution" in spec.grid:
        raise ConfigError(
            f"{path}: grid.training.steps_per_execution: it changes no result (it is in no trial "
            "key), so its cells would be one trial; allowed: a single value, one grid per setting"
        )
    for cell in resolved:
        training = cell.training
        if "torch" in cell.backends and training.steps_per_execution not in ("auto", 1):
            raise ConfigError(
                f"{path}: training.steps_per_execution: PyTorch runs one step per execution, "
                f"got {training.steps_per_execution}; allowed: auto (an epoch's on TensorFlow "
                "and JAX, 1 on PyTorch) or 1"
            )
        if training.vectorize != "none" and training.jit_compile is False:
            raise ConfigError(
                f"{path}: training.jit_compile: false contradicts training.vectorize: "
                f"{training.vectorize} (one XLA program for trials trained together); allowed: "
                "auto or true, or vectorize: none"
            )
        if "torch" in cell.backends and training.jit_compile is True:
            _check_cxx(path)


def _check_cxx(path: Path) -> None:
    """torch.compile (Inductor) writes C++ for the CPU and builds it with $CXX, else g++."""
    compiler = os.environ.get("CXX", "g++")
    if shutil.which(compiler) is None:
        raise ConfigError(
            f"{path}: training.jit_compile: true on torch needs a C++ compiler for torch.compile, "
            f"and {compiler!r} (from $CXX, else g++) is not on PATH; allowed: install one "
            "(apt-get install g++), set CXX, or jit_compile: auto or false on torch"
        )


def _check_grid_data(
    resolved_cells: list[GridSpec], path: Path
) -> tuple[set[str], list[dict[str, Any]]]:
    """Load every distinct dataset of the grid once, as a worker would: an unreadable file, a
    missing target, NaN features, one class, too few rows, bad generator options or a loss
    that contradicts the task fail here, before any store exists, not as FAILED runs.
    Returns the grid's tasks and each dataset's split rows."""
    shapes: dict[str, tuple[str, int, int]] = {}  # dataset -> (task, inputs, outputs)
    splits: dict[str, dict[str, Any]] = {}
    available = _available_bytes()
    for resolved in resolved_cells:
        dataset = resolved.dataset
        identity = json.dumps(dataset.model_dump(mode="json"), sort_keys=True, default=str)
        if identity not in shapes:
            task, inputs, outputs, rows = _dataset_facts(dataset.name, dataset, identity, path)
            shapes[identity] = (task, inputs, outputs)
            splits[identity] = {"dataset": dataset.name, **rows}
        task, inputs, outputs = shapes[identity]
        _check_loss_fits_task(resolved.loss, task, dataset.name, path)
        _check_model_fits_memory(resolved, inputs, outputs, available, path)
    # One entry per distinct split: a grid over `dataset.seed` splits the same rows each time;
    # one over `dataset.val_size` shows the dataset once per size.
    distinct = {json.dumps(split, sort_keys=True): split for split in splits.values()}
    return {task for task, _, _ in shapes.values()}, list(distinct.values())


def _dataset_facts(
    name: str, dataset: Any, identity: str, path: Path
) -> tuple[str, int, int, dict[str, int]]:
    """(task, inputs, outputs, split rows) of a dataset, as loading and splitting it gives
    them: remembered in the user's cache folder once checked, per the dataset's settings, its
    file's content, the versions of scikit-learn (its splitter), NumPy and mlpsuite's data
    code. A grid checked before checks its data again in milliseconds, not the ~1.5 s of
    importing scikit-learn."""
    folder = dataset_cache_dir()
    cached = folder / f"checked-{_facts_key(name, identity)}.json" if folder else None
    if cached is not None:
        try:
            task, inputs, outputs, rows = json.loads(cached.read_text(encoding="utf-8"))
            return str(task), int(inputs), int(outputs), dict(rows)
        except (OSError, ValueError, TypeError):  # not checked yet, or a damaged file
            pass
    try:
        loaded = load_dataset(name, **dataset.load_options())
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{path}: dataset: {str(error).splitlines()[0]}") from None
    facts = (loaded.task, loaded.input_dim, loaded.output_dim, loaded.split_rows())
    if cached is not None:
        with contextlib.suppress(OSError):  # no cache, same checks
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_name(f"{cached.name}.{os.getpid()}.partial")
            partial.write_text(json.dumps(facts), encoding="utf-8")
            os.replace(partial, cached)
    return facts


def _facts_key(name: str, identity: str) -> str:
    """What a dataset's checked facts depend on (a cache key)."""
    data_code = Path(load_dataset.__code__.co_filename).parent
    parts = [
        identity,
        str(file_digest(name)),
        importlib.metadata.version("scikit-learn"),
        importlib.metadata.version("numpy"),
        *(source.read_text(encoding="utf-8") for source in sorted(data_code.glob("*.py"))),
    ]
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()[:24]


def training_bytes(
    hidden: tuple[int, ...], inputs: int, outputs: int, batch_size: int
) -> tuple[int, int]:
    """(parameters, a generous estimate of the bytes a worker needs to train them in float32):
    weights, gradients, two optimizer slots and a copy, plus a batch's activations and their
    gradients for training and for 1024-row evaluation batches."""
    widths = [inputs, *hidden, outputs]
    parameters = sum((fan_in + 1) * fan_out for fan_in, fan_out in itertools.pairwise(widths))
    activations = sum(widths[1:]) * (3 * batch_size + 2 * 1024)
    return parameters, 4 * (5 * parameters + activations)


def _available_bytes() -> int:
    """Memory free for a worker now (MemAvailable), or all of it where /proc is absent."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _check_model_fits_memory(
    spec: GridSpec, inputs: int, outputs: int, available: int, path: Path
) -> None:
    """Refuse a model that would exhaust the machine (a shared one) before a worker tries."""
    parameters, needed = training_bytes(
        spec.model.hidden, inputs, outputs, spec.training.batch_size
    )
    if needed > available // 2:  # the framework and the other workers need the rest
        raise ConfigError(
            f"{path}: model.hidden, training.batch_size: {list(spec.model.hidden)} has "
            f"{parameters:,} parameters and at batch size {spec.training.batch_size:,} "
            f"needs about {_gigabytes(needed)} to train, more than half of the "
            f"{_gigabytes(available)} available; allowed: a smaller model or batch_size"
        )


def _gigabytes(count: int) -> str:
    return f"{count / 2**30:,.1f} GiB"


def _check_loss_fits_task(loss: str, task: str, dataset: str, path: Path) -> None:
    if loss == "auto" or (loss == "sparse_categorical_crossentropy") == (task == "classification"):
        return
    if task == "classification":
        raise ConfigError(
            f"{path}: loss: {loss} needs real-valued targets, but {dataset} is classification; "
            "allowed: auto or sparse_categorical_crossentropy, or set dataset.task: regression"
        )
    raise ConfigError(
        f"{path}: loss: sparse_categorical_crossentropy needs class labels, but {dataset} is "
        "regression; allowed: auto, mse, mae or huber, or set dataset.task: classification"
    )
