"""Local worker processes against Ray actors, on this machine: trials per minute and what
recording costs the coordinator per trial, for 1 and 2 workers.

One grid of `--trials` small trials (iris, MLP 8, 3 epochs, PyTorch: a trial is mostly fixed
cost, which is where executors differ) runs as a whole `mlpsuite run` for each executor and
worker count, into its own new SQLite store, and at 2 workers also through `mlpsuite server`
(1 worker, on SQLite, on 127.0.0.1). Reported: trials per minute of the whole run (start-up, the
comparison included), and the parent run's `record_s_per_trial`.

Usage: python benchmarks/scaleout.py [--trials 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import mlpsuite, publish  # noqa: E402


def small_grid(folder: Path, trials: int, backend: str = "torch") -> Path:
    import yaml

    seeds = list(range(trials // 10))
    config = {
        "name": "scaleout",
        "dataset": {"name": "iris"},
        "model": {"hidden": [8], "activation": "relu", "scaler": "standard"},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "training": {"epochs": 3, "batch_size": 16},
        "backends": [backend],
        "seeds": seeds,
        "grid": {"optimizer.learning_rate": [0.001 * (i + 1) for i in range(10)]},
    }
    path = folder / "scaleout.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _parent_metric(uri: str, name: str) -> float:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("scaleout")
    assert experiment is not None
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
    return parent.data.metrics[name]


def _run(executor: str, jobs: int, trials: int, served: bool, backend: str = "torch") -> list:
    """One whole `mlpsuite run` of the grid into a new store: [executor, workers, store, wall s,
    trials/min, recording ms/trial]. `served`: through `mlpsuite server` (1 worker) on SQLite."""
    from tests.servers import free_port, start_suite_server, stop

    with tempfile.TemporaryDirectory(prefix="mlpsuite-scaleout-") as folder:
        path = small_grid(Path(folder), trials, backend)
        uri, server = f"sqlite:///{folder}/mlflow.db", None
        if served:
            port = free_port()
            server = start_suite_server(Path(folder), port, uri, Path(folder) / "artifacts")
            uri = f"http://127.0.0.1:{port}"
        try:
            began = time.perf_counter()
            mlpsuite(
                "run", str(path), "--tracking-uri", uri, "--executor", executor, "--jobs", str(jobs)
            )
            wall = time.perf_counter() - began
            record = _parent_metric(uri, "record_s_per_trial")
        finally:
            if server is not None:
                stop(server)
    return [
        executor,
        jobs,
        "mlpsuite server" if served else "SQLite file",
        wall,
        trials / wall * 60,
        record * 1000,
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--executors", default="local,ray", help="comma-separated: local, ray")
    parser.add_argument("--backend", default="torch", help="the grid's one backend")
    parser.add_argument(
        "--no-server", action="store_true", help="skip the runs through mlpsuite server"
    )
    args = parser.parse_args()
    executors = args.executors.split(",")
    plan = [(executor, jobs, False) for executor in executors for jobs in (1, 2)]
    plan += [] if args.no_server else [(executor, 2, True) for executor in executors]
    rows, data = [], {"trials": args.trials, "runs": []}
    for executor, jobs, served in plan:
        rows.append(_run(executor, jobs, args.trials, served, args.backend))
        data["runs"].append(
            dict(
                zip(
                    (
                        "executor",
                        "jobs",
                        "store",
                        "wall_s",
                        "trials_per_min",
                        "record_ms_per_trial",
                    ),
                    rows[-1],
                    strict=True,
                )
            )
        )
        print(rows[-1], flush=True)
    publish(
        "scaleout" if args.backend == "torch" else f"scaleout_{args.backend}",
        data,
        ["executor", "workers", "store", "wall s", "trials/min", "recording ms/trial"],
        rows,
        f"A {args.trials}-trial grid (iris, MLP 8, 3 epochs, {args.backend}) as one `mlpsuite run` "
        "each, into a new SQLite store, directly or through `mlpsuite server` on 127.0.0.1.",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
