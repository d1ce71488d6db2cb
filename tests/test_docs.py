"""The documentation site (mkdocs.yml) builds strictly, its generated reference names every
config key and CLI flag the code has, and no page loads anything from another machine."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "tools"))

import reference  # noqa: E402  (docs/tools/reference.py: what the build generates)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built with --strict into a temporary folder as `make docs` builds it."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},  # Material's notice about MkDocs 2
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_every_config_key_is_in_the_generated_reference(site):
    text = _text(site / "reference" / "config.html")
    keys = [field["key"] for field in reference.config_fields()]
    assert "training.vectorize" in keys and "compare.target" in keys  # nested sections too
    assert [key for key in keys if key not in text] == []
    # Allowed values come from the schema's Literals.
    assert "'none', 'seeds' or 'program'" not in text  # the reference lists them, not an error
    assert "program" in text.split("training.vectorize", 1)[1].split("training.", 1)[0]


def test_every_cli_command_and_flag_is_in_the_generated_reference(site):
    text = _text(site / "reference" / "cli.html")
    commands = reference.cli_commands()
    assert {"run", "compare", "rerun", "ui", "server", "figures"} <= set(commands)
    missing = [
        f"{name} {option}"
        for name, command in commands.items()
        for flag in reference.cli_flags(command)
        for option in flag["options"]
        if f"mlpsuite {name}" not in text or option not in text
    ]
    assert missing == []


def test_the_api_page_is_generated_from_the_docstrings(site):
    import mlpsuite

    text = _text(site / "reference" / "api.html")
    for function in (mlpsuite.run, mlpsuite.compare, mlpsuite.plan):
        assert function.__doc__ is not None
        first = " ".join(function.__doc__.replace("`", "").split())[:60]  # Markdown: code
        assert first in " ".join(text.split()), function.__name__


def test_no_page_loads_anything_from_another_machine(site):
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 4
    remote = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=\"(?:https?:)?//")
    loading = [(page.name, match.group(0)) for page in pages for match in remote.finditer(
        page.read_text(encoding="utf-8"))]  # fmt: skip
    assert loading == []
