"""What a tracking store sustains from drivers: trials recorded per second into a SQLite file,
`mlpsuite server` on SQLite, and `mlpsuite server` on PostgreSQL, by 1 and 2 drivers at once.

A driver here is a process recording trials exactly as `mlpsuite run`'s coordinator does
(`Tracker`: run, params, dataset input, trial.json, 50 epochs of 6 metrics held back and
flushed in batches, finals and tags; see benchmarks/tracking.py), with no training, so the
store is the only limit. Also counted: MLflow client calls (HTTP requests to a server) per trial.
The servers run here on 127.0.0.1 with 1 worker (mlpsuite server's default) and with 2, whose
requests on a kept-alive connection wait ~44 ms each (uvicorn issue 3149: Nagle's algorithm left
on); PostgreSQL runs in a throwaway cluster (tests/servers.py).

Usage: python benchmarks/server_writes.py [--trials 40]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from _common import publish  # noqa: E402
from tracking import _result, _trial, one_trial  # noqa: E402

EPOCHS = 50


class _Counting:
    """An MlflowClient whose calls are counted: each is one request to a server."""

    def __init__(self, client):
        self.client, self.calls = client, 0

    def __getattr__(self, name):
        attribute = getattr(self.client, name)
        if not callable(attribute):
            return attribute

        def counted(*args, **kwargs):
            self.calls += 1
            return attribute(*args, **kwargs)

        return counted


def _driver(uri: str, name: str, trials: int, start, results) -> None:
    from mlflow import MlflowClient

    from mlpsuite.tracking import Tracker

    tracker = Tracker(uri)
    experiment_id = tracker.experiment_id(name)
    trial, result = _trial(), _result(_trial(), EPOCHS)
    for _ in range(3):  # connections, caches, the server's workers all started
        one_trial(tracker, experiment_id, trial, result, "mlpsuite")
    counting = _Counting(tracker.client)
    tracker.client = cast(MlflowClient, counting)  # a stand-in that counts its calls
    start.wait()
    began = time.perf_counter()
    for _ in range(trials):
        one_trial(tracker, experiment_id, trial, result, "mlpsuite")
    results.put((time.perf_counter() - began, counting.calls / trials))


def _measure(uri: str, drivers: int, trials: int, tag: str) -> tuple[float, float]:
    """(trials recorded per second by all drivers together, client calls per trial)."""
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    processes = [
        context.Process(target=_driver, args=(uri, f"{tag}-{i}", trials, start, results))
        for i in range(drivers)
    ]
    for process in processes:
        process.start()
    time.sleep(
        15
    )  # every driver (and every server worker) imported and warmed up before the clock starts
    began = time.perf_counter()
    start.set()
    outcomes = [results.get(timeout=600) for _ in processes]
    wall = time.perf_counter() - began
    for process in processes:
        process.join()
    return drivers * trials / wall, outcomes[0][1]


def _scalar(connection, query) -> int:
    """The one value of a query's one row (a count, a size)."""
    row = connection.execute(query).fetchone()
    assert row is not None  # an aggregate always returns its row
    return row[0]


def _bytes_per_trial(database: str) -> dict[str, float]:
    """What one recorded trial occupies in PostgreSQL, table by table, indexes included."""
    import psycopg

    with psycopg.connect(database) as connection:
        runs = _scalar(connection, "select count(*) from runs")
        sizes = {
            table: _scalar(connection, f"select pg_total_relation_size('{table}')")
            for table in (
                "metrics",
                "latest_metrics",
                "params",
                "tags",
                "runs",
                "inputs",
                "input_tags",
                "datasets",
            )
        }
        rows = _scalar(connection, "select count(*) from metrics")
    per_trial = {table: size / runs for table, size in sizes.items()}
    print(
        f"PostgreSQL: {sum(per_trial.values()) / 1024:.1f} KiB per trial "
        f"({rows / runs:.0f} metric rows)",
        flush=True,
    )
    return {**per_trial, "metric_rows": rows / runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=40, help="trials each driver records")
    args = parser.parse_args()
    from tests.servers import free_port, postgres_cluster, start_suite_server, stop

    rows, data = [], {"trials_per_driver": args.trials, "epochs": EPOCHS, "runs": []}

    def measure(store: str, uri: str) -> None:
        for drivers in (1, 2):
            per_second, calls = _measure(uri, drivers, args.trials, f"{store.split()[0]}{drivers}")
            rows.append([store, drivers, per_second, per_second * calls, calls])
            data["runs"].append(
                {
                    "store": store,
                    "drivers": drivers,
                    "trials_per_s": per_second,
                    "calls_per_trial": calls,
                }
            )
            print(rows[-1], flush=True)

    with tempfile.TemporaryDirectory(prefix="mlpsuite-server-writes-") as folder:
        folder = Path(folder)
        measure("SQLite file", f"sqlite:///{folder}/direct.db")
        with postgres_cluster() as database:
            for workers in (1, 2):
                for store, uri in (
                    ("SQLite", f"sqlite:///{folder}/served-{workers}.db"),
                    ("PostgreSQL", database),
                ):
                    port = free_port()
                    server = start_suite_server(
                        folder, port, uri, folder / "artifacts", workers=workers
                    )
                    try:
                        measure(
                            f"server ({workers} worker{'s' * (workers > 1)}) on {store}",
                            f"http://127.0.0.1:{port}",
                        )
                    finally:
                        stop(server)
            data["postgresql_bytes_per_trial"] = _bytes_per_trial(database)
    size = data["postgresql_bytes_per_trial"]
    after = (
        "One trial in PostgreSQL: "
        f"{sum(v for k, v in size.items() if k != 'metric_rows') / 1024:.1f} KiB "
        f"({size['metric_rows']:.0f} metric rows; metrics table {size['metrics'] / 1024:.1f} KiB), "
        "indexes included; its trial.json goes to the artifact store."
    )
    publish(
        "server_writes",
        data,
        ["store", "drivers", "trials/s", "client calls/s", "calls/trial"],
        rows,
        f"Drivers recording trials as `mlpsuite run` does ({EPOCHS} epochs of 6 metrics each), "
        f"{args.trials} trials per driver, no training; servers on 127.0.0.1.",
        after,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
