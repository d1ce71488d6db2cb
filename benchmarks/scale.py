"""How the coordinator's costs grow with a grid's size: grids of tiny scikit-learn trials (iris,
MLP 8, 3 epochs; a trial's own work is ~0.035 s, so what is measured is mlpsuite and MLflow,
not training), each into a new store, as a user runs them (`mlpsuite` processes):

- `run`: the whole grid with `--jobs 2` (wall s, trials per second);
- `run again`: every trial reused (wall s);
- `compare`: the terminal report, and `--format json` (wall s);
- `--dry-run` of a grid of 12,000 trials (nothing trained, nothing written), with the data
  checked for the first time (an empty cache folder) and again;
- with `--postgres N`: the same for N trials through `mlpsuite server` on PostgreSQL;
- with `--ui`: the largest SQLite grid in the MLflow UI (`mlpsuite ui`) in headless Chromium:
  seconds until its parent run's page shows the comparison's figures, and until the
  experiment's runs list shows the parent run (its trials nested under it).

Reported per size, and the slope per 1,000 trials between the two largest sizes.

Usage: python benchmarks/scale.py [--sizes 100,1000,10000] [--postgres 1000] [--ui]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import mlpsuite, publish  # noqa: E402

ACTIVATIONS = ["relu", "tanh", "identity", "sigmoid"]  # what scikit-learn's MLP has
RATES = [0.003, 0.01, 0.03, 0.1, 0.3]
VIEW = "workflowType=machine_learning"


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


def timed(*args: str, env: dict | None = None) -> float:
    began = time.perf_counter()
    mlpsuite(*args, env=env)
    return time.perf_counter() - began


def one_size(trials: int, folder: Path, uri: str, store: str) -> list:
    path = tiny_grid(folder, trials)
    at = ("--tracking-uri", uri)
    run = timed("run", str(path), *at, "--jobs", "2")
    again = timed("run", str(path), *at, "--jobs", "2")
    compare = timed("compare", "scale", *at)
    as_json = timed("compare", "scale", *at, "--format", "json")
    row = [store, trials, run, trials / run, again, compare, as_json]
    print(row, flush=True)
    return row


def dry_runs(trials: int) -> tuple[float, float]:
    """(s for the first dry run, data not checked before; s for the next)."""
    with tempfile.TemporaryDirectory(prefix="mlpsuite-scale-") as folder:
        path = tiny_grid(Path(folder), trials, "plan")
        cache = {"MLPSUITE_CACHE_DIR": str(Path(folder) / "cache")}
        first = timed("run", str(path), "--dry-run", env=cache)
        again = timed("run", str(path), "--dry-run", env=cache)
    return first, again


def ui_load(uri: str, folder: Path) -> dict[str, float]:
    """Seconds until the grid's parent page shows its figures, and until the runs list shows
    the parent run, in headless Chromium; how many rows the runs list shows."""
    from mlpsuite.tracking import StoreReader
    from tests.browser import chromium, loaded_images, page_text, wait_until
    from tests.servers import free_port, stop, wait_for_http

    reader = StoreReader(uri)
    experiment_id = reader.find_experiment("scale")
    assert experiment_id is not None
    (parent,) = reader.grid_parents(experiment_id)
    port, log = free_port(), folder / "ui.log"
    with open(log, "w", encoding="utf-8") as output:
        ui = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlpsuite.cli",
                "ui",
                "--tracking-uri",
                uri,
                "--port",
                str(port),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    address = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{address}/health", ui, log=log)
        with chromium() as browser:
            browser.get(f"{address}/#/experiments/{experiment_id}?{VIEW}")  # warm: JS cached
            wait_until(lambda: "scale grid" in page_text(browser), timeout=300, what="runs")
            began = time.perf_counter()
            browser.get(f"{address}/#/experiments/{experiment_id}/runs/{parent.info.run_id}?{VIEW}")
            wait_until(
                lambda: (
                    (images := [i for i in loaded_images(browser, "get-artifact") if i["width"]])
                    and all(i["complete"] for i in loaded_images(browser, "get-artifact"))
                    and images
                ),
                timeout=300,
                what="the parent run's figures",
            )
            parent_s = time.perf_counter() - began
            browser.save_screenshot(str(Path(__file__).parent / "results" / "scale-parent.png"))
            began = time.perf_counter()
            browser.get(f"{address}/#/experiments/{experiment_id}/runs?{VIEW}")
            # The table has loaded when it counts its runs and shows the grid run's row (the
            # experiment's description above it names the grid too, before the table loads).
            counted = wait_until(
                lambda: _matching_runs(page_text(browser)), timeout=300, what="the runs list"
            )
            runs_s = time.perf_counter() - began
            browser.save_screenshot(str(Path(__file__).parent / "results" / "scale-runs.png"))
            shown = page_text(browser)
            rows = browser.execute_script("return document.querySelectorAll('[role=row]').length")
            children_shown = sum(f"s{seed} sklearn" in shown for seed in range(20))
    finally:
        stop(ui)
    return {
        "parent_page_s": parent_s,
        "runs_list_s": runs_s,
        "matching_runs": counted,
        "rows_rendered": rows,
        "children_listed": children_shown,
    }


def _matching_runs(text: str) -> int:
    """The runs table's "N matching runs", once it counts some (0 while it loads)."""
    found = re.search(r"([\d,]+) matching runs?", text)
    return int(found.group(1).replace(",", "")) if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description="how the coordinator's costs grow with a grid's size"
    )
    parser.add_argument("--sizes", default="100,1000,10000", help="grid sizes, comma-separated")
    parser.add_argument("--dry-run-trials", type=int, default=12000)
    parser.add_argument("--postgres", type=int, default=0, help="trials through a server")
    parser.add_argument("--ui", action="store_true", help="the largest grid in the MLflow UI")
    parser.add_argument("--ui-store", help="only the UI's load, of grid `scale` in this store")
    args = parser.parse_args()
    if args.ui_store:
        with tempfile.TemporaryDirectory(prefix="mlpsuite-scale-") as folder:
            print(ui_load(args.ui_store, Path(folder)))
        return
    sizes = [int(size) for size in args.sizes.split(",")]
    rows, ui = [], {}
    dry_first, dry_again = dry_runs(args.dry_run_trials)
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="mlpsuite-scale-") as folder:
            uri = f"sqlite:///{folder}/mlflow.db"
            rows.append(one_size(size, Path(folder), uri, "SQLite"))
            if args.ui and size == max(sizes):
                ui = ui_load(uri, Path(folder))
                print(ui, flush=True)
    if args.postgres:
        from tests.servers import free_port, postgres_cluster, start_suite_server, stop

        with (
            tempfile.TemporaryDirectory(prefix="mlpsuite-scale-") as folder,
            postgres_cluster() as db,
        ):
            port = free_port()
            server = start_suite_server(Path(folder), port, db, Path(folder) / "artifacts")
            try:
                uri = f"http://127.0.0.1:{port}"
                rows.append(one_size(args.postgres, Path(folder), uri, "server on PostgreSQL"))
            finally:
                stop(server)
    header = ["store", "trials", "run s", "trials/s", "run again s", "compare s", "compare json s"]
    after = (
        f"`--dry-run` of a {args.dry_run_trials:,}-trial grid: {dry_first:.1f} s with its data "
        f"checked for the first time, {dry_again:.1f} s after."
    )
    sqlite = [row for row in rows if row[0] == "SQLite"]
    if len(sqlite) > 1:
        small, large = sqlite[-2], sqlite[-1]
        per = 1000 / (large[1] - small[1])
        slopes = [
            f"{name} {(large[i] - small[i]) * per:.2f} s"
            for i, name in ((2, "run"), (4, "run again"), (5, "compare"), (6, "compare json"))
        ]
        after += f" Per 1,000 trials more ({small[1]:,} → {large[1]:,}): {', '.join(slopes)}."
    if ui:
        after += (
            f" MLflow UI on the {max(sizes):,}-trial grid (headless Chromium, polled every "
            f"0.5 s): the parent run's page with its figures in {ui['parent_page_s']:.1f} s, "
            f"the experiment's runs list in {ui['runs_list_s']:.1f} s ({ui['matching_runs']:,} "
            f"matching runs, {ui['rows_rendered']} rows rendered, {ui['children_listed']} of "
            "them trial runs: they nest under the grid run)."
        )
    publish(
        "scale",
        {
            "header": header,
            "rows": rows,
            "dry_run_s": [dry_first, dry_again],
            "ui": ui,
            "dry_run_trials": args.dry_run_trials,
            "cpus": os.cpu_count(),
        },
        header,
        rows,
        "Grids of tiny scikit-learn trials into a new store, `--jobs 2`, as a user runs them "
        "(`mlpsuite` processes; wall seconds, imports included).",
        after,
    )


if __name__ == "__main__":
    main()
