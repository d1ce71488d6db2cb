"""MkDocs hooks (mkdocs.yml `hooks:`): the generated reference pages are written before each
build, from the code itself (docs/tools/reference.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference import write_pages  # noqa: E402


def on_pre_build(config, **kwargs) -> None:
    """Regenerate the config and CLI reference before MkDocs reads the docs folder."""
    write_pages(Path(config["docs_dir"]))
