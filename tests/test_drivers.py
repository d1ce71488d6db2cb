"""Several drivers of one grid on one SQLite store: each trial key is claimed by one of them
(a RUNNING run with owner and heartbeat), the others skip it, wait for it and reuse it; a
driver that dies has its claims taken over. scikit-learn's MLP keeps the trials short."""

import collections
import os
import signal
import subprocess
import time

from mlpsuite.tracking import StoreReader, Tracker
from tests.faults import children
from tests.grids import clean_env, mlpsuite_command, sqlite_uri, write_grid

SEEDS = [0, 1, 2, 3]
ACTIVATIONS = ["relu", "tanh"]


def _grid(folder, name, epochs=80):
    return write_grid(
        folder,
        name,
        backends=["sklearn"],
        seeds=SEEDS,
        dataset={"name": "circles"},
        training={"epochs": epochs, "batch_size": 8},
        grid={"model.activation": ACTIVATIONS},
    )


def _driver(path, uri, folder, **env):
    return subprocess.Popen(
        mlpsuite_command("run", str(path), "--tracking-uri", uri, "--jobs", "1"),
        cwd=folder,
        env={**clean_env(), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _runs(uri, name, status=None):
    # Through mlpsuite's reader: it opens a new store under the drivers' creation lock, where a
    # bare MlflowClient would migrate it at the same time as a driver and break both.
    client = StoreReader(uri).client
    experiment = client.get_experiment_by_name(name)
    assert experiment is not None  # a poller catches this while the grid creates it
    query = "tags.`mlpsuite.kind` = 'trial'" + (
        f" and attributes.status = '{status}'" if status else ""
    )
    return client, client.search_runs([experiment.experiment_id], query, max_results=1000)


def test_two_drivers_at_once_run_every_key_once_and_end_with_one_comparison(tmp_path):
    uri, path = sqlite_uri(tmp_path), _grid(tmp_path, "shared")
    drivers = [_driver(path, uri, tmp_path) for _ in range(2)]
    outputs = [driver.communicate(timeout=600) for driver in drivers]
    for driver, (_stdout, stderr) in zip(drivers, outputs, strict=True):
        assert driver.returncode == 0, stderr[-3000:]
    client, finished = _runs(uri, "shared", "FINISHED")
    per_key = collections.Counter(run.data.tags["mlpsuite.trial_key"] for run in finished)
    assert len(per_key) == len(SEEDS) * len(ACTIVATIONS) and set(per_key.values()) == {1}, per_key
    assert {run.data.tags["mlpsuite.claim"] for run in finished} == {"won"}
    # Each driver ran some of the keys (both had workers) and said how many the other ran.
    ran = [int(stdout.split(" run, ")[0].rsplit(": ", 1)[1]) for stdout, _ in outputs]
    assert sum(ran) == len(per_key) and min(ran) >= 1, ran
    assert all(
        "run by another driver of this grid meanwhile" in stdout
        for stdout, _ in outputs
        if int(stdout.split(" run, ")[0].rsplit(": ", 1)[1]) < len(per_key)
    )
    _, everything = _runs(uri, "shared")
    assert {run.info.status for run in everything} == {
        "FINISHED"
    }  # withdrawn claims are deleted runs
    experiment = client.get_experiment_by_name("shared")
    assert experiment is not None
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_counted"] == len(
        per_key
    )
    assert {run.data.tags["mlflow.parentRunId"] for run in finished} == {parent.info.run_id}
    assert all(parent.info.run_id in stdout for stdout, _ in outputs)


def _runs_when(uri, name, condition, process, timeout=300):
    """The grid's trial runs once `condition(runs)` holds; fails if `process` ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        try:
            _, runs = _runs(uri, name)
        except Exception:  # the store or the experiment is still being created
            runs = None
        if runs is not None and condition(runs):
            return runs
        time.sleep(0.2)
    raise AssertionError(f"the grid {name} never reached the wanted state")


def test_a_driver_killed_mid_grid_has_its_claims_taken_over(tmp_path):
    """The first driver is killed while it holds a claim whose trial cannot finish first (its
    worker is frozen), and while the second driver is running the keys it could claim."""
    uri, path = sqlite_uri(tmp_path), _grid(tmp_path, "takeover", epochs=120)
    # The first heartbeats every second, the second takes a claim unchanged for 15 s as its
    # owner's death (not the 90 s default: the test waited it out, 112 s of the suite's time).
    first = _driver(path, uri, tmp_path, MLPSUITE_HEARTBEAT_S="1")

    def mine(runs, driver, status):
        return [
            r
            for r in runs
            if r.info.status == status and r.data.tags.get("mlpsuite.pid") == str(driver.pid)
        ]

    _runs_when(
        uri,
        "takeover",
        lambda runs: mine(runs, first, "FINISHED") and mine(runs, first, "RUNNING"),
        first,
    )
    (worker,) = children(first.pid)
    os.kill(worker, signal.SIGSTOP)  # its trial in flight can no longer finish
    second = _driver(path, uri, tmp_path, MLPSUITE_HEARTBEAT_S="1", MLPSUITE_CLAIM_STALE_S="15")
    _runs_when(uri, "takeover", lambda runs: mine(runs, second, "FINISHED"), second)
    (held,) = mine(_runs(uri, "takeover")[1], first, "RUNNING")  # still its claim, frozen
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    os.kill(worker, signal.SIGKILL)
    stdout, stderr = second.communicate(timeout=600)
    assert second.returncode == 0, stderr[-3000:]
    client, runs = _runs(uri, "takeover")
    finished = [run for run in runs if run.info.status == "FINISHED"]
    per_key = collections.Counter(run.data.tags["mlpsuite.trial_key"] for run in finished)
    assert len(per_key) == len(SEEDS) * len(ACTIVATIONS) and set(per_key.values()) == {1}, per_key
    killed = [run for run in runs if run.info.status == "KILLED"]
    assert [run.info.run_id for run in killed] == [held.info.run_id]
    assert killed[0].data.tags["mlpsuite.failure"] == "coordinator died"
    assert not [run for run in runs if run.info.status == "RUNNING"]
    assert "Traceback" not in stderr


def test_an_experiment_another_driver_created_meanwhile_is_joined_not_an_error(tmp_path):
    # Two drivers both found no experiment and both create it: the later one joins the first's
    # (CI saw RESOURCE_ALREADY_EXISTS end a driver on PostgreSQL).
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first, second = Tracker(uri), Tracker(uri)
    assert second.client.get_experiment_by_name("shared") is None
    created = first.create_experiment("shared")
    assert second.create_experiment("shared") == created
    assert second.experiment_id("shared") == created
    assert len(first.client.search_experiments(filter_string="name = 'shared'")) == 1
