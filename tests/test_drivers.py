"""Several drivers of one grid on one SQLite store: each trial key is claimed by one of them
(a RUNNING run with owner and heartbeat), the others skip it, wait for it and reuse it; a
driver that dies has its claims taken over. scikit-learn's MLP keeps the trials short."""

import collections
import signal
import subprocess
import time

from mlpsuite.tracking import StoreReader, Tracker
from tests.grids import clean_env, mlpsuite_command, sqlite_uri, write_grid

SEEDS = [0, 1, 2, 3]
ACTIVATIONS = ["relu", "tanh"]


def _grid(folder, name, epochs=80):
    return write_grid(folder, name, backends=["sklearn"], seeds=SEEDS, dataset={"name": "circles"},
                      training={"epochs": epochs, "batch_size": 8}, grid={"model.activation": ACTIVATIONS})


def _driver(path, uri, folder, **env):
    return subprocess.Popen(mlpsuite_command("run", str(path), "--tracking-uri", uri, "--jobs", "1"), cwd=folder,
                            env={**clean_env(), **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _runs(uri, name, status=None):
    # Through mlpsuite's reader: it opens a new store under the drivers' creation lock, where a
    # bare MlflowClient would migrate it at the same time as a driver and break both.
    client = StoreReader(uri).client
    experiment = client.get_experiment_by_name(name)
    query = "tags.`mlpsuite.kind` = 'trial'" + (f" and attributes.status = '{status}'" if status else "")
    return client, client.search_runs([experiment.experiment_id], query, max_results=1000)


def test_two_drivers_at_once_run_every_key_once_and_end_with_one_comparison(tmp_path):
    uri, path = sqlite_uri(tmp_path), _grid(tmp_path, "shared")
    drivers = [_driver(path, uri, tmp_path) for _ in range(2)]
    outputs = [driver.communicate(timeout=600) for driver in drivers]
    for driver, (stdout, stderr) in zip(drivers, outputs):
        assert driver.returncode == 0, stderr[-3000:]
    client, finished = _runs(uri, "shared", "FINISHED")
    per_key = collections.Counter(run.data.tags["mlpsuite.trial_key"] for run in finished)
    assert len(per_key) == len(SEEDS) * len(ACTIVATIONS) and set(per_key.values()) == {1}, per_key
    assert {run.data.tags["mlpsuite.claim"] for run in finished} == {"won"}
    # Each driver ran some of the keys (both had workers) and said how many the other ran.
    ran = [int(stdout.split(" run, ")[0].rsplit(": ", 1)[1]) for stdout, _ in outputs]
    assert sum(ran) == len(per_key) and min(ran) >= 1, ran
    assert all("run by another driver of this grid meanwhile" in stdout for stdout, _ in outputs
               if int(stdout.split(" run, ")[0].rsplit(": ", 1)[1]) < len(per_key))
    _, everything = _runs(uri, "shared")
    assert {run.info.status for run in everything} == {"FINISHED"}  # withdrawn claims are deleted runs
    experiment = client.get_experiment_by_name("shared")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_counted"] == len(per_key)
    assert {run.data.tags["mlflow.parentRunId"] for run in finished} == {parent.info.run_id}
    assert all(parent.info.run_id in stdout for stdout, _ in outputs)


def test_a_driver_killed_mid_grid_has_its_claims_taken_over(tmp_path):
    uri, path = sqlite_uri(tmp_path), _grid(tmp_path, "takeover", epochs=200)
    first = _driver(path, uri, tmp_path)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # the first driver holds a claim and has finished a trial
        time.sleep(0.5)
        if first.poll() is not None or not (tmp_path / "store" / "mlflow.db").is_file():
            continue
        try:
            _, runs = _runs(uri, "takeover")
        except Exception:  # the store is being created
            continue
        statuses = collections.Counter(run.info.status for run in runs)
        if statuses["FINISHED"] >= 1 and statuses["RUNNING"] >= 1:
            break
    assert first.poll() is None, first.communicate()[1][-3000:]
    second = _driver(path, uri, tmp_path, MLPSUITE_HEARTBEAT_S="1")
    time.sleep(6)  # the second driver is past its start-up, running keys the first did not claim
    while not [run for run in _runs(uri, "takeover", "RUNNING")[1] if run.data.tags["mlpsuite.pid"] == str(first.pid)]:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # while it holds a claim
    first.communicate(timeout=60)
    stdout, stderr = second.communicate(timeout=600)
    assert second.returncode == 0, stderr[-3000:]
    client, runs = _runs(uri, "takeover")
    finished = [run for run in runs if run.info.status == "FINISHED"]
    per_key = collections.Counter(run.data.tags["mlpsuite.trial_key"] for run in finished)
    assert len(per_key) == len(SEEDS) * len(ACTIVATIONS) and set(per_key.values()) == {1}, per_key
    killed = [run for run in runs if run.info.status == "KILLED"]
    assert killed and {run.data.tags["mlpsuite.failure"] for run in killed} == {"coordinator died"}
    assert {run.data.tags["mlpsuite.pid"] for run in killed} == {str(first.pid)}
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
