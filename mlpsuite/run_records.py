"""What a run records beyond its metrics, as MLflow entities and dicts: the grid's identity and
manifest, a trial's dataset input, the summary of its curves. No store is touched here."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from mlflow.entities import Dataset, DatasetInput, InputTag

from mlpsuite.config import GridSpec, Trial
from mlpsuite.learning_curves import area_under_curve


def grid_key(trials: list[Trial]) -> str:
    """A grid's identity within its experiment: the set of its trial keys."""
    return hashlib.sha256(",".join(sorted({t.key for t in trials})).encode()).hexdigest()[:16]


def grid_manifest(
    spec: GridSpec, trials: list[Trial], key: str, splits: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """What the comparison needs to know of the grid: its keys, each trial's cell and each
    dataset's split rows (`splits`, where the grid was checked)."""
    return {
        "grid_key": key,
        "experiment": spec.name,
        "description": spec.description,
        "grid_keys": spec.keys(),
        "backends": list(spec.backends),
        "seeds": list(spec.seeds),
        "compare": {
            **spec.compare.model_dump(mode="json", exclude_unset=True),
            # a search's sampled keys are nuisance without saying so: said here
            **({"nuisance": list(spec.protocol().nuisance)} if spec.search is not None else {}),
        },
        "search": spec.search.model_dump(mode="json") if spec.search is not None else None,
        "splits": splits or [],
        "trials": [
            {"key": t.key, "backend": t.backend, "seed": t.seed, "cell": t.cell_values()}
            for t in trials
        ],
    }


def search_points_csv(spec: GridSpec) -> str:
    """A searched grid's points as CSV: `point` (its number, in draw order), then one column
    per sampled key; every grid cell ran each of them."""
    import csv
    import io

    assert spec.search is not None
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    keys = list(spec.search.space)
    writer.writerow(["point", *keys])
    for number, point in enumerate(spec.search.points(), start=1):
        writer.writerow([number, *(point[key] for key in keys)])
    return out.getvalue()


def curve_summary(history: dict[str, list[float]]) -> dict[str, float]:
    """Best validation loss and its epoch, and the first epoch's time next to a steady one's."""
    summary: dict[str, float] = {}
    watched_name = "val_loss" if history.get("val_loss") else "loss"
    watched = history.get(watched_name) or []
    finite = [i for i, value in enumerate(watched) if math.isfinite(value)]
    if finite:
        best = min(finite, key=lambda i: watched[i])
        summary["best_epoch"] = best + 1
        if watched_name == "val_loss":
            summary["best_val_loss"] = watched[best]
    area = area_under_curve(history.get("val_loss") or [])
    if math.isfinite(area):  # the mean val_loss over the epochs, as the comparison computes it
        summary["auc_val_loss"] = area
    times = history.get("epoch_time_s") or []
    if times:
        summary["first_epoch_time_s"] = times[0]
    if len(times) > 1:
        steady = sorted(times[1:])
        summary["steady_epoch_time_s"] = steady[len(steady) // 2]
    return summary


def dataset_input(trial: Trial) -> DatasetInput:
    """The trial's data as an MLflow dataset input (the UI's Datasets column and grouping)."""
    spec = trial.dataset
    path = Path(trial.data_path or spec.name)
    if path.is_file():
        name, source_type = path.stem, "local"
        source = json.dumps({"uri": path.resolve().as_uri()})
        digest = trial.data_sha256 or ""
    else:
        name, source_type = spec.name, "code"
        source = json.dumps({"tags": {"mlpsuite.dataset": spec.name}})
        identity = json.dumps(spec.model_dump(mode="json"), sort_keys=True)
        digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    dataset = Dataset(name=name, digest=digest, source_type=source_type, source=source)
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])
