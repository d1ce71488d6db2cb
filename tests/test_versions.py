"""Library versions are part of the record: a comparison names the version sets its trials
mix, parity pairs only trials of one set, `--reuse same-versions` retrains the others, and the
parent run holds the environment as requirements.txt."""

import json
import math
import shlex
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient

from mlpsuite.analysis.tables import parity_table
from mlpsuite.analysis.versions import mixed_libraries, version_line
from tests.grids import ready_store, run_in_process, write_grid

NAME = (
    "drift – Übung 1"  # a name the shell would split: every command printed for pasting is quoted
)


def test_a_grid_mixing_versions_says_so_and_same_versions_retrains_the_others(tmp_path):
    grid = write_grid(
        tmp_path,
        NAME,
        backends=["sklearn"],
        seeds=[0, 1],
        dataset={"name": "circles"},
        training={"epochs": 10, "batch_size": 16},
        grid={"model.activation": ["relu", "tanh"]},
    )
    uri = ready_store(tmp_path)
    first = run_in_process("run", str(grid), "--tracking-uri", uri, "--jobs", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Versions: sklearn " in first.stdout and "Mixed" not in first.stdout
    again_hint = " ".join(first.stdout.split()).split("again: ", 1)[1]
    again_words = shlex.split(again_hint)  # after the command name (test_cli.py: command_name)
    assert again_words[again_words.index("compare") :] == ["compare", NAME, "--tracking-uri", uri]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(NAME)
    assert experiment is not None
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
    text = Path(
        client.download_artifacts(parent.info.run_id, "requirements.txt", str(tmp_path))
    ).read_text(encoding="utf-8")
    assert "# cpu: " in text and "scikit-learn==" in text and "mlflow==" in text
    # As if one trial had been trained before an upgrade of scikit-learn. An ended run edited
    # by hand is not among what the grid's trial index looks for again (runs ended, running or
    # deleted since): its tag `mlpsuite.trial_index` goes too, as the README tells, and the
    # next run reads every run from the store.
    old = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'trial'")[0]
    with sqlite3.connect(tmp_path / "store" / "mlflow.db") as connection:
        connection.execute(
            "update tags set value = '0.24.2' where key = 'mlpsuite.version.sklearn' "
            "and run_uuid = ?",
            (old.info.run_id,),
        )
        connection.execute(
            "delete from tags where key = 'mlpsuite.trial_index' and run_uuid = ?",
            (parent.info.run_id,),
        )
    reused = run_in_process("run", str(grid), "--tracking-uri", uri, "--jobs", "1", cwd=tmp_path)
    assert reused.returncode == 0 and "0 trials to run, 4 reused" in reused.stderr, reused.stderr
    assert "1 of the reused trials were recorded with other library versions" in " ".join(
        reused.stderr.split()
    )
    assert reused.stdout.lstrip().startswith("Mixed library versions (of sklearn)")
    found = json.loads(
        run_in_process(
            "compare", NAME, "--format", "json", "--tracking-uri", uri, cwd=tmp_path
        ).stdout
    )
    assert found["mixed_libraries"] == ["sklearn"]
    assert sorted(row["trials"] for row in found["version_sets"]) == [1, 3]
    note = client.get_run(parent.info.run_id).data.tags["mlflow.note.content"]
    assert note.startswith("**Mixed library versions (of sklearn)")
    again = run_in_process(
        "run",
        str(grid),
        "--tracking-uri",
        uri,
        "--jobs",
        "1",
        "--reuse",
        "same-versions",
        cwd=tmp_path,
    )
    assert again.returncode == 0 and "1 trials to run, 3 reused" in again.stderr, again.stderr
    assert "Mixed" not in again.stdout and "Versions: sklearn " in again.stdout
    assert client.get_run(old.info.run_id).data.tags["mlpsuite.superseded_by"]
    wrong = run_in_process(
        "run", str(grid), "--tracking-uri", uri, "--reuse", "newest", cwd=tmp_path
    )
    assert wrong.returncode == 2 and "--reuse: invalid choice: 'newest'" in wrong.stderr


def _pair(keras_versions):
    rows = [
        {
            "backend": backend,
            "cell": "relu",
            "seed": 0,
            "status": "FINISHED",
            "run_id": backend,
            "weights_sha256": "same",
            "dropout": 0.0,
            "initial_loss": 0.7,
            "versions": f"keras {keras} / {backend} 1.0 / numpy 2.0",
        }
        for backend, keras in zip(("jax", "torch"), keras_versions, strict=True)
    ]
    return pd.DataFrame(rows), {"jax": [0.7, 0.5], "torch": [0.7, 0.5 + 1e-7]}


@pytest.mark.check
def test_parity_pairs_only_trials_of_one_version_set():
    frame, losses = _pair(["3.15.1", "3.15.1"])
    table = parity_table(frame, losses)
    assert len(table) == 1 and math.isclose(table["max_epoch_rel_diff"][0], 2e-7, rel_tol=1e-3)
    assert mixed_libraries(frame) == [] and version_line(frame).startswith(
        "Versions: keras 3.15.1 / jax 1.0"
    )
    frame, losses = _pair(["3.15.1", "3.16.0"])  # keras upgraded between the two backends' runs
    assert parity_table(frame, losses).empty
    assert mixed_libraries(frame) == [
        "keras"
    ] and "Backend parity pairs only trials" in version_line(frame)
