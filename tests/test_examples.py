"""The examples a reader copies run as written: every ```python block of the README and of the
site's pages (docs/**/*.md) on every backend, the grid YAML of the run-grids guide, and the
README's test command is the one CI runs. A page marks a block runnable by writing it as
```python; a block that needs a store or a run id of the reader's is written ```py or ```text."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Hand-written pages only: those the build generates (docs/tools; git-ignored) are not examples.
GENERATED = {"reference/config.md", "reference/cli.md", "tutorial/lecture.md"}
PAGES = [
    README,
    *sorted(
        path
        for path in (ROOT / "docs").rglob("*.md")
        if path.relative_to(ROOT / "docs").as_posix() not in GENERATED
    ),
]


def _blocks(language: str) -> list[tuple[str, str]]:
    return [
        (f"{path.relative_to(ROOT)} block {number}", code)
        for path in PAGES
        for number, code in enumerate(
            re.findall(
                rf"^```{language}\n(.*?)^```", path.read_text(encoding="utf-8"), re.S | re.M
            ),
            start=1,
        )
    ]


SNIPPETS = _blocks("python")


def test_the_pages_have_runnable_snippets():
    assert len(SNIPPETS) >= 3, [name for name, _ in SNIPPETS]


@pytest.mark.backend
@pytest.mark.parametrize("name,code", SNIPPETS, ids=[name for name, _ in SNIPPETS])
def test_snippet_runs(backend, name, code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, name, "exec"), {"__name__": "docs_example"})
    assert capsys.readouterr().out.strip(), f"{name}: each snippet prints what it shows"


def test_ci_runs_the_readmes_test_command_once():
    """The README's test command is CI's test step, and the suite's only run there."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    steps = [line.split()[1:] for line in ci.splitlines() if line.startswith("timed ")]
    (command,) = [
        line.split("#")[0].split()
        for line in README.read_text(encoding="utf-8").splitlines()
        if line.startswith("make ") and "the test command, as CI runs it" in line
    ]
    assert steps == [["make", "lint"], command] and command == ["make", "test"]


def test_the_run_guides_grid_is_a_valid_config(tmp_path):
    from mlpsuite.config import expand, load_config

    page = (ROOT / "docs" / "how-to" / "run-grids.md").read_text(encoding="utf-8")
    (yaml_block,) = re.findall(r"^```yaml\n(.*?)^```", page, flags=re.S | re.M)
    path = tmp_path / "guide.yaml"
    path.write_text(yaml_block, encoding="utf-8")
    assert (
        len(expand(load_config(path))) == 3 * 3 * 3 * 2
    )  # backends x seeds x activations x scalers
