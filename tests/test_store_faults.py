"""Faults around the store, each one line and exit 2, nothing lost: a file that is not an
MLflow store (for every command that opens one), a store locked by another process, a disk
that fills mid-grid, an artifact folder that cannot be written."""

import contextlib
import hashlib
import resource
import sqlite3
import subprocess
import sys

import pytest
from mlflow import MlflowClient

from tests.grids import (
    clean_env,
    mlpsuite_command,
    ready_store,
    run_in_process,
    run_mlpsuite,
    sqlite_uri,
    write_grid,
)
from tests.servers import Watched


def _sklearn_grid(folder, name, seeds=(0, 1, 2, 3)):
    return write_grid(
        folder,
        name,
        backends=["sklearn"],
        seeds=list(seeds),
        dataset={"name": "circles"},
        training={"epochs": 20, "batch_size": 16},
        grid={"model.activation": ["relu", "tanh"]},
    )


def _new_store(path):
    """An empty MLflow store of the installed MLflow's schema at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line_error(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert (
        lines and lines[-1].startswith("mlpsuite: error: ") and "Traceback" not in result.stderr
    ), result.stderr
    for needle in needles:
        assert needle in lines[-1], lines[-1]
    return lines[-1]


def test_a_file_that_is_not_an_mlflow_store_is_one_line_for_every_command(tmp_path):
    not_a_database = tmp_path / "notes.db"
    not_a_database.write_text("my notes, not a database\n" * 50)
    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as connection:
        connection.execute("create table invoices (id integer primary key, total real)")
        connection.commit()
    newer = _new_store(tmp_path / "newer" / "mlflow.db")
    with contextlib.closing(sqlite3.connect(newer)) as connection:
        connection.execute("update alembic_version set version_num = 'ffffeeee0001'")
        connection.commit()
    says = {
        not_a_database: "is not a SQLite database",
        other: "is a database of another program (tables: invoices)",
        newer: "newer than the installed MLflow",
    }
    before = {path: _digest(path) for path in says}
    grid = _sklearn_grid(tmp_path, "faults")
    commands = [
        ("compare", "faults"),
        ("run", str(grid)),
        ("rerun", "0" * 32),
        ("ui", "--port", "5999"),
        ("figures", "gradients", "--experiment", "faults", "--out", str(tmp_path / "figures")),
    ]
    for number, command in enumerate(
        commands
    ):  # each command on one kind of file, compare on all three
        for path in list(says)[number % 3 : number % 3 + 1] if number else says:
            # One real console script (what a terminal shows, library noise included); the
            # others in this process, through the same `cli.main`.
            run = run_mlpsuite if number == 1 else run_in_process
            result = run(*command, "--tracking-uri", f"sqlite:///{path}", cwd=tmp_path)
            _one_line_error(result, says[path], path.name)
    assert {path: _digest(path) for path in says} == before  # nothing was written to any of them
    assert not [
        path for path in says if path.with_name(path.name + ".lock").exists()
    ]  # nor beside them
    assert not (tmp_path / "figures").exists()


def test_a_locked_store_is_waited_for_and_said_then_one_line(tmp_path, monkeypatch):
    store = _new_store(tmp_path / "store" / "mlflow.db")
    uri = f"sqlite:///{store}"
    holder = sqlite3.connect(store, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # as a backup or another program's write transaction would
    try:
        monkeypatch.setenv("MLPSUITE_STORE_LOCK_S", "2")
        locked = run_in_process("compare", "nothing-here", "--tracking-uri", uri, cwd=tmp_path)
        _one_line_error(
            locked, "still locked by another process after 2 s", "MLPSUITE_STORE_LOCK_S"
        )
        assert (
            "is locked by another process" in locked.stderr and "waiting up to 2 s" in locked.stderr
        )
        # Released while the next command waits: it goes on.
        waiting = Watched(
            mlpsuite_command("compare", "nothing-here", "--tracking-uri", uri),
            tmp_path,
            {**clean_env(), "MLPSUITE_STORE_LOCK_S": "120"},
        )
        try:
            waiting.wait_for_stderr("is locked by another process")
            holder.execute("ROLLBACK")
            waiting.wait(timeout=120)
        finally:
            waiting.kill()
    finally:
        holder.close()
    # The lock gone, the command went on to the store's answer: there is no such experiment.
    result = subprocess.CompletedProcess([], waiting.process.returncode, "", waiting.stderr())
    _one_line_error(result, "no experiment 'nothing-here'")


@contextlib.contextmanager
def _small_disk(folder, spare_bytes):
    """`folder` on a tmpfs holding a new store and `spare_bytes` more (yields a function that
    frees space); else, where mounting is not allowed, a file-size limit for the child."""
    folder.mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)], capture_output=True
        ).returncode
        == 0
    )
    store = _new_store(folder / "mlflow.db")
    used = store.stat().st_size
    if not mounted:
        limit = used + spare_bytes
        yield lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)), lambda: None
        return
    size_k = (used + spare_bytes) // 1024 + 1
    subprocess.run(["mount", "-o", f"remount,size={size_k}k", str(folder)], check=True)
    try:
        yield (
            None,
            lambda: subprocess.run(["mount", "-o", "remount,size=64m", str(folder)], check=True),
        )
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_stops_the_grid_in_one_line_and_the_run_after_freeing_space_finishes_it(
    tmp_path,
):
    grid = _sklearn_grid(tmp_path, "full", seeds=range(8))
    uri = sqlite_uri(tmp_path)
    with _small_disk(tmp_path / "store", spare_bytes=120_000) as (limit, free):
        command = mlpsuite_command("run", str(grid), "--tracking-uri", uri, "--jobs", "1")
        full = subprocess.run(
            command,
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=300,
            preexec_fn=limit,
        )
        _one_line_error(full, f"store {uri}: out of space writing", "run the same command again")
        free()
        again = subprocess.run(
            command, cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=300
        )
        assert again.returncode == 0, again.stderr[-3000:]
        client = MlflowClient(uri)
        experiment = client.get_experiment_by_name("full")
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'trial'")
    finished = [
        run.data.tags["mlpsuite.trial_key"] for run in runs if run.info.status == "FINISHED"
    ]
    assert len(finished) == len(set(finished)) == 16  # every key once: none of those done ran again
    assert {run.info.status for run in runs} <= {
        "FINISHED",
        "KILLED",
    } and "16 run" not in again.stdout


@pytest.mark.check
def test_an_artifact_that_cannot_be_written_leaves_its_run_finished_and_tagged(tmp_path):
    grid = _sklearn_grid(tmp_path, "no-artifacts", seeds=(0,))
    (tmp_path / "store" / "artifacts").mkdir(parents=True)
    (tmp_path / "store" / "artifacts" / "no-artifacts").write_text(
        "a file where the folder would go"
    )
    result = run_in_process(
        "run", str(grid), "--tracking-uri", ready_store(tmp_path), "--jobs", "1", cwd=tmp_path
    )
    assert "Traceback" not in result.stderr and "could not write artifact" in result.stderr
    client = MlflowClient(sqlite_uri(tmp_path))
    experiment = client.get_experiment_by_name("no-artifacts")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'trial'")
    assert len(runs) == 2 and {run.info.status for run in runs} == {"FINISHED"}
    for run in runs:
        assert "test_accuracy" in run.data.metrics and run.data.params["model.activation"] in (
            "relu",
            "tanh",
        )
        assert run.data.tags["mlpsuite.missing_artifacts"].startswith(
            "trial.json (NotADirectoryError"
        )
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
    assert (
        parent.info.status == "FINISHED"
        and "grid.json" in parent.data.tags["mlpsuite.missing_artifacts"]
    )
    # The comparison needs the grid's manifest: said in one line, the trials recorded, exit 1.
    assert result.returncode == 1 and "it could not be written" in " ".join(result.stderr.split())


_PLAIN_CLIENT = (
    "import sys; from mlflow import MlflowClient; MlflowClient(sys.argv[1]).search_experiments()"
)


def _when(ready, within: float = 60.0) -> None:
    """Wait (bounded) until `ready()` is true."""
    import time

    deadline = time.monotonic() + within
    while not ready():
        assert time.monotonic() < deadline, "the other client never got that far"
        time.sleep(0.01)


def _has_table(path, name: str) -> bool:
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=0.1)
        try:
            found = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return False
    return found is not None


@pytest.mark.parametrize("moment", ["at its start", "once the file exists", "mid-migration"])
def test_a_new_store_another_mlflow_client_creates_at_the_same_moment_is_waited_for(
    tmp_path, moment
):
    """`mlflow ui`, a notebook or a polling script creates the same new SQLite store while an
    mlpsuite command opens it: mlpsuite waits for it and uses the store it made (no advice to
    upgrade, no traceback), at each moment of the other's creation."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    from mlpsuite.tracking import Tracker

    uri = sqlite_uri(tmp_path)
    database = tmp_path / "store" / "mlflow.db"
    database.parent.mkdir(parents=True)
    other = subprocess.Popen(
        [sys.executable, "-c", _PLAIN_CLIENT, uri],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if moment == "once the file exists":
            _when(lambda: database.exists())
        elif moment == "mid-migration":
            _when(lambda: _has_table(database, "alembic_version"))
        tracker = Tracker(uri)
        experiment = tracker.experiment_id("raced")
        assert tracker.find_experiment("raced") == experiment
    finally:
        other.wait(timeout=120)
    connection = sqlite3.connect(database)
    try:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    finally:
        connection.close()
    assert revision == _get_latest_schema_revision()
