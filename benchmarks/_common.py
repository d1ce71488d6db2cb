"""What the benchmark scripts share: the machine line, result files, a grid config, a store."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BACKENDS = ("tensorflow", "torch", "jax")


def machine() -> str:
    """`2 cores, Linux x86_64, Python 3.11.7, 2026-11-27`: the context every number needs."""
    return (
        f"{os.cpu_count()} cores, {platform.system()} {platform.machine()}, Python "
        f"{platform.python_version()}, {datetime.date.today().isoformat()}"
    )


def write_results(name: str, data: dict, markdown: str) -> None:
    """benchmarks/results/<name>.json and .md, the Markdown headed by the machine line."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"machine": machine(), **data}
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (RESULTS / f"{name}.md").write_text(
        f"Measured on {data['machine']}.\n\n{markdown.strip()}\n", encoding="utf-8"
    )
    print(f"\nwrote {RESULTS / name}.json and .md")


def publish(
    name: str, data: dict, header: list[str], rows: list[list], caption: str, after: str = ""
) -> None:
    """The results as a table: written to benchmarks/results/<name>.json and .md, and printed."""
    table = markdown_table(header, rows) + (f"\n\n{after}" if after else "")
    write_results(name, data, f"{caption}\n\n{table}")
    print(table)


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def write_grid(folder: Path, name: str, **sections) -> Path:
    """A digits grid (MLP 64-64, Adam, batch 64, 5 epochs) with `sections` replacing its parts."""
    config = {
        "name": name,
        "dataset": {"name": "digits"},
        "model": {"hidden": [64, 64], "activation": "relu", "scaler": "standard"},
        "optimizer": {"name": "adam", "learning_rate": 0.001},
        "training": {"epochs": 5, "batch_size": 64},
        "seeds": [0],
        **sections,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def mlpsuite(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`mlpsuite ARGS` as a fresh process, as a user runs it."""
    environment = {
        k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "MLFLOW_TRACKING_URI")
    }
    return subprocess.run(
        [sys.executable, "-m", "mlpsuite.cli", *args],
        env={**environment, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )


def trial_runs(uri: str, experiment: str):
    """The FINISHED trial runs of an experiment, as mlflow.search_runs gives them."""
    import mlflow

    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(
        experiment_names=[experiment],
        filter_string="tags.`mlpsuite.kind` = 'trial' and attributes.status = 'FINISHED'",
    )
