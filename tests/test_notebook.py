"""examples/lecture.ipynb executed in a real Jupyter kernel (nbclient), into a temporary store:
every cell runs, every grid shows its answer inline, and the lecture's claims hold in the runs
MLflow recorded (read back here, not from the notebook's own printout)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from mlflow import MlflowClient
from nbclient import NotebookClient

import mlpsuite
from tests.grids import ROOT, ready_store

NOTEBOOK = ROOT / "examples" / "lecture.ipynb"
GRIDS = (
    "lecture-identity",
    "lecture-vanishing",
    "lecture-dead-relu",
    "lecture-scaling",
    "lecture-optimizers",
)


@pytest.fixture(scope="module")
def executed(tmp_path_factory, request):
    folder = tmp_path_factory.mktemp("notebook")
    uri = ready_store(folder)
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_TRACKING_URI", uri)
    patch.delenv("KERAS_BACKEND", raising=False)  # the kernel's workers set their own
    request.addfinalizer(patch.undo)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    return notebook, uri


def _outputs(notebook, kind: str) -> list:
    return [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == kind
    ]


def test_every_grid_shows_its_answer_inline(executed):
    notebook, _ = executed
    pages = [
        o["data"]["text/html"]
        for o in _outputs(notebook, "execute_result")
        if "text/html" in o["data"]
    ]
    assert len(pages) == len(GRIDS)
    for page, grid in zip(pages, GRIDS, strict=True):
        assert (
            f"{grid}: comparison of" in page
            and "<table" in page
            and "data:image/png;base64," in page
        )
    readings = [o["text"] for o in _outputs(notebook, "stream") if o["name"] == "stdout"]
    assert len(readings) == len(GRIDS) and all(text.strip().endswith(".") for text in readings)
    # The isolation plot shows as a picture, not as `<Figure size ...>`.
    assert "image/png" in _outputs(notebook, "execute_result")[-1]["data"]
    assert not _outputs(notebook, "error")


def _pooled(uri: str, experiment: str, key: str, metric: str) -> dict:
    cells = mlpsuite.compare(experiment, tracking_uri=uri).cells
    pooled = cells[cells["backend"] == "all"]
    return dict(zip(pooled[key], pooled[f"{metric}_mean"], strict=True))


def test_the_lecture_claims_hold_in_the_recorded_runs(executed):
    _, uri = executed
    accuracy = _pooled(uri, "lecture-identity", "model.activation", "test_accuracy")
    assert accuracy["identity"] < min(
        accuracy["relu"], accuracy["tanh"]
    )  # a line cannot separate the moons
    scaled = _pooled(uri, "lecture-scaling", "model.scaler", "test_accuracy")
    assert scaled["none"] < min(scaled["minmax"], scaled["robust"], scaled["standard"])
    client = MlflowClient(uri)
    runs = _trial_runs(client, "lecture-vanishing")
    drop = {
        name: [
            1 - r.data.metrics["loss"] / r.data.metrics["initial_loss"]
            for r in runs
            if r.data.params["model.activation"] == name
        ]
        for name in ("sigmoid", "relu")
    }
    assert max(drop["sigmoid"]) < min(drop["relu"])  # six sigmoid layers: the gradient vanishes
    dead = {}
    for run in _trial_runs(client, "lecture-dead-relu"):
        fractions = [v for k, v in run.data.metrics.items() if k.startswith("dead_fraction/")]
        dead.setdefault(run.data.params["model.activation"], []).extend(fractions)
    assert max(dead["relu"]) > 0 and max(dead["leaky_relu"]) == max(dead["elu"]) == 0
    optimizers = mlpsuite.compare("lecture-optimizers", tracking_uri=uri)
    assert (
        optimizers.nuisance_keys == ["optimizer.learning_rate"] and "selected" in optimizers.cells
    )


def _trial_runs(client: MlflowClient, experiment: str) -> list:
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    return client.search_runs([found.experiment_id], "tags.`mlpsuite.kind` = 'trial'")


@pytest.mark.check
def test_the_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
    assert Path(NOTEBOOK).stat().st_size < 50_000
