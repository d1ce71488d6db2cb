"""Worker memory over many trials: resident set size over 200 trials of alternating programs.

Per backend, in a fresh process configured as a worker is, a `TrialRunner` runs trials whose
activation alternates (relu, elu), so every trial builds a new model and drops the last one's
compiled program (`keras.backend.clear_session`): the case where memory could pile up. RSS is
read from /proc after trial 10 (imports and first compilations done) and after the last.

Usage: python benchmarks/memory.py [--trials 200] [--backends tensorflow,torch,jax]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BACKENDS, ROOT, markdown_table, write_results  # noqa: E402

WARM = 10


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def inside(trials: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from mlpsuite.backends import configure
    from mlpsuite.config import GridSpec, expand
    from mlpsuite.training import TrialRunner

    configure(1)
    grid = expand(GridSpec.model_validate({
        "name": "memory", "dataset": {"name": "digits"}, "model": {"hidden": [32]},
        "training": {"epochs": 2, "batch_size": 64}, "backends": [os.environ["KERAS_BACKEND"]],
        "seeds": list(range(trials // 2 + 1)), "grid": {"model.activation": ["relu", "elu"]}}))
    relu, elu = grid[: len(grid) // 2], grid[len(grid) // 2:]
    order = [trial for pair in zip(relu, elu) for trial in pair][:trials]
    runner = TrialRunner(1, reuse=True)
    samples = {}
    for number, trial in enumerate(order, start=1):
        runner.run(trial, lambda event: None)
        if number in (1, WARM, trials // 2, trials):
            samples[number] = rss_mb()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:
        print(json.dumps(inside(args.trials)))
        return
    from mlpsuite.backends import thread_environment

    results = {}
    with tempfile.TemporaryDirectory(prefix="mlpsuite-bench-") as cache:
        for backend in args.backends.split(","):
            env = {**os.environ, **thread_environment(1), "KERAS_BACKEND": backend, "MLPSUITE_CACHE_DIR": cache}
            done = subprocess.run([sys.executable, __file__, "--inside", "--trials", str(args.trials)],
                                  env=env, capture_output=True, text=True, check=True)
            samples = {int(k): v for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}
            growth = samples[args.trials] / samples[WARM] - 1
            results[backend] = {"rss_mb": samples, "growth_after_warm_up": growth}
            print(f"{backend:<11} RSS after trial {WARM}: {samples[WARM]:.0f} MB, after {args.trials}: "
                  f"{samples[args.trials]:.0f} MB ({growth:+.1%})", flush=True)
    rows = [[b, r["rss_mb"][1], r["rss_mb"][WARM], r["rss_mb"][args.trials], f"{r['growth_after_warm_up']:+.1%}"]
            for b, r in results.items()]
    table = markdown_table(["backend", "RSS MB after trial 1", f"after {WARM}", f"after {args.trials}",
                            f"growth {WARM} -> {args.trials}"], rows)
    write_results("memory", {"trials": args.trials, "backends": results},
                  f"One worker, {args.trials} trials alternating relu/elu (a new model and program "
                  f"every trial), digits, MLP 32, 2 epochs.\n\n{table}")


if __name__ == "__main__":
    main()
