"""pydantic's validation errors as one `ConfigError` line: the file, the dotted key, the problem
and, where the schema lists them, the allowed keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mlpsuite.errors import ConfigError

Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], raw: Any, path: Path, suffix: str = "") -> Model:
    """`model.model_validate(raw)`, or a ConfigError of one line (with `suffix` appended)."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(one_line(error, model, path) + suffix) from None


def one_line(error: ValidationError, model: type[BaseModel], path: Path) -> str:
    """The first of `error`'s problems as `FILE: dotted.key: message`."""
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
