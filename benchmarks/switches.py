"""Each backend at each of Keras' speed switches: `training.steps_per_execution` (1, or auto:
one epoch's steps per compiled call on TensorFlow and JAX) and `training.jit_compile` (XLA on
TensorFlow and JAX, torch.compile on PyTorch), on the small and the large problem of
`benchmarks/backends.py`.

Every (problem, backend, setting) runs in a process of its own, one thread, with an empty
compilation cache (so compile times are a new machine's), as a worker runs it: `TrialRunner`,
3 seeds of one program (the 2nd and 3rd reuse the compiled model). Reported: ms per training
step (median over the trials' steady epochs), compile s (the first trial's first epoch minus a
steady one, plus its first evaluation's compile), the median reused trial's wall time, and the
process's peak resident memory.

Usage: python benchmarks/switches.py [--problems small,large] [--backends tensorflow,torch,jax]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BACKENDS, RESULTS, ROOT, markdown_table, write_results  # noqa: E402
from backends import LEARNING_RATE, PROBLEMS  # noqa: E402

SETTINGS = [
    (1, False),
    (1, True),
    ("auto", False),
    ("auto", True),
]  # (steps_per_execution, jit_compile)
SEEDS = 3


def _trials(problem: dict, backend: str, per_execution, jit: bool):
    from mlpsuite.config import GridSpec, expand

    return expand(
        GridSpec.model_validate(
            {
                "name": "switches",
                "dataset": problem["dataset"],
                "model": {"hidden": problem["hidden"], "activation": "relu", "scaler": "standard"},
                "optimizer": {"name": "adam", "learning_rate": LEARNING_RATE},
                "training": {
                    "epochs": problem["epochs"],
                    "batch_size": problem["batch_size"],
                    "steps_per_execution": per_execution,
                    "jit_compile": jit,
                },
                "backends": [backend],
                "seeds": list(range(SEEDS)),
            }
        )
    )


def _measured(value: float | None) -> float:
    """A finished trial's timing (a failed trial has none)."""
    assert value is not None, "a trial failed: no timing to take the median of"
    return value


def child(problem_name: str, backend: str, per_execution, jit: bool) -> dict:
    """Inside the backend's process: the trials, one after another, as a worker runs them."""
    from mlpsuite.results import peak_rss_mb
    from mlpsuite.trial.backends import configure
    from mlpsuite.trial.training import TrialRunner

    configure(1)
    runner = TrialRunner(1)
    results = [
        runner.run(trial, lambda event: None)
        for trial in _trials(PROBLEMS[problem_name], backend, per_execution, jit)
    ]
    first = results[0]
    epochs = first.history["epoch_time_s"]
    return {
        "problem": problem_name,
        "backend": backend,
        "steps_per_execution": first.steps_per_execution,
        "jit_compile": first.jit_compile,
        "status": [r.status for r in results],
        "ms_per_step": statistics.median(_measured(r.step_time_ms) for r in results),
        "compile_s": max(0.0, epochs[0] - statistics.median(epochs[1:]))
        + (first.eval_compile_s or 0.0),
        "first_trial_s": first.trial_time_s,
        "trial_s": statistics.median(_measured(r.trial_time_s) for r in results[1:]),
        "overhead_s": statistics.median(_measured(r.overhead_s) for r in results[1:]),
        "peak_rss_mb": peak_rss_mb(),
        "final_loss": first.history["loss"][-1],
    }


def measure(problem: str, backend: str, per_execution, jit: bool) -> dict:
    from mlpsuite.executors.wire import thread_environment

    with tempfile.TemporaryDirectory(prefix="mlpsuite-switches-") as cache:
        # The worker's thread pinning; JAX's and torch.compile's caches in the empty folder.
        env = {
            **os.environ,
            **thread_environment(1),
            "KERAS_BACKEND": backend,
            "MLPSUITE_CACHE_DIR": cache,
            "TORCHINDUCTOR_CACHE_DIR": str(Path(cache) / "torch"),
        }
        done = subprocess.run(
            [sys.executable, __file__, "--child", problem, backend, str(per_execution), str(jit)],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=1800,
        )
    if done.returncode != 0:
        raise SystemExit(
            f"{problem} {backend} {per_execution} {jit} failed:\n{done.stderr[-3000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--problems", default="small,large")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other backends' and problems' rows of benchmarks/results/switches.json",
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        problem, backend, per_execution, jit = args.child
        per_execution = per_execution if per_execution == "auto" else int(per_execution)
        print(json.dumps(child(problem, backend, per_execution, jit == "True")))
        return
    runs = []
    for problem in args.problems.split(","):
        for backend in args.backends.split(","):
            for per_execution, jit in SETTINGS:
                if backend == "torch" and per_execution == "auto":
                    continue  # PyTorch runs one step per execution: auto is 1
                runs.append(measure(problem, backend, per_execution, jit))
                run = runs[-1]
                print(
                    f"{problem} {backend} steps/execution {run['steps_per_execution']} jit {jit}: "
                    f"{run['ms_per_step']:.3f} ms/step, compile {run['compile_s']:.2f} s, "
                    f"trial {run['trial_s']:.3f} s, peak {run['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
    if args.merge and (RESULTS / "switches.json").exists():
        measured = {(run["problem"], run["backend"]) for run in runs}
        kept = [
            run
            for run in json.loads((RESULTS / "switches.json").read_text())["runs"]
            if (run["problem"], run["backend"]) not in measured
        ]
        order = {(p, b): i for i, (p, b) in enumerate((p, b) for p in PROBLEMS for b in BACKENDS)}
        runs = sorted(
            kept + runs, key=lambda run: order[(run["problem"], run["backend"])]
        )  # stable
    rows = []
    for run in runs:
        baseline = next(
            r
            for r in runs
            if (r["problem"], r["backend"]) == (run["problem"], run["backend"])
            and r["steps_per_execution"] == 1
            and not r["jit_compile"]
        )
        rows.append(
            [
                run["problem"],
                run["backend"],
                run["steps_per_execution"],
                str(run["jit_compile"]).lower(),
                run["ms_per_step"],
                baseline["ms_per_step"] / run["ms_per_step"],
                run["compile_s"],
                run["trial_s"],
                run["overhead_s"],
                run["peak_rss_mb"],
            ]
        )
    table = markdown_table(
        [
            "problem",
            "backend",
            "steps/execution",
            "jit",
            "ms/step",
            "× vs 1, no jit",
            "compile s",
            "reused trial s",
            "overhead s",
            "peak MB",
        ],
        rows,
    )
    write_results(
        "switches",
        {"seeds": SEEDS, "problems": PROBLEMS, "runs": runs},
        "Each (problem, backend, setting) in its own process, 1 thread, cold compilation cache; "
        f"{SEEDS} seeds of one program with `TrialRunner`. small: digits, MLP 64-64, batch 64, "
        f"{PROBLEMS['small']['epochs']} epochs; large: blobs 16k rows x 64 features, MLP 256-256, "
        f"batch 128, {PROBLEMS['large']['epochs']} epochs. steps/execution as resolved (auto: one "
        "epoch's steps; PyTorch: 1).\n\n" + table,
    )
    print(table)


if __name__ == "__main__":
    main()
