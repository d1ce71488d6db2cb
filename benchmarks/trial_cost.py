"""Per-trial fixed cost and grid wall time, with compiled-model reuse on and off.

Per backend, one 24-trial grid (digits, MLP 64-64, Adam, batch 64, 5 epochs; 8 seeds x 3
learning rates: one compiled program) is run by `mlpsuite run --jobs 1` as a user runs it,
once with `--no-reuse` and once with reuse (the default), each into a fresh store and a cold
JAX compilation cache; JAX runs a third time with the cache warm, and a fourth with
`training.vectorize: seeds` (each learning rate's 8 seeds as one program). From the child runs:
`overhead_s` (the worker's trial time less its training steps at steady speed) and
`trial_time_s`. Beside them, scikit-learn's MLPClassifier fitting the same net, data and epochs.

Usage: python benchmarks/trial_cost.py [--seeds 8] [--backends tensorflow,torch,jax]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BACKENDS, markdown_table, mlpsuite, trial_runs, write_grid, write_results  # noqa: E402

RATES = [0.001, 0.003, 0.01]


def grid_run(
    backend: str,
    seeds: int,
    reuse: bool,
    cache: Path,
    folder: Path,
    vectorize: str = "none",
    rates: list[float] = RATES,
) -> dict:
    name = (
        f"cost-{backend}-{'reuse' if reuse else 'fresh'}-{vectorize}-{seeds}x{len(rates)}-"
        f"{len(list(folder.iterdir()))}"
    )
    path = write_grid(
        folder,
        name,
        backends=[backend],
        seeds=list(range(seeds)),
        grid={"optimizer.learning_rate": rates},
        training={"epochs": 5, "batch_size": 64, "vectorize": vectorize},
    )
    uri = f"sqlite:///{folder / name}.db"
    began = time.perf_counter()
    mlpsuite(
        "run",
        str(path),
        "--jobs",
        "1",
        "--tracking-uri",
        uri,
        *([] if reuse else ["--no-reuse"]),
        env={"MLPSUITE_CACHE_DIR": str(cache)},
    )
    wall = time.perf_counter() - began
    runs = trial_runs(uri, name)
    repeated = runs[runs["tags.mlpsuite.reused_model"] == "true"] if reuse else runs
    repeated = repeated if len(repeated) else runs
    return {
        "grid_s": wall,
        "trials": len(runs),
        "overhead_s": statistics.median(repeated["metrics.overhead_s"]),
        "trial_s": statistics.median(repeated["metrics.trial_time_s"]),
        "first_trial_s": float(runs["metrics.trial_time_s"].max()),
        "step_ms": statistics.median(runs["metrics.step_time_ms"]),
    }


def ten_seeds_vs_one(folder: Path) -> dict:
    """Wall time of `mlpsuite run` for the digits cell with 10 seeds vectorized against 1 seed,
    each with a cold compilation cache (both pay one compile)."""
    ten = grid_run("jax", 10, True, folder / "cache-ten", folder, "seeds", rates=[0.001])
    one = grid_run("jax", 1, True, folder / "cache-one", folder, "seeds", rates=[0.001])
    return {
        "ten_seeds_s": ten["grid_s"],
        "one_seed_s": one["grid_s"],
        "ratio": ten["grid_s"] / one["grid_s"],
    }


def sklearn_fit_s(epochs: int = 5, repeats: int = 5) -> float:
    """MLPClassifier on the suite's digits split, scaled the same way, `epochs` passes of Adam."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlpsuite.data import load_dataset

    data = load_dataset("digits")
    times = []
    for seed in range(repeats):
        model = make_pipeline(
            StandardScaler(),
            MLPClassifier(
                (64, 64),
                solver="adam",
                learning_rate_init=0.001,
                batch_size=64,  # pyright: ignore[reportArgumentType]  # sklearn: int or "auto", inferred str
                max_iter=epochs,
                tol=0.0,
                n_iter_no_change=epochs + 1,
                random_state=seed,
            ),
        )
        began = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(data.X_train, data.y_train)
            model.score(data.X_test, data.y_test)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--backends", default=",".join(BACKENDS))
    args = parser.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="mlpsuite-bench-") as scratch:
        folder = Path(scratch)
        for backend in args.backends.split(","):
            if backend == "jax":  # how every trial started before this issue: nothing kept
                results[backend] = {
                    "no_reuse_no_cache": grid_run(backend, args.seeds, False, Path("none"), folder)
                }
            fresh = grid_run(backend, args.seeds, False, folder / f"cache-{backend}-fresh", folder)
            reuse = grid_run(backend, args.seeds, True, folder / f"cache-{backend}-reuse", folder)
            results.setdefault(backend, {}).update(
                {
                    "no_reuse": fresh,
                    "reuse": reuse,
                    "grid_speedup": fresh["grid_s"] / reuse["grid_s"],
                }
            )
            if backend == "jax":  # the same cache again: what a second run of any JAX grid sees
                results[backend]["reuse_warm_cache"] = grid_run(
                    backend, args.seeds, True, folder / f"cache-{backend}-reuse", folder
                )
                results[backend]["vectorize_seeds"] = grid_run(
                    backend,
                    args.seeds,
                    True,
                    folder / f"cache-{backend}-vectorize",
                    folder,
                    "seeds",
                )
                results[backend]["vectorize_speedup"] = (
                    fresh["grid_s"] / results[backend]["vectorize_seeds"]["grid_s"]
                )

            print(
                f"{backend}: {fresh['grid_s']:.1f} s without reuse, {reuse['grid_s']:.1f} s with "
                f"({results[backend]['grid_speedup']:.2f}x); overhead per trial "
                f"{fresh['overhead_s']:.3f} s -> {reuse['overhead_s']:.3f} s",
                flush=True,
            )
    with tempfile.TemporaryDirectory(prefix="mlpsuite-bench-") as scratch:
        ten = ten_seeds_vs_one(Path(scratch))
    print(
        f"jax, cold cache: 10 seeds as one program {ten['ten_seeds_s']:.2f} s, one seed "
        f"{ten['one_seed_s']:.2f} s: {ten['ratio']:.2f}x",
        flush=True,
    )
    sklearn_s = sklearn_fit_s()
    fastest = min(results, key=lambda b: results[b]["reuse"]["trial_s"])
    ratio = results[fastest]["reuse"]["trial_s"] / sklearn_s
    print(
        f"fastest whole trial: {fastest} {results[fastest]['reuse']['trial_s']:.3f} s; "
        f"scikit-learn MLPClassifier fit+score {sklearn_s:.3f} s; ratio {ratio:.2f}"
    )
    rows = []
    for backend, result in results.items():
        for mode, run in result.items():
            if isinstance(run, dict):
                rows.append(
                    [
                        backend,
                        mode.replace("_", " "),
                        run["trials"],
                        run["grid_s"],
                        run["trial_s"],
                        run["overhead_s"],
                        run["first_trial_s"],
                        run["step_ms"],
                    ]
                )
    table = markdown_table(
        [
            "backend",
            "mode",
            "trials",
            "grid s",
            "median trial s",
            "median overhead s",
            "slowest trial s",
            "ms/step",
        ],
        rows,
    )
    speedups = ", ".join(f"{b} {r['grid_speedup']:.2f}x" for b, r in results.items())
    if "jax" in results:
        before = results["jax"]["no_reuse_no_cache"]["grid_s"]
        speedups += (
            f"; jax against no reuse and no compilation cache: reuse "
            f"{before / results['jax']['reuse']['grid_s']:.2f}x, vectorized "
            f"{before / results['jax']['vectorize_seeds']['grid_s']:.2f}x"
        )
    write_results(
        "trial_cost",
        {
            "seeds": args.seeds,
            "rates": RATES,
            "backends": results,
            "ten_seeds": ten,
            "sklearn_fit_s": sklearn_s,
            "fastest": fastest,
            "fastest_vs_sklearn": ratio,
        },
        f"{args.seeds} seeds x {len(RATES)} learning rates, digits, MLP 64-64, Adam, batch 64, "
        f"5 epochs, `--jobs 1`.\n\n{table}\n\nGrid speed-up from reuse: {speedups}.\n"
        f"Fastest whole trial ({fastest}, reused) / scikit-learn MLPClassifier fit: {ratio:.2f}.\n"
        f"JAX, cold cache, one `mlpsuite run`: 10 seeds as one program {ten['ten_seeds_s']:.2f} s "
        f"vs 1 seed {ten['one_seed_s']:.2f} s ({ten['ratio']:.2f}x).",
    )


if __name__ == "__main__":
    main()
