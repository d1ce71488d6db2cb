"""Writing a generated page into the docs folder."""

from __future__ import annotations

from pathlib import Path


def write_if_changed(path: Path, text: str) -> Path:
    """Write `text` to `path` unless it already holds it: an unchanged page keeps its mtime, so
    `mkdocs serve` does not rebuild in a loop on the pages the build itself writes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path
