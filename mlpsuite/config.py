"""Experiment grids: YAML -> validated `GridSpec` -> `expand()` -> frozen, hashed `Trial`s.

Imports no deep-learning framework: the coordinator validates and expands configs before any
worker starts. Every user mistake becomes a `ConfigError` whose message is one line naming
the file, the key and the allowed values.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, Strict, StrictInt, ValidationError, field_validator,
                      model_validator)

from mlpsuite import __version__
from mlpsuite.comparison_spec import CompareSpec
from mlpsuite.config_yaml import read_yaml
from mlpsuite.data import Dataset, check_dataset, dataset_task, load_dataset
from mlpsuite.errors import ConfigError
from mlpsuite.initializers import INITIALIZERS
from mlpsuite.registry import (ACTIVATION_PARAMS, ALLOWED_BACKENDS, BACKEND_ALIASES, BACKENDS, SCALER_NAMES,
                               canonical_name)

SECTIONS = ("dataset", "model", "optimizer", "training", "loss")
# Mappings whose keys the schema does not list; a grid may add keys to them.
FREE_FORM_KEYS = ("dataset.options",)
# What errors name for a grid given as a dict (`mlpsuite.run({...})`) rather than a file.
CONFIG_DICT = Path("<config dict>")
MAX_SEED = 2**32 - 1  # NumPy's generators take seeds in [0, 2**32)
# A seed NumPy can take; YAML lists become tuples, but their items stay strict.
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
IntTuple = Annotated[tuple[StrictInt, ...], Strict(False)]
SeedTuple = Annotated[tuple[Seed, ...], Strict(False)]


class _Section(BaseModel):
    # Strict: no "false" -> True, no true -> 1, no "0.1" -> 0.1; NaN and infinity refused.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class DatasetSpec(_Section):
    name: str = Field(description="built-in dataset name or a .csv/.npz/.parquet path")
    test_size: float = Field(0.2, gt=0, lt=1)
    val_size: float = Field(0.1, ge=0, lt=1)
    target: str | None = None
    task: Literal["auto", "classification", "regression"] = Field(
        "auto", description="auto: a built-in's own task, or read from a file's target column")
    seed: Seed = Field(0, description="seed of the train/val/test split (fixed across trial seeds)")
    options: dict[str, Any] = Field(default_factory=dict, description="synthetic generator options")

    @model_validator(mode="after")
    def _fractions_leave_a_training_split(self):
        if self.test_size + self.val_size >= 1:
            raise ValueError(f"test_size + val_size must be < 1, got {self.test_size + self.val_size}")
        return self

    def load_options(self) -> dict[str, Any]:
        """Keyword arguments of `load_dataset` for this spec (besides the name or path)."""
        return {"seed": self.seed, "test_size": self.test_size, "val_size": self.val_size,
                "target": self.target, "task": None if self.task == "auto" else self.task, **self.options}


class ActivationSpec(_Section):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_name_or_mapping(cls, value):
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "params" not in value:
            return {"name": value.get("name"), "params": {k: v for k, v in value.items() if k != "name"}}
        return value

    @model_validator(mode="after")
    def _known_activation(self):
        name = canonical_name(ACTIVATION_PARAMS, self.name, "activation")
        allowed = ACTIVATION_PARAMS[name]
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise ValueError(f"{name} takes {', '.join(allowed) or 'no parameters'}; got {unknown}")
        params = {key: _strict_value(allowed[key], value, f"{name}.{key}") for key, value in sorted(self.params.items())}
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "params", params)
        return self


def _strict_value(kind: type, value: Any, where: str) -> Any:
    """An activation parameter as its type, without coercion ('false' is not False)."""
    if kind is bool and isinstance(value, bool):
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        if math.isfinite(value):
            return float(value)
        raise ValueError(f"{where} must be a finite number, got {value!r}")
    expected = "true or false" if kind is bool else "a number"
    raise ValueError(f"{where} must be {expected}, got {value!r}")


class ModelSpec(_Section):
    hidden: IntTuple = (64, 64)
    activation: ActivationSpec = ActivationSpec(name="relu")
    scaler: str = "standard"
    initializer: str = "glorot_uniform"
    dropout: float = Field(0.0, ge=0, lt=1)

    @field_validator("hidden")
    @classmethod
    def _positive_units(cls, hidden):
        if any(units < 1 for units in hidden):
            raise ValueError(f"hidden units must be positive, got {list(hidden)}")
        return hidden

    @field_validator("scaler")
    @classmethod
    def _known_scaler(cls, scaler):
        return canonical_name(SCALER_NAMES, scaler, "scaler")

    @field_validator("initializer")
    @classmethod
    def _known_initializer(cls, initializer):
        return canonical_name(INITIALIZERS, initializer, "initializer")


class ScheduleSpec(_Section):
    name: Literal["cosine", "exponential"]
    decay_rate: float = Field(0.5, gt=0, description="exponential: factor per `decay_epochs`")
    decay_epochs: float = Field(1.0, gt=0, description="exponential: epochs per decay_rate step")
    alpha: float = Field(0.0, ge=0, le=1, description="cosine: final fraction of the rate")


class OptimizerSpec(_Section):
    name: Literal["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adagrad"] = "adam"
    learning_rate: float = Field(0.001, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1, description="momentum and nesterov only")
    weight_decay: float = Field(0.004, ge=0, description="adamw only")
    schedule: ScheduleSpec | None = None

    def ignored(self) -> dict[str, str]:
        """Settings this optimizer (and schedule) never reads, as dotted keys -> why: they
        cannot change a result, so they stay out of the trial key."""
        ignored = {}
        if self.name not in ("momentum", "nesterov"):
            ignored["optimizer.momentum"] = f"optimizer {self.name} has no momentum; used by: momentum, nesterov"
        if self.name != "adamw":
            ignored["optimizer.weight_decay"] = f"optimizer {self.name} has no weight decay; used by: adamw"
        if self.schedule is not None and self.schedule.name == "cosine":
            for field in ("decay_rate", "decay_epochs"):
                ignored[f"optimizer.schedule.{field}"] = f"a cosine schedule ignores {field}; used by: exponential"
        if self.schedule is not None and self.schedule.name == "exponential":
            ignored["optimizer.schedule.alpha"] = "an exponential schedule ignores alpha; used by: cosine"
        return ignored


class EarlyStoppingSpec(_Section):
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0)
    monitor: Literal["val_loss", "loss"] = "val_loss"
    restore_best_weights: bool = Field(True, description="test the best epoch's weights, not the last's")


class TrainingSpec(_Section):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(64, ge=1)
    early_stopping: EarlyStoppingSpec | None = None
    max_seconds: float = Field(600.0, gt=0, description="wall-clock limit of one trial")
    vectorize: Literal["none", "seeds"] = Field(
        "none", description="seeds: on JAX, train a cell's seeds as one vmapped program")
    save_model: bool = Field(False, description="log each trained model as the run's MLflow Keras model")
    steps_per_execution: Literal["auto"] | Annotated[int, Field(ge=1)] = Field(
        "auto", description="training steps per compiled call: auto, one epoch's on TensorFlow and JAX "
        "(PyTorch runs 1); the same numbers, so in no trial key")
    jit_compile: Literal["auto"] | bool = Field(
        "auto", description="XLA on TensorFlow and JAX, torch.compile on PyTorch; auto: Keras' default "
        "per backend (XLA on JAX only, on a CPU); in the trial key")

    @field_validator("steps_per_execution", "jit_compile", mode="before")
    @classmethod
    def _speed_switch(cls, value, info):
        """One message naming the allowed values (a union's own names pydantic internals)."""
        if value == "auto" or (type(value) is bool if info.field_name == "jit_compile"
                               else type(value) is int and value >= 1):
            return value
        allowed = "auto, true or false" if info.field_name == "jit_compile" else "auto or a whole number >= 1"
        raise ValueError(f"got {value!r}; allowed: {allowed}")


class GridSpec(_Section):
    name: str = Field(min_length=1, max_length=200, description="the MLflow experiment name")
    dataset: DatasetSpec
    model: ModelSpec = ModelSpec()
    optimizer: OptimizerSpec = OptimizerSpec()
    training: TrainingSpec = TrainingSpec()
    loss: Literal["auto", "sparse_categorical_crossentropy", "mse", "mae", "huber"] = "auto"
    backends: tuple[str, ...] = BACKENDS
    seeds: SeedTuple = (0,)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    diagnostics: bool = Field(False, description="log gradient norms, dead units and activation "
                              "statistics per layer and epoch (mlpsuite.diagnostics)")
    compare: CompareSpec = Field(CompareSpec(), description="the comparison's protocol: nuisance keys, "
                                 "select_on, metric, interval, target")
    description: str = Field("", max_length=2000, description="the question the grid asks: on its parent "
                             "run and the experiment's page (in no trial key)")
    reuse: Literal["any", "same-versions"] = Field("any", description="which FINISHED trials are reused: any, or "
                                                   "only those recorded with the installed library versions")

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, dataset):
        """Checked here, on the grid, where relative paths mean the current folder: a logged
        trial re-validated elsewhere (a worker, `rerun`) reads its resolved `data_path`."""
        return dataset.model_copy(update={"name": check_dataset(dataset.name, dataset.options)})

    @field_validator("name")
    @classmethod
    def _safe_experiment_name(cls, name):
        """The name is also a folder under the store's artifact root: it must stay inside it."""
        if not name.strip():
            raise ValueError("must not be blank")
        if name in (".", "..") or any(c in name for c in "/\\") or any(ord(c) < 32 for c in name):
            raise ValueError(f"{name!r} would leave the store's artifact folder; allowed: a name without "
                             "'/', '\\' or control characters, other than '.' and '..'")
        return name

    @field_validator("backends", mode="before")
    @classmethod
    def _known_backends(cls, backends):
        if isinstance(backends, str):
            backends = [b.strip() for b in backends.split(",")]
        names = [BACKEND_ALIASES.get(str(b).lower()) for b in backends]
        if None in names:
            bad = backends[names.index(None)]
            raise ValueError(f"unknown backend {bad!r}; allowed: {ALLOWED_BACKENDS}")
        if not names:
            raise ValueError(f"no backends given; allowed: {ALLOWED_BACKENDS}")
        return tuple(dict.fromkeys(names))

    @field_validator("seeds")
    @classmethod
    def _some_seeds(cls, seeds):
        if not seeds:
            raise ValueError("no seeds given")
        return tuple(dict.fromkeys(seeds))

    @model_validator(mode="after")
    def _early_stopping_has_its_metric(self):
        stopping = self.training.early_stopping
        if stopping and stopping.monitor == "val_loss" and self.dataset.val_size == 0:
            raise ValueError("training.early_stopping monitors val_loss, but dataset.val_size is 0; "
                             "allowed: a val_size > 0 or monitor: loss")
        return self

    @field_validator("grid")
    @classmethod
    def _grid_shape(cls, grid):
        for key, values in grid.items():
            if not values:
                raise ValueError(f"grid key {key!r} has no values")
            if key.split(".")[0] not in SECTIONS:
                raise ValueError(f"grid key {key!r} must start with one of {', '.join(SECTIONS)}")
        return grid


class Trial(_Section):
    """One run: a grid cell on one backend with one seed. `key` hashes what sets its result."""

    experiment: str
    dataset: DatasetSpec
    model: ModelSpec
    optimizer: OptimizerSpec
    training: TrainingSpec
    loss: str
    backend: str
    seed: Seed
    cell: dict[str, Any] = Field(default_factory=dict, description="this trial's grid values")
    data_sha256: str | None = None
    data_path: str | None = Field(None, description="a data file's resolved path: runs from any folder")
    diagnostics: bool = False

    @property
    def key(self) -> str:
        identity = self.model_dump(mode="json", exclude={"experiment", "cell", "data_path"})
        identity["training"].pop("max_seconds")  # a time limit does not change a finished result
        identity["training"].pop("vectorize")    # nor, beyond float rounding, does vectorizing
        identity["training"].pop("steps_per_execution")  # the same steps, fewer calls: bit-identical
        if self.training.jit_compile == "auto":  # Keras' default, as every trial ran before
            identity["training"].pop("jit_compile")
        if not self.diagnostics:  # keys of trials run without diagnostics stay what they were
            identity.pop("diagnostics")
        if not self.training.save_model:  # as without saving, before it could
            identity["training"].pop("save_model")
        if self.data_path:  # ../data/x.csv, ./../data/x.csv and the absolute path: one trial
            identity["dataset"]["name"] = self.data_path
        for dotted in self.optimizer.ignored():  # nor does a setting the optimizer never reads
            *parents, leaf = dotted.split(".")
            section = identity
            for part in parents:
                section = section[part]
            section.pop(leaf)
        identity["mlpsuite_major"] = __version__.split(".")[0]
        identity["batch_order"] = 2  # 2: fully NumPy's (before, Keras also shuffled the batches)
        canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def program_key(self) -> str:
        """What changes the compiled training program: trials that share it can reuse one
        built and compiled model. Seeds, initializers, data splits and, without a schedule,
        the learning rate are left out: they are values, not program."""
        optimizer = self.optimizer.model_dump(mode="json")
        for dotted in self.optimizer.ignored():
            optimizer.pop(dotted.split(".")[1], None)
        if self.optimizer.schedule is None:  # an optimizer variable; a schedule bakes it in
            optimizer.pop("learning_rate")
        identity = {
            "model": self.model.model_dump(mode="json", exclude={"initializer"}),
            "optimizer": optimizer, "loss": self.loss, "batch_size": self.training.batch_size,
            "jit_compile": self.training.jit_compile, "steps_per_execution": self.training.steps_per_execution,
            "backend": self.backend, "dataset": self.data_path or self.dataset.name,
            "target": self.dataset.target, "task": self.dataset.task, "options": self.dataset.options,
        }
        if self.optimizer.schedule is not None:  # cosine decays over epochs x steps per epoch
            identity["epochs"] = self.training.epochs
        canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def data_key(self) -> str:
        """What identifies the trial's data: the spec, the resolved file and its hash."""
        return json.dumps([self.data_path or self.dataset.name, self.data_sha256, self.dataset.load_options()],
                          sort_keys=True, default=str)

    def load_data(self) -> Dataset:
        """The trial's train/val/test splits, from its resolved file or built-in name."""
        return load_dataset(self.data_path or self.dataset.name, **self.dataset.load_options())

    def flat_params(self) -> dict[str, str]:
        """Dotted string params for MLflow: `model.activation`, `optimizer.learning_rate`, ..."""
        flat: dict[str, str] = {"backend": self.backend, "seed": str(self.seed), "loss": self.loss,
                                "diagnostics": str(self.diagnostics)}
        for section in ("dataset", "model", "optimizer", "training"):
            _flatten(getattr(self, section).model_dump(mode="json"), section, flat)
        return flat

    def label(self) -> str:
        cell = self.cell_label()
        return f"{self.backend} seed={self.seed}" + (f" {cell}" if self.cell else "")

    def run_name(self) -> str:
        """`elu standard s2 jax`: the MLflow run name, short enough for the runs table."""
        return " ".join([*self.cell_values().values(), f"s{self.seed}", self.backend])

    def cell_values(self) -> dict[str, str]:
        """This trial's grid values as short labels: `{"model.activation": "leaky_relu(alpha=0.1)"}`."""
        return {key: short_value(value) for key, value in self.cell.items()}

    def cell_label(self) -> str:
        """`activation=elu, scaler=standard` (the MLflow tag that groups a cell's seeds)."""
        return cell_label(self.cell_values())


def cell_label(values: dict[str, str]) -> str:
    """A cell's grid values as `activation=elu, scaler=standard` (keys cut to their last part)."""
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in values.items()) or "(one cell)"


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        if set(value) >= {"name", "params"}:  # an activation: `model.activation` = its name
            out[prefix] = str(value["name"])
            value = value["params"]
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}", out)
    elif not isinstance(value, dict):
        out[prefix] = json.dumps(value) if isinstance(value, (list, tuple)) else str(value)


def short_value(value: Any) -> str:
    """A grid value as a short label: `leaky_relu(alpha=0.1)`, `[32, 32]`, `0.01`."""
    if isinstance(value, dict):
        params = ",".join(f"{k}={v}" for k, v in value.items() if k != "name")
        return f"{value.get('name')}({params})" if params else str(value.get("name"))
    return str(value)


# ---------------------------------------------------------------- loading


def load_config(source: str | Path | Mapping[str, Any], backends: str | None = None,
                check_data: bool = True) -> GridSpec:
    """Read and validate a grid: a YAML file, or a dict in the YAML's shape (errors then name
    `<config dict>`); `backends` ("tf,jax") overrides its `backends`. `check_data=False`
    leaves loading each dataset (`grid_checks.check_grid`) to the caller."""
    raw, path = (dict(source), CONFIG_DICT) if isinstance(source, Mapping) else read_yaml(Path(source))
    if backends is not None:
        raw = {**raw, "backends": backends}
    try:
        spec = GridSpec.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_one_line(error, GridSpec, path)) from None
    _check_grid_cells(spec, path)
    if check_data:
        from mlpsuite.grid_checks import check_grid  # it reads this module's cells

        check_grid(spec, path)
    return spec


def _one_line(error: ValidationError, model: type[BaseModel], path: Path) -> str:
    first = error.errors()[0]
    loc = [str(part) for part in first["loc"] if not str(part).startswith("function-")]
    key = ".".join(loc) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = f"unknown key; allowed: {', '.join(_fields_at(model, loc[:-1]))}"
    elif first["type"] == "missing":
        message = "required key is missing"
    elif "input" in first and first["type"] not in ("value_error", "assertion_error"):
        message = f"{message}, got {first['input']!r}"
    return f"{path}: {key}: {message}".replace("\n", " ")


def _fields_at(model: type[BaseModel], loc: list[str]) -> list[str]:
    for part in loc:
        field = model.model_fields.get(part)
        annotation = getattr(field, "annotation", None)
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)


def _check_grid_cells(spec: GridSpec, path: Path) -> None:
    """Every grid key must name a real field, and every value must validate there."""
    base = spec.model_dump(mode="python", include=set(SECTIONS))
    for key, values in spec.grid.items():
        *parents, leaf = key.split(".")
        target = base
        for depth, part in enumerate(parents):
            target = target.get(part) if isinstance(target, dict) else None
            if not isinstance(target, dict):
                where = ".".join(parents[: depth + 1])
                raise ConfigError(f"{path}: grid.{key}: no such key; {where} has no sub-keys")
        if leaf not in target and ".".join(parents) not in FREE_FORM_KEYS:
            prefix = ".".join(parents)
            allowed = ", ".join(f"{prefix}.{field}" if prefix else field for field in target)
            raise ConfigError(f"{path}: grid.{key}: no such key; allowed: {allowed}")
        for value in values:
            cell_spec(spec, {key: value}, path)


def cells(spec: GridSpec) -> list[dict[str, Any]]:
    """The grid's cells: one dict of grid values each, in the cross product's order."""
    keys = list(spec.grid)
    return [dict(zip(keys, values)) for values in itertools.product(*spec.grid.values())]


def cell_spec(spec: GridSpec, cell: dict[str, Any], path: Path) -> GridSpec:
    raw = spec.model_dump(mode="python")
    for key, value in cell.items():
        *parents, leaf = key.split(".")
        target = raw
        for part in parents:
            target = target[part]
        target[leaf] = copy.deepcopy(value)
    try:
        return GridSpec.model_validate(raw)
    except ValidationError as error:
        line = _one_line(error, GridSpec, path)
        grid_key = next(iter(cell))
        raise ConfigError(f"{line} (from grid.{grid_key} value {cell[grid_key]!r})") from None


# ---------------------------------------------------------------- expansion


def expand(spec: GridSpec, path: str | Path = "<config>") -> list[Trial]:
    """The full cross product: grid cells x seeds x backends, in that nesting (backend outer)."""
    # Per cell, not per trial: resolving the loss and hashing reads a data file whole.
    cell_fields = []
    for cell in cells(spec):
        resolved = cell_spec(spec, cell, Path(path))
        cell_fields.append(dict(
            dataset=resolved.dataset, model=resolved.model, optimizer=resolved.optimizer,
            training=resolved.training, loss=_resolved_loss(resolved), cell=_json_safe(cell),
            data_sha256=file_digest(resolved.dataset.name), data_path=_resolved_file(resolved.dataset.name)))
    return [Trial(experiment=spec.name, backend=backend, seed=seed, diagnostics=spec.diagnostics, **fields)
            for backend in spec.backends for fields in cell_fields for seed in spec.seeds]


def _resolved_loss(spec: GridSpec) -> str:
    if spec.loss != "auto":
        return spec.loss
    task = dataset_task(spec.dataset.name, spec.dataset.target, spec.dataset.load_options()["task"])
    return "sparse_categorical_crossentropy" if task == "classification" else "mse"


def _json_safe(cell: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(cell, default=str))


def _resolved_file(name: str) -> str | None:
    path = Path(name)
    return str(path.resolve()) if path.is_file() else None


def file_digest(name: str) -> str | None:
    """A data file's content hash: a changed file must not resume old results."""
    path = Path(name)
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
