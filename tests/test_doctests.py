"""The `Examples:` of the public API's docstrings run as written (stdlib `doctest`): what the
docs site's API page shows is what the code does.

The examples that run a grid (`mlpsuite.run`, `compare`, `GridResult`, `Comparison`) use
scikit-learn's reference backend, whose workers import no Keras, so they run in this process.
The layers' and `build_mlp`'s need Keras, so they run in each backend's worker
(tests/conftest.py): the same printed numbers on TensorFlow, PyTorch and JAX, to 4 decimals.
Run standalone this file takes about 39 s, most of it starting the three workers, which
`make test` starts anyway.
"""

from __future__ import annotations

import doctest
import importlib
import io
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# Printed arrays wrap and pad as NumPy likes; long messages are cut with "...".
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

PLAIN_MODULES = ("mlpsuite.api", "mlpsuite.present.notebook", "mlpsuite.data.loading")
# Every docstring with examples in PLAIN_MODULES, a test each; listed, so that collecting this
# file imports none of them (nor MLflow and pandas, in the backend workers too).
PLAIN = (
    "mlpsuite.api.plan",
    "mlpsuite.api.run",
    "mlpsuite.api.compare",
    "mlpsuite.api.shutdown",
    "mlpsuite.present.notebook.GridResult",
    "mlpsuite.present.notebook.Comparison",
    "mlpsuite.data.loading.load_dataset",
)
# Those that run a grid into a new store (the others print whether a store exists).
RUN_A_GRID = {
    "mlpsuite.api.run",
    "mlpsuite.api.compare",
    "mlpsuite.api.shutdown",
    "mlpsuite.present.notebook.GridResult",
    "mlpsuite.present.notebook.Comparison",
}

KERAS_MODULES = (
    "mlpsuite.layers",
    "mlpsuite.layers.activations",
    "mlpsuite.layers.scaling",
    "mlpsuite.models",
)
# The Keras names the API page documents with examples: each must keep at least one.
KERAS_DOCUMENTED = {
    "mlpsuite.layers.get_activation",
    "mlpsuite.models.build_mlp",
    *(
        f"mlpsuite.layers.activations.{name}"
        for name in (
            "Identity",
            "Step",
            "Sigmoid",
            "Tanh",
            "HardSigmoid",
            "ReLU",
            "LeakyReLU",
            "ELU",
            "SELU",
            "GELU",
            "Swish",
            "Softplus",
            "Mish",
            "PReLU",
        )
    ),
    *(
        f"mlpsuite.layers.scaling.{name}"
        for name in ("MinMaxScaling", "RobustScaling", "StandardScaling")
    ),
}


def _doctests(module_name: str) -> dict[str, doctest.DocTest]:
    """Every docstring of the module (its classes' methods too) that has examples, by name;
    found afresh for each run, which clears a test's globals."""
    module = importlib.import_module(module_name)
    return {test.name: test for test in doctest.DocTestFinder().find(module) if test.examples}


def _run(tests: list[doctest.DocTest]) -> None:
    """Run the doctests; fail with doctest's own report of every example that failed."""
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report = io.StringIO()
    for test in tests:
        runner.run(test, out=report.write)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0, "no example ran"
    if result.failed:
        failed = f"{result.failed} of {result.attempted} examples failed"
        pytest.fail(f"{failed}\n{report.getvalue()}", pytrace=False)


def _isolate(tmp_path: Path, monkeypatch, ready: Path | None = None) -> None:
    """The examples' `tempfile.mkdtemp()` folders under the test's own, which is also the
    working directory; no store of the environment's. With `ready` (an empty store: tests/
    grids.py's `_empty_store`), each folder an example makes comes with a copy of it as
    `mlflow.db`, MLflow's tables already made: their migrations cost seconds a store, and what
    the examples print is the same either way."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    if ready is None:
        return
    make_folder = tempfile.mkdtemp

    def mkdtemp(*args, **kwargs) -> str:
        folder = make_folder(*args, **kwargs)
        # An example's own call only: the library's (TemporaryDirectory's too) stay empty.
        if sys._getframe(1).f_code.co_filename.startswith("<doctest "):
            shutil.copyfile(ready, Path(folder) / "mlflow.db")
        return folder

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)


def test_plain_lists_every_example_of_its_modules():
    assert {name for module in PLAIN_MODULES for name in _doctests(module)} == set(PLAIN)


@pytest.mark.parametrize("name", PLAIN)
def test_examples(tmp_path, monkeypatch, name):
    if name in RUN_A_GRID:
        from tests.grids import _empty_store

        _isolate(tmp_path, monkeypatch, ready=_empty_store())
    else:
        _isolate(tmp_path, monkeypatch)
    module = name.rpartition(".")[0]  # each a function or class of its module
    _run([_doctests(module)[name]])


@pytest.mark.backend
@pytest.mark.parametrize("module", KERAS_MODULES)
def test_keras_examples(backend, tmp_path, monkeypatch, module):
    found = _doctests(module)
    documented = {name for name in KERAS_DOCUMENTED if name.rpartition(".")[0] == module}
    assert documented - set(found) == set(), "documented without examples"
    _isolate(tmp_path, monkeypatch)
    _run([found[name] for name in sorted(found)])
