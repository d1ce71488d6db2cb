"""What `diagnostics: true` costs per epoch: the probe (one forward and backward pass on 256
rows, every layer's statistics) against the epoch's training steps, per backend.

Per backend, in its own process (one thread, as a worker pins it), the same trial runs twice
with the same `TrialRunner`: without diagnostics, then with. Reported: the median epoch time
of each (epochs 2..E), the median `diagnostics_time_s` per epoch, and their ratios.

Usage: python benchmarks/diagnostics.py [--epochs 8] [--depth 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BACKENDS, ROOT, markdown_table, write_results  # noqa: E402


def _measure(epochs: int, depth: int) -> dict:
    """In a worker-like process: median epoch seconds without and with diagnostics."""
    from mlpsuite.config import GridSpec, expand
    from mlpsuite.trial.backends import configure
    from mlpsuite.trial.training import TrialRunner

    configure(1)
    runner = TrialRunner(threads=1)
    measured = {}
    for diagnostics in (False, True):
        spec = GridSpec.model_validate(
            {
                "name": "diagnostics",
                "dataset": {"name": "digits"},
                "model": {"hidden": [64] * depth, "activation": "relu", "scaler": "standard"},
                "training": {"epochs": epochs, "batch_size": 64},
                "backends": [os.environ["KERAS_BACKEND"]],
                "seeds": [0],
                "diagnostics": diagnostics,
            }
        )
        events = []
        result = runner.run(expand(spec)[0], events.append)
        epoch_times = result.history["epoch_time_s"][1:]
        probe_times = [
            e["metrics"]["diagnostics_time_s"]
            for e in events
            if e["epoch"] > 1 and "diagnostics_time_s" in e["metrics"]
        ]
        measured["with" if diagnostics else "without"] = {
            "epoch_s": statistics.median(epoch_times),
            "probe_s": statistics.median(probe_times) if probe_times else 0.0,
            "steps": result.steps_per_epoch,
        }
    return measured


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--depth", type=int, default=4, help="hidden layers of 64 units")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_measure(args.epochs, args.depth)))
        return 0
    rows, data = [], {"epochs": args.epochs, "depth": args.depth, "backends": {}}
    for backend in BACKENDS:
        env = {
            **os.environ,
            "KERAS_BACKEND": backend,
            "OMP_NUM_THREADS": "1",
            "TF_NUM_INTRAOP_THREADS": "1",
            "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "MLPSUITE_CACHE_DIR": "none",
        }
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                "1",
                "--epochs",
                str(args.epochs),
                "--depth",
                str(args.depth),
            ],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        data["backends"][backend] = measured
        without, with_ = measured["without"], measured["with"]
        rows.append(
            [
                backend,
                with_["steps"],
                without["epoch_s"] * 1000,
                with_["epoch_s"] * 1000,
                with_["probe_s"] * 1000,
                with_["epoch_s"] / without["epoch_s"],
                with_["probe_s"] / without["epoch_s"],
            ]
        )
        print(backend, measured, flush=True)
    table = markdown_table(
        [
            "backend",
            "steps/epoch",
            "epoch ms (off)",
            "epoch ms (on)",
            "probe ms/epoch",
            "on / off",
            "probe / epoch (off)",
        ],
        rows,
    )
    write_results(
        "diagnostics",
        data,
        f"Diagnostics on digits, MLP {args.depth} x 64 relu, batch 64, {args.epochs} epochs, "
        f"one thread; medians over epochs 2..{args.epochs}.\n\n{table}",
    )
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
