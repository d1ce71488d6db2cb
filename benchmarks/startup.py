"""Time to a result: a one-trial `mlpsuite run`, and the commands that need no store.

1. A one-trial grid (iris, MLP 8, 1 epoch, torch) into a fresh SQLite store, from the command
   to its exit, with the worker started while the coordinator opens MLflow (the default) and
   after it (`MLPSUITE_PRESTART=0`, how mlpsuite started workers before), interleaved.
2. `--help`, `--version` and a config error, each as a fresh process.

Usage: python benchmarks/startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, mlpsuite, write_grid, write_results  # noqa: E402


def seconds(command: list[str], cwd: Path) -> float:
    began = time.perf_counter()
    subprocess.run(command, cwd=cwd, capture_output=True, check=False)
    return time.perf_counter() - began


def one_trial_s(folder: Path, run: int, prestart: bool) -> float:
    name = f"startup-{run}-{int(prestart)}"
    path = write_grid(
        folder,
        name,
        dataset={"name": "iris"},
        model={"hidden": [8]},
        training={"epochs": 1, "batch_size": 16},
        backends=["torch"],
    )
    began = time.perf_counter()
    mlpsuite(
        "run",
        str(path),
        "--jobs",
        "1",
        "--tracking-uri",
        f"sqlite:///{folder / name}.db",
        env={"MLPSUITE_PRESTART": "1" if prestart else "0"},
    )
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs: dict[str, list[float]] = {"worker started first": [], "worker started after MLflow": []}
    with tempfile.TemporaryDirectory(prefix="mlpsuite-bench-") as scratch:
        folder = Path(scratch)
        for run in range(args.repeats):
            runs["worker started first"].append(one_trial_s(folder, run, True))
            runs["worker started after MLflow"].append(one_trial_s(folder, run, False))
        bad = folder / "bad.yaml"
        bad.write_text(
            "name: x\ndataset: {name: iris}\ntraining: {batch_size: true}\n", encoding="utf-8"
        )
        cli = [sys.executable, "-m", "mlpsuite.cli"]
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "mlpsuite --help": [*cli, "--help"],
            "mlpsuite --version": [*cli, "--version"],
            "mlpsuite run bad.yaml": [*cli, "run", str(bad)],
        }
        for name, command in commands.items():
            runs[name] = [seconds(command, folder) for _ in range(args.repeats)]
    median = {name: statistics.median(values) for name, values in runs.items()}
    for name, value in median.items():
        print(f"{name:<30} {value:6.2f} s (median of {args.repeats})")
    gain = median["worker started after MLflow"] / median["worker started first"]
    print(f"one-trial run: {gain:.2f}x faster with the worker started first")
    table = markdown_table(
        ["command", "median s"], [[name, value] for name, value in median.items()]
    )
    write_results(
        "startup",
        {"repeats": args.repeats, "median_s": median, "prestart_speedup": gain},
        f"A one-trial `mlpsuite run` (iris, MLP 8, 1 epoch, torch, fresh SQLite store) from "
        f"command to exit, and store-free commands; median of {args.repeats}.\n\n{table}\n\n"
        f"Starting the worker before opening MLflow: {gain:.2f}x faster to a result.",
    )


if __name__ == "__main__":
    main()
