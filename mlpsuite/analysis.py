"""A grid's comparison: cells over seeds, paired effects, backend parity, backend speed, failures.

The one place comparisons are computed. The grid's runs are read back through `tracking.py`
into a DataFrame with one row per trial key (the newest FINISHED run that nothing superseded;
for a key that never finished, its newest run, counted as a failure), and every table below is
a function of that frame, so the statistics can be checked on a hand-built one.

Intervals are 95% t-intervals over seeds from scipy.stats result objects; a level of a grid key
is compared with a reference level on pairs that share seed, backend and every other grid key.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from scipy import stats

from mlpsuite.config import cell_label, short_value
from mlpsuite.errors import ReportError
from mlpsuite.registry import REFERENCE_BACKEND
from mlpsuite.tracking import (GRID_MANIFEST, TAG_FAILURE, TAG_KEY, TAG_SUPERSEDED, TAG_WEIGHTS,
                               Tracker)

CONFIDENCE = 0.95
# Metrics a grid can be ranked by, and whether lower or higher is better.
RANKABLE = {"val_loss": "min", "best_val_loss": "min", "loss": "min", "test_loss": "min",
            "test_accuracy": "max", "val_accuracy": "max", "test_r2": "max", "test_mae": "min"}
# What a cell summarises (those the grid's runs have).
CELL_METRICS = ("val_loss", "test_loss", "test_accuracy", "test_r2", "test_mae", "best_epoch")
RUN_METRICS = ("loss", "val_loss", "accuracy", "val_accuracy", "test_loss", "test_accuracy",
               "test_r2", "test_mae", "initial_loss", "best_val_loss", "best_epoch", "step_time_ms",
               "fit_time_s", "first_epoch_time_s", "steady_epoch_time_s", "worker_start_s")
ALL_BACKENDS = "all"
NOT_RUN = "not run"
# Frame columns a grid key must not overwrite (the top-level `loss` key meets the `loss` metric).
_RESERVED = {"key", "backend", "seed", "cell", "status", "run_id", "failure", "weights_sha256",
             "trial_time_s", "dropout", "vectorized", *RUN_METRICS}


def grid_column(grid_key: str) -> str:
    """The frame column holding a grid key's values: the key itself unless a metric has that name."""
    return f"{grid_key} (grid)" if grid_key in _RESERVED else grid_key


@dataclasses.dataclass(frozen=True)
class Interval:
    """A mean over n values with its 95% t-interval (NaN bounds when n < 2)."""

    n: int
    mean: float
    low: float
    high: float


def mean_interval(values: Any, confidence: float = CONFIDENCE) -> Interval:
    """Mean and t-interval of `values` (scipy.stats.ttest_1samp's confidence_interval)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return Interval(0, math.nan, math.nan, math.nan)
    mean = float(values.mean())
    if n == 1:
        return Interval(1, mean, math.nan, math.nan)
    if np.all(values == values[0]):
        return Interval(n, mean, mean, mean)
    low, high = stats.ttest_1samp(values, 0.0).confidence_interval(confidence)
    return Interval(n, mean, float(low), float(high))


def paired_difference(level: Any, reference: Any, confidence: float = CONFIDENCE) -> dict[str, float]:
    """`level - reference` on pairs: mean difference, its t-interval, paired t and Wilcoxon p.

    Identical pairs give difference 0 and p = 1 (scipy would answer NaN); one pair gives NaN p.
    """
    level, reference = np.asarray(level, dtype=float), np.asarray(reference, dtype=float)
    differences = level - reference
    n = len(differences)
    result = {"n_pairs": n, "mean_diff": float(differences.mean()) if n else math.nan,
              "diff_low": math.nan, "diff_high": math.nan, "p_ttest": math.nan, "p_wilcoxon": math.nan}
    if n and np.all(differences == 0):
        return {**result, "diff_low": 0.0, "diff_high": 0.0, "p_ttest": 1.0, "p_wilcoxon": 1.0}
    if n < 2:
        return result
    with warnings.catch_warnings():  # near-identical pairs: scipy warns, the numbers stand
        warnings.simplefilter("ignore", RuntimeWarning)
        ttest = stats.ttest_rel(level, reference)
        low, high = ttest.confidence_interval(confidence)
        wilcoxon_p = stats.wilcoxon(level, reference, zero_method="zsplit").pvalue
    if np.all(differences == differences[0]):  # no spread: the difference is exact
        low = high = float(differences[0])
    return {**result, "diff_low": float(low), "diff_high": float(high),
            "p_ttest": float(ttest.pvalue), "p_wilcoxon": float(wilcoxon_p)}


def holm(pvalues: Any) -> list[float]:
    """Holm's step-down adjustment (family-wise error); NaN stays NaN and is not counted."""
    pvalues = [float(p) for p in pvalues]
    finite = sorted((p, i) for i, p in enumerate(pvalues) if math.isfinite(p))
    adjusted = [math.nan] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        adjusted[i] = running
    return adjusted


def relative_spread(values: Any) -> float:
    """(max - min) / max |value| over backends: 0 when they agree exactly, inf if any is not finite."""
    values = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(values)):
        return math.inf
    scale = float(np.max(np.abs(values)))
    return float(values.max() - values.min()) / scale if scale > 0 else 0.0


# ---------------------------------------------------------------- the frame


def grid_frame(manifest: dict[str, Any], runs: list) -> pd.DataFrame:
    """One row per trial of the grid's manifest, from the run that counts for its key."""
    by_key: dict[str, list] = {}
    for run in runs:
        by_key.setdefault(run.data.tags.get(TAG_KEY), []).append(run)
    rows = []
    for trial in manifest["trials"]:
        row = {"key": trial["key"], "backend": trial["backend"], "seed": trial["seed"],
               "cell": cell_label(trial["cell"]), **{grid_column(k): v for k, v in trial["cell"].items()}}
        run = counted_run(by_key.get(trial["key"], []))
        rows.append({**row, **(_run_fields(run) if run is not None else {"status": "MISSING",
                                                                         "failure": NOT_RUN})})
    frame = pd.DataFrame(rows)
    for column in ("run_id", "failure", "weights_sha256", *RUN_METRICS, "trial_time_s", "dropout", "vectorized"):
        if column not in frame:
            frame[column] = None if column in ("run_id", "failure", "weights_sha256") else math.nan
    return frame


def counted_run(runs: list):
    """The newest FINISHED run not superseded; else the newest run (a failure), else None."""
    finished = [r for r in runs if r.info.status == "FINISHED" and TAG_SUPERSEDED not in r.data.tags]
    candidates = finished or [r for r in runs if r.info.status == "FINISHED"] or runs
    return max(candidates, key=lambda r: r.info.start_time) if candidates else None


def _run_fields(run) -> dict[str, Any]:
    ended = run.info.end_time
    fields = {"run_id": run.info.run_id, "status": run.info.status,
              "failure": run.data.tags.get(TAG_FAILURE), "weights_sha256": run.data.tags.get(TAG_WEIGHTS),
              "trial_time_s": (ended - run.info.start_time) / 1000 if ended else math.nan,
              "dropout": float(run.data.params.get("model.dropout", 0.0)),
              # seeds trained with it as one program: its step time is the group's per seed
              "vectorized": int(run.data.tags.get("mlpsuite.vectorized", 0))}
    fields.update({name: run.data.metrics[name] for name in RUN_METRICS if name in run.data.metrics})
    if run.info.status != "FINISHED" and not fields["failure"]:
        fields["failure"] = run.info.status.lower()
    return fields


def finished(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["status"] == "FINISHED"]


def pooled_source(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs that pool into a cell's `all` row: the Keras backends'. scikit-learn's starts
    from its own weights, so it stands beside them as a reference, not among them (unless it
    is all the grid ran)."""
    keras_runs = frame[frame["backend"] != REFERENCE_BACKEND]
    return keras_runs if len(keras_runs) else frame


# ---------------------------------------------------------------- the tables


def cell_table(frame: pd.DataFrame, grid_keys: list[str], metric: str) -> pd.DataFrame:
    """Per cell pooled over the Keras backends (backend `all`), and per backend (scikit-learn
    included) when there are several:
    n seeds, trials, and the mean with 95% t-interval over seeds of each metric; pooled cells
    ranked by `metric`, marking those whose interval overlaps the best cell's.

    Pooled, a seed's backends are averaged first: they start from the same weights and agree
    to ~1e-6, so they are one sample, not several.
    """
    ok = finished(frame)
    metrics = [m for m in dict.fromkeys([metric, *CELL_METRICS]) if m in ok and ok[m].notna().any()]
    groups = [(cell, ALL_BACKENDS, group) for cell, group in pooled_source(ok).groupby("cell", sort=False)]
    if ok["backend"].nunique() > 1:
        groups += [(cell, backend, group) for (cell, backend), group in ok.groupby(["cell", "backend"], sort=False)]
    rows = []
    for cell, backend, group in groups:
        per_seed = group.groupby("seed")[metrics].mean()
        row = {"cell": cell, **group.iloc[0][grid_keys].to_dict(), "backend": backend,
               "n": len(per_seed), "trials": len(group)}
        for name in metrics:
            interval = mean_interval(per_seed[name])
            row.update({f"{name}_mean": interval.mean, f"{name}_low": interval.low, f"{name}_high": interval.high})
        rows.append(row)
    table = pd.DataFrame(rows, columns=None if rows else ["cell", *grid_keys, "backend", "n", "trials"])
    if table.empty or f"{metric}_mean" not in table:
        return table
    return _ranked(table, metric)


def _ranked(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    ascending = RANKABLE.get(metric, "min") == "min"
    pooled = table[table["backend"] == ALL_BACKENDS].sort_values(f"{metric}_mean", ascending=ascending)
    rank = {cell: position for position, cell in enumerate(pooled["cell"], start=1)}
    best = pooled.iloc[0]
    best_low, best_high = _bounds(best, metric)
    table = table.assign(rank=table["cell"].map(rank))
    table["overlaps_best"] = [
        bool(low <= best_high and high >= best_low) for low, high in (_bounds(row, metric) for _, row in table.iterrows())]
    table["_pooled_first"] = table["backend"] != ALL_BACKENDS
    table = table.sort_values(["_pooled_first", "rank", "backend"]).drop(columns="_pooled_first")
    return table.reset_index(drop=True)


def _bounds(row: pd.Series, metric: str) -> tuple[float, float]:
    """The interval, or the mean itself when there is none (one seed)."""
    mean, low, high = row[f"{metric}_mean"], row[f"{metric}_low"], row[f"{metric}_high"]
    return (mean, mean) if math.isnan(low) else (low, high)


def effect_table(frame: pd.DataFrame, key: str, grid_keys: list[str], metric: str,
                 reference: str | None = None) -> pd.DataFrame:
    """Every level of `key` against `reference` (default: the best level by `metric`), paired on
    seed and the other grid keys; Holm-adjusted paired-t p over the levels.

    A seed's backends are averaged before pairing (one sample, as in `cell_table`): pairing
    them separately would count near-identical runs as independent and shrink p.
    """
    pair_on = ["seed", *[k for k in grid_keys if k != key]]
    ok = pooled_source(finished(frame)).dropna(subset=[metric]).groupby([key, *pair_on])[metric].mean().reset_index()
    if ok.empty:
        return pd.DataFrame()
    means = ok.groupby(key)[metric].mean()
    if reference is None:
        reference = means.idxmin() if RANKABLE.get(metric, "min") == "min" else means.idxmax()
    reference_values = ok[ok[key] == reference].set_index(pair_on)[metric]
    rows = []
    for level in means.index:
        if level == reference:
            continue
        level_values = ok[ok[key] == level].set_index(pair_on)[metric]
        pairs = pd.concat([level_values.rename("level"), reference_values.rename("reference")],
                          axis=1, join="inner")
        rows.append({"key": key, "level": level, "reference": reference, "metric": metric,
                     "level_mean": float(means[level]), "reference_mean": float(means[reference]),
                     **paired_difference(pairs["level"], pairs["reference"])})
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p_holm"] = holm(table["p_ttest"])
        table = table.sort_values("mean_diff", ascending=RANKABLE.get(metric, "min") == "min")
    return table.reset_index(drop=True)


def parity_table(frame: pd.DataFrame, losses: dict[str, list[float]]) -> pd.DataFrame:
    """Per (cell, seed) run on several backends: the largest relative spread across backends of
    the initial loss and of every epoch's loss, and whether the initial weights were identical.
    Trials with dropout draw from each backend's RNG: listed, not expected to agree.
    scikit-learn starts from its own weights: left out."""
    ok = finished(frame)
    ok = ok[ok["backend"] != REFERENCE_BACKEND]
    rows = []
    for (cell, seed), group in ok.groupby(["cell", "seed"], sort=False):
        if group["backend"].nunique() < 2:
            continue
        curves = [losses.get(run_id) or [] for run_id in group["run_id"]]
        epochs = min(len(curve) for curve in curves)
        spreads = [relative_spread([curve[e] for curve in curves]) for e in range(epochs)]
        hashes = set(group["weights_sha256"])
        rows.append({"cell": cell, "seed": seed, "backends": ",".join(sorted(group["backend"])),
                     "expected_to_agree": bool((group["dropout"].fillna(0) == 0).all()),
                     "weights_match": len(hashes) == 1 and None not in hashes,
                     "initial_rel_diff": relative_spread(group["initial_loss"]),
                     "max_epoch_rel_diff": max(spreads, default=math.nan),
                     "worst_epoch": int(np.argmax(spreads)) + 1 if spreads else None,
                     "epochs_compared": epochs})
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows)
    worst = table[["initial_rel_diff", "max_epoch_rel_diff"]].max(axis=1)
    order = sorted(range(len(table)), key=lambda i: (not table["expected_to_agree"][i], -worst[i]))
    return table.iloc[order].reset_index(drop=True)  # compared pairs first, worst first


def parity_summary(parity: pd.DataFrame) -> dict[str, float]:
    """Worst and median relative difference over the compared (cell, seed) pairs."""
    if parity.empty:
        return {"compared": 0, "not_expected": 0}
    compared = parity[parity["expected_to_agree"]]
    worst_per_pair = compared[["initial_rel_diff", "max_epoch_rel_diff"]].max(axis=1)
    return {"compared": len(compared), "not_expected": int((~parity["expected_to_agree"]).sum()),
            "weights_matched": int(compared["weights_match"].sum()),
            "worst": float(worst_per_pair.max()) if len(compared) else math.nan,
            "median": float(worst_per_pair.median()) if len(compared) else math.nan}


SPEED_COLUMNS = ("step_time_ms", "first_epoch_overhead_s", "trial_time_s", "worker_start_s")


def speed_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per backend: medians of step time, first-epoch overhead (compile and tracing: the first
    epoch minus a steady one), trial wall time and worker start-up, each with its ratio to the
    fastest backend."""
    # Timing noise can make a backend without compilation come out a hair below 0.
    ok = finished(frame).assign(first_epoch_overhead_s=lambda f: (
        f["first_epoch_time_s"] - f["steady_epoch_time_s"]).clip(lower=0.0))
    if ok.empty:
        return pd.DataFrame()
    table = ok.groupby("backend").agg(
        trials=("key", "size"), vectorized=("vectorized", "max"),
        **{column: (column, "median") for column in SPEED_COLUMNS}).reset_index()
    for column in SPEED_COLUMNS:  # no ratio to a fastest of 0 (a backend that compiles nothing)
        fastest = table[column].min()
        table[f"{column}_x"] = table[column] / fastest if fastest > 0 else math.nan
    return table.sort_values("trial_time_s").reset_index(drop=True)


def failure_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Trials without a FINISHED run, by reason and backend (excluded from every statistic)."""
    failed = frame[frame["status"] != "FINISHED"]
    if failed.empty:
        return pd.DataFrame(columns=["failure", "backend", "trials"])
    return (failed.groupby(["failure", "backend"]).size().rename("trials").reset_index()
            .sort_values("trials", ascending=False).reset_index(drop=True))


# ---------------------------------------------------------------- the whole comparison


@dataclasses.dataclass
class Comparison:
    """Everything the report shows, for one grid (its parent run)."""

    experiment: str
    parent_run_id: str
    metric: str
    grid_keys: list[str]
    frame: pd.DataFrame
    cells: pd.DataFrame
    effects: pd.DataFrame
    parity: pd.DataFrame
    speed: pd.DataFrame
    failures: pd.DataFrame
    curves: dict[str, list[float]]  # run id -> the ranking's loss per epoch
    losses: dict[str, list[float]]  # run id -> training loss per epoch (parity)

    @property
    def n_trials(self) -> int:
        return len(self.frame)

    @property
    def n_counted(self) -> int:
        return len(finished(self.frame))

    @property
    def direction(self) -> str:
        return RANKABLE.get(self.metric, "min")

    def best(self) -> pd.Series | None:
        pooled = self.cells[self.cells["backend"] == ALL_BACKENDS] if not self.cells.empty else self.cells
        if pooled.empty or f"{self.metric}_mean" not in pooled:
            return None
        return pooled.iloc[0]

    def headline_metrics(self) -> dict[str, float]:
        """Parent-run metrics: the answer at a glance in the MLflow UI's chart view."""
        metrics: dict[str, float] = {"trials_counted": self.n_counted,
                                     "trials_excluded": self.n_trials - self.n_counted}
        best = self.best()
        if best is not None:
            metrics[f"best_{self.metric}"] = float(best[f"{self.metric}_mean"])
        summary = parity_summary(self.parity)
        if summary.get("compared"):
            metrics["parity_max_rel_diff"] = summary["worst"]
        for _, row in self.speed.iterrows():
            metrics[f"step_time_ms_{row['backend']}"] = float(row["step_time_ms"])
            metrics[f"trial_time_s_{row['backend']}"] = float(row["trial_time_s"])
        return {name: value for name, value in metrics.items() if value is not None and math.isfinite(value)}


def compare(tracker: Tracker, experiment: str, parent_run_id: str | None = None,
            by: str | None = None, metric: str | None = None, where: dict[str, str] | None = None) -> Comparison:
    """The comparison of one grid of `experiment` (default: its most recently active grid);
    `where` ({grid key: value label}) keeps the trials with those grid values only."""
    parent, manifest, runs = grid_runs(tracker, experiment, parent_run_id)
    frame = grid_frame(manifest, runs)
    grid_keys = [grid_column(key) for key in manifest["grid_keys"]]
    frame = _selected(frame, grid_keys, where or {})
    metric = _checked_metric(frame, metric)
    ok = finished(frame)
    curve_metric = "val_loss" if ok["val_loss"].notna().any() else "loss"
    losses = tracker.metric_histories(list(ok["run_id"]), "loss")
    curves = losses if curve_metric == "loss" else tracker.metric_histories(list(ok["run_id"]), curve_metric)
    effect_keys = _checked_keys(grid_keys, by)
    effects = [effect_table(frame, key, grid_keys, metric) for key in effect_keys]
    effects = [table for table in effects if not table.empty]
    return Comparison(
        experiment=experiment, parent_run_id=parent.info.run_id, metric=metric, grid_keys=grid_keys,
        frame=frame, cells=cell_table(frame, grid_keys, metric),
        effects=pd.concat(effects, ignore_index=True) if effects else pd.DataFrame(),
        parity=parity_table(frame, losses), speed=speed_table(frame), failures=failure_table(frame),
        curves=curves, losses=losses)


def grid_runs(tracker: Tracker, experiment: str, parent_run_id: str | None = None) -> tuple[Any, dict, list]:
    """(parent run, its manifest, every run of its trial keys) of one grid of `experiment`
    (default: its most recently active grid); one-line ReportErrors for what is not there."""
    experiment_id = tracker.find_experiment(experiment)
    if experiment_id is None:
        names = ", ".join(tracker.experiment_names()) or "(none)"
        raise ReportError(f"no experiment {experiment!r} in {tracker.uri}; experiments: {names}")
    parent = _parent(tracker, experiment, experiment_id, parent_run_id)
    manifest = _manifest(tracker, parent.info.run_id)
    keys = {trial["key"] for trial in manifest["trials"]}
    return parent, manifest, tracker.trial_runs(experiment_id, keys)


def _parent(tracker: Tracker, experiment: str, experiment_id: str, parent_run_id: str | None):
    parents = tracker.grid_parents(experiment_id)
    if not parents:
        raise ReportError(f"experiment {experiment!r} has no grid run yet; run one with mlpsuite run")
    if parent_run_id is None:
        return parents[0]
    for parent in parents:
        if parent.info.run_id == parent_run_id:
            return parent
    listed = ", ".join(p.info.run_id for p in parents[:10])
    raise ReportError(f"--parent {parent_run_id}: not a grid run of experiment {experiment!r}; "
                      f"its grid runs: {listed}")


def _manifest(tracker: Tracker, parent_run_id: str) -> dict[str, Any]:
    try:
        return tracker.load_json(parent_run_id, GRID_MANIFEST)
    except (MlflowException, OSError):
        raise ReportError(f"grid run {parent_run_id} has no {GRID_MANIFEST} (an older mlpsuite made it); "
                          "run its config again to record one") from None


def _selected(frame: pd.DataFrame, grid_keys: list[str], where: dict[str, str]) -> pd.DataFrame:
    """The trials whose grid value of each key in `where` has the given label."""
    for key, wanted in where.items():
        column = grid_column(key)
        if column not in grid_keys:
            raise ReportError(f"--where {key}={wanted}: {key} is not a grid key of this grid; allowed: "
                              f"{', '.join(grid_keys) or '(none: one cell)'}")
        labels = frame[column].map(short_value)
        if wanted not in set(labels):
            raise ReportError(f"--where {key}={wanted}: no such value; allowed: {', '.join(dict.fromkeys(labels))}")
        frame = frame[labels == wanted]
    return frame.reset_index(drop=True)


def _checked_metric(frame: pd.DataFrame, metric: str | None) -> str:
    available = [name for name in RANKABLE if frame[name].notna().any()]
    if metric is None:
        return next((name for name in ("val_loss", "loss") if name in available), available[0] if available else "val_loss")
    if metric not in available:
        raise ReportError(f"--metric {metric}: not recorded for this grid; allowed: {', '.join(available) or '(none)'}")
    return metric


def _checked_keys(grid_keys: list[str], by: str | None) -> list[str]:
    if by is None:
        return grid_keys
    by = grid_column(by)
    if by not in grid_keys:
        raise ReportError(f"--by {by}: not a grid key of this grid; allowed: {', '.join(grid_keys) or '(none: one cell)'}")
    return [by]
