"""A second grid in the same Python process: on warm workers against fresh ones.

In one fresh process (a notebook's kernel, a script): the quick-start grid (27 trials, three
backends) is run once to load the coordinator's own libraries (MLflow, pandas), then, side by
side per repeat, into a fresh SQLite store each time: with fresh workers (the pool emptied
first: every framework imported again, every program compiled again) and with the warm
workers the previous grid left. Both record the same curves (checked here on every repeat).

Usage: python benchmarks/warm_workers.py [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, publish  # noqa: E402

import mlpsuite  # noqa: E402

GRID = ROOT / "experiments" / "quickstart.yaml"


def timed_run(folder: Path, name: str) -> tuple[float, dict]:
    """Seconds for `mlpsuite.run` of the grid into a fresh store, and its recorded curves."""
    uri = f"sqlite:///{folder / name}.db"
    began = time.perf_counter()
    result = mlpsuite.run(GRID, tracking_uri=uri, progress=False, keep_workers=600)
    seconds = time.perf_counter() - began
    assert result.n_failed == 0 and result.n_run == result.n_trials
    client = MlflowClient(uri)
    curves = {
        key: [m.value for m in client.get_metric_history(run_id, "val_loss")]
        for key, run_id in zip(result.runs["key"], result.runs["run_id"], strict=True)
    }
    return seconds, curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"fresh workers": [], "warm workers": []}
    with tempfile.TemporaryDirectory(prefix="mlpsuite-bench-") as scratch:
        folder = Path(scratch)
        timed_run(folder, "first")  # the coordinator's imports, paid once by any process
        for repeat in range(args.repeats):
            mlpsuite.shutdown()
            cold, cold_curves = timed_run(folder, f"fresh-{repeat}")
            warm, warm_curves = timed_run(folder, f"warm-{repeat}")
            assert warm_curves == cold_curves, "warm workers recorded other curves"
            times["fresh workers"].append(cold)
            times["warm workers"].append(warm)
            print(f"repeat {repeat}: fresh {cold:.1f} s, warm {warm:.1f} s")
        mlpsuite.shutdown()
    median = {name: statistics.median(values) for name, values in times.items()}
    speedup = median["fresh workers"] / median["warm workers"]
    publish(
        "warm_workers",
        {
            "repeats": args.repeats,
            "grid": GRID.name,
            "seconds": times,
            "median_s": median,
            "speedup": speedup,
        },
        ["workers", "median s", "runs (s)"],
        [
            [name, median[name], ", ".join(f"{value:.1f}" for value in values)]
            for name, values in times.items()
        ],
        f"The quick-start grid (27 trials on TensorFlow, PyTorch and JAX, 2 workers) as the "
        f"second grid of one Python process, into a fresh SQLite store each time: its workers "
        f"started for it, or taken warm from the grid before; median of {args.repeats}, "
        f"interleaved. Curves identical on every repeat.",
        after=f"Warm workers: {speedup:.2f}x faster to the comparison.",
    )


if __name__ == "__main__":
    main()
