"""The comparison's tables, each a function of the grid frame (analysis/frame.py): cells over
seeds, paired effects of a grid key, backend parity, backend speed, failures.

A level of a grid key is compared with a reference level on pairs that share seed and every
other grid key; a seed's backends are averaged first, since they start from the same weights
and agree to ~1e-6: one sample, not several.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from mlpsuite.analysis.frame import ALL_BACKENDS, finished, is_pooled, pooled_rows, pooled_source
from mlpsuite.analysis.stats import (
    ALPHA,
    holm,
    paired_difference,
    paired_t_power,
    relative_spread,
    seeds_for_power,
    stable_seed,
    summaries,
)
from mlpsuite.analysis.versions import same_shared_versions
from mlpsuite.registry import RANKABLE, REFERENCE_BACKEND

# What a cell summarises (those the grid's runs have).
CELL_METRICS = (
    "val_loss",
    "test_loss",
    "test_accuracy",
    "test_r2",
    "test_mae",
    "best_epoch",
    "auc_val_loss",
    "epochs_to_target",
    "time_to_target_s",
)
INTERVALS = ("t", "bootstrap")


def direction(metric: str) -> str:
    """The better direction: "min" when lower is better (losses, epochs, seconds), "max" for
    accuracy and R²."""
    return RANKABLE.get(metric, "min")


# Where a metric's values can lie, when the metric has a bound: a t-interval (mean ± t·se) knows
# nothing of it, so a loss near 0 over few seeds gets an interval reaching below zero.
_BOUNDED = {
    "accuracy": (0.0, 1.0),
    "r2": (-math.inf, 1.0),
    "loss": (0.0, math.inf),
    "mae": (0.0, math.inf),
    "epoch": (0.0, math.inf),
    "epochs_to_target": (0.0, math.inf),
    "time_s": (0.0, math.inf),
    "time_to_target_s": (0.0, math.inf),
}


def metric_range(metric: str) -> tuple[float, float]:
    """The values `metric` can take: losses, MAE, epochs and seconds are ≥ 0, accuracies lie in
    [0, 1], R² is ≤ 1; (-inf, inf) for a metric this does not know."""
    for suffix, bounds in _BOUNDED.items():
        if metric == suffix or metric.endswith(f"_{suffix}"):
            return bounds
    return (-math.inf, math.inf)


def bounded_interval(metric: str, low: float, high: float) -> tuple[float, float, bool]:
    """(low, high) clipped to the values `metric` can take, and whether either end was: what
    a report shows of a t-interval (a bootstrap interval of the seeds' values never leaves
    their range, so it never needs this)."""
    floor, ceiling = metric_range(metric)
    clipped = (low, high) != (max(low, floor), min(high, ceiling))
    return max(low, floor), min(high, ceiling), clipped


def cell_table(
    frame: pd.DataFrame, grid_keys: list[str], metric: str, interval: str = "t", seed: str = ""
) -> pd.DataFrame:
    """Per cell pooled over the Keras backends (backend `all`; `backends` names them), and per
    backend (scikit-learn included) when there are several: n seeds, trials, and per metric
    over seeds the mean with its 95% t-interval, the interquartile mean, the median and a 95%
    BCa bootstrap interval (seeded from `seed`, the cell and the metric, so a report is the
    same every time), and how many seeds have a value (`epochs_to_target` has none where the
    target was not reached).
    Pooled cells ranked by `metric`, marking those whose `interval` overlaps the best cell's."""
    ok = finished(frame)
    metrics = [m for m in dict.fromkeys([metric, *CELL_METRICS]) if m in ok and ok[m].notna().any()]
    groups = [
        (cell, ALL_BACKENDS, group) for cell, group in pooled_source(ok).groupby("cell", sort=False)
    ]
    if ok["backend"].nunique() > 1:
        groups += [
            (cell, backend, group)
            for (cell, backend), group in ok.groupby(["cell", "backend"], sort=False)
        ]
    rows = []
    for cell, backend, group in groups:
        per_seed = group.groupby("seed")[metrics].mean()
        row = {
            "cell": cell,
            **group.iloc[0][grid_keys].to_dict(),
            "backend": backend,
            # what the row pools: the `all` row's backends, so n's seeds are never a mystery
            "backends": ", ".join(dict.fromkeys(group["backend"])),
            "n": len(per_seed),
            "trials": len(group),
        }
        summary = summaries(
            {name: per_seed[name] for name in metrics}, stable_seed(seed, cell, backend)
        )
        for name in metrics:
            row.update({f"{name}_{key}": value for key, value in summary[name].items()})
        rows.append(row)
    table = pd.DataFrame(
        rows, columns=None if rows else ["cell", *grid_keys, "backend", "backends", "n", "trials"]
    )
    if table.empty or f"{metric}_mean" not in table:
        return table
    return _ranked(table, metric, interval)


def _ranked(table: pd.DataFrame, metric: str, interval: str) -> pd.DataFrame:
    """Best first; a cell with seeds that have no value (a target not reached) below every cell
    whose seeds all have one, whatever its mean."""
    ascending = direction(metric) == "min"
    pooled = pooled_rows(table).assign(_missing=lambda t: t["n"] - t[f"{metric}_n"])
    pooled = pooled.sort_values(
        ["_missing", f"{metric}_mean"], ascending=[True, ascending], kind="stable"
    )
    rank = {cell: position for position, cell in enumerate(pooled["cell"], start=1)}
    best_low, best_high = bounds(pooled.iloc[0], metric, interval)
    table = table.assign(rank=table["cell"].map(rank))
    table["overlaps_best"] = [
        bool(low <= best_high and high >= best_low)
        for low, high in (bounds(row, metric, interval) for _, row in table.iterrows())
    ]
    table["_pooled_first"] = ~is_pooled(table)
    table = table.sort_values(["_pooled_first", "rank", "backend"]).drop(columns="_pooled_first")
    return table.reset_index(drop=True)


def bounds(row: pd.Series, metric: str, interval: str = "t") -> tuple[float, float]:
    """A cell's t or bootstrap interval of `metric`, or the mean itself when there is none
    (one seed)."""
    suffix = ("low", "high") if interval == "t" else ("boot_low", "boot_high")
    mean, low, high = (
        row[f"{metric}_mean"],
        row[f"{metric}_{suffix[0]}"],
        row[f"{metric}_{suffix[1]}"],
    )
    return (mean, mean) if math.isnan(low) else (low, high)


def effect_table(
    frame: pd.DataFrame, key: str, grid_keys: list[str], metric: str, reference: str | None = None
) -> pd.DataFrame:
    """Every level of `key` against `reference` (default: the best level by `metric`), paired on
    seed and the other grid keys; Holm-adjusted paired-t p over the levels.

    A seed's backends are averaged before pairing (one sample, as in `cell_table`): pairing
    them separately would count near-identical runs as independent and shrink p. Pairs where
    either side has no value (a target not reached) are left out and counted (`pairs_missing`).
    """
    pair_on = ["seed", *[k for k in grid_keys if k != key]]
    source = pooled_source(finished(frame))
    if source.empty or metric not in source:
        return pd.DataFrame()
    per_pair = source.groupby([key, *pair_on])[metric].mean().reset_index()
    ok = per_pair.dropna(subset=[metric])
    if ok.empty:
        return pd.DataFrame()
    means = ok.groupby(key)[metric].mean()
    if reference is None:  # as the ranking: a level whose every pair has a value goes first
        missing = per_pair[metric].isna().groupby(per_pair[key]).sum().reindex(means.index)
        order = pd.DataFrame({"missing": missing, "mean": means}).sort_values(
            ["missing", "mean"], ascending=[True, direction(metric) == "min"], kind="stable"
        )
        reference = order.index[0]
    reference_values = ok[ok[key] == reference].set_index(pair_on)[metric]
    rows = []
    for level in means.index:
        if level == reference:
            continue
        level_values = ok[ok[key] == level].set_index(pair_on)[metric]
        pairs = pd.concat(
            [level_values.rename("level"), reference_values.rename("reference")],
            axis=1,
            join="inner",
        )
        possible = len(
            per_pair[per_pair[key] == level].merge(
                per_pair[per_pair[key] == reference][pair_on], on=pair_on
            )
        )
        rows.append(
            {
                "key": key,
                "level": level,
                "reference": reference,
                "metric": metric,
                "level_mean": float(means[level]),
                "reference_mean": float(means[reference]),
                **paired_difference(
                    pairs["level"], pairs["reference"], direction=direction(metric)
                ),
                "pairs_missing": possible - len(pairs),
            }
        )
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p_holm"] = holm(table["p_ttest"])
        table = table.sort_values("mean_diff", ascending=direction(metric) == "min")
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
        if group["backend"].nunique() < 2 or not same_shared_versions(
            list(group.get("versions", []))
        ):
            continue  # not one version set: an upgrade between them may move the numbers
        curves = [losses.get(run_id) or [] for run_id in group["run_id"]]
        epochs = min(len(curve) for curve in curves)
        spreads = [relative_spread([curve[e] for curve in curves]) for e in range(epochs)]
        hashes = set(group["weights_sha256"])
        rows.append(
            {
                "cell": cell,
                "seed": seed,
                "backends": ",".join(sorted(group["backend"])),
                "expected_to_agree": bool((group["dropout"].fillna(0) == 0).all()),
                "weights_match": len(hashes) == 1 and None not in hashes,
                "initial_rel_diff": relative_spread(group["initial_loss"]),
                "max_epoch_rel_diff": max(spreads, default=math.nan),
                "worst_epoch": int(np.argmax(spreads)) + 1 if spreads else None,
                "epochs_compared": epochs,
            }
        )
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
    return {
        "compared": len(compared),
        "not_expected": int((~parity["expected_to_agree"]).sum()),
        "weights_matched": int(compared["weights_match"].sum()),
        "worst": float(worst_per_pair.max()) if len(compared) else math.nan,
        "median": float(worst_per_pair.median()) if len(compared) else math.nan,
    }


SPEED_COLUMNS = (
    "step_time_ms",
    "first_epoch_overhead_s",
    "trial_time_s",
    "worker_start_s",
    "time_to_target_s",
    "peak_rss_mb",
)
EXECUTION_KEYS = {
    "training.jit_compile": "jit"
}  # settings in the trial key that change only the speed


def speed_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per backend, and per execution setting where the grid varies one (`backend` then reads
    `tensorflow/jit=true`, the bare name is `framework`): medians of step time, compile and
    tracing (`first_epoch_overhead_s`: the first epoch minus a steady one, plus a fresh
    model's first evaluation beyond a second one), trial wall time, worker start-up (of the
    workers started for this grid; `warm_workers` counts those an earlier grid of the same
    process had started), peak resident memory and, with a target, the training time to
    reach it (over the trials that did: `target_reached` of `trials`), each time with its
    ratio to the fastest row."""
    # Timing noise can make a backend without compilation come out a hair below 0. A fresh
    # model's first evaluation (the starting loss) compiles the test step: added.
    ok = finished(frame).assign(
        first_epoch_overhead_s=lambda f: (
            (f["first_epoch_time_s"] - f["steady_epoch_time_s"]).clip(lower=0.0)
            + _column(f, "eval_compile_s").fillna(0.0)
        )
    )
    if ok.empty:
        return pd.DataFrame()
    ok = ok.assign(framework=ok["backend"], backend=_speed_labels(ok), population=_population(ok))
    columns = [column for column in SPEED_COLUMNS if column in ok]
    reached = {"target_reached": ("reached_target", "sum")} if "reached_target" in ok else {}
    # Workers an earlier grid of the same process had started (their start-up not paid here).
    warm = {"warm_workers": ("worker_warm", "sum")} if "worker_warm" in ok else {}
    table = (
        ok.groupby("backend")
        .agg(
            framework=("framework", "first"),
            trials=("key", "size"),
            vectorized=("vectorized", "max"),
            population=("population", "any"),
            **reached,
            **warm,
            **{column: (column, "median") for column in columns},
        )
        .reset_index()
    )
    for column in columns:  # no ratio to a fastest of 0 (a backend that compiles nothing)
        if column == "peak_rss_mb":
            continue
        fastest = table[column].min()
        table[f"{column}_x"] = table[column] / fastest if fastest > 0 else math.nan
    return table.sort_values("trial_time_s").reset_index(drop=True)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame else pd.Series(math.nan, index=frame.index)


def _speed_labels(frame: pd.DataFrame) -> pd.Series:
    """`backend`, or `backend/jit=true` where the frame's trials differ in an execution setting;
    `/population` on trials trained as a population (`training.vectorize: program`)."""
    labels = frame["backend"].astype(str)
    for key, short in EXECUTION_KEYS.items():
        if key in frame and frame[key].astype(str).nunique() > 1:
            labels = labels + f"/{short}=" + frame[key].map(lambda v: str(v).lower())
    population = _population(frame)  # trials trained as a population are a row of their own
    return labels.where(~population, labels + "/population")


def _population(frame: pd.DataFrame) -> pd.Series:
    """Which trials trained as a population (`training.vectorize: program`, with others)."""
    if "vectorize" not in frame:
        return pd.Series(False, index=frame.index)
    return (frame["vectorize"] == "program") & (frame["vectorized"].fillna(0) > 1)


def failure_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Trials without a FINISHED run, by reason and backend (excluded from every statistic)."""
    failed = frame[frame["status"] != "FINISHED"]
    if failed.empty:
        return pd.DataFrame(columns=["failure", "backend", "trials"])
    return (
        failed.groupby(["failure", "backend"])
        .size()
        .rename("trials")
        .reset_index()
        .sort_values("trials", ascending=False)
        .reset_index(drop=True)
    )


def seed_budget(frame: pd.DataFrame, cells: pd.DataFrame, metric: str) -> dict | None:
    """The best cell and the next-ranked cell that a paired t-test on seed does not separate
    from it (p >= 0.05): the closest pair that does not separate. Their standardised difference
    gives the seeds a paired t-test would need to separate them with 80% power at alpha 0.05,
    were that difference real. None when fewer than two cells are ranked; `rival` None when
    the paired test separates every cell from the best."""
    if cells.empty or "rank" not in cells:
        return None
    pooled = pooled_rows(cells)
    if len(pooled) < 2:
        return None
    per_seed = pooled_source(finished(frame)).groupby(["cell", "seed"])[metric].mean()
    best = pooled.iloc[0]["cell"]
    for rival in pooled["cell"].iloc[1:]:
        pairs = pd.concat(
            [per_seed.loc[rival].rename("rival"), per_seed.loc[best].rename("best")],
            axis=1,
            join="inner",
        ).dropna()
        test = paired_difference(pairs["rival"], pairs["best"], direction=direction(metric))
        if not test["p_ttest"] < ALPHA:
            effect = test["effect_size"]
            return {
                "best": best,
                "rival": rival,
                "metric": metric,
                "pairs": len(pairs),
                "p_ttest": test["p_ttest"],
                "mean_diff": test["mean_diff"],
                "effect_size": effect,
                "seeds_needed": seeds_for_power(effect),
                "sd_diff": float((pairs["rival"] - pairs["best"]).std(ddof=1))
                if len(pairs) > 1
                else math.nan,
                "power_now": paired_t_power(len(pairs), effect)
                if len(pairs) > 1 and math.isfinite(effect)
                else math.nan,
            }
    return {"best": best, "rival": None, "metric": metric}
