"""How the coordinator's costs grow with a grid's size: grids of tiny scikit-learn trials (iris,
MLP 8, 3 epochs; a trial's own work is ~0.07 s, so what is measured is mlpsuite and MLflow, not
training), each into a new SQLite store, as a user runs them (`mlpsuite` processes):

- `run`: the whole grid with `--jobs 2` (wall s, trials per second);
- `run again`: every trial reused (wall s);
- `compare`: the terminal report, and `--format json` (wall s);
- `--dry-run` of a grid of 12,000 trials (nothing trained, nothing written).

Reported per size, and the slope per 1,000 trials between the two largest sizes.

Usage: python benchmarks/scale.py [--sizes 100,1000] [--dry-run-trials 12000]
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

ACTIVATIONS = ["relu", "tanh", "identity", "sigmoid"]
RATES = [0.003, 0.01, 0.03, 0.1, 0.3]


def tiny_grid(folder: Path, trials: int, name: str = "scale") -> Path:
    """`trials` sklearn trials: 4 activations × 5 learning rates × trials / 20 seeds."""
    import yaml

    config = {
        "name": name,
        "dataset": {"name": "iris"},
        "model": {"hidden": [8], "activation": "relu", "scaler": "standard"},
        "optimizer": {"name": "adam", "learning_rate": 0.01},
        "training": {"epochs": 3, "batch_size": 16},
        "backends": ["sklearn"],
        "seeds": list(range(max(1, trials // (len(ACTIVATIONS) * len(RATES))))),
        "grid": {"model.activation": ACTIVATIONS, "optimizer.learning_rate": RATES},
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def timed(*args: str) -> float:
    began = time.perf_counter()
    mlpsuite(*args)
    return time.perf_counter() - began


def one_size(trials: int) -> list:
    with tempfile.TemporaryDirectory(prefix="mlpsuite-scale-") as folder:
        path = tiny_grid(Path(folder), trials)
        uri = f"sqlite:///{folder}/mlflow.db"
        store = ("--tracking-uri", uri)
        run = timed("run", str(path), *store, "--jobs", "2")
        again = timed("run", str(path), *store, "--jobs", "2")
        compare = timed("compare", "scale", *store)
        as_json = timed("compare", "scale", *store, "--format", "json")
    return [trials, run, trials / run, again, compare, as_json]


def main() -> None:
    parser = argparse.ArgumentParser(
        description="how the coordinator's costs grow with a grid's size"
    )
    parser.add_argument("--sizes", default="100,1000", help="grid sizes, comma-separated")
    parser.add_argument("--dry-run-trials", type=int, default=12000)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    rows = [one_size(size) for size in sizes]
    with tempfile.TemporaryDirectory(prefix="mlpsuite-scale-") as folder:
        dry = timed("run", str(tiny_grid(Path(folder), args.dry_run_trials, "plan")), "--dry-run")
    header = ["trials", "run s", "trials/s", "run again s", "compare s", "compare json s"]
    after = f"`--dry-run` of a {args.dry_run_trials:,}-trial grid: {dry:.1f} s."
    if len(rows) > 1:
        (small, *_), (large, *_) = rows[-2], rows[-1]
        per = 1000 / (large - small)
        slopes = [
            f"{name} {(rows[-1][i] - rows[-2][i]) * per:.1f} s"
            for i, name in ((1, "run"), (3, "run again"), (4, "compare"), (5, "compare json"))
        ]
        after += f" Per 1,000 trials more ({small:,} → {large:,}): {', '.join(slopes)}."
    publish(
        "scale",
        {"header": header, "rows": rows, "dry_run_s": dry, "dry_run_trials": args.dry_run_trials},
        header,
        rows,
        "Grids of tiny scikit-learn trials into a new SQLite store, `--jobs 2`, as a user runs "
        "them (`mlpsuite` processes; wall seconds).",
        after,
    )


if __name__ == "__main__":
    main()
