"""The README's API tour runs as written, on every backend."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)

README = Path(__file__).resolve().parents[1] / "README.md"
SNIPPETS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_python_snippets():
    assert len(SNIPPETS) >= 3


@pytest.mark.backend
@pytest.mark.parametrize("index", range(len(SNIPPETS)))
def test_readme_snippet_runs(backend, index, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(SNIPPETS[index], f"README.md snippet {index + 1}", "exec"), {"__name__": "readme"})
    assert capsys.readouterr().out.strip(), "each snippet prints what it shows"


def test_readme_quick_start_is_the_ci_command():
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    steps = [line.split() for line in ci.splitlines()]
    assert "make test" in README.read_text(encoding="utf-8") and ["timed", "make", "test"] in steps


def test_readme_grid_example_is_a_valid_config(tmp_path):
    from mlpsuite.config import expand, load_config

    (yaml_block,) = re.findall(r"```yaml\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    path = tmp_path / "readme.yaml"
    path.write_text(yaml_block, encoding="utf-8")
    assert (
        len(expand(load_config(path))) == 3 * 3 * 3 * 2
    )  # backends x seeds x activations x scalers
