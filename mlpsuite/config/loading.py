"""`load_config`: a grid's YAML file (or a dict in its shape) read and validated into a `GridSpec`.

The YAML is `yaml.safe_load`'s, except that a key given twice in one mapping is an error (plain
YAML keeps the last one silently, so a grid would run only one of the two values) and numbers
are read as YAML 1.2 reads them (`1e-3` is a float, not the text YAML 1.1 makes of it). Every
mistake is a `ConfigError` line naming the file and the key: all of the schema's at once, then
the grid cells' (the first). What needs the data (each dataset loaded, memory, the `compare:`
protocol) is `grid_checks.check_grid`'s, one layer up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from mlpsuite.config.grid import check_grid_cells
from mlpsuite.config.messages import validated
from mlpsuite.config.schema import GridSpec
from mlpsuite.errors import ConfigError

# What errors name for a grid given as a dict (`mlpsuite.run({...})`) rather than a file.
CONFIG_DICT = Path("<config dict>")
Source = str | Path | Mapping[str, Any]


def load_config(source: Source, backends: str | None = None) -> GridSpec:
    """Read and validate a grid: a YAML file, or a dict in the YAML's shape (errors then name
    `<config dict>`); `backends` ("tf,jax") overrides its `backends`. Every grid key must name a
    field, and each of its values must validate there."""
    path = source_path(source)
    raw = dict(source) if isinstance(source, Mapping) else read_yaml(path)
    if backends is not None:
        raw = {**raw, "backends": backends}
    spec = validated(GridSpec, raw, path)
    check_grid_cells(spec, path)
    return spec


def source_path(source: Source) -> Path:
    """What a grid's errors name: its file, or `<config dict>`."""
    return CONFIG_DICT if isinstance(source, Mapping) else Path(source)


class _UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` refusing a key given twice in one mapping."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen and key != "<<":
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r}; each key may appear once per mapping",
                key_node.start_mark,
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)
# Numbers as YAML 1.2 reads them: `1e-3`, `3e4`, `1E+2` and `1.0e6` are floats. PyYAML follows
# YAML 1.1, whose floats want a dot and a signed exponent (`1.0e-3`), and reads the others as
# text; nearly every ML config writes a rate the 1.2 way (OmegaConf reads it so too).
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"),
)


def read_yaml(path: Path) -> dict:
    """The file's mapping; a ConfigError naming the file for anything else."""
    if path.is_dir():
        raise ConfigError(
            f"{path}: is a folder; expected a grid YAML file such as experiments/quickstart.yaml"
        )
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.start}); expected a grid YAML file"
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: expected a mapping with keys name, dataset, model, ..., "
            f"got {type(raw).__name__}"
        )
    return raw
