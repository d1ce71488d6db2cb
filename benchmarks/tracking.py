"""What the coordinator's MLflow writes cost per trial: 50 epochs x 7 metrics, three ways.

- naive: `log_metric` once per value, as a hand-written loop would;
- per epoch: one `log_batch` per epoch (mlpsuite before it held epochs back);
- mlpsuite: `Tracker` as `mlpsuite run` uses it (epochs held back, flushed at most every
  second and at the end together with the final metrics and tags).
Each trial also pays for its run, params, dataset input and trial.json, the same in all three.
Into a fresh SQLite store; prints milliseconds per trial.

Usage: python benchmarks/tracking.py [--trials 20] [--epochs 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import markdown_table, write_results  # noqa: E402

METRICS = ("loss", "val_loss", "accuracy", "val_accuracy", "epoch_time_s", "train_time_s")


def _trial():
    from mlpsuite.config import GridSpec, expand

    return expand(
        GridSpec.model_validate(
            {"name": "tracking", "dataset": {"name": "iris"}, "backends": ["torch"]}
        )
    )[0]


def _result(trial, epochs: int):
    from mlpsuite.results import TrialResult

    history = {name: [1.0 / (epoch + 1) for epoch in range(epochs)] for name in METRICS}
    return TrialResult(
        key=trial.key,
        backend="torch",
        history=history,
        initial_loss=2.3,
        test={"loss": 0.1, "accuracy": 0.9},
        fit_time_s=1.0,
        step_time_ms=1.0,
        threads=1,
        versions={"keras": "3"},
        weights_sha256="0" * 16,
        trial_time_s=1.0,
        overhead_s=0.01,
    )


def one_trial(tracker, experiment_id: str, trial, result, mode: str) -> float:
    began = time.perf_counter()
    run_id = tracker.start_trial(experiment_id, trial, None)
    epochs = len(result.history["loss"])
    for epoch in range(1, epochs + 1):
        values = {name: result.history[name][epoch - 1] for name in METRICS}
        if mode == "naive":
            for name, value in values.items():
                tracker.client.log_metric(run_id, name, value, step=epoch)
        elif mode == "per epoch":
            tracker._log_metrics(run_id, values, step=epoch)
        else:
            tracker.log_epoch(run_id, epoch, values)
    tracker.finish_trial(run_id, result)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=50)
    args = parser.parse_args()
    from mlpsuite.tracking import Tracker

    trial = _trial()
    result = _result(trial, args.epochs)
    modes = ("naive", "per epoch", "mlpsuite")
    times: dict[str, list[float]] = {mode: [] for mode in modes}
    with tempfile.TemporaryDirectory(prefix="mlpsuite-bench-") as scratch:
        tracker = Tracker(f"sqlite:///{scratch}/mlflow.db")
        experiment_id = tracker.experiment_id("tracking")
        one_trial(tracker, experiment_id, trial, result, "mlpsuite")  # warm-up: tables, caches
        for _ in range(args.trials):  # interleaved: drift in machine load hits all three alike
            for mode in modes:
                times[mode].append(one_trial(tracker, experiment_id, trial, result, mode))
    ms = {mode: statistics.median(values) * 1000 for mode, values in times.items()}
    for mode in modes:
        print(
            f"{mode:<10} {ms[mode]:8.1f} ms per trial ({ms[mode] / ms['mlpsuite']:.1f}x mlpsuite's)"
        )
    table = markdown_table(
        ["writes", "ms per trial", "x mlpsuite"],
        [[mode, ms[mode], ms[mode] / ms["mlpsuite"]] for mode in modes],
    )
    write_results(
        "tracking",
        {
            "trials": args.trials,
            "epochs": args.epochs,
            "metrics_per_epoch": len(METRICS),
            "ms_per_trial": ms,
        },
        f"One trial's MLflow writes into a local SQLite store: {args.epochs} epochs x "
        f"{len(METRICS)} metrics, plus run, params, dataset input, trial.json, finals and tags; "
        f"median of {args.trials}.\n\n{table}",
    )


if __name__ == "__main__":
    main()
