"""The grid's schema: pydantic models of a YAML grid's sections, strict and frozen.

Imports no deep-learning framework: the coordinator validates configs before any worker starts.
What a model refuses becomes, through `config.messages`, a `ConfigError` line per problem naming
the file, the key and the allowed values.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictInt,
    field_validator,
    model_validator,
)

from mlpsuite.config.compare import CompareSpec
from mlpsuite.config.search import SearchSpec
from mlpsuite.data import check_dataset
from mlpsuite.initializers import INITIALIZERS
from mlpsuite.registry import (
    ACTIVATION_PARAMS,
    ALLOWED_BACKENDS,
    BACKEND_ALIASES,
    BACKENDS,
    SCALER_NAMES,
    canonical_name,
    did_you_mean,
)

SECTIONS = ("dataset", "model", "optimizer", "training", "loss")
# Mappings whose keys the schema does not list; a grid may add keys to them.
FREE_FORM_KEYS = ("dataset.options",)
MAX_SEED = 2**32 - 1  # NumPy's generators take seeds in [0, 2**32)
# A seed NumPy can take; YAML lists become tuples, but their items stay strict.
Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]
IntTuple = Annotated[tuple[StrictInt, ...], Strict(False)]
SeedTuple = Annotated[tuple[Seed, ...], Strict(False)]


class Section(BaseModel):
    """A config section: strict (no "false" for a bool, no "0.1" for a float; NaN and
    infinity refused), frozen, and no key the schema does not list."""

    # Strict: no "false" -> True, no true -> 1, no "0.1" -> 0.1; NaN and infinity refused.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class DatasetSpec(Section):
    """`dataset:`: a built-in name or a file, its splits, target, task and generator options."""

    name: str = Field(description="built-in dataset name or a .csv/.npz/.parquet path")
    test_size: float = Field(
        default=0.2, gt=0, lt=1, description="share of the rows held out for test"
    )
    val_size: float = Field(
        default=0.1, ge=0, lt=1, description="share of the rows for validation (0: none)"
    )
    target: str | None = Field(
        default=None, description="a file's column to predict (default: the column named target)"
    )
    task: Literal["auto", "classification", "regression"] = Field(
        default="auto",
        description="auto: a built-in's own task, or read from a file's target column",
    )
    seed: Seed = Field(
        default=0, description="seed of the train/val/test split (fixed across trial seeds)"
    )
    options: dict[str, Any] = Field(default_factory=dict, description="synthetic generator options")

    @model_validator(mode="after")
    def _fractions_leave_a_training_split(self):
        if self.test_size + self.val_size >= 1:
            raise ValueError(
                f"test_size + val_size must be < 1, got {self.test_size + self.val_size}"
            )
        return self

    def load_options(self) -> dict[str, Any]:
        """Keyword arguments of `load_dataset` for this spec (besides the name or path)."""
        return {
            "seed": self.seed,
            "test_size": self.test_size,
            "val_size": self.val_size,
            "target": self.target,
            "task": None if self.task == "auto" else self.task,
            **self.options,
        }


class ActivationSpec(Section):
    """`model.activation:`: a name ("relu") or a mapping with its parameters
    (`{name: leaky_relu, alpha: 0.1}`), checked against the registry's names and parameters."""

    name: str = Field(
        description="an activation name: identity, step, sigmoid, tanh, relu, elu, gelu, swish, ..."
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="its parameters, e.g. alpha for leaky_relu and elu"
    )

    @model_validator(mode="before")
    @classmethod
    def _from_name_or_mapping(cls, value):
        if isinstance(value, str):
            return {"name": value}
        if isinstance(value, dict) and "params" not in value:
            return {
                "name": value.get("name"),
                "params": {k: v for k, v in value.items() if k != "name"},
            }
        return value

    @model_validator(mode="after")
    def _known_activation(self):
        name = canonical_name(ACTIVATION_PARAMS, self.name, "activation")
        allowed = ACTIVATION_PARAMS[name]
        unknown = sorted(set(self.params) - set(allowed))
        if unknown:
            raise ValueError(f"{name} takes {', '.join(allowed) or 'no parameters'}; got {unknown}")
        params = {
            key: _strict_value(allowed[key], value, f"{name}.{key}")
            for key, value in sorted(self.params.items())
        }
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


class ModelSpec(Section):
    """`model:`: hidden layer widths, activation, input scaler, kernel initializer, dropout."""

    hidden: IntTuple = Field(default=(64, 64), description="units of each hidden Dense layer")
    activation: ActivationSpec = Field(
        default=ActivationSpec(name="relu"),
        description="the hidden layers' activation: a name, or {name: ..., param: value}",
    )
    scaler: str = Field(
        default="standard",
        description="the scaling layer, adapted on the training split: none, minmax, robust, "
        "standard",
    )
    initializer: str = Field(
        default="glorot_uniform",
        description="Keras' formula for the initial weights, drawn with NumPy from the seed",
    )
    dropout: float = Field(
        default=0.0, ge=0, lt=1, description="dropout rate after each hidden layer"
    )

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


class ScheduleSpec(Section):
    """`optimizer.schedule:`: a cosine or exponential learning-rate decay over the epochs."""

    name: Literal["cosine", "exponential"] = Field(
        description="cosine: down to alpha of the rate by the last epoch; exponential: by steps"
    )
    decay_rate: float = Field(
        default=0.5, gt=0, description="exponential: factor per `decay_epochs`"
    )
    decay_epochs: float = Field(
        default=1.0, gt=0, description="exponential: epochs per decay_rate step"
    )
    alpha: float = Field(default=0.0, ge=0, le=1, description="cosine: final fraction of the rate")


# Adam's β₁ before it was a setting (Keras' and scikit-learn's default): the trial key leaves it
# out at this value, so no Adam trial run before changed its key.
ADAM_BETA_1 = 0.9


class OptimizerSpec(Section):
    """`optimizer:`: its name, learning rate, and the settings only some optimizers read
    (`ignored` names those this one does not)."""

    name: Literal["sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "adagrad"] = Field(
        default="adam", description="the Keras optimizer"
    )
    learning_rate: float = Field(default=0.001, gt=0, description="the initial step size")
    momentum: float = Field(default=0.9, ge=0, lt=1, description="momentum and nesterov only")
    weight_decay: float = Field(default=0.004, ge=0, description="adamw only")
    # β₁, the decay of Adam's first moment (its momentum); Keras' and scikit-learn's default.
    beta_1: float = Field(default=ADAM_BETA_1, ge=0, lt=1, description="adam and adamw only")
    schedule: ScheduleSpec | None = Field(
        default=None, description="a learning-rate schedule over the epochs (none: constant)"
    )

    def ignored(self) -> dict[str, str]:
        """Settings this optimizer (and schedule) never reads, as dotted keys -> why: they
        cannot change a result, so they stay out of the trial key."""
        ignored = {}
        if self.name not in ("momentum", "nesterov"):
            ignored["optimizer.momentum"] = (
                f"optimizer {self.name} has no momentum; used by: momentum, nesterov"
            )
        if self.name != "adamw":
            ignored["optimizer.weight_decay"] = (
                f"optimizer {self.name} has no weight decay; used by: adamw"
            )
        if self.name not in ("adam", "adamw"):
            ignored["optimizer.beta_1"] = (
                f"optimizer {self.name} has no beta_1; used by: adam, adamw"
            )
        if self.schedule is not None and self.schedule.name == "cosine":
            for field in ("decay_rate", "decay_epochs"):
                ignored[f"optimizer.schedule.{field}"] = (
                    f"a cosine schedule ignores {field}; used by: exponential"
                )
        if self.schedule is not None and self.schedule.name == "exponential":
            ignored["optimizer.schedule.alpha"] = (
                "an exponential schedule ignores alpha; used by: cosine"
            )
        return ignored


class EarlyStoppingSpec(Section):
    """`training.early_stopping:`: stop when `monitor` has not improved for `patience` epochs."""

    patience: int = Field(default=5, ge=1, description="epochs without improvement before stopping")
    min_delta: float = Field(
        default=0.0, ge=0, description="the least change of the monitored loss that counts"
    )
    monitor: Literal["val_loss", "loss"] = Field(
        default="val_loss", description="the loss whose improvement is watched"
    )
    restore_best_weights: bool = Field(
        default=True, description="test the best epoch's weights, not the last's"
    )


class TrainingSpec(Section):
    """`training:`: epochs, batch size, early stopping, the time limit, and how trials are
    executed (vectorized, steps per call, XLA)."""

    epochs: int = Field(default=20, ge=1, description="passes over the training split")
    batch_size: int = Field(default=64, ge=1, description="rows per training step")
    early_stopping: EarlyStoppingSpec | None = Field(
        default=None, description="Keras' EarlyStopping (none: train every epoch)"
    )
    max_seconds: float = Field(default=600.0, gt=0, description="wall-clock limit of one trial")
    vectorize: Literal["none", "seeds", "program"] = Field(
        default="none",
        description="on JAX, trials trained together as one vmapped program: seeds, a cell's "
        "seeds; program, every trial of a compiled program (seeds, learning rates, "
        "initializers, momentum, beta_1, weight decay), each still its own trial",
    )
    save_model: bool = Field(
        default=False, description="log each trained model as the run's MLflow Keras model"
    )
    steps_per_execution: Literal["auto"] | Annotated[int, Field(ge=1)] = Field(
        default="auto",
        description="training steps per compiled call: auto, one epoch's on TensorFlow and JAX "
        "(PyTorch runs 1); the same numbers, so in no trial key",
    )
    jit_compile: Literal["auto"] | bool = Field(
        default="auto",
        description="XLA on TensorFlow and JAX, torch.compile on PyTorch; auto: Keras' default "
        "per backend (XLA on JAX only, on a CPU); in the trial key",
    )

    @field_validator("steps_per_execution", "jit_compile", mode="before")
    @classmethod
    def _speed_switch(cls, value, info):
        """One message naming the allowed values (a union's own names pydantic internals)."""
        if value == "auto" or (
            type(value) is bool
            if info.field_name == "jit_compile"
            else type(value) is int and value >= 1
        ):
            return value
        allowed = (
            "auto, true or false"
            if info.field_name == "jit_compile"
            else "auto or a whole number >= 1"
        )
        raise ValueError(f"got {value!r}; allowed: {allowed}")


class GridSpec(Section):
    """A whole grid config: the experiment `name`, the sections every cell starts from, the
    `backends` and `seeds`, and the `grid:` (and `search:`) keys the cells vary."""

    name: str = Field(min_length=1, max_length=200, description="the MLflow experiment name")
    dataset: DatasetSpec = Field(description="the data every trial trains on, and its split")
    model: ModelSpec = Field(default=ModelSpec(), description="the MLP: layers, activation, scaler")
    optimizer: OptimizerSpec = Field(
        default=OptimizerSpec(), description="the optimizer and its settings"
    )
    training: TrainingSpec = Field(
        default=TrainingSpec(), description="epochs, batches, stopping, limits, speed switches"
    )
    loss: Literal["auto", "sparse_categorical_crossentropy", "mse", "mae", "huber"] = Field(
        default="auto",
        description="auto: cross-entropy on logits for classes, mean squared error for a quantity",
    )
    backends: tuple[str, ...] = Field(
        default=BACKENDS,
        description="where every cell runs: tensorflow, torch, jax, and sklearn as a reference",
    )
    seeds: SeedTuple = Field(
        default=(0,), description="trial seeds: initial weights, batch order, dropout masks"
    )
    grid: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="dotted keys of the sections above and the values each takes; every "
        "combination is a cell",
    )
    search: SearchSpec | None = Field(
        default=None,
        description="nuisance settings sampled over ranges (quasi-random search), every grid "
        "cell at the same points: method, trials, seed, space",
    )
    diagnostics: bool = Field(
        default=False,
        description="log gradient norms, dead units and activation "
        "statistics per layer and epoch (mlpsuite.trial.diagnostics)",
    )
    compare: CompareSpec = Field(
        default=CompareSpec(),
        description="the comparison's protocol: nuisance keys, select_on, metric, interval, target",
    )
    description: str = Field(
        default="",
        max_length=2000,
        description="the question the grid asks: on its parent "
        "run and the experiment's page (in no trial key)",
    )
    reuse: Literal["any", "same-versions"] = Field(
        default="any",
        description="which FINISHED trials are reused: any, or "
        "only those recorded with the installed library versions",
    )

    def keys(self) -> list[str]:
        """What a cell is made of: the keys `grid:` lists, then those `search:` samples."""
        return [*self.grid, *(self.search.space if self.search is not None else ())]

    def protocol(self) -> CompareSpec:
        """`compare:` as the comparison applies it: a search's sampled keys are its nuisance
        keys, unless `compare.nuisance` names them itself."""
        if self.search is None or "nuisance" in self.compare.model_fields_set:
            return self.compare
        return self.compare.model_copy(update={"nuisance": tuple(self.search.space)})

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
            raise ValueError(
                f"{name!r} would leave the store's artifact folder; allowed: a name without "
                "'/', '\\' or control characters, other than '.' and '..'"
            )
        return name

    @field_validator("backends", mode="before")
    @classmethod
    def _known_backends(cls, backends):
        if isinstance(backends, str):
            backends = [b.strip() for b in backends.split(",")]
        names = [BACKEND_ALIASES.get(str(b).lower()) for b in backends]
        if None in names:
            bad = backends[names.index(None)]
            hint = did_you_mean(bad, BACKEND_ALIASES)
            raise ValueError(f"unknown backend {bad!r}; {hint}allowed: {ALLOWED_BACKENDS}")
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
            raise ValueError(
                "training.early_stopping monitors val_loss, but dataset.val_size is 0; "
                "allowed: a val_size > 0 or monitor: loss"
            )
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
