"""A grid at scale: one with nothing to run starts no worker and checks no data; resuming and
comparing read the grid's trial index (tracking/index.py), not every run and every curve, so
their requests do not grow with the grid (counted, not timed); the index holds what MLflow
holds and sees what changed in the store after it was written; claims go in batches.
scikit-learn's MLP keeps the trials short."""

from __future__ import annotations

import collections
import csv
import io
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, Run, RunData, RunInfo, RunTag

from mlpsuite.analysis import compare
from mlpsuite.api import plan
from mlpsuite.config import expand, load_config, unique_trials
from mlpsuite.executors.local import LocalExecutor
from mlpsuite.grid_checks import check_grid
from mlpsuite.runner import run_grid
from mlpsuite.tracking import Tracker
from mlpsuite.tracking.claims import MAX_CLAIM_BATCH, claim_batch
from mlpsuite.tracking.index import RunRecord, TrialIndex, dump_index, load_index
from tests.grids import ready_store, run_in_process, write_grid

SIZES = (8, 24)  # trials: 2 activations × 4 and × 12 seeds


class CountingTracker(Tracker):
    """A real Tracker that counts its store calls by MLflow method name (every call goes
    through `_call`, tracking/calls.py)."""

    def __init__(self, uri: str):
        super().__init__(uri)
        self.calls: collections.Counter = collections.Counter()
        calls = self._call

        def counted(call, *args, **kwargs):
            self.calls[getattr(call, "__name__", repr(call))] += 1
            return calls(call, *args, **kwargs)

        self._call = counted  # type: ignore[assignment]


class CountingExecutor(LocalExecutor):
    """Local workers, counted as they start."""

    def __init__(self, jobs: int):
        super().__init__(jobs)
        self.started = 0

    def _start(self, index, backend):
        self.started += 1
        return super()._start(index, backend)


def _grid(folder: Path, trials: int) -> Path:
    return write_grid(
        folder,
        f"scale{trials}",
        backends=["sklearn"],
        seeds=list(range(trials // 2)),
        training={"epochs": 3, "batch_size": 16},
        grid={"model.activation": ["relu", "tanh"]},
    )


def _run(path: Path, uri: str, checked: list | None = None):
    """The grid through the runner as `mlpsuite run` drives it; `checked` collects each time
    the data is checked. Returns (outcome, tracker, executor)."""
    spec = load_config(path)
    tracker, executor = CountingTracker(uri), CountingExecutor(2)

    def check_data():
        (checked if checked is not None else []).append(spec.name)
        return check_grid(spec, path)

    trials = unique_trials(expand(spec, path))
    outcome = run_grid(spec, path, tracker, executor=executor, trials=trials, check_data=check_data)
    return outcome, tracker, executor


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    """Each size's grid, run once and then again with nothing to run."""
    made = {}
    for trials in SIZES:
        folder = tmp_path_factory.mktemp(f"scale{trials}")
        path, uri = _grid(folder, trials), ready_store(folder)
        first, _, first_executor = _run(path, uri)
        checked: list = []
        again, tracker, executor = _run(path, uri, checked)
        made[trials] = {
            "path": path,
            "uri": uri,
            "first": first,
            "first_started": first_executor.started,
            "again": again,
            "again_calls": tracker.calls,
            "again_started": executor.started,
            "checked": checked,
        }
    return made


def test_a_grid_with_nothing_to_run_starts_no_worker_checks_no_data_and_keeps_its_report(grids):
    for trials, grid in grids.items():
        assert len(grid["first"].results) == trials and grid["first"].failed == 0
        assert grid["first_started"] >= 1  # the first run had work, and workers
        again = grid["again"]
        assert (again.reused, len(again.results), again.invocation) == (trials, 0, 2)
        assert grid["again_started"] == 0, "a grid with nothing to run started a worker"
        assert grid["checked"] == [], "the data was checked though nothing was to run"
        calls = grid["again_calls"]
        # The parent shows this very report already: its files are not written again, and
        # no run is read one by one.
        assert calls["log_artifacts"] == 0 and calls["get_metric_history"] == 0, calls
        assert again.comparison is not None
        assert again.comparison.frame["status"].eq("FINISHED").all()


def test_resume_and_compare_make_as_many_requests_at_24_trials_as_at_8(grids):
    small, large = (grids[trials]["again_calls"] for trials in SIZES)
    assert small == large, (small, large)
    counted = []
    for trials in SIZES:
        tracker = CountingTracker(grids[trials]["uri"])
        comparison = compare(tracker, f"scale{trials}")
        assert comparison.frame["run_id"].notna().sum() == trials
        counted.append(tracker.calls)
    assert counted[0] == counted[1], counted
    assert counted[0]["get_metric_history"] == 0 and counted[0]["search_runs"] <= 8, counted[0]


def test_the_index_holds_what_mlflow_holds(grids):
    grid = grids[SIZES[0]]
    tracker = Tracker(grid["uri"])
    parent = tracker.get_run(grid["first"].parent_run_id)
    index = tracker._index(parent)
    assert index is not None and len(index.records) == SIZES[0]
    client = MlflowClient(grid["uri"])
    for record in index.records:
        run = client.get_run(record.info.run_id)
        assert record.info.status == run.info.status
        assert (record.info.start_time, record.info.end_time) == (
            run.info.start_time,
            run.info.end_time,
        )
        assert record.data.tags == run.data.tags
        assert record.data.params == run.data.params
        assert record.data.metrics == pytest.approx(run.data.metrics)
        assert record.complete
        for name in run.data.metrics:
            history = sorted(
                client.get_metric_history(run.info.run_id, name),
                key=lambda m: (m.step, m.timestamp),
            )
            assert record.curve(name) == [[m.step, m.value] for m in history], name


def test_a_run_deleted_after_the_index_was_written_runs_again(grids, tmp_path):
    grid = grids[SIZES[0]]
    # A copy of the store: the module's grids stay as they are.
    folder = tmp_path / "copy"
    path, uri = _grid(folder.parent, SIZES[0]), ready_store(folder)
    _run(path, uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(f"scale{SIZES[0]}")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'trial'")
    client.delete_run(runs[0].info.run_id)
    outcome, tracker, executor = _run(path, uri)
    assert (len(outcome.results), outcome.reused) == (1, SIZES[0] - 1)
    assert executor.started == 1
    (trial, result) = outcome.results[0]
    assert trial.key == runs[0].data.tags["mlpsuite.trial_key"] and result.status == "FINISHED"
    assert outcome.comparison is not None
    counted = outcome.comparison.frame
    assert runs[0].info.run_id not in set(counted["run_id"])
    assert len(counted) == SIZES[0] and counted["status"].eq("FINISHED").all()
    assert grid["first"].parent_run_id != outcome.parent_run_id  # another store, another grid


@pytest.mark.check
def test_claims_go_in_batches_a_small_share_of_the_grid():
    assert [claim_batch(n) for n in (1, 8, 63, 64, 200, 10_000)] == [1, 1, 1, 2, 6, 8]
    assert claim_batch(10**6) == MAX_CLAIM_BATCH


def _mlflow_run(status: str = "FINISHED") -> Run:
    """A run as MLflow's client returns it."""
    info = RunInfo("r1", "1", "me", status, 5, 9, "active", run_name="relu seed 0")
    data = RunData([Metric("m", 0.5, 1, 0)], [Param("p", "1")], [RunTag("a", "b")])
    return Run(info, data)


@pytest.mark.check
def test_an_index_file_round_trips_and_a_damaged_one_reads_as_none():
    record = RunRecord.of_run(_mlflow_run())
    assert (record.info.run_id, record.info.status, record.info.end_time) == ("r1", "FINISHED", 9)
    assert record.data.tags == {"a": "b"} and record.data.metrics == {"m": 0.5}
    record.curves = {"loss": [[0, 1.0], [1, 0.5]]}
    data = dump_index(TrialIndex([record], 123, "driver", "host"))
    loaded = load_index(data)
    assert loaded is not None and (loaded.written_ms, loaded.driver, loaded.host) == (
        123,
        "driver",
        "host",
    )
    (back,) = loaded.records
    assert back.info == record.info and back.data == record.data
    assert back.curves == record.curves and not back.complete
    assert load_index(data[:20]) is None and load_index(b"not gzip") is None


@pytest.mark.check
def test_curves_keep_steps_in_order_and_the_latest_value_as_mlflow_does():
    record = RunRecord.of_run(_mlflow_run("RUNNING"))
    # Epochs 0..2, then a final value logged at step 0 (as `end_run` logs final metrics).
    record.log_metrics(
        [Metric("loss", v, 10 + step, step) for step, v in enumerate([3.0, 2.0, 1.0])]
    )
    record.log_metrics([Metric("loss", 9.0, 99, 0)])
    assert record.curve("loss") == [[0, 3.0], [0, 9.0], [1, 2.0], [2, 1.0]]
    assert record.data.metrics["loss"] == 1.0  # the highest step's, as MLflow's latest metric


@pytest.mark.check
def test_bundled_datasets_are_cached_per_scikit_learn_version(tmp_path, monkeypatch):
    from sklearn.datasets import load_wine

    from mlpsuite.data.builtin import _bundled, dataset_cache_dir

    monkeypatch.setenv("MLPSUITE_CACHE_DIR", str(tmp_path))
    folder = dataset_cache_dir()
    assert folder is not None and folder == tmp_path / "datasets"
    first = _bundled("wine")
    (cached,) = folder.glob("wine-sklearn-*.npz")
    second = _bundled("wine")
    reference = load_wine(as_frame=False)  # a Bunch (pyright reads the return_X_y tuple)
    assert not isinstance(reference, tuple)
    for got in (first, second):
        np.testing.assert_array_equal(got[0], reference.data)
        np.testing.assert_array_equal(got[1], reference.target)
        assert got[2] == tuple(reference.feature_names) and got[3] == "classification"
    assert second[0].dtype == reference.data.dtype
    cached.write_bytes(b"damaged")  # read again from scikit-learn, and cached again
    np.testing.assert_array_equal(_bundled("wine")[0], reference.data)
    monkeypatch.setenv("MLPSUITE_CACHE_DIR", "none")
    assert dataset_cache_dir() is None
    np.testing.assert_array_equal(_bundled("wine")[1], reference.target)


def test_the_dry_run_lists_every_trial_as_csv_with_what_the_store_would_reuse(grids, tmp_path):
    grid = grids[SIZES[0]]
    done = run_in_process(
        "run",
        str(grid["path"]),
        "--dry-run",
        "--format",
        "csv",
        "--tracking-uri",
        grid["uri"],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    planned = plan(grid["path"])
    assert [row["key"] for row in rows] == [trial.key for trial in planned]
    assert [row["model.activation"] for row in rows] == [
        trial.cell_values()["model.activation"] for trial in planned
    ]
    assert {row["reused"] for row in rows} == {"True"}  # every trial FINISHED in the store
    assert [row["program"] for row in rows] == [trial.program_key for trial in planned]


@pytest.mark.check
def test_the_dry_run_of_a_large_grid_is_a_summary_and_writes_nothing(tmp_path):
    path = write_grid(
        tmp_path,
        "large",
        backends=["sklearn", "jax"],
        seeds=list(range(40)),
        grid={"model.activation": ["relu", "tanh", "elu"]},
    )
    done = run_in_process("run", str(path), "--dry-run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert "240 trials: sklearn 120, jax 120" in out
    assert "3 cells × 40 seeds (0–39)" in out and "compiled programs" in out
    assert "240 trials to run: no store at sqlite:///mlruns/mlflow.db yet" in out
    assert "activation=elu" in out and "Rows per split: iris" in out
    assert len(done.stdout.splitlines()) < 25  # a summary, not 240 rows
    assert not (tmp_path / "mlruns").exists()
    listed = run_in_process("run", str(path), "--dry-run", "--format", "csv", cwd=tmp_path)
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert len(rows) == 240 and "reused" not in rows[0]
    assert collections.Counter(row["backend"] for row in rows) == {"sklearn": 120, "jax": 120}


@pytest.mark.check
def test_a_trials_key_is_computed_once_and_a_copy_with_changes_gets_its_own(tmp_path):
    path = write_grid(tmp_path, "keys", backends=["jax"], seeds=[0, 1])
    first, second = expand(load_config(path))
    again = expand(load_config(path))[0]
    key = first.key
    assert first.key is key  # kept, not hashed again
    assert first == again and again.key == key  # the cached key is not part of equality
    changed = first.model_copy(update={"seed": 1})
    assert changed.key == second.key != key
    assert first.model_copy().key == key
