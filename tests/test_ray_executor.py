"""`--executor ray`: the same grid on Ray actors records the same runs as on local workers."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.grids import (clean_env, mlpsuite_command, polled_statuses, ready_store, run_mlpsuite, sqlite_uri,
                        trial_runs, write_grid)

import ray  # noqa: E402,F401  (a dev install brings it: a missing Ray fails here, loudly)

# Differ between two runs of the same trial: when and where it ran, and how long it took.
UNSTABLE_TAGS = ("mlflow.runName", "mlpsuite.host", "mlpsuite.pid", "mlflow.parentRunId", "mlpsuite.reused_model",
                 "mlpsuite.threads", "mlpsuite.heartbeat")
TIMES = ("time_s", "fit_time", "step_time", "overhead", "worker_start", "epoch_time", "compile_s", "rss_mb")


def _stable(run) -> dict:
    metrics = {k: v for k, v in run.data.metrics.items() if not any(t in k for t in TIMES)}
    tags = {k: v for k, v in run.data.tags.items() if k not in UNSTABLE_TAGS and not k.startswith("mlflow.log")}
    return {"status": run.info.status, "params": run.data.params, "metrics": metrics, "tags": tags}


def _runs(uri: str, experiment: str) -> dict[str, dict]:
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], "tags.`mlpsuite.kind` = 'trial'")
    return {run.data.tags["mlpsuite.trial_key"]: _stable(run) for run in runs}


def test_a_grid_on_ray_records_the_same_runs_as_on_local_workers(tmp_path):
    path = write_grid(tmp_path, "executors", backends=["torch", "jax"], training={"epochs": 3, "save_model": True},
                      grid={"model.activation": ["relu", "tanh"]})
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    local_uri, ray_uri = ready_store(tmp_path / "local"), ready_store(tmp_path / "ray")
    local = run_mlpsuite("run", str(path), "--tracking-uri", local_uri, "--jobs", "2", cwd=tmp_path)
    assert local.returncode == 0, local.stderr[-2000:]
    on_actors = run_mlpsuite("run", str(path), "--tracking-uri", ray_uri, "--jobs", "2", "--executor", "ray",
                             cwd=tmp_path)
    assert on_actors.returncode == 0, on_actors.stderr[-2000:]
    on_local, on_ray = _runs(local_uri, "executors"), _runs(ray_uri, "executors")
    assert len(on_local) == 4 and set(on_local) == set(on_ray)
    for key in on_local:
        assert on_ray[key] == on_local[key], key
    client = MlflowClient(ray_uri)
    run_id = trial_runs(ray_uri, "executors")["run_id"].iloc[0]
    assert [m.step for m in client.get_metric_history(run_id, "loss")] == [1, 2, 3]
    # The actor sends its saved model to the driver, which logs it: no shared disk needed.
    assert "model/MLmodel" in {a.path for a in client.list_artifacts(run_id, "model")}
    assert "Backend parity" in on_actors.stdout


def test_without_ray_the_executor_is_refused_in_one_line(tmp_path):
    path = write_grid(tmp_path, "noray", backends=["torch"])
    hide_ray = ("import sys; sys.modules['ray'] = None; from mlpsuite.cli import main; "
                f"sys.exit(main(['run', {str(path)!r}, '--executor', 'ray', '--tracking-uri', "
                f"{sqlite_uri(tmp_path)!r}]))")
    done = subprocess.run([sys.executable, "-c", hide_ray], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "mlpsuite: error: --executor ray: Ray is not installed; pip install -e '.[ray]' "
        "(or pip install 'ray>=2.40'), or use --executor local"]
    assert not (tmp_path / "store").exists()


def test_an_address_where_no_ray_cluster_answers_is_one_line_and_writes_nothing(tmp_path):
    path = write_grid(tmp_path, "nocluster", backends=["torch"])
    env = {**clean_env(), "RAY_TMPDIR": str(tmp_path / "ray")}  # no running cluster's address file to find
    done = subprocess.run(mlpsuite_command("run", str(path), "--executor", "ray", "--address", "auto",
                                           "--tracking-uri", sqlite_uri(tmp_path)),
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "mlpsuite: error: --address auto: no Ray cluster answers (Could not find any running Ray instance); "
        "start one with `ray start --head`, or leave --address out for a local Ray"]
    assert not (tmp_path / "store").exists()


WORKER_MARKS = {"ray": "_TrialActor", "local": "mlpsuite.executors.worker"}


def _started_in(folder: Path, pid: str) -> bool:
    """Whether process `pid` runs in `folder`: a grid's workers, Ray's raylet and actors keep
    the driver's working folder. Other tests' grids may run at the same time, elsewhere."""
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(folder)
    except OSError:
        return False


def _actor_pids(folder: Path, executor: str = "ray") -> list[int]:
    """Processes of mlpsuite's Ray actors (Ray names them after the actor class), or of its
    local workers, of the grid started in `folder`."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if WORKER_MARKS[executor] in command and _started_in(folder, entry.name):
                pids.append(int(entry.name))
    return pids


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_a_worker_that_stops_answering_is_killed_at_the_time_limit(tmp_path, executor):
    """A trial stops itself at an epoch end past `max_seconds`; one that never reaches an epoch
    end (here: its worker SIGSTOPped) is killed by the executor, on Ray as locally."""
    path = write_grid(tmp_path, "hung", backends=["torch"], training={"epochs": 100000, "max_seconds": 5})
    uri = ready_store(tmp_path)
    process = subprocess.Popen(mlpsuite_command("run", str(path), "--tracking-uri", uri, "--executor", executor,
                                                "--jobs", "1"),
                               cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, stopped = time.monotonic() + 180, []
    while time.monotonic() < deadline and process.poll() is None and not stopped:
        time.sleep(0.2)
        if any(status == "RUNNING" for status, _, _ in polled_statuses(uri, "hung")):
            stopped = _actor_pids(tmp_path, executor)
            for pid in stopped:
                os.kill(pid, signal.SIGSTOP)
    assert stopped, "no worker was found mid-trial"
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-2000:]
    runs = trial_runs(uri, "hung")
    assert list(runs["status"]) == ["FAILED"] and list(runs["tags.mlpsuite.failure"]) == ["timeout"]
    assert runs["tags.mlpsuite.failure_message"].iloc[0] == "killed after 10 s (training.max_seconds=5)"
    assert not _actor_pids(tmp_path, executor)


@pytest.mark.parametrize("retries, statuses, failures", [
    ("1", ["FINISHED", "KILLED"], ["retried"]),   # the dead attempt KILLED, the retry FINISHED
    ("0", ["FAILED"], ["worker died"]),
])
def test_a_killed_actor_is_retried_up_to_max_retries(tmp_path, retries, statuses, failures):
    path = write_grid(tmp_path, "retried", backends=["torch"], training={"epochs": 150, "batch_size": 8})
    uri = ready_store(tmp_path)
    process = subprocess.Popen(mlpsuite_command("run", str(path), "--tracking-uri", uri, "--executor", "ray",
                                                "--jobs", "1", "--max-retries", retries),
                               cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    killed = False
    while time.monotonic() < deadline and process.poll() is None and not killed:
        time.sleep(0.5)
        if any(status == "RUNNING" and epochs >= 1 for status, _, epochs in polled_statuses(uri, "retried")):
            for pid in _actor_pids(tmp_path):
                os.kill(pid, signal.SIGKILL)
                killed = True
    assert killed, "no actor was found mid-trial"
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-2000:]
    runs = trial_runs(uri, "retried")
    assert sorted(runs["status"]) == statuses
    assert sorted(runs["tags.mlpsuite.failure"].dropna()) == failures


def test_ctrl_c_on_ray_marks_in_flight_runs_killed_and_a_rerun_finishes_the_grid(tmp_path):
    path = write_grid(tmp_path, "stopped", backends=["torch"], training={"epochs": 150, "batch_size": 8},
                      grid={"model.activation": ["relu", "tanh"]})
    uri = ready_store(tmp_path)
    process = subprocess.Popen(mlpsuite_command("run", str(path), "--tracking-uri", uri, "--executor", "ray",
                                                "--jobs", "1"),
                               cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.5)
        if any(status == "RUNNING" and epochs >= 1 for status, _, epochs in polled_statuses(uri, "stopped")):
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-2000:]
    statuses = {status for status, _, _ in polled_statuses(uri, "stopped")}
    assert "KILLED" in statuses and "RUNNING" not in statuses
    assert not _actor_pids(tmp_path)  # the actors went with the driver
    done = run_mlpsuite("run", str(path), "--tracking-uri", uri, "--executor", "ray", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    finished = [key for status, key, _ in polled_statuses(uri, "stopped") if status == "FINISHED"]
    assert len(finished) == len(set(finished)) == 2


def _raylet_workers(folder: Path) -> list[int]:
    """Every worker process of the local raylet of the grid started in `folder` (Ray titles them
    `ray::IDLE`, `ray::_TrialActor` ...); not the raylet itself nor its agents (`ray::DashboardAgent`,
    `ray::RuntimeEnvAgent`), whose loss ends the raylet, and here the whole one-node cluster."""
    parents, titles = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                titles[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
            except (OSError, IndexError, ValueError):
                continue
    raylets = {pid for pid, title in titles.items()
               if "raylet/raylet" in title.split("\0")[0] and _started_in(folder, str(pid))}
    return [pid for pid, parent in parents.items() if parent in raylets and titles[pid].startswith("ray::")
            and not titles[pid].split("\0")[0].endswith("Agent")]


def test_a_node_losing_its_workers_mid_grid_loses_no_finished_trial(tmp_path):
    path = write_grid(tmp_path, "lost", backends=["torch"], training={"epochs": 60, "batch_size": 8},
                      grid={"model.activation": ["relu", "tanh", "elu", "sigmoid", "swish", "gelu"]})
    uri = ready_store(tmp_path)
    process = subprocess.Popen(mlpsuite_command("run", str(path), "--tracking-uri", uri, "--executor", "ray",
                                                "--jobs", "2"),
                               cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, killed, before = time.monotonic() + 240, [], []
    try:
        while time.monotonic() < deadline and process.poll() is None and not killed:
            time.sleep(0.3)
            polled = polled_statuses(uri, "lost")
            statuses = [status for status, _, epochs in polled if status == "FINISHED" or epochs >= 1]
            # the actors run ahead of the store: with 4 of the 6 trials left they are still at work
            if "FINISHED" in statuses and "RUNNING" in statuses:
                before = trial_runs(uri, "lost")
                killed = _raylet_workers(tmp_path)
                for pid in killed:
                    os.kill(pid, signal.SIGKILL)
        assert killed, "the grid never had a finished and a running trial at once"
        _, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # the driver takes its local Ray instance down with it
            process.communicate(timeout=60)
    assert process.returncode == 0, stderr[-2000:]
    assert "the Ray actor died" in stderr  # the kill hit the grid, and the driver says so
    after = trial_runs(uri, "lost").set_index("run_id")
    client = MlflowClient(uri)
    for run_id in before.loc[before["status"] == "FINISHED", "run_id"]:  # kept, whole, as they were
        assert after.loc[run_id, "status"] == "FINISHED"
        assert [m.step for m in client.get_metric_history(run_id, "loss")] == list(range(1, 61))
    for run_id in before.loc[before["status"] == "RUNNING", "run_id"]:  # in flight: retried (or just done)
        assert after.loc[run_id, "status"] in ("KILLED", "FINISHED")
    finished = after.loc[after["status"] == "FINISHED", "tags.mlpsuite.trial_key"]
    assert len(finished) == finished.nunique() == 6
    # an actor dead before its request began costs that trial no retry, so none ran out of them
    assert set(after.reindex(columns=["tags.mlpsuite.failure"]).loc[after["status"] != "FINISHED"].iloc[:, 0]) \
        <= {"retried"}


# The actor is dead before its first request: killed as it reports ready (a node lost between
# trials). The trial must still finish with no retries allowed, and the death be said.
DEAD_ON_ARRIVAL = """
import sys
from mlpsuite.config import expand, load_config
from mlpsuite.executors.ray import RayExecutor

executor = RayExecutor(jobs=1, max_retries=0)
seen = []

def handle(event):
    seen.append(event.kind if event.kind != "finished" else event.result.status)
    if event.kind == "ready" and seen.count("ready") == 1:
        executor.ray.kill(executor._slots[event.slot].actor, no_restart=True)

executor.run(expand(load_config(sys.argv[1])), handle)
print(" ".join(seen))
"""


def test_an_actor_dead_before_its_request_began_costs_the_trial_no_retry(tmp_path):
    path = write_grid(tmp_path, "doa", backends=["torch"], training={"epochs": 2})
    done = subprocess.run([sys.executable, "-c", DEAD_ON_ARRIVAL, str(path)], cwd=tmp_path, env=clean_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ready", "retrying", "ready", "started", "epoch", "epoch", "FINISHED"]
    assert "the Ray actor died (ActorDiedError) under torch seed=0: running again on a fresh actor" in done.stderr


def test_more_actors_than_cpus_share_them_and_the_grid_finishes(tmp_path):
    """`--jobs` above the CPU count: each actor asks Ray for a share of a CPU, as local workers
    oversubscribe; an actor asking for a whole one would never be placed, its trial never run."""
    jobs = (os.cpu_count() or 1) + 1
    path = write_grid(tmp_path, "crowded", backends=["torch"], training={"epochs": 3}, seeds=list(range(jobs + 1)))
    uri = ready_store(tmp_path)
    done = run_mlpsuite("run", str(path), "--tracking-uri", uri, "--executor", "ray", "--jobs", str(jobs),
                        cwd=tmp_path, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(trial_runs(uri, "crowded")["status"]) == ["FINISHED"] * (jobs + 1)
