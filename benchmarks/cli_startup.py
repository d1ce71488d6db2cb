"""How fast the `mlpsuite` command answers what needs no store: --help, --version, a bad config.

Each is run as a fresh process N times; prints the median wall time and writes
benchmarks/results/cli_startup.json. Target: under 0.3 s each (Python's own start-up included).

Usage: python benchmarks/cli_startup.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def seconds(command: list[str], repeats: int, cwd: Path) -> float:
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        subprocess.run(command, cwd=cwd, capture_output=True, check=False)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        bad = Path(scratch) / "bad.yaml"
        bad.write_text("name: x\ndataset: {name: iris}\ntraining: {batch_size: true}\n", encoding="utf-8")
        cli = [sys.executable, "-m", "mlpsuite.cli"]
        cases = {"python -c pass": [sys.executable, "-c", "pass"], "mlpsuite --help": [*cli, "--help"],
                 "mlpsuite --version": [*cli, "--version"], "mlpsuite run bad.yaml": [*cli, "run", str(bad)]}
        results = {name: seconds(command, args.repeats, Path(scratch)) for name, command in cases.items()}
    for name, value in results.items():
        print(f"{name:<24} {value:.3f} s (median of {args.repeats})")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cli_startup.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
