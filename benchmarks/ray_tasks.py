"""Ray actors (what `--executor ray` runs) against plain Ray tasks, for the same trials in one
local Ray instance, without MLflow: trials per minute each way.

- actors: `RayExecutor` as `mlpsuite run --executor ray` drives it (long-lived actors running
  the worker loop, compiled models kept between trials), its events dropped, not recorded;
- tasks: one `ray.remote` task per trial that builds its own runner. Ray reuses a task's worker
  process, so the framework is imported once per process, but no compiled model survives a task;
- tasks + kept runner: the runner cached in the worker process between tasks, which is an actor
  in all but name (and Ray may still hand a task to a process without one).

Each way gets its own worker processes (a different runtime_env), on the machine's CPUs, timed
from submission to the last result, process start-up and imports included.

Usage: python benchmarks/ray_tasks.py [--trials 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import publish  # noqa: E402
from scaleout import small_grid  # noqa: E402

_KEPT: dict = {}  # in a task's worker process: the runner a kept-runner task reuses


def _run_task(trial_dicts: list[dict], keep: bool) -> list[str]:
    from mlpsuite.trial.worker import make_runner, run_request

    if not keep or "runner" not in _KEPT:
        _KEPT["backend"], _KEPT["runner"], _ = make_runner(int(os.environ["MLPSUITE_THREADS"]))
    results = run_request(_KEPT["runner"], _KEPT["backend"], trial_dicts, lambda event: None)
    return [result.status for _, result in results]


def _tasks(ray, trials, keep: bool, env: dict) -> list[str]:
    task = ray.remote(_run_task).options(num_cpus=1, runtime_env={"env_vars": env})
    refs = [task.remote([trial.model_dump(mode="json")], keep) for trial in trials]
    return [status for statuses in ray.get(refs) for status in statuses]


def _actors(trials, jobs: int) -> list[str]:
    from mlpsuite.executors.ray import RayExecutor

    statuses = []
    RayExecutor(jobs).run(
        trials, lambda event: statuses.append(event.result.status) if event.result else None
    )
    return statuses


def _timed(way: str, trials, env: dict, jobs: int) -> float:
    """One way on a Ray instance of its own (as each `mlpsuite run` starts one): seconds from
    the first submission to the last result, actor or process start-up included."""
    import ray

    ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        began = time.perf_counter()
        if way == "actors":
            statuses = _actors(trials, jobs)
        else:
            statuses = _tasks(ray, trials, way != "tasks", env)
        wall = time.perf_counter() - began
    finally:
        ray.shutdown()
    assert statuses.count("FINISHED") == len(trials), (way, statuses[:5])
    return wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument(
        "--rounds", type=int, default=2, help="each way this many times; the fastest counts"
    )
    args = parser.parse_args()
    from mlpsuite.config import expand, load_config
    from mlpsuite.executors.wire import worker_environment

    jobs = os.cpu_count() or 1
    ways = ("actors", "tasks", "tasks + kept runner")
    rows, data = [], {"trials": args.trials, "cpus": jobs, "rounds": args.rounds, "runs": []}
    for backend in ("torch", "jax"):
        with tempfile.TemporaryDirectory(prefix="mlpsuite-ray-tasks-") as folder:
            trials = expand(load_config(small_grid(Path(folder), args.trials, backend)))
            env = worker_environment(backend, 1, True, Path(folder) / "models")
            walls = {way: [] for way in ways}
            for round_ in range(
                args.rounds
            ):  # the order turns each round: no way always goes first
                for way in ways[round_ % len(ways) :] + ways[: round_ % len(ways)]:
                    walls[way].append(_timed(way, trials, env, jobs))
                    print(backend, way, f"{walls[way][-1]:.2f} s", flush=True)
        best = {way: min(times) for way, times in walls.items()}
        for way in ways:
            per_minute = len(trials) / best[way] * 60
            rows.append([backend, way, best[way], per_minute, best[way] / best["actors"]])
            data["runs"].append(
                {"backend": backend, "way": way, "wall_s": walls[way], "trials_per_min": per_minute}
            )
    publish(
        "ray_tasks",
        data,
        ["backend", "way", "wall s", "trials/min", "× actors' time"],
        rows,
        f"{args.trials} small trials (iris, MLP 8, 3 epochs; 10 learning rates × "
        f"{args.trials // 10} seeds), {jobs} CPUs, each way on a new local Ray instance, fastest "
        f"of {args.rounds} rounds, no MLflow.",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
