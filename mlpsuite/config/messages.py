"""pydantic's validation errors as a `ConfigError` of one line per problem: the file, the dotted
key, the problem and, where the schema lists them, the allowed keys or values (and the close
match, where a name looks mistyped)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from mlpsuite.errors import ConfigError
from mlpsuite.registry import did_you_mean

Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], raw: Any, path: Path, suffix: str = "") -> Model:
    """`model.model_validate(raw)`, or a ConfigError of every problem, one line each (each with
    `suffix` appended)."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        lines = problem_lines(error, model, path)
        raise ConfigError(problems=[line + suffix for line in lines]) from None


def problem_lines(error: ValidationError, model: type[BaseModel], path: Path) -> list[str]:
    """Each of `error`'s problems as `FILE: dotted.key: message`, once each, in pydantic's order.

    pydantic collects every field's problems into one ValidationError. A model validator that
    runs "after" its fields (`test_size + val_size < 1`, early stopping's metric, an activation's
    name and parameters) runs only once those fields validate, so its problem is reported by the
    next load, once the others are fixed."""
    return list(dict.fromkeys(one_line(details, model, path) for details in error.errors()))


def one_line(details: ErrorDetails, model: type[BaseModel], path: Path) -> str:
    """One of a ValidationError's problems as `FILE: dotted.key: message`."""
    loc = [str(part) for part in details["loc"] if not str(part).startswith("function-")]
    key = ".".join(loc) or "(top level)"
    message = details["msg"].removeprefix("Value error, ")
    if details["type"] == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        hint = did_you_mean(loc[-1], allowed) if loc else ""
        message = f"unknown key; {hint}allowed: {', '.join(allowed)}"
    elif details["type"] == "missing":
        message = "required key is missing"
    elif "input" in details and details["type"] not in ("value_error", "assertion_error"):
        message = f"{message}, got {details['input']!r}"
        if details["type"] == "literal_error":
            expected = str(details.get("ctx", {}).get("expected", ""))
            hint = did_you_mean(details["input"], re.findall(r"'([^']*)'", expected))
            message += f"; {hint.strip()}" if hint else ""
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
