"""Populations (`training.vectorize: program`) against a cell's seeds (`seeds`) and trials one at a
time (`none`), side by side in one run.

1. End to end: the optimizers ablation, listed (`experiments/optimizers-grid.yaml`, 7 optimizers ×
   9 rates × 5 seeds) and searched (`experiments/optimizers.yaml`, the same budget drawn
   quasi-randomly, momentum, beta_1 and weight decay sampled too), each as one `mlpsuite run`
   into a new SQLite store with an empty JAX compilation cache (a new machine's compiles), with 1
   and 2 workers: wall time, trials per second, the coordinator's recording ms per trial (the
   parent's `record_s_per_trial`), and the winner's test_loss (the answer must not move).
2. Where a population stops paying: in one JAX process (one thread, as a worker), a population of
   n members of one program (digits; a small MLP 64-64 and a large 512-512), trained 5 epochs:
   training ms per member-step against the trial trained alone, and the epoch's cost beyond its
   steps per member (validation, metric streaming, the Python loop).

Usage: python benchmarks/populations.py [--modes none,seeds,program] [--jobs 1,2] [--skip-grids]
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

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, markdown_table, mlpsuite, write_results  # noqa: E402

GRIDS = {"listed": "optimizers-grid.yaml", "searched": "optimizers.yaml"}
SIZES = (1, 3, 9, 27, 81, 243)
PROBLEMS = {"small": [64, 64], "large": [512, 512]}


def _grid_row(design: str, mode: str, jobs: int) -> dict:
    """One whole `mlpsuite run` of the ablation with `vectorize: mode` on `jobs` workers."""
    config = yaml.safe_load((ROOT / "experiments" / GRIDS[design]).read_text(encoding="utf-8"))
    config["name"] = f"populations-{design}"
    config["training"]["vectorize"] = mode
    with tempfile.TemporaryDirectory(prefix="mlpsuite-populations-") as folder:
        path = Path(folder) / "grid.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        uri = f"sqlite:///{folder}/mlflow.db"
        env = {"MLPSUITE_CACHE_DIR": str(Path(folder) / "cache")}  # compiles as a new machine's
        began = time.perf_counter()
        mlpsuite("run", str(path), "--tracking-uri", uri, "--jobs", str(jobs), env=env)
        wall = time.perf_counter() - began
        shown = json.loads(
            mlpsuite(
                "compare", config["name"], "--tracking-uri", uri, "--format", "json", env=env
            ).stdout
        )
        record = _parent_metric(uri, config["name"], "record_s_per_trial")
    trials = shown["trials"]
    best = min(shown["cells"], key=lambda cell: cell["rank"])
    return {
        "design": design,
        "vectorize": mode,
        "jobs": jobs,
        "wall_s": wall,
        "trials": trials,
        "trials_per_s": trials / wall,
        "record_ms_per_trial": record * 1000,
        "winner": f"{best['cell']} ({best['selected']})",
        "winner_test_loss": best["test_loss_mean"],
    }


def _parent_metric(uri: str, experiment: str, name: str) -> float:
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    (parent,) = client.search_runs([found.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
    return parent.data.metrics[name]


def child(hidden: list[int], sizes: list[int]) -> list[dict]:
    """Inside one JAX process: each population size after one warm-up (compiles excluded)."""
    from mlpsuite.config import GridSpec, expand
    from mlpsuite.trial.backends import configure
    from mlpsuite.trial.training import TrialRunner
    from mlpsuite.trial.vectorized import train_together

    configure(1)
    trials = expand(
        GridSpec.model_validate(
            {
                "name": "populations",
                "dataset": {"name": "digits"},
                "model": {"hidden": hidden, "activation": "relu", "scaler": "standard"},
                "optimizer": {"name": "adam"},
                "training": {"epochs": 5, "batch_size": 64, "vectorize": "program"},
                "backends": ["jax"],
                "seeds": list(range(max(sizes))),
            }
        )
    )
    runner = TrialRunner(1)
    runner.run(trials[0], lambda event: None)  # compiles the trial's own program
    alone = runner.run(trials[1], lambda event: None)
    rows = [_row(1, [alone], alone=True)]
    for size in sizes:
        train_together(runner, trials[:size], lambda event: None)  # traces this size
        rows.append(_row(size, train_together(runner, trials[:size], lambda event: None)))
    return rows


def _row(size: int, results, alone: bool = False) -> dict:
    """Per member: step ms, epoch ms beyond the steps, trial s (steady epochs: the 2nd on)."""
    result = results[0]
    epochs = result.history["epoch_time_s"][1:]
    trains = result.history["train_time_s"][1:]
    return {
        "members": size,
        "alone": alone,
        "step_ms": result.step_time_ms,
        "epoch_beyond_steps_ms": 1000
        * statistics.median(epoch - train for epoch, train in zip(epochs, trains, strict=True)),
        "trial_s": statistics.median(r.trial_time_s for r in results),
    }


def _members_table(sizes: list[int]) -> dict[str, list[dict]]:
    out = {}
    for problem, hidden in PROBLEMS.items():
        env = {**os.environ, "KERAS_BACKEND": "jax", "MLPSUITE_THREADS": "1"}
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        script = (
            "import json, sys; sys.path.insert(0, 'benchmarks'); from populations import child; "
            f"print('RESULT' + json.dumps(child({hidden!r}, {sizes!r})))"
        )
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode:
            sys.exit(done.stderr[-3000:])
        line = next(line for line in done.stdout.splitlines() if line.startswith("RESULT"))
        out[problem] = json.loads(line.removeprefix("RESULT"))
        print(problem, out[problem], flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--modes", default="none,seeds,program")
    parser.add_argument("--jobs", default="1,2")
    parser.add_argument("--designs", default="listed,searched")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--skip-grids", action="store_true", help="only the members table")
    parser.add_argument(
        "--tables-only", action="store_true", help="rewrite the Markdown from the saved JSON"
    )
    args = parser.parse_args()
    if args.tables_only:
        saved = json.loads((RESULTS / "populations.json").read_text(encoding="utf-8"))
        _publish(saved["grids"], saved["members"])
        return 0
    sizes = [int(size) for size in args.sizes.split(",")]
    grid_rows = []
    if not args.skip_grids:
        for design in args.designs.split(","):
            for jobs in (int(j) for j in args.jobs.split(",")):
                for mode in args.modes.split(","):
                    grid_rows.append(_grid_row(design, mode, jobs))
                    print(grid_rows[-1], flush=True)
    members = _members_table(sizes)
    _publish(grid_rows, members)
    return 0


def _publish(grid_rows: list[dict], members: dict[str, list[dict]]) -> None:
    seeds_wall = {
        (row["design"], row["jobs"]): row["wall_s"]
        for row in grid_rows
        if row["vectorize"] == "seeds"
    }
    table = markdown_table(
        ["design", "vectorize", "workers", "wall s", "× seeds", "trials/s", "recording ms/trial",
         "winner", "its test_loss"],
        [
            [row["design"], row["vectorize"], row["jobs"], row["wall_s"],
             seeds_wall.get((row["design"], row["jobs"]), float("nan")) / row["wall_s"],
             row["trials_per_s"], row["record_ms_per_trial"], row["winner"],
             f"{row['winner_test_loss']:.4f}"]
            for row in grid_rows
        ],
    )  # fmt: skip
    member_tables = []
    for problem, rows in members.items():
        alone = rows[0]["trial_s"]
        member_tables.append(
            f"**{problem}** (digits, MLP {'-'.join(map(str, PROBLEMS[problem]))}, Adam, batch "
            "64, 5 epochs; one thread):\n\n"
            + markdown_table(
                [
                    "members",
                    "s per trial",
                    "× alone",
                    "ms per member-step¹",
                    "epoch ms beyond steps, per member¹",
                ],
                [
                    [
                        "alone" if row["alone"] else row["members"],
                        row["trial_s"],
                        alone / row["trial_s"],
                        row["step_ms"],
                        row["epoch_beyond_steps_ms"],
                    ]
                    for row in rows
                ],
            )  # fmt: skip
        )
    write_results(
        "populations",
        {"grids": grid_rows, "members": members},
        "The optimizers ablation end to end (a new store and an empty compilation cache per run; "
        "× seeds: the `seeds` run's wall time over this one's):\n\n"
        + table
        + "\n\nPer member of one population (compiles excluded; s per trial: the population's "
        "time divided by its members; × alone: the trial trained alone's over a member's):\n\n"
        + "\n\n".join(member_tables)
        + "\n\n¹ Alone, Keras runs an epoch's steps as one asynchronous call, so its training "
        "time is the dispatch and the steps' compute lands in the epoch's remainder (the "
        "validation waits for it); a population's steps are waited for at each epoch's end. "
        "Compare s per trial.",
    )
    print(table)
    print("\n\n".join(member_tables))


if __name__ == "__main__":
    sys.exit(main())
