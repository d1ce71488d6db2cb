"""What the comparison costs, measured in one run.

1. A 200-trial grid (5 activations x 4 learning rates x 5 seeds x 2 backends, 20 epochs each)
   written into a fresh SQLite store through the same Tracker calls a real grid makes
   (synthetic losses, no training), then its whole report timed: reading the runs and their
   histories, the statistics, the CSVs, Markdown and figures, and logging them on the parent.
   Twice: every key scientific with t-intervals (the report as it was), and the ablation
   protocol (the learning rate nuisance, bootstrap intervals ranking, a val_loss target).
   Target: < 3 s on 2 cores for the protocol.
2. The quickstart (`mlpsuite run experiments/quickstart.yaml`, 27 real trials) in a fresh store:
   its wall time against the report's own time (the parent's `report_time_s`). Target: < 5%.

Usage: python benchmarks/report.py [--repeats 3] [--skip-quickstart]
Writes benchmarks/results/report.json and report.md. The machine is shared: read ±10%.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
PROTOCOL = {
    "nuisance": ["optimizer.learning_rate"],
    "interval": "bootstrap",
    "target": {"val_loss": 0.5},
}


def synthetic_grid(uri: str, epochs: int = 20) -> str:
    """200 trial runs recorded as a real grid would record them; returns the experiment name."""
    import numpy as np

    from mlpsuite.config import GridSpec, expand, unique_trials
    from mlpsuite.results import TrialResult
    from mlpsuite.tracking import Tracker

    spec = GridSpec.model_validate(
        {
            "name": "report-benchmark",
            "dataset": {"name": "digits"},
            "backends": ["jax", "torch"],
            "seeds": [0, 1, 2, 3, 4],
            "training": {"epochs": epochs},
            "grid": {
                "model.activation": ["relu", "elu", "tanh", "sigmoid", "swish"],
                "optimizer.learning_rate": [0.1, 0.03, 0.01, 0.003],
            },
            "compare": PROTOCOL,
        }
    )
    trials = unique_trials(expand(spec))
    tracker = Tracker(uri)
    experiment_id = tracker.experiment_id(spec.name)
    parent, _ = tracker.open_grid(experiment_id, spec, Path("benchmark.yaml"), trials)
    rng = np.random.default_rng(0)
    for trial in trials:
        run_id = tracker.start_trial(experiment_id, trial, parent)
        decay = rng.uniform(0.05, 0.3)
        losses = [float(2.3 * np.exp(-decay * e)) for e in range(1, epochs + 1)]
        history = {
            "loss": losses,
            "val_loss": [v * 1.1 for v in losses],
            "accuracy": [0.9] * epochs,
            "val_accuracy": [0.88] * epochs,
            "epoch_time_s": [1.0] + [0.1] * (epochs - 1),
        }
        for epoch in range(epochs):
            tracker.log_epoch(
                run_id, epoch + 1, {name: values[epoch] for name, values in history.items()}
            )
        tracker.finish_trial(
            run_id,
            TrialResult(
                key=trial.key,
                backend=trial.backend,
                initial_loss=2.3,
                history=history,
                test={"loss": losses[-1] * 1.1, "accuracy": 0.88},
                fit_time_s=2.0,
                step_time_ms=0.5,
                steps_per_epoch=23,
                weights_sha256=f"{trial.seed:016d}",
            ),
        )
    tracker.end_run(parent, "FINISHED")
    return spec.name


def time_report(uri: str, experiment: str, repeats: int, protocol: dict | None = None) -> dict:
    """Medians over `repeats` of `compare` alone and of the whole logged report; `protocol`
    overrides the grid's declared one (`{"nuisance": []}`: every key scientific)."""
    from mlpsuite.analysis import compare
    from mlpsuite.runner import log_comparison
    from mlpsuite.tracking import Tracker

    tracker = Tracker(uri)
    wall, analysis = [], []
    for _ in range(repeats):
        began = time.perf_counter()
        comparison = compare(tracker, experiment, protocol=protocol)
        analysis.append(time.perf_counter() - began)
        began = time.perf_counter()
        log_comparison(tracker, experiment, comparison.parent_run_id, protocol=protocol)
        wall.append(time.perf_counter() - began)
    return {
        "trials": comparison.n_trials,
        "read_and_statistics_s": statistics.median(analysis),
        "whole_report_s": statistics.median(wall),
    }


def quickstart_share(directory: Path) -> dict:
    from mlflow import MlflowClient

    uri = f"sqlite:///{directory / 'quickstart.db'}"
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "MLFLOW_TRACKING_URI")}
    began = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mlpsuite.cli",
            "run",
            str(ROOT / "experiments" / "quickstart.yaml"),
            "--tracking-uri",
            uri,
        ],
        cwd=directory,
        env=env,
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - began
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("quickstart")
    assert experiment is not None
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
    report = parent.data.metrics["report_time_s"]
    return {"run_wall_s": wall, "report_s": report, "report_share": report / wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-quickstart", action="store_true")
    args = parser.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="mlpsuite-report-bench-") as scratch:
        uri = f"sqlite:///{Path(scratch) / 'grid.db'}"
        began = time.perf_counter()
        experiment = synthetic_grid(uri)
        print(f"wrote a 200-trial grid in {time.perf_counter() - began:.1f} s")
        for name, protocol in (
            ("grid_200", {"nuisance": [], "interval": "t", "target": {}}),
            ("grid_200_protocol", None),
        ):
            results[name] = time_report(uri, experiment, args.repeats, protocol)
            print(
                "200 trials, "
                f"{'every key scientific, t' if protocol else 'nuisance, bootstrap, target'}: "
                f"whole report {results[name]['whole_report_s']:.2f} s (reads + statistics "
                f"{results[name]['read_and_statistics_s']:.2f} s), "
                f"median of {args.repeats}; target < 3 s"
            )
        if not args.skip_quickstart:
            results["quickstart"] = quickstart_share(Path(scratch))
            share = results["quickstart"]
            print(
                f"quickstart: run {share['run_wall_s']:.1f} s, of which the report "
                f"{share['report_s']:.2f} s = {100 * share['report_share']:.1f}%; target < 5%"
            )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "report.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    lines = [
        "# Comparison report cost",
        "",
        "| measurement | value |",
        "|---|---|",
        f"| 200-trial report, whole (s) | {results['grid_200']['whole_report_s']:.2f} |",
        "| 200-trial report, reads + statistics (s) | "
        f"{results['grid_200']['read_and_statistics_s']:.2f} |",
        "| 200-trial report with the protocol¹, whole (s) | "
        f"{results['grid_200_protocol']['whole_report_s']:.2f} |",
        f"| 200-trial report with the protocol¹, reads + statistics (s) | "
        f"{results['grid_200_protocol']['read_and_statistics_s']:.2f} |",
    ]
    if "quickstart" in results:
        lines.append(
            "| quickstart: report share of the run | "
            f"{100 * results['quickstart']['report_share']:.1f}% |"
        )
    lines += [
        "",
        "¹ the learning rate nuisance (each activation at its best rate), bootstrap intervals "
        "ranking, a val_loss target (epochs and time to it).",
    ]
    (RESULTS / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
