"""Worker memory over many trials: resident set size over 200 trials of 200 different programs.

Per backend, the local executor (`--jobs 1`) runs 200 one-epoch digits trials whose hidden
width differs (16, 17, ... units), so each trial builds and compiles a new model and drops the
last one's (`keras.backend.clear_session`): the case where memory could pile up. The worker's
RSS is read from /proc after each trial. A worker whose peak memory grows 10% past its size
after its first trial retires and is replaced (`MLPSUITE_MAX_GROWTH`); the count is printed.

Usage: python benchmarks/memory.py [--trials 200] [--backends tensorflow,torch,jax]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import BACKENDS, markdown_table, write_results  # noqa: E402

WARM = 10


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/<pid>/status (Linux only)")


def run(backend: str, trials: int) -> dict:
    from mlpsuite.config import GridSpec, expand
    from mlpsuite.executors.local import LocalExecutor

    grid = expand(
        GridSpec.model_validate(
            {
                "name": "memory",
                "dataset": {"name": "digits"},
                "training": {"epochs": 1, "batch_size": 64},
                "backends": [backend],
                "grid": {"model.hidden": [[16 + i] for i in range(trials)]},
            }
        )
    )
    pids, samples = {}, []

    def handle(event) -> None:
        if event.kind == "ready":
            pids[event.slot] = event.payload["pid"]
        elif event.kind == "finished":
            samples.append(rss_mb(pids[event.slot]))

    executor = LocalExecutor(jobs=1)
    began = time.perf_counter()
    executor.run(grid, handle)
    return {"rss_mb": samples, "retired": executor.retired, "seconds": time.perf_counter() - began}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args()
    results, rows = {}, []
    with tempfile.TemporaryDirectory(prefix="mlpsuite-bench-") as cache:
        os.environ["MLPSUITE_CACHE_DIR"] = cache
        for backend in args.backends.split(","):
            measured = run(backend, args.trials)
            samples = measured["rss_mb"]
            warm, peak = samples[WARM - 1], max(samples[WARM - 1 :])
            growth = peak / warm - 1
            results[backend] = {
                "after_first": samples[0],
                "after_warm_up": warm,
                "peak_after_warm_up": peak,
                "last": samples[-1],
                "growth": growth,
                "retired": measured["retired"],
                "seconds": measured["seconds"],
            }
            rows.append(
                [
                    backend,
                    samples[0],
                    warm,
                    peak,
                    samples[-1],
                    f"{growth:+.1%}",
                    measured["retired"],
                ]
            )
            print(
                f"{backend:<11} RSS after trial {WARM}: {warm:.0f} MB, highest after it: "
                f"{peak:.0f} MB ({growth:+.1%}), last {samples[-1]:.0f} MB; workers retired: "
                f"{measured['retired']}",
                flush=True,
            )
    table = markdown_table(
        [
            "backend",
            "RSS MB after trial 1",
            f"after {WARM}",
            f"highest {WARM}..{args.trials}",
            f"after {args.trials}",
            "growth",
            "workers retired",
        ],
        rows,
    )
    write_results(
        "memory",
        {"trials": args.trials, "backends": results},
        f"The local executor, one worker slot, {args.trials} trials of {args.trials} different "
        f"programs (MLP 16..{15 + args.trials} units), digits, 1 epoch; the worker's RSS after "
        f"each trial.\n\n{table}",
    )


if __name__ == "__main__":
    main()
