"""The generated reference pages: every config key from the pydantic schema, every CLI command
and flag from argparse. Written into the docs folder by the MkDocs hook (`docs/tools/hooks.py`)
before each build, so the reference cannot drift from the code; not committed."""

from __future__ import annotations

import argparse
import types
import typing
from pathlib import Path
from typing import Any

from generated import write_if_changed
from pydantic import BaseModel
from pydantic_core import PydanticUndefined


def write_pages(docs: Path) -> list[Path]:
    """Write the generated pages under `docs`; returns their paths."""
    pages = {"reference/config.md": config_page(), "reference/cli.md": cli_page()}
    return [write_if_changed(docs / name, text) for name, text in pages.items()]


# ---------------------------------------------------------------------------- config keys


def config_fields() -> list[dict[str, str]]:
    """Every key of a grid config, dotted (`training.early_stopping.patience`), in schema order:
    its type, default, allowed values and description."""
    from mlpsuite.config.schema import GridSpec

    return list(_fields(GridSpec, ""))


def _fields(model: type[BaseModel], prefix: str):
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        annotation = field.annotation
        yield {
            "key": dotted,
            "type": _type_name(annotation),
            "default": _default(field),
            "allowed": _allowed(annotation),
            "description": (field.description or "").replace("\n", " "),
        }
        for nested in _models(annotation):
            yield from _fields(nested, f"{dotted}.")


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field holds (itself, or inside an Optional/Union)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models(arg)]


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of the allowed values"
    if origin is typing.Annotated:
        return _type_name(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in typing.get_args(annotation))
    if origin is not None:
        args = ", ".join(_type_name(arg) for arg in typing.get_args(annotation) if arg is not ...)
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section"
    return getattr(annotation, "__name__", str(annotation))


def _allowed(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return ", ".join(f"`{value}`" for value in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        found = [_allowed(arg) for arg in typing.get_args(annotation)]
        return ", ".join(text for text in found if text)
    return ""


def _default(field) -> str:
    if field.default is PydanticUndefined:
        return "required" if field.default_factory is None else "(empty)"
    value = field.default
    if isinstance(value, BaseModel):
        return "(its defaults)"
    return f"`{value!r}`" if value is not None else "`null`"


def config_page() -> str:
    rows = [
        "| "
        + " | ".join(
            [f"`{f['key']}`", *(_cell(f[name]) for name in ("type", "default", "allowed"))]
            + [_cell(f["description"])]
        )
        + " |"
        for f in config_fields()
    ]
    return "\n".join(
        [
            "# Config reference",
            "",
            "Every key of a grid's YAML, generated from the pydantic schema "
            "(`mlpsuite/config/schema.py`) when the site is built. Dotted keys are nested "
            "sections: `training.early_stopping.patience` is `patience` under "
            "`early_stopping` under `training`.",
            "",
            "| key | type | default | allowed | description |",
            "|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


def _cell(text: str) -> str:
    """A Markdown table cell: a `|` inside would end it."""
    return text.replace("|", "\\|")


# ---------------------------------------------------------------------------- CLI


def cli_commands() -> dict[str, argparse.ArgumentParser]:
    """`mlpsuite`'s subcommands, by name, as argparse builds them."""
    from mlpsuite.cli import parser

    top = parser()
    for action in top._actions:  # argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def cli_flags(command: argparse.ArgumentParser) -> list[dict[str, str]]:
    flags = []
    for action in command._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        names = ", ".join(f"`{name}`" for name in action.option_strings) or f"`{action.dest}`"
        default = action.default
        shown = "" if default in (None, argparse.SUPPRESS, False) else f"`{default}`"
        choices = ", ".join(f"`{c}`" for c in action.choices) if action.choices else ""
        flags.append(
            {
                "names": names,
                "options": list(action.option_strings) or [action.dest],
                "default": shown,
                "choices": choices,
                "help": (action.help or "").replace("\n", " ").replace("|", "\\|"),
            }
        )
    return flags


def cli_page() -> str:
    lines = [
        "# Command-line reference",
        "",
        "Every `mlpsuite` command and flag, generated from the argument parser "
        "(`mlpsuite/cli/`) when the site is built.",
        "",
    ]
    for name, command in cli_commands().items():
        lines += [f"## `mlpsuite {name}`", "", (command.description or "").strip(), ""]
        lines += ["| argument | default | choices | what it does |", "|---|---|---|---|"]
        lines += [
            f"| {f['names']} | {f['default']} | {f['choices']} | {f['help']} |"
            for f in cli_flags(command)
        ]
        lines.append("")
    return "\n".join(lines)
