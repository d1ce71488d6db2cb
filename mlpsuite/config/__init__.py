"""Experiment grids: YAML -> validated `GridSpec` -> `expand()` -> frozen, hashed `Trial`s.

`schema` holds the pydantic models, `compare` the `compare:` section, `loading` the YAML and
`load_config`, `messages` the one-line errors, `grid` the cells, the expansion and the trial
keys. Imports no deep-learning framework: the coordinator validates and expands configs before
any worker starts.
"""

from mlpsuite.config.compare import CompareSpec
from mlpsuite.config.grid import (
    Trial,
    cell_label,
    cell_spec,
    cells,
    expand,
    file_digest,
    label_lines,
    short_label,
    short_value,
    unique_trials,
)
from mlpsuite.config.loading import CONFIG_DICT, load_config, source_path
from mlpsuite.config.schema import (
    DatasetSpec,
    EarlyStoppingSpec,
    GridSpec,
    ModelSpec,
    OptimizerSpec,
    ScheduleSpec,
    TrainingSpec,
)
from mlpsuite.errors import ConfigError

__all__ = [
    "unique_trials",
    "CONFIG_DICT",
    "CompareSpec",
    "ConfigError",
    "DatasetSpec",
    "EarlyStoppingSpec",
    "GridSpec",
    "ModelSpec",
    "OptimizerSpec",
    "ScheduleSpec",
    "TrainingSpec",
    "Trial",
    "cell_label",
    "cell_spec",
    "cells",
    "expand",
    "file_digest",
    "load_config",
    "label_lines",
    "short_label",
    "short_value",
    "source_path",
]
