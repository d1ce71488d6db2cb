"""A grid logged to a real `mlflow server` on 127.0.0.1, and `mlpsuite ui` serving the store."""

import json
import os
import subprocess
import sys
import time
import socket
import urllib.error
import urllib.request

import pytest
from mlflow import MlflowClient

from tests.grids import clean_env, mlpsuite_command, ready_store, run_mlpsuite, sqlite_uri, write_grid
from tests.servers import free_port, start_suite_server, stop, two_grids_at_once, wait_for_http


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    log = tmp_path / "mlflow-server.log"
    with open(log, "w", encoding="utf-8") as output:  # not a pipe: nobody reads it, and a full one blocks
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", ready_store(tmp_path), "--artifacts-destination", str(tmp_path / "artifacts"),
             "--workers", "1"],
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", process, log=log)
        yield url
    finally:
        stop(process)


def test_grid_logs_to_an_http_tracking_server(tmp_path, mlflow_server):
    path = write_grid(tmp_path, "served", backends=["jax"], grid={"model.activation": ["relu", "elu"]})
    done = run_mlpsuite("run", str(path), "--tracking-uri", mlflow_server, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "mlruns").exists()  # nothing went to the default local store
    assert "View run" not in done.stdout  # MLflow's own link per run stays out of our output
    assert f"Browse: {mlflow_server}/#/experiments/" in done.stdout
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("served")
    runs = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'trial'")
    assert sorted(r.data.params["model.activation"] for r in runs) == ["elu", "relu"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    downloaded = client.download_artifacts(runs[0].info.run_id, "trial.json", str(tmp_path))
    with open(downloaded, encoding="utf-8") as logged:
        assert json.load(logged)["backend"] == "jax"
    # The comparison on the parent run, read back through the server.
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
    assert parent.info.status == "FINISHED"
    assert "Best cell: activation=" in parent.data.tags["mlflow.note.content"]
    assert parent.data.metrics["trials_counted"] == 2 and "step_time_ms_jax" in parent.data.metrics
    listed = {a.path for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert {"comparison/cells.csv", "comparison/report.md", "comparison/curves.png"} <= listed
    report = client.download_artifacts(parent.info.run_id, "comparison/report.md", str(tmp_path))
    with open(report, encoding="utf-8") as text:
        assert "#### Ranking by final val_loss" in text.read()
    compared = run_mlpsuite("compare", "served", "--format", "json", "--tracking-uri", mlflow_server,
                            cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert json.loads(compared.stdout)["parent_run_id"] == parent.info.run_id


def test_mlpsuite_ui_serves_the_store_on_localhost(tmp_path):
    from mlpsuite.tracking import Tracker, resolve_uri

    Tracker(resolve_uri(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"))  # the store a run leaves
    port = free_port()
    env = clean_env()
    process = subprocess.Popen(mlpsuite_command("ui", "--port", str(port)), cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", process)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search",
            data=b'{"max_results": 10}', headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert b"Default" in response.read()
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


@pytest.mark.parametrize("command", [["ui", "--port", "5999"], ["rerun", "0123456789abcdef"]], ids=["ui", "rerun"])
def test_ui_and_rerun_never_create_a_store(tmp_path, command):
    done = run_mlpsuite(*command, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no store at" in done.stderr, done.stderr
    assert not (tmp_path / "mlruns").exists()
    typo = run_mlpsuite(*command, "--tracking-uri", f"sqlite:///{tmp_path}/mlrun/mlflow.db", cwd=tmp_path)
    assert typo.returncode == 2 and not (tmp_path / "mlrun").exists()


@pytest.fixture
def suite_server(tmp_path):
    """`mlpsuite server` on a free port, its store and artifacts in the test's folder."""
    (tmp_path / "served").mkdir()
    port = free_port()
    process = start_suite_server(tmp_path, port, ready_store(tmp_path / "served"), tmp_path / "served" / "artifacts")
    try:
        yield f"http://127.0.0.1:{port}", tmp_path / "served" / "artifacts"
    finally:
        stop(process)


def test_a_ray_grid_logs_through_mlpsuite_server_with_served_artifacts(tmp_path, suite_server):
    url, artifacts = suite_server
    path = write_grid(tmp_path, "cluster", backends=["torch"], grid={"model.activation": ["relu", "tanh"]})
    done = run_mlpsuite("run", str(path), "--tracking-uri", url, "--executor", "ray", "--jobs", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("cluster")
    assert experiment.artifact_location.startswith("mlflow-artifacts:")  # served, not a path on disk
    runs = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'trial'")
    assert sorted(r.data.params["model.activation"] for r in runs) == ["relu", "tanh"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert any(artifacts.rglob("trial.json"))  # the server wrote them into its own folder
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
    assert "comparison/report.md" in {a.path for a in client.list_artifacts(parent.info.run_id, "comparison")}


def test_mlpsuite_server_refuses_a_server_as_its_store_in_one_line(tmp_path):
    done = run_mlpsuite("server", "--backend-store-uri", "http://127.0.0.1:5000", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "a server cannot store into another server" in done.stderr


def _start_outage_server(tmp_path, port: int) -> subprocess.Popen:
    return start_suite_server(tmp_path, port, sqlite_uri(tmp_path / "outage"), tmp_path / "outage" / "artifacts")


def _grid_stopping_its_server_mid_trial(tmp_path, outage_s: int) -> tuple[subprocess.Popen, subprocess.Popen, int]:
    """A 3-trial grid through `mlpsuite server`, and the server stopped once a trial has logged
    an epoch; returns the grid, the stopped server and its port."""
    (tmp_path / "outage").mkdir()
    port = free_port()
    server = _start_outage_server(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    path = write_grid(tmp_path, "outage", backends=["torch"], training={"epochs": 60, "batch_size": 8},
                      grid={"model.activation": ["relu", "tanh", "elu"]})
    grid = subprocess.Popen(mlpsuite_command("run", str(path), "--tracking-uri", url, "--jobs", "1"), cwd=tmp_path,
                            env={**clean_env(), "MLPSUITE_SERVER_OUTAGE_S": str(outage_s)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    client = MlflowClient(url)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and grid.poll() is None:
        time.sleep(0.5)
        experiment = client.get_experiment_by_name("outage")
        runs = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'trial'") if experiment else []
        if any(r.data.metrics.get("loss") is not None for r in runs):
            break
    assert grid.poll() is None, "the grid ended before the server could be stopped"
    stop(server)
    return grid, server, port


def _trial_runs(url: str) -> list:
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("outage")
    return client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'trial'")


def test_a_grid_outlives_its_server_going_away_briefly_and_loses_no_epoch(tmp_path):
    grid, server, port = _grid_stopping_its_server_mid_trial(tmp_path, outage_s=90)
    try:
        time.sleep(4)  # gone mid-trial, for a few seconds
        server = _start_outage_server(tmp_path, port)
        _, stderr = grid.communicate(timeout=300)
        assert grid.returncode == 0, stderr[-2000:]
        assert "MLflow server not answering" in stderr and "answers again" in stderr
        url = f"http://127.0.0.1:{port}"
        runs = _trial_runs(url)
        assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
        for run in runs:  # every epoch exactly once
            steps = [m.step for m in MlflowClient(url).get_metric_history(run.info.run_id, "loss")]
            assert sorted(steps) == list(range(1, 61)), run.data.params["model.activation"]
    finally:
        if grid.poll() is None:
            grid.kill()
        stop(server)


def test_a_server_gone_past_the_bound_ends_the_grid_and_a_rerun_resumes_it(tmp_path):
    grid, server, port = _grid_stopping_its_server_mid_trial(tmp_path, outage_s=4)
    try:
        _, stderr = grid.communicate(timeout=120)  # the bound, MLflow's own 2 retries, the clean-up tried once
        assert grid.returncode == 2, stderr[-2000:]
        assert stderr.strip().splitlines()[-1] == (
            "mlpsuite: error: the MLflow server has not answered for 4 s (MLPSUITE_SERVER_OUTAGE_S); run the grid "
            "again when it is back: that marks this grid's unfinished runs KILLED and resumes it")
        assert "Traceback" not in stderr
        server = _start_outage_server(tmp_path, port)
        url = f"http://127.0.0.1:{port}"
        assert "RUNNING" in {r.info.status for r in _trial_runs(url)}  # the one in flight, left as it was
        again = run_mlpsuite("run", str(tmp_path / "outage.yaml"), "--tracking-uri", url, cwd=tmp_path)
        assert again.returncode == 0, again.stderr[-2000:]
        runs = _trial_runs(url)
        killed = [r for r in runs if r.info.status == "KILLED"]
        finished = [r.data.tags["mlpsuite.trial_key"] for r in runs if r.info.status == "FINISHED"]
        assert len(killed) == 1 and killed[0].data.tags["mlpsuite.failure"] == "coordinator died"
        assert len(finished) == len(set(finished)) == 3 and len(runs) == 4
    finally:
        if grid.poll() is None:
            grid.kill()
        stop(server)


def test_two_grids_at_once_through_one_server(tmp_path, suite_server):
    url, _ = suite_server
    two_grids_at_once(tmp_path, url)


def _status(url: str, host: str) -> int:
    """The server's answer to an API call whose Host header is `host`."""
    request = urllib.request.Request(f"{url}/api/2.0/mlflow/experiments/search", data=b'{"max_results": 1}',
                                     headers={"Content-Type": "application/json", "Host": host})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_an_exposed_server_answers_workers_that_name_it_by_hostname(tmp_path):
    """MLflow's server accepts only Host headers it knows (localhost and private IPs): exposed,
    `mlpsuite server` adds this machine's names, so `--tracking-uri http://HOSTNAME:PORT` works,
    and still refuses a name it was not given (DNS rebinding)."""
    port = free_port()
    log = tmp_path / "exposed.log"
    with open(log, "w", encoding="utf-8") as output:
        process = subprocess.Popen(
            mlpsuite_command("server", "--host", "0.0.0.0", "--port", str(port), "--backend-store-uri",
                             ready_store(tmp_path), "--artifacts-destination", str(tmp_path / "artifacts")),
            cwd=tmp_path, env=clean_env(), stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", process, log=log)
        assert _status(url, f"{socket.gethostname()}:{port}") == 200
        assert _status(url, f"localhost:{port}") == 200
        assert _status(url, f"mlflow.attacker.example:{port}") == 403
        said = log.read_text()
        assert f"--tracking-uri http://{socket.gethostname()}:{port}" in said and "firewall" in said
    finally:
        stop(process)
