"""The tutorial page from the lecture notebook, with its outputs.

`make tutorial` executes `examples/lecture.ipynb` in a real Jupyter kernel (nbclient) into a
temporary MLflow store and keeps the executed copy as `docs/tutorial/lecture.ipynb` (committed);
each site build turns that copy into `docs/tutorial/lecture.md` (generated, not committed).

Why executed ahead and not at build time: the notebook runs five grids (a minute or more on 2
cores, with worker processes and a store), which would make every `make docs` slow and make the
site depend on a working kernel; the tests execute the notebook anyway
(`tests/test_notebook.py`), and `tests/test_docs.py` fails when the executed copy's code is not
the notebook's, so the page cannot show stale code. Why not mkdocs-jupyter: it inserts MathJax
from a CDN into every notebook page, and the widget manager from unpkg when the notebook holds
widget state, where this site loads nothing from another machine.
"""

from __future__ import annotations

import html
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import nbformat
from generated import write_if_changed

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "lecture.ipynb"
EXECUTED = ROOT / "docs" / "tutorial" / "lecture.ipynb"
PAGE = "tutorial/lecture.md"
# The live progress bar is an ipywidget: it has no state once the kernel is gone.
WIDGET = "application/vnd.jupyter.widget-view+json"


def execute(source: Path = NOTEBOOK, target: Path = EXECUTED) -> Path:
    """Run the notebook in a kernel, into a temporary store; keep it with its outputs."""
    from nbclient import NotebookClient

    notebook = nbformat.read(source, as_version=4)
    with tempfile.TemporaryDirectory() as folder:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{folder}/mlflow.db"
        os.environ.pop("KERAS_BACKEND", None)  # the kernel's workers set their own
        client = NotebookClient(
            notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": folder}}
        )
        client.execute()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs = [
                output for output in cell.outputs if WIDGET not in output.get("data", {})
            ]
    notebook.metadata.pop("widgets", None)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, target)
    return target


def code_cells(path: Path) -> list[str]:
    """The source of every code cell, in order."""
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def page(path: Path = EXECUTED) -> str:
    """The executed notebook as a Markdown page: its Markdown cells as they are, each code cell
    as a code block (``py``: the site's ``python`` blocks are the ones the tests run, and these
    the notebook test runs) followed by its outputs."""
    notebook = nbformat.read(path, as_version=4)
    parts = [
        "<!-- Generated from docs/tutorial/lecture.ipynb (make tutorial); edit "
        "examples/lecture.ipynb. -->\n"
    ]
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source.replace("`shared/seed/lecture-notes.txt`'s", "the lecture's"))
        elif cell.cell_type == "code":
            parts.append(f"```py\n{cell.source}\n```")
            parts.extend(filter(None, map(_output, cell.outputs)))
    return "\n\n".join(parts) + "\n"


def _output(output: Any) -> str:
    if output.output_type == "stream":
        return _text(output.text) if output.name == "stdout" else ""
    if output.output_type == "error":
        return _text("\n".join(output.traceback))
    data = output.get("data", {})
    if "text/html" in data:
        # the grid's own HTML view (its figures inline as data: URIs); kept in a block of its own
        return f'<div class="notebook-output">\n{data["text/html"]}\n</div>'
    if "image/png" in data:
        # nbformat keeps a PNG as its base64 text
        return f'<img alt="figure" src="data:image/png;base64,{data["image/png"]}">'
    if "text/plain" in data:
        return _text(data["text/plain"])
    return ""


def _text(value: str) -> str:
    return f'<pre class="notebook-output">{html.escape(value.rstrip())}</pre>'


def write_page(docs: Path) -> Path | None:
    """Write the tutorial page under `docs` from the executed copy (none before `make tutorial`)."""
    if not EXECUTED.exists():
        return None
    return write_if_changed(docs / PAGE, page())


if __name__ == "__main__":
    print(
        f"executed {NOTEBOOK.relative_to(ROOT)} into {execute().relative_to(ROOT)}", file=sys.stderr
    )
