"""A validated grid's cells and trials: `cells()`, `cell_spec()`, `expand()` -> frozen,
hashed `Trial`s.

A trial's `key` hashes what sets its result (a FINISHED run of that key is reused); its
`program_key` what sets the compiled training program (a worker reuses one model across them).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr

from mlpsuite import __version__
from mlpsuite.config.messages import validated
from mlpsuite.config.schema import (
    ADAM_BETA_1,
    FREE_FORM_KEYS,
    SECTIONS,
    DatasetSpec,
    GridSpec,
    ModelSpec,
    OptimizerSpec,
    Section,
    Seed,
    TrainingSpec,
)
from mlpsuite.data import Dataset, dataset_task, load_dataset
from mlpsuite.errors import ConfigError
from mlpsuite.registry import close_match

# What a population holds as optimizer variables, so its members may differ there (the
# learning rate already is one): trial/held_hyperparameters.py makes them variables.
POPULATION_HELD = ("momentum", "beta_1", "weight_decay")


class Trial(Section):
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
    data_path: str | None = Field(
        default=None, description="a data file's resolved path: runs from any folder"
    )
    diagnostics: bool = False
    # The key, once computed: a 10,000-trial grid asks for each trial's several times, and a
    # Trial is frozen; `model_copy` forgets it (an update changes what it hashes).
    _key: str | None = PrivateAttr(default=None)

    def __eq__(self, other: object) -> bool:  # as pydantic compares, less the cached key
        if not isinstance(other, Trial):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Trial:
        """A copy with `update` applied, as pydantic's, that computes its `key` afresh."""
        copied = super().model_copy(update=update, deep=deep)
        copied._key = None
        return copied

    @property
    def key(self) -> str:
        """The trial key: a hash of what sets the trial's result (its sections, backend, seed
        and data digest; not its experiment, cell labels or time limit), computed once. A
        FINISHED run of the same key is reused."""
        if self._key is None:
            self._key = self._identity_hash()
        return self._key

    def _identity_hash(self) -> str:
        identity = self.model_dump(mode="json", exclude={"experiment", "cell", "data_path"})
        identity["training"].pop("max_seconds")  # a time limit does not change a finished result
        identity["training"].pop("vectorize")  # nor, beyond float rounding, does vectorizing
        identity["training"].pop(
            "steps_per_execution"
        )  # the same steps, fewer calls: bit-identical
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
        if identity["optimizer"].get("beta_1") == ADAM_BETA_1:  # as every Adam ran before
            identity["optimizer"].pop("beta_1")
        identity["mlpsuite_major"] = __version__.split(".")[0]
        identity["batch_order"] = 2  # 2: fully NumPy's (before, Keras also shuffled the batches)
        canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def program_key(self) -> str:
        """What changes the compiled training program: trials that share it can reuse one
        built and compiled model. Seeds, initializers, data splits and, without a schedule,
        the learning rate are left out: they are values, not program."""
        return self._program_hash(held=False)

    @property
    def population_key(self) -> str:
        """What the trials of one population (`training.vectorize: program`) share: the
        program, less the settings a population holds as optimizer variables (momentum, beta_1,
        weight decay: trial/held_hyperparameters.py), plus the data (one split for all)."""
        return self._program_hash(held=True)

    def _program_hash(self, held: bool) -> str:
        optimizer = self.optimizer.model_dump(mode="json")
        for dotted in self.optimizer.ignored():
            optimizer.pop(dotted.split(".")[1], None)
        if held:
            for name in POPULATION_HELD:
                optimizer.pop(name, None)
        if self.optimizer.schedule is None:  # an optimizer variable; a schedule bakes it in
            optimizer.pop("learning_rate")
        identity = {
            "model": self.model.model_dump(mode="json", exclude={"initializer"}),
            "optimizer": optimizer,
            "loss": self.loss,
            "batch_size": self.training.batch_size,
            "jit_compile": self.training.jit_compile,
            "steps_per_execution": self.training.steps_per_execution,
            "backend": self.backend,
            "dataset": self.data_path or self.dataset.name,
            "target": self.dataset.target,
            "task": self.dataset.task,
            "options": self.dataset.options,
        }
        if self.optimizer.schedule is not None:  # cosine decays over epochs x steps per epoch
            identity["epochs"] = self.training.epochs
        if held:  # members are rows of one batch: the same rows of the same split
            identity["data"] = self.data_key
        canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def data_key(self) -> str:
        """What identifies the trial's data: the spec, the resolved file and its hash."""
        return json.dumps(
            [self.data_path or self.dataset.name, self.data_sha256, self.dataset.load_options()],
            sort_keys=True,
            default=str,
        )

    def load_data(self) -> Dataset:
        """The trial's train/val/test splits, from its resolved file or built-in name."""
        return load_dataset(self.data_path or self.dataset.name, **self.dataset.load_options())

    def flat_params(self) -> dict[str, str]:
        """Dotted string params for MLflow: `model.activation`, `optimizer.learning_rate`, ..."""
        flat: dict[str, str] = {
            "backend": self.backend,
            "seed": str(self.seed),
            "loss": self.loss,
            "diagnostics": str(self.diagnostics),
        }
        for section in ("dataset", "model", "optimizer", "training"):
            _flatten(getattr(self, section).model_dump(mode="json"), section, flat)
        return flat

    def label(self) -> str:
        """`jax seed=0 activation=relu`: the backend, seed and cell, for messages."""
        cell = self.cell_label()
        return f"{self.backend} seed={self.seed}" + (f" {cell}" if self.cell else "")

    def run_name(self) -> str:
        """`elu standard s2 jax`: the MLflow run name, short enough for the runs table."""
        return " ".join([*self.cell_values().values(), f"s{self.seed}", self.backend])

    def cell_values(self) -> dict[str, str]:
        """This trial's grid values as short labels:
        `{"model.activation": "leaky_relu(alpha=0.1)"}`."""
        return {key: short_value(value) for key, value in self.cell.items()}

    def cell_label(self) -> str:
        """`activation=elu, scaler=standard` (the MLflow tag that groups a cell's seeds)."""
        return cell_label(self.cell_values())


def cell_label(values: Mapping[str, object]) -> str:
    """A cell's grid values as `activation=elu, scaler=standard` (keys cut to their last part)."""
    return ", ".join(f"{k.split('.')[-1]}={v}" for k, v in values.items()) or "(one cell)"


# A setting of a cell's label longer than this is cut (with …) in every table and figure.
SETTING_CHARS = 40
# Where one setting of a label ends: `, ` before the next `key=` (a list value `[32, 32]` has
# `, ` inside it, but no `key=` after it).
_NEXT_SETTING = re.compile(r", (?=[\w.]+=)")


def label_settings(label: str) -> list[str]:
    """A cell label's settings, each cut to SETTING_CHARS: `["optimizer=adam(learning_ra…",
    "name=circles"]`."""
    return [
        setting if len(setting) <= SETTING_CHARS else setting[: SETTING_CHARS - 1] + "…"
        for setting in _NEXT_SETTING.split(label)
    ]


def short_label(label: str) -> str:
    """A cell label as the Markdown tables show it: each setting cut to SETTING_CHARS."""
    return ", ".join(label_settings(label))


def label_lines(label: str, width: int = SETTING_CHARS) -> str:
    """A cell label as the terminal and the figures show it: lines of at most `width`
    characters, broken only between settings (never inside a name or a value)."""
    lines: list[str] = []
    for setting in label_settings(label):
        if lines and len(lines[-1]) + 2 + len(setting) <= width:
            lines[-1] += f", {setting}"
        else:
            if lines:
                lines[-1] += ","
            lines.append(setting)
    return "\n".join(lines)


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


def check_grid_cells(spec: GridSpec, path: Path) -> None:
    """Every grid key must name a real field, and every value must validate there; so must every
    key of the search space and the ends of its range."""
    base = spec.model_dump(mode="python", include=set(SECTIONS))
    for key, values in spec.grid.items():
        _check_field(base, "grid", key, path)
        for value in values:
            cell_spec(spec, {key: value}, path)
    if spec.search is not None:
        _check_search_space(spec, base, path)


def _check_field(base: dict[str, Any], section: str, key: str, path: Path) -> None:
    """A ConfigError unless `key` (dotted) names a field of the grid's sections."""
    *parents, leaf = key.split(".")
    target = base
    for depth, part in enumerate(parents):
        target = target.get(part) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            where = ".".join(parents[: depth + 1])
            raise ConfigError(f"{path}: {section}.{key}: no such key; {where} has no sub-keys")
    if leaf not in target and ".".join(parents) not in FREE_FORM_KEYS:
        prefix = ".".join(parents)
        fields = [f"{prefix}.{field}" if prefix else field for field in target]
        # Matched on the last part alone: the shared prefix would make any key look close.
        match = close_match(leaf, list(target))
        named = f"{prefix}.{match}" if prefix else match
        suggestion = f"did you mean '{named}'? " if match else ""
        raise ConfigError(
            f"{path}: {section}.{key}: no such key; {suggestion}allowed: {', '.join(fields)}"
        )


def _check_search_space(spec: GridSpec, base: dict[str, Any], path: Path) -> None:
    """Each sampled key: not also listed in `grid:`, a real field, valid at the ends of its
    range (every value between is then valid too: the fields' bounds are intervals), and read
    by at least one optimizer of the grid."""
    assert spec.search is not None
    for key, dimension in spec.search.space.items():
        if key in spec.grid:
            raise ConfigError(
                f"{path}: search.space.{key}: also a grid: key; a key is either listed (grid:) "
                "or sampled (search:), not both"
            )
        _check_field(base, "search.space", key, path)
        for value in dimension.ends():
            cell_spec(spec, {key: value}, path, origin="search.space")
    # Every optimizer a cell may run: a sampled optimizer.name's choices count as the grid's.
    optimizers = [cell_spec(spec, cell, path).optimizer for cell in checked_cells(spec)]
    for key in spec.search.space:
        unread = [optimizer for optimizer in optimizers if key in optimizer.ignored()]
        if unread and len(unread) == len(optimizers):
            raise ConfigError(
                f"{path}: search.space.{key}: no optimizer of this grid reads it "
                f"({unread[0].ignored()[key]}); sample it where one does, or drop it"
            )


def grid_cells(spec: GridSpec) -> list[dict[str, Any]]:
    """The crossing of `grid:`: one dict of grid values each, in the cross product's order."""
    keys = list(spec.grid)
    return [
        dict(zip(keys, values, strict=True)) for values in itertools.product(*spec.grid.values())
    ]


def cells(spec: GridSpec) -> list[dict[str, Any]]:
    """The grid's cells: each crossing of `grid:` with each point of `search:` (the same
    points for every crossing), in that order."""
    crossed = grid_cells(spec)
    if spec.search is None:
        return crossed
    points = spec.search.points()
    return [{**cell, **point} for cell in crossed for point in points]


def checked_cells(spec: GridSpec) -> list[dict[str, Any]]:
    """The cells a grid's checks resolve: each crossing of `grid:`, and each with every value
    at the ends of each sampled key in turn (a point's values lie between its ranges' ends,
    or are among its choices), not every point: a 10,000-point search is checked at once."""
    crossed = grid_cells(spec)
    if spec.search is None:
        return crossed
    ends = [
        {key: value} for key, dimension in spec.search.space.items() for value in dimension.ends()
    ]
    return [{**cell, **end} for cell in crossed for end in [{}, *ends]]


def cell_spec(spec: GridSpec, cell: dict[str, Any], path: Path, origin: str = "grid") -> GridSpec:
    """The grid's spec with one cell's values set, validated (errors name the key, under
    `origin`: grid or search.space)."""
    raw = spec.model_dump(mode="python")
    for key, value in cell.items():
        *parents, leaf = key.split(".")
        target = raw
        for part in parents:
            target = target[part]
        target[leaf] = copy.deepcopy(value)
    grid_key = next(iter(cell), None)
    return validated(
        GridSpec,
        raw,
        path,
        f" (from {origin}.{grid_key} value {cell[grid_key]!r})" if grid_key is not None else "",
    )


def unique_trials(trials: list[Trial]) -> list[Trial]:
    """Drop repeats: two grid values can resolve to the same trial (`elu` and `ELU`)."""
    first_by_key: dict[str, Trial] = {}
    for trial in trials:
        first_by_key.setdefault(trial.key, trial)
    return list(first_by_key.values())


def expand(spec: GridSpec, path: str | Path = "<config>") -> list[Trial]:
    """The full cross product: grid cells x seeds x backends, in that nesting (backend outer).
    A sampled key the cell never reads (momentum under Adam) is left out of its cell."""
    # Per crossing, not per trial: resolving the loss and hashing reads a data file whole.
    cell_fields = []
    points = spec.search.points() if spec.search is not None else [{}]
    for crossing in grid_cells(spec):
        resolved = cell_spec(spec, crossing, Path(path))
        shared = dict(
            loss=_resolved_loss(resolved),
            data_sha256=file_digest(resolved.dataset.name),
            data_path=_resolved_file(resolved.dataset.name),
        )
        for point in points:
            # A point sets fields whose bounds its range's ends passed (`check_grid_cells`):
            # only the sections it touches are validated again, not the whole grid per point.
            sections = _with_point(resolved, point) if point else resolved
            if sections.dataset != resolved.dataset:  # a sampled dataset option
                shared = dict(
                    loss=_resolved_loss(sections),
                    data_sha256=file_digest(sections.dataset.name),
                    data_path=_resolved_file(sections.dataset.name),
                )
            unread = sections.optimizer.ignored()
            cell = {**crossing, **{k: v for k, v in point.items() if k not in unread}}
            cell_fields.append(
                dict(
                    dataset=sections.dataset,
                    model=sections.model,
                    optimizer=sections.optimizer,
                    training=sections.training,
                    cell=_json_safe(cell),
                    **shared,
                )
            )
    return [
        Trial(
            experiment=spec.name, backend=backend, seed=seed, diagnostics=spec.diagnostics, **fields
        )
        for backend in spec.backends
        for fields in cell_fields
        for seed in spec.seeds
    ]


def _with_point(resolved: GridSpec, point: dict[str, Any]) -> GridSpec:
    """`resolved` with a point's values set: each section it touches validated on its own
    (a dataset key validates the whole grid again: it changes the loss and the data)."""
    if any(key.split(".")[0] not in ("model", "optimizer", "training") for key in point):
        return cell_spec(resolved, point, Path("<search>"), origin="search.space")
    update = {}
    for name in dict.fromkeys(key.split(".")[0] for key in point):
        section = getattr(resolved, name)
        raw = section.model_dump(mode="python")
        for key, value in point.items():
            *parents, leaf = key.split(".")
            if parents[0] != name:
                continue
            target = raw
            for part in parents[1:]:
                target = target[part]
            target[leaf] = copy.deepcopy(value)
        update[name] = type(section).model_validate(raw)
    return resolved.model_copy(update=update)


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
