"""Warm workers: a grid's local workers kept for the next grid of the same process.

Real worker processes and real SQLite stores. The promise checked: a warm worker records
exactly what a fresh one does, the speed table says which workers were warm, anything in
the worker's environment that differs gets a fresh worker, and idle workers end on time, on
`mlpsuite.shutdown()`, at interpreter exit and when their process is killed.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

import mlpsuite
from mlpsuite.executors.pool import POOL, WorkerPool
from tests.faults import children
from tests.grids import clean_env, ready_store, run_in_process, trial_runs, write_grid


def _curves(uri: str, experiment: str) -> dict[str, dict[str, list[float]]]:
    """Every trial's loss curves by trial key, as the store holds them."""
    client = MlflowClient(uri)
    runs = trial_runs(uri, experiment)
    return {
        run["tags.mlpsuite.trial_key"]: {
            name: [m.value for m in client.get_metric_history(run["run_id"], name)]
            for name in ("loss", "val_loss", "val_accuracy")
        }
        for _, run in runs.iterrows()
    }


def _gone(pids: list[int], within: float = 60.0) -> list[int]:
    """The pids still alive after waiting up to `within` s for them to end (a zombie left to
    a parent that no longer waits for it counts as ended)."""
    deadline = time.monotonic() + within
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _alive(pid)]
        if alive:
            time.sleep(0.1)
    return alive


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_warm_worker_records_what_a_fresh_one_records(tmp_path, monkeypatch):
    """The same grid on fresh workers, then on the same workers kept warm (with another
    program compiled on them in between): bit-identical curves and weights; the second's speed
    table says its workers were warm; a different thread budget gets fresh workers."""
    # No worker retires for its memory here (a new program may grow it past 10%): retiring is
    # test_engine's subject, and the grids below must meet the same workers.
    monkeypatch.setenv("MLPSUITE_MAX_GROWTH", "10")
    mlpsuite.shutdown()  # fresh workers for the first grid, whatever ran before in this process
    path = write_grid(
        tmp_path, "warm", backends=["jax", "torch"], grid={"model.activation": ["relu", "tanh"]}
    )
    other = write_grid(tmp_path, "other", backends=["jax", "torch"], model={"hidden": [4, 4]})
    cold_uri, warm_uri = ready_store(tmp_path / "cold"), ready_store(tmp_path / "warm")

    cold = mlpsuite.run(path, tracking_uri=cold_uri, jobs=2, progress=False, keep_workers=60)
    # A jax and a torch worker wait for the next grid (and a second torch one, started when
    # jax's queue ran dry first).
    kept = POOL.idle_pids()
    assert len(kept) >= 2
    between = mlpsuite.run(other, tracking_uri=cold_uri, jobs=2, progress=False, keep_workers=60)
    assert between.comparison is not None
    assert (between.comparison.speed["warm_workers"] >= 1).all()  # no worker started for it
    assert sorted(POOL.idle_pids()) == sorted(kept)  # the same ones served the other grid
    warm = mlpsuite.run(path, tracking_uri=warm_uri, jobs=2, progress=False, keep_workers=60)

    assert cold.n_failed == warm.n_failed == 0 and cold.n_run == warm.n_run == 4
    assert _curves(warm_uri, "warm") == _curves(cold_uri, "warm")  # exactly, every epoch
    digests = {
        uri: dict(
            zip(runs["tags.mlpsuite.trial_key"], runs["tags.mlpsuite.weights_sha256"], strict=True)
        )
        for uri, runs in ((u, trial_runs(u, "warm")) for u in (cold_uri, warm_uri))
    }
    assert digests[cold_uri] == digests[warm_uri]
    assert warm.comparison is not None and cold.comparison is not None
    cold_speed = cold.comparison.speed.set_index("backend")
    warm_speed = warm.comparison.speed.set_index("backend")
    assert cold_speed["worker_start_s"].notna().all()
    assert "warm_workers" not in cold_speed or not cold_speed["warm_workers"].fillna(0).any()
    assert (warm_speed["warm_workers"] >= 1).all()
    assert warm_speed["worker_start_s"].isna().all()  # nothing was started for this grid
    report = warm.comparison.to_markdown()
    speed_lines = [line for line in report.splitlines() if line.startswith(("| jax", "| torch"))]
    assert speed_lines and all("| warm |" in line for line in speed_lines), speed_lines

    # One worker alone gets both cores: another thread budget, so fresh workers.
    again = mlpsuite.run(
        path, tracking_uri=warm_uri, jobs=1, force=True, progress=False, keep_workers=60
    )
    assert again.comparison is not None
    assert again.comparison.speed["worker_start_s"].notna().all()
    idle = POOL.idle_pids()
    assert set(idle) - set(kept)  # its own, new ones, kept as well
    assert len(idle) == POOL.max_idle  # the least recently used of the first ones went
    assert mlpsuite.shutdown() == len(idle)
    assert POOL.idle_pids() == [] and _gone(kept + idle) == []


@pytest.mark.check
def test_idle_workers_end_when_their_time_is_up(tmp_path):
    mlpsuite.shutdown()  # no worker of this process is left from before
    assert _workers() == []
    path = write_grid(tmp_path, "brief", backends=["sklearn"])
    result = mlpsuite.run(path, tracking_uri=ready_store(tmp_path), progress=False, keep_workers=1)
    assert result.n_run == 1 and result.n_failed == 0
    # Kept a second after the grid (its comparison may take longer than that on a loaded
    # machine); the bound is for such a machine.
    assert _gone(_workers(), within=60) == []
    assert POOL.idle == 0


def _workers() -> list[int]:
    """This process's grid workers, from /proc."""
    found = []
    for pid in children(os.getpid()):
        try:
            if b"mlpsuite.trial.worker" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(pid)
        except OSError:
            continue  # ended between the listing and the read
    return found


def test_the_cli_stops_its_workers_with_its_grid(tmp_path, monkeypatch):
    """One process, one grid: `mlpsuite run` keeps nothing unless the environment asks."""
    monkeypatch.delenv("MLPSUITE_KEEP_WORKERS", raising=False)
    before = set(POOL.idle_pids())
    path = write_grid(tmp_path, "cli", backends=["sklearn"])
    ran = run_in_process("run", str(path), "--tracking-uri", ready_store(tmp_path), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert set(POOL.idle_pids()) <= before


_HOLDER = """
import sys
import mlpsuite
from mlpsuite.executors.pool import POOL
mlpsuite.run(sys.argv[1], tracking_uri=sys.argv[2], progress=False, keep_workers=300)
print(" ".join(map(str, POOL.idle_pids())), flush=True)
if sys.stdin.readline().strip() != "exit":
    raise SystemExit("expected 'exit'")
"""


@pytest.mark.parametrize("end", ["exit", "sigkill"])
def test_a_process_that_ends_leaves_no_worker(tmp_path, end):
    """Its warm workers end with their process: at a normal exit (atexit), and when it is
    killed outright (their input pipe closes)."""
    path = write_grid(tmp_path, "held", backends=["sklearn"])
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_HOLDER), str(path), ready_store(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=tmp_path,
    )
    assert holder.stdout is not None and holder.stdin is not None
    try:
        line = holder.stdout.readline()  # bounded by the grid: it ends or the process exits
        pids = [int(pid) for pid in line.split()]
        assert pids, holder.stderr.read() if holder.stderr else ""
        assert all(map(_alive, pids))  # alive while their process lives
        if end == "exit":
            holder.stdin.write("exit\n")
            holder.stdin.flush()
            assert holder.wait(timeout=120) == 0
        else:
            os.kill(holder.pid, signal.SIGKILL)
            holder.wait(timeout=60)
        assert _gone(pids) == []
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


@pytest.mark.check
def test_the_pool_keeps_at_most_its_size_and_lends_by_environment():
    """A pool of one: the worker given back last is kept, the other ended; a worker is lent
    only where its whole environment is the same (a flag differs: a new process)."""
    pool = WorkerPool(max_idle=1)
    events: queue.Queue = queue.Queue()
    first = pool.take("sklearn", 1, True, events)
    second = pool.take("sklearn", 1, True, events)
    _ready([first, second], events)  # their framework imported
    pool.give_back(first, keep_s=60)
    pool.give_back(second, keep_s=60)
    assert pool.idle_pids() == [second.process.pid]
    assert first.process.poll() is not None  # the least recently used was ended
    assert pool.take("sklearn", 1, True, events) is second
    pool.give_back(second, keep_s=60)
    os.environ["MLPSUITE_MAX_GROWTH"] = "0.5"
    try:
        other = pool.take("sklearn", 1, True, events)
    finally:
        del os.environ["MLPSUITE_MAX_GROWTH"]
    assert other is not second and not other.warm
    pool.stop(other, kill=True)
    assert pool.shutdown() == 1 and second.process.poll() is not None


@pytest.mark.check
def test_the_default_keep_time_and_what_a_worker_exit_code_says(monkeypatch):
    from mlpsuite.executors.local import exit_reason
    from mlpsuite.executors.pool import DEFAULT_KEEP_S, default_keep_s

    for given, kept in (
        ("", DEFAULT_KEEP_S),
        ("12.5", 12.5),
        ("-3", 0.0),
        ("soon", DEFAULT_KEEP_S),
    ):
        monkeypatch.setenv("MLPSUITE_KEEP_WORKERS", given)
        assert default_keep_s() == kept, given
    assert exit_reason(3) == "exit code 3"
    assert exit_reason(-9).startswith("killed by SIGKILL (exit code -9; not sent by mlpsuite")
    assert exit_reason(-15) == "killed by SIGTERM (exit code -15)"
    assert exit_reason(-200) == "killed by signal 200 (exit code -200)"


def _ready(workers: list, events: queue.Queue, within: float = 120.0) -> None:
    """Wait for each worker's `ready` event (as the executor marks them)."""
    deadline = time.monotonic() + within
    while not all(worker.ready for worker in workers):
        sent, message = events.get(timeout=max(0.1, deadline - time.monotonic()))
        if message["event"] == "ready":
            sent.ready = True
