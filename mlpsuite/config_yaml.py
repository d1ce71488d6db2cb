"""A grid's YAML file read into a dict, one-line errors for what is not a grid YAML.

`yaml.safe_load`, except that a key given twice in one mapping is an error: plain YAML keeps
the last one silently, so a grid would run only one of the two values.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from mlpsuite.errors import ConfigError


class _UniqueKeyLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` refusing a key given twice in one mapping."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen and key != "<<":
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}; each key may appear once per mapping", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def read_yaml(path: Path) -> tuple[dict, Path]:
    """The file's mapping and its path; a ConfigError naming the file for anything else."""
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; expected a grid YAML file such as experiments/quickstart.yaml")
    if not path.is_file():
        raise ConfigError(f"{path}: file not found")
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text (byte {error.start}); expected a grid YAML file") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with keys name, dataset, model, ..., "
                          f"got {type(raw).__name__}")
    return raw, path
