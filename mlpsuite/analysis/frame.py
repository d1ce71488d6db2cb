"""A grid's runs as one DataFrame: one row per trial key of the grid's manifest, from the run
that counts for it (the newest FINISHED run nothing superseded; for a key that never finished,
its newest run, counted as a failure), plus the learning-curve measures of its histories.

Every table of the comparison is a function of this frame, so each can be checked on a
hand-built one.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from mlpsuite.analysis.versions import version_label
from mlpsuite.config import cell_label
from mlpsuite.learning_curves import area_under_curve, epochs_to_target, time_to_target
from mlpsuite.registry import REFERENCE_BACKEND
from mlpsuite.tracking import TAG_FAILURE, TAG_KEY, TAG_SUPERSEDED, TAG_WEIGHTS
from mlpsuite.tracking.tags import run_versions

RUN_METRICS = (
    "loss",
    "val_loss",
    "accuracy",
    "val_accuracy",
    "test_loss",
    "test_accuracy",
    "test_r2",
    "test_mae",
    "val_r2",
    "val_mae",
    "initial_loss",
    "best_val_loss",
    "best_epoch",
    "step_time_ms",
    "fit_time_s",
    "first_epoch_time_s",
    "steady_epoch_time_s",
    "worker_start_s",
    "worker_warm",
    "peak_rss_mb",
    "start_rss_mb",
    "eval_compile_s",
)
CURVE_MEASURES = ("auc_val_loss", "epochs_to_target", "time_to_target_s")
ALL_BACKENDS = "all"
NOT_RUN = "not run"
NOT_READ = "-"  # a grid key's value in a cell that never reads it
# Frame columns a grid key must not overwrite (the top-level `loss` key meets the `loss` metric).
_RESERVED = {
    "key",
    "backend",
    "seed",
    "cell",
    "status",
    "run_id",
    "failure",
    "weights_sha256",
    "trial_time_s",
    "dropout",
    "vectorized",
    *RUN_METRICS,
    *CURVE_MEASURES,
}


def grid_column(grid_key: str) -> str:
    """The frame column holding a grid key's values: the key itself unless a metric has that
    name."""
    return f"{grid_key} (grid)" if grid_key in _RESERVED else grid_key


def grid_frame(manifest: dict[str, Any], runs: list) -> pd.DataFrame:
    """One row per trial of the grid's manifest, from the run that counts for its key."""
    by_key: dict[str, list] = {}
    for run in runs:
        by_key.setdefault(run.data.tags.get(TAG_KEY), []).append(run)
    rows = []
    for trial in manifest["trials"]:
        row = {
            "key": trial["key"],
            "backend": trial["backend"],
            "seed": trial["seed"],
            "cell": cell_label(trial["cell"]),
            # A sampled key its cell never reads (momentum under Adam) is not in the cell.
            **{grid_column(k): trial["cell"].get(k, NOT_READ) for k in manifest["grid_keys"]},
        }
        run = counted_run(by_key.get(trial["key"], []))
        rows.append(
            {
                **row,
                **(
                    _run_fields(run)
                    if run is not None
                    else {"status": "MISSING", "failure": NOT_RUN}
                ),
            }
        )
    frame = pd.DataFrame(rows)
    for column in (
        "run_id",
        "failure",
        "weights_sha256",
        *RUN_METRICS,
        "trial_time_s",
        "dropout",
        "vectorized",
    ):
        if column not in frame:
            frame[column] = None if column in ("run_id", "failure", "weights_sha256") else math.nan
    return frame


def counted_run(runs: list):
    """The newest FINISHED run not superseded; else the newest run (a failure), else None."""
    done = [r for r in runs if r.info.status == "FINISHED" and TAG_SUPERSEDED not in r.data.tags]
    candidates = done or [r for r in runs if r.info.status == "FINISHED"] or runs
    return max(candidates, key=lambda r: r.info.start_time) if candidates else None


def _run_fields(run) -> dict[str, Any]:
    ended = run.info.end_time
    fields = {
        "run_id": run.info.run_id,
        "status": run.info.status,
        "failure": run.data.tags.get(TAG_FAILURE),
        "weights_sha256": run.data.tags.get(TAG_WEIGHTS),
        # The worker's own clock (a vectorised group's share per seed); the run's wall time
        # also spans its claim's wait for a worker, and stands in only where that is missing.
        "trial_time_s": run.data.metrics.get(
            "trial_time_s", (ended - run.info.start_time) / 1000 if ended else math.nan
        ),
        "dropout": float(run.data.params.get("model.dropout", 0.0)),
        # seeds trained with it as one program: its step time is the group's per seed
        "vectorized": int(run.data.tags.get("mlpsuite.vectorized", 0)),
        # ...and how: a cell's seeds, or a program's population (`training.vectorize`)
        "vectorize": run.data.params.get("training.vectorize", "none"),
        "versions": version_label(run_versions(run.data.tags)),
    }
    fields.update(
        {name: run.data.metrics[name] for name in RUN_METRICS if name in run.data.metrics}
    )
    if run.info.status != "FINISHED" and not fields["failure"]:
        fields["failure"] = run.info.status.lower()
    return fields


def with_curve_measures(
    frame: pd.DataFrame,
    val_curves: dict[str, list[float]],
    target: tuple[str, float] | None = None,
    target_curves: dict[str, list[float]] | None = None,
    epoch_times: dict[str, list[float]] | None = None,
) -> pd.DataFrame:
    """The frame with `auc_val_loss` (mean val_loss over the epochs) per run, and with a
    target (metric, value) also `epochs_to_target` and `time_to_target_s`: NaN where the run
    never reached it, so "not reached" stays countable (`reached_target` False)."""
    run_ids = frame["run_id"]
    frame = frame.assign(auc_val_loss=[area_under_curve(val_curves.get(r) or []) for r in run_ids])
    if target is None:
        return frame
    metric, value = target
    curves = [(target_curves or {}).get(r) or [] for r in run_ids]
    times = [(epoch_times or {}).get(r) or [] for r in run_ids]
    epochs = [epochs_to_target(curve, value, metric) for curve in curves]
    seconds = [
        time_to_target(curve, spent, value, metric)
        for curve, spent in zip(curves, times, strict=True)
    ]
    return frame.assign(
        epochs_to_target=[math.nan if e is None else float(e) for e in epochs],
        time_to_target_s=[math.nan if s is None else s for s in seconds],
        reached_target=[e is not None for e in epochs],
    )


def finished(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of FINISHED trials: what the statistics count."""
    return frame[frame["status"] == "FINISHED"]


def pooled_source(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs that pool into a cell's `all` row: the Keras backends'. scikit-learn's starts
    from its own weights, so it stands beside them as a reference, not among them (unless it
    is all the grid ran)."""
    keras_runs = frame[frame["backend"] != REFERENCE_BACKEND]
    return keras_runs if len(keras_runs) else frame


def is_pooled(cells: pd.DataFrame) -> pd.Series:
    """Which rows of a cells table are a cell's all-backends row (`backend == "all"`, the
    Keras backends pooled: the row the ranking uses)."""
    return cells["backend"] == ALL_BACKENDS


def pooled_rows(cells: pd.DataFrame) -> pd.DataFrame:
    """Each cell's all-backends row, in the table's order."""
    return cells[is_pooled(cells)]


def pooled_backends(cells: pd.DataFrame) -> list[str]:
    """The backends the ranking's rows pool, in the grid's order."""
    if "backends" not in cells:  # a table from before the column
        return []
    names = (name for joined in pooled_rows(cells)["backends"] for name in joined.split(", "))
    return list(dict.fromkeys(names))


def reference_rows(cells: pd.DataFrame) -> pd.DataFrame:
    """scikit-learn's own row per cell where it ran beside Keras backends (it starts from its
    own weights, so it is not pooled with them): indexed by cell, empty otherwise."""
    if REFERENCE_BACKEND in pooled_backends(cells):
        return cells.iloc[0:0].set_index("cell")
    return cells[cells["backend"] == REFERENCE_BACKEND].set_index("cell")
