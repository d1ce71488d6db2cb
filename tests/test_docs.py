"""The documentation site (mkdocs.yml) builds strictly; its generated reference names every
config key (each with its description) and CLI flag the code has; the tutorial shows the
notebook's own code executed, Performance every benchmark's own table, Results what the results
script wrote; the README is a front page whose links resolve; no page loads anything from
another machine (tests/test_docs_browser.py checks the same in a browser)."""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

import pytest

from tests.docs_site import build_site

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "tools"))

import reference  # noqa: E402  (docs/tools/reference.py: what the build generates)
import tutorial  # noqa: E402  (docs/tools/tutorial.py: the tutorial page from the notebook)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built with --strict into a temporary folder as `make docs` builds it."""
    return build_site(tmp_path_factory.mktemp("site"))


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


def test_every_config_key_has_a_description():
    """A new key gets its `Field(description=...)`, which the reference shows."""
    undescribed = [field["key"] for field in reference.config_fields() if not field["description"]]
    assert undescribed == []


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
    for function in (mlpsuite.run, mlpsuite.compare, mlpsuite.plan, mlpsuite.shutdown):
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


# ------------------------------------------------------------ generated pages and the front page


def test_the_tutorial_shows_the_notebooks_own_code_executed(site):
    """The executed copy (make tutorial) runs the notebook's current code, every cell of it."""
    assert tutorial.code_cells(tutorial.EXECUTED) == tutorial.code_cells(tutorial.NOTEBOOK), (
        "examples/lecture.ipynb changed: run `make tutorial` to execute it again for the site"
    )
    import nbformat

    executed = [
        cell
        for cell in nbformat.read(tutorial.EXECUTED, as_version=4).cells
        if cell.cell_type == "code"
    ]
    assert all(cell.execution_count for cell in executed)
    assert not [o for cell in executed for o in cell.outputs if o.output_type == "error"]
    page = (site / "tutorial" / "lecture.html").read_text(encoding="utf-8")
    # each of the five grids' inline answers, its figures as data: URIs
    assert page.count("data:image/png;base64,") >= 5
    for grid in ("lecture-identity", "lecture-vanishing", "lecture-dead-relu", "lecture-scaling"):
        assert grid in page


def test_the_performance_page_shows_every_benchmarks_own_table(site):
    results = ROOT / "benchmarks" / "results"
    source = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    named = re.findall(r"^<!-- benchmark: ([a-z_]+) -->$", source, flags=re.M)
    assert sorted(named) == sorted(path.stem for path in results.glob("*.md")), (
        "every benchmark's results are on the Performance page, and only those"
    )
    text = " ".join(_text(site / "performance.html").split())
    assert "<!-- benchmark" not in text
    # the numbers are the JSON's own: the scale benchmark's largest grid, as its script measured
    import json

    scale = json.loads((results / "scale.json").read_text(encoding="utf-8"))
    (largest,) = [row for row in scale["rows"] if row[1] == 10_000]
    run_s = largest[scale["header"].index("run s")]
    assert f"SQLite 10000 {run_s:.3g}" in text  # the 10,000-trial grid's run, as measured


def test_the_results_page_is_written_by_the_results_script(site):
    page = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    assert page.count(start) == 1 and page.count(end) == 1
    generated = page.split(start, 1)[1].split(end, 1)[0]
    for name in ("activations", "scaling", "optimizers", "optimizers-grid", "depth", "backends"):
        assert f"## {name}: " in generated
        assert f"experiments/{name}.yaml" in generated
    assert "Measured by `make results`" in generated
    images = re.findall(r"\]\((results/[\w.-]+\.png)\)", generated)
    assert images and all((ROOT / "docs" / image).is_file() for image in images)


def test_the_readme_is_a_front_page_that_links_into_the_site():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.encode()) <= 15_000, "the README is the front page: at most ~15 KB"
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert [link for link in links if not (ROOT / link).is_file()] == []
    nav = re.findall(r":\s+([\w/-]+\.md)$", (ROOT / "mkdocs.yml").read_text(), flags=re.M)
    hand_written = [
        page for page in nav if not page.startswith("reference/") and page != "index.md"
    ]
    linked = {link.removeprefix("docs/").replace(".ipynb", ".md") for link in links}
    assert [page for page in hand_written if page not in linked] == []
