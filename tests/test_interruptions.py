"""Real `mlpsuite run` processes interrupted, their workers killed, two grids on one store.
scikit-learn's MLP: the subject is the coordinator, and its workers start in a second."""

import os
import signal
import subprocess
import time
from pathlib import Path

from mlflow import MlflowClient

from tests.faults import children
from tests.grids import (
    clean_env,
    mlpsuite_command,
    polled_statuses,
    ready_store,
    run_in_process,
    sqlite_uri,
    trial_runs,
    write_grid,
)

# Each trial runs a few seconds (iris, many epochs) so a signal lands mid-trial.
# Long enough that a trial is still running when the test acts on it (seconds each on sklearn),
# short enough that the runs that finish the grid afterwards stay cheap.
LONG_TRIALS = {"training": {"epochs": 250, "batch_size": 8}, "backends": ["sklearn"]}


def _start(path: Path, uri: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        mlpsuite_command("run", str(path), "--tracking-uri", uri, "--jobs", "1"),
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_until(condition, process: subprocess.Popen, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            assert process.stderr is not None  # _start pipes it
            raise AssertionError(
                f"mlpsuite ended early ({process.returncode}): {process.stderr.read()[-2000:]}"
            )
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    process.kill()
    raise AssertionError("timed out waiting for the grid to reach the wanted state")


def test_ctrl_c_marks_in_flight_runs_killed_and_resume_runs_no_trial_twice(tmp_path):
    path = write_grid(
        tmp_path,
        "interrupted",
        **LONG_TRIALS,
        grid={"model.activation": ["relu", "tanh", "identity"]},
    )
    uri = ready_store(tmp_path)
    process = _start(path, uri, tmp_path)
    _wait_until(
        lambda: {"FINISHED", "RUNNING"} <= {s for s, _, _ in polled_statuses(uri, "interrupted")},
        process,
    )
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-2000:]
    after_interrupt = polled_statuses(uri, "interrupted")
    assert "RUNNING" not in {s for s, _, _ in after_interrupt}
    assert "KILLED" in {s for s, _, _ in after_interrupt}
    killed = trial_runs(uri, "interrupted").query("status == 'KILLED'")
    assert set(killed["tags.mlpsuite.failure"]) == {"interrupted"}

    done = run_in_process("run", str(path), "--tracking-uri", uri, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    finished = [
        key for status, key, _ in polled_statuses(uri, "interrupted") if status == "FINISHED"
    ]
    assert len(finished) == len(set(finished)) == 3  # every trial once, none twice
    runs = trial_runs(uri, "interrupted")
    parents = MlflowClient(uri).search_runs(
        [runs["experiment_id"].iloc[0]], "tags.`mlpsuite.kind` = 'grid'"
    )
    # One grid, one parent: the resume reopened it, and every trial hangs under it.
    assert [p.info.status for p in parents] == ["FINISHED"]
    parent = parents[0]
    assert parent.data.tags["mlpsuite.invocations"] == "2"
    assert set(runs["tags.mlflow.parentRunId"]) == {parent.info.run_id}
    assert (
        parent.data.metrics["trials_counted"] == 3 and parent.data.metrics["trials_excluded"] == 0
    )
    assert "3 of 3 trials counted" in parent.data.tags["mlflow.note.content"]


def test_sigkilled_worker_gives_one_failed_run_and_the_grid_finishes(tmp_path):
    path = write_grid(
        tmp_path, "killed", **LONG_TRIALS, grid={"model.activation": ["relu", "tanh", "identity"]}
    )
    uri = ready_store(tmp_path)
    process = _start(path, uri, tmp_path)
    _wait_until(
        lambda: any(
            s == "RUNNING" and epochs >= 1 for s, _, epochs in polled_statuses(uri, "killed")
        ),
        process,
    )
    workers = children(process.pid)
    assert len(workers) == 1
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stderr[-2000:]
    runs = trial_runs(uri, "killed")
    assert len(runs) == 3
    assert sorted(runs["status"]) == ["FAILED", "FINISHED", "FINISHED"]
    failed = runs.query("status == 'FAILED'")
    assert list(failed["tags.mlpsuite.failure"]) == ["worker died"]
    message = failed["tags.mlpsuite.failure_message"].iloc[0]
    assert message.startswith("killed by SIGKILL (exit code -9") and "out-of-memory" in message
    listed = [a.path for a in MlflowClient(uri).list_artifacts(failed["run_id"].iloc[0])]
    assert "failure.txt" in listed  # the dead worker's last output
    assert "a worker died: its log is kept in" in stderr


def test_two_grids_at_once_on_one_sqlite_store(tmp_path):
    uri = sqlite_uri(tmp_path)
    paths = [
        write_grid(
            tmp_path,
            name,
            backends=["sklearn"],
            training={"epochs": 100},
            grid={"model.activation": ["relu", "tanh", "identity"]},
        )
        for name in ("left", "right")
    ]
    processes = [_start(path, uri, tmp_path) for path in paths]
    for process in processes:
        _, stderr = process.communicate(timeout=240)
        assert process.returncode == 0, stderr[-2000:]
        assert "locked" not in stderr.lower()
    for name in ("left", "right"):
        runs = trial_runs(uri, name)
        assert len(runs) == 3 and set(runs["status"]) == {"FINISHED"}


def test_sighup_stops_like_ctrl_c_with_exit_129(tmp_path):
    path = write_grid(
        tmp_path, "hangup", **LONG_TRIALS, grid={"model.activation": ["relu", "tanh", "identity"]}
    )
    uri = ready_store(tmp_path)
    process = _start(path, uri, tmp_path)
    _wait_until(
        lambda: any(
            s == "RUNNING" and epochs >= 1 for s, _, epochs in polled_statuses(uri, "hangup")
        ),
        process,
    )
    process.send_signal(signal.SIGHUP)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 129, stderr[-2000:]
    runs = trial_runs(uri, "hangup")
    assert "RUNNING" not in set(runs["status"]) and "KILLED" in set(runs["status"])
    parents = MlflowClient(uri).search_runs(
        [runs["experiment_id"].iloc[0]], "tags.`mlpsuite.kind` = 'grid'"
    )
    assert [p.info.status for p in parents] == ["KILLED"]


def test_runs_left_running_by_a_killed_coordinator_are_marked_killed_by_the_next_run(tmp_path):
    path = write_grid(
        tmp_path, "orphaned", **LONG_TRIALS, grid={"model.activation": ["relu", "tanh"]}
    )
    uri = ready_store(tmp_path)
    process = _start(path, uri, tmp_path)
    _wait_until(
        lambda: any(
            s == "RUNNING" and epochs >= 1 for s, _, epochs in polled_statuses(uri, "orphaned")
        ),
        process,
    )
    workers = children(process.pid)
    process.kill()  # SIGKILL: no clean-up, the runs stay RUNNING
    process.wait()
    for worker in workers:  # its workers notice their closed stdin; do not wait for them
        os.kill(worker, signal.SIGKILL)
    assert "RUNNING" in {s for s, _, _ in polled_statuses(uri, "orphaned")}
    done = run_in_process("run", str(path), "--tracking-uri", uri, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "runs KILLED that an mlpsuite run which no longer exists had left RUNNING" in done.stderr
    runs = trial_runs(uri, "orphaned")
    assert "RUNNING" not in set(runs["status"])
    killed = runs.query("status == 'KILLED'")
    assert len(killed) >= 1 and set(killed["tags.mlpsuite.failure"]) == {"coordinator died"}
    assert runs.query("status == 'FINISHED'")["tags.mlpsuite.trial_key"].nunique() == 2
    parents = MlflowClient(uri).search_runs(
        [runs["experiment_id"].iloc[0]], "tags.`mlpsuite.kind` = 'grid'"
    )
    assert [p.info.status for p in parents] == ["FINISHED"]  # the orphaned parent, reopened
    assert "mlpsuite.failure" not in parents[0].data.tags  # why it was killed is no longer true
