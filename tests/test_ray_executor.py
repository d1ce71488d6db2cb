"""`--executor ray`: the same grid on Ray actors records the same runs as on local workers, and
the executor contract (trials in, events and results out) holds on both under faults: a worker
that hangs, an actor killed mid-trial or before its first request, a node losing its workers.

One Ray instance serves the module's in-process tests (as a notebook's `ray.init()` would serve
its grids); the driver that starts Ray itself is `mlpsuite run` in a process of its own, whose
Ctrl-C takes the actors down with it (and `tests/test_server.py` runs a grid that way too).
scikit-learn's MLP keeps the trials short where the framework is not the subject.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray  # noqa: F401  (a dev install brings it: a missing Ray fails here, loudly)
from mlflow import MlflowClient

from mlpsuite.config import expand, load_config
from mlpsuite.results import RETRIED, TIMEOUT, WORKER_DIED
from tests.faults import Acting, alive, executor, freeze, kill, on_first, run_grid_acting, wait_for
from tests.grids import (
    clean_env,
    cli_in_process,
    mlpsuite_command,
    polled_statuses,
    ready_store,
    run_in_process,
    run_mlpsuite,
    sqlite_uri,
    trial_runs,
    write_grid,
)

# Differ between two runs of the same trial: when and where it ran, and how long it took.
UNSTABLE_TAGS = (
    "mlpsuite.driver",  # each invocation its own id
    "mlflow.runName",
    "mlpsuite.host",
    "mlpsuite.pid",
    "mlflow.parentRunId",
    "mlpsuite.reused_model",
    "mlpsuite.threads",
    "mlpsuite.heartbeat",
)
TIMES = (
    "time_s",
    "fit_time",
    "step_time",
    "overhead",
    "worker_start",
    "epoch_time",
    "compile_s",
    "rss_mb",
)
# Long enough that a signal sent at its first epoch lands mid-trial (a few seconds on sklearn).
LONG = {"backends": ["sklearn"], "training": {"epochs": 250, "batch_size": 8}}


@pytest.fixture(scope="module")
def _ray_in_this_process():
    """Ray, once started here, lives until the module ends (as a notebook's would)."""
    yield
    ray.shutdown()


@pytest.fixture
def ray_instance(_ray_in_this_process):
    """A local Ray instance in this process, for the module's in-process executors: started by
    the first test that needs it, kept for the next."""
    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)


@pytest.fixture
def no_ray_running(_ray_in_this_process):
    """No Ray instance on this machine: `--address auto` would join any (Ray finds them by
    their processes). Every test that starts Ray is in this module, so one stream runs them."""
    ray.shutdown()


def _stable(run) -> dict:
    metrics = {k: v for k, v in run.data.metrics.items() if not any(t in k for t in TIMES)}
    tags = {
        k: v
        for k, v in run.data.tags.items()
        if k not in UNSTABLE_TAGS and not k.startswith("mlflow.log")
    }
    return {"status": run.info.status, "params": run.data.params, "metrics": metrics, "tags": tags}


def _runs(uri: str, experiment: str) -> dict[str, dict]:
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    runs = client.search_runs([found.experiment_id], "tags.`mlpsuite.kind` = 'trial'")
    return {run.data.tags["mlpsuite.trial_key"]: _stable(run) for run in runs}


def test_a_grid_on_ray_records_the_same_runs_as_on_local_workers(tmp_path, ray_instance):
    path = write_grid(
        tmp_path,
        "executors",
        backends=["torch"],
        training={"epochs": 3, "save_model": True},
        grid={"model.activation": ["relu", "tanh"]},
    )
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    local_uri, ray_uri = ready_store(tmp_path / "local"), ready_store(tmp_path / "ray")
    # One worker each way: a second would only import PyTorch once more, and the records do not
    # depend on how many workers ran them (several actors at once: the tests further down).
    local = run_in_process(
        "run", str(path), "--tracking-uri", local_uri, "--jobs", "1", cwd=tmp_path
    )
    assert local.returncode == 0, local.stderr[-2000:]
    on_actors = run_in_process(
        "run",
        str(path),
        "--tracking-uri",
        ray_uri,
        "--jobs",
        "1",
        "--executor",
        "ray",
        cwd=tmp_path,
    )
    assert on_actors.returncode == 0, on_actors.stderr[-2000:]
    on_local, on_ray = _runs(local_uri, "executors"), _runs(ray_uri, "executors")
    assert len(on_local) == 2 and set(on_local) == set(on_ray)
    for key in on_local:
        assert on_ray[key] == on_local[key], key
    client = MlflowClient(ray_uri)
    run_id = trial_runs(ray_uri, "executors")["run_id"].iloc[0]
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [1, 2, 3]
    # The actor sends its saved model to the driver, which logs it: no shared disk needed.
    assert "model/MLmodel" in {a.path for a in client.list_artifacts(run_id, "model")}
    assert "Backend parity" in on_actors.stdout


@pytest.mark.check
def test_without_ray_the_executor_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    path = write_grid(tmp_path, "noray", backends=["torch"])
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    code, out, err = cli_in_process(
        capsys, "run", str(path), "--executor", "ray", "--tracking-uri", sqlite_uri(tmp_path)
    )
    assert code == 2 and not out
    assert err.strip().splitlines() == [
        "mlpsuite: error: --executor ray: Ray is not installed; pip install -e '.[ray]' "
        "(or pip install 'ray>=2.40'), or use --executor local"
    ]
    assert not (tmp_path / "store").exists()


def test_an_address_where_no_ray_cluster_answers_is_one_line_and_writes_nothing(
    tmp_path, no_ray_running
):
    path = write_grid(tmp_path, "nocluster", backends=["torch"])
    env = {
        **clean_env(),
        "RAY_TMPDIR": str(tmp_path / "ray"),
    }  # no running cluster's address file to find
    done = subprocess.run(
        mlpsuite_command(
            "run",
            str(path),
            "--executor",
            "ray",
            "--address",
            "auto",
            "--tracking-uri",
            sqlite_uri(tmp_path),
        ),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "mlpsuite: error: --address auto: no Ray cluster answers (Could not find any running Ray "
        "instance); start one with `ray start --head`, or leave --address out for a local Ray"
    ]
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("kind", ["local", "ray"])
def test_a_worker_that_stops_answering_is_killed_at_the_time_limit(tmp_path, kind, request):
    """A trial stops itself at an epoch end past `max_seconds`; one that never reaches an epoch
    end (here: its worker frozen by SIGSTOP at its first epoch) is killed by the executor, on
    Ray as locally, and the trial is a `timeout`."""
    if kind == "ray":
        request.getfixturevalue("ray_instance")
    path = write_grid(
        tmp_path, "hung", backends=["sklearn"], training={"epochs": 100000, "max_seconds": 2}
    )
    acting = Acting(executor(kind), on_first("epoch", freeze))
    results = []
    acting.run(
        expand(load_config(path)),
        lambda event: event.kind == "finished" and results.append(event.result),
    )
    (result,) = results
    assert (result.status, result.failure) == ("FAILED", TIMEOUT)
    assert result.message == "killed after 7 s (training.max_seconds=2)"
    assert wait_for(lambda: not alive(acting.pids[0]), timeout=60), (
        "the frozen worker was left behind"
    )


def test_local_workers_leave_no_pipe_open_however_they_end(tmp_path):
    """A worker killed mid-trial, one that finishes and one stopped at shutdown: the executor
    closes both ends of every pipe (`python -W always` showed ResourceWarnings before)."""
    import gc
    import warnings

    path = write_grid(tmp_path, "pipes", seeds=[0, 1, 2], **LONG)
    local = executor("local", jobs=1)
    acting = Acting(local, on_first("epoch", kill))
    statuses = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        acting.run(
            expand(load_config(path)),
            lambda event: event.kind == "finished" and statuses.append(event.result.status),
        )
        local.shutdown()
        del acting, local
        gc.collect()
    assert sorted(statuses) == ["FAILED", "FINISHED", "FINISHED"]
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == []


@pytest.mark.parametrize(
    "retries, statuses, failures",
    [
        (1, ["FINISHED", "KILLED"], [RETRIED]),  # the dead attempt KILLED, the retry FINISHED
        (0, ["FAILED"], [WORKER_DIED]),
    ],
)
def test_a_killed_actor_is_retried_up_to_max_retries(
    tmp_path, ray_instance, retries, statuses, failures
):
    path = write_grid(tmp_path, "retried", **LONG)
    uri = ready_store(tmp_path)
    acting = Acting(executor("ray", max_retries=retries), on_first("epoch", kill))
    run_grid_acting(path, uri, acting)
    runs = trial_runs(uri, "retried")
    assert sorted(runs["status"]) == statuses
    assert sorted(runs["tags.mlpsuite.failure"].dropna()) == failures
    kinds = [event.kind for event in acting.events]
    assert kinds.count("retrying") == retries and kinds.count("ready") == 1 + retries


def test_ctrl_c_on_ray_marks_in_flight_runs_killed_and_a_rerun_finishes_the_grid(
    tmp_path, ray_instance
):
    """The driver started its own Ray: Ctrl-C ends the grid, and the actors go with the driver."""
    path = write_grid(tmp_path, "stopped", **LONG, grid={"model.activation": ["relu", "tanh"]})
    uri = ready_store(tmp_path)
    process = subprocess.Popen(
        mlpsuite_command(
            "run", str(path), "--tracking-uri", uri, "--executor", "ray", "--jobs", "1"
        ),
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        if any(
            status == "RUNNING" and epochs >= 1
            for status, _, epochs in polled_statuses(uri, "stopped")
        ):
            break
        time.sleep(0.2)
    actors = _actor_pids(tmp_path)
    assert actors, "no actor was found mid-trial"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    statuses = {status for status, _, _ in polled_statuses(uri, "stopped")}
    assert "KILLED" in statuses and "RUNNING" not in statuses
    assert not [pid for pid in actors if alive(pid)]  # the actors went with the driver
    done = run_in_process(
        "run", str(path), "--tracking-uri", uri, "--executor", "ray", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    finished = [key for status, key, _ in polled_statuses(uri, "stopped") if status == "FINISHED"]
    assert len(finished) == len(set(finished)) == 2


def test_a_ray_grid_logs_through_mlpsuite_server_with_served_artifacts(tmp_path, suite_server):
    """A driver that starts its own Ray, logging through `mlpsuite server`: the artifacts the
    actors' trials produce reach the server's own folder."""
    url, artifacts = suite_server
    path = write_grid(
        tmp_path, "cluster", backends=["sklearn"], grid={"model.activation": ["relu", "tanh"]}
    )
    done = run_mlpsuite(
        "run", str(path), "--tracking-uri", url, "--executor", "ray", "--jobs", "2", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("cluster")
    assert experiment is not None
    assert experiment.artifact_location.startswith(
        "mlflow-artifacts:"
    )  # served, not a path on disk
    runs = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'trial'")
    assert sorted(r.data.params["model.activation"] for r in runs) == ["relu", "tanh"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert any(artifacts.rglob("trial.json"))  # the server wrote them into its own folder
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
    assert "comparison/report.md" in {
        a.path for a in client.list_artifacts(parent.info.run_id, "comparison")
    }


def _actor_pids(folder: Path) -> list[int]:
    """mlpsuite's Ray actors (Ray names their processes after the actor class) of the driver
    started in `folder`: a driver's raylet and actors keep its working folder."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().decode(errors="replace")
                here = Path(os.readlink(entry / "cwd"))
            except OSError:
                continue
            if "_TrialActor" in command and here.is_relative_to(folder):
                pids.append(int(entry.name))
    return pids


def test_a_node_losing_its_workers_mid_grid_loses_no_finished_trial(tmp_path, ray_instance):
    """Every actor killed at once, when one trial has finished and another is under way: the
    finished one is kept whole, the one in flight runs again, the grid finishes."""
    path = write_grid(
        tmp_path,
        "lost",
        backends=["sklearn"],
        training={"epochs": 200, "batch_size": 8},
        seeds=list(range(6)),
    )
    uri = ready_store(tmp_path)
    in_flight, lost = set(), []

    def lose_the_node(event, acting):
        if event.kind == "started":
            in_flight.add(event.trial.key)
        elif event.kind == "finished":
            in_flight.discard(event.trial.key)
            if not lost and event.result.status == "FINISHED" and in_flight:
                lost.extend(pid for pid in acting.pids.values() if alive(pid))
                for pid in lost:
                    os.kill(pid, signal.SIGKILL)

    acting = Acting(executor("ray", jobs=2), lose_the_node)
    outcome = run_grid_acting(path, uri, acting)
    assert len(lost) == 2, "no trial finished while another ran"
    assert "retrying" in [event.kind for event in acting.events]  # the kill hit the grid
    runs = trial_runs(uri, "lost").set_index("run_id")
    client = MlflowClient(uri)
    finished = runs[runs["status"] == "FINISHED"]
    assert (
        finished["tags.mlpsuite.trial_key"].nunique() == len(finished) == 6 and outcome.failed == 0
    )
    for run_id in finished.index:  # each whole: every epoch once, the retried ones' too
        assert [m.step for m in client.get_metric_history(run_id, "loss")] == list(range(1, 201))
    # An actor dead before its request began costs that trial no retry, so none ran out of them.
    assert set(runs.loc[runs["status"] != "FINISHED", "tags.mlpsuite.failure"]) <= {RETRIED}


def test_an_actor_dead_before_its_request_began_costs_the_trial_no_retry(
    tmp_path, ray_instance, caplog
):
    """Killed as it reports ready (a node lost between trials): with no retries allowed the
    trial still finishes, on a fresh actor, and the death is said."""
    from mlpsuite.executors.ray import RayExecutor

    path = write_grid(tmp_path, "doa", backends=["sklearn"], training={"epochs": 2})
    ray_executor = executor("ray", max_retries=0)
    assert isinstance(ray_executor, RayExecutor)

    def kill_on_arrival(event, acting):
        ray_executor.ray.kill(ray_executor._slots[event.slot].actor, no_restart=True)

    acting = Acting(ray_executor, on_first("ready", kill_on_arrival))
    acting.run(expand(load_config(path)), lambda event: None)
    seen = [
        event.kind if event.kind != "finished" else event.result.status  # pyright: ignore[reportOptionalMemberAccess]  # finished: with its result
        for event in acting.events
    ]
    assert seen == ["ready", "retrying", "ready", "started", "epoch", "epoch", "FINISHED"]
    assert (
        "the Ray actor died (ActorDiedError) under sklearn seed=0: running again on a fresh actor"
        in caplog.text
    )


def test_more_actors_than_cpus_share_them_and_the_grid_finishes(tmp_path, ray_instance):
    """`--jobs` above the CPU count: each actor asks Ray for a share of a CPU, as local workers
    oversubscribe; an actor asking for a whole one would never be placed, its trial never run."""
    jobs = int(ray.cluster_resources()["CPU"]) + 1
    path = write_grid(
        tmp_path,
        "crowded",
        backends=["sklearn"],
        training={"epochs": 3},
        seeds=list(range(jobs + 1)),
    )
    uri = ready_store(tmp_path)
    done = run_in_process(
        "run",
        str(path),
        "--tracking-uri",
        uri,
        "--executor",
        "ray",
        "--jobs",
        str(jobs),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(trial_runs(uri, "crowded")["status"]) == ["FINISHED"] * (jobs + 1)
