"""The tuning protocol: each scientific cell at its best nuisance setting.

The grid keys split into scientific ones (the question: which optimizer?) and nuisance ones
(settings each scientific level must be tuned over: its learning rate), as in Google's Deep
Learning Tuning Playbook. For every combination of scientific values (a cell), the nuisance
setting with the best mean over seeds of `select_on` (a validation metric) is selected, and the
cell is then reported at that setting on a test metric. The selection table keeps every
setting tried, for the isolation plot and the CSV.
"""

from __future__ import annotations

import math
from typing import cast

import pandas as pd

from mlpsuite.analysis.frame import NOT_READ, finished, pooled_source
from mlpsuite.analysis.stats import mean_interval
from mlpsuite.analysis.tables import direction
from mlpsuite.config import cell_label

SMALLEST, LARGEST = "smallest tried", "largest tried"
# A sampled value in this outer share of its range's span (its log span for a log range) lies
# near the range's edge: the best may lie beyond it, as the playbook's axis plots would show.
RANGE_EDGE = 0.1


def selection_table(
    frame: pd.DataFrame,
    scientific: list[str],
    nuisance: list[str],
    select_on: str,
    ranges: dict[str, dict] | None = None,
) -> pd.DataFrame:
    """One row per (scientific cell, nuisance setting): n seeds, mean and 95% t-interval over
    seeds of `select_on` (a seed's Keras backends averaged first), whether every trial of the
    setting finished, and which setting each cell selected (`selected`), with the edge of the
    grid it lies on for each numeric nuisance key (`edge`); for a key sampled over one of
    `ranges` (the search's space: {key: {low, high, log}}), the edge of that range instead.

    Only a setting whose trials all finished can be selected: a learning rate that diverged
    on one seed is not the best rate, however good its other seeds were. Where no setting of
    a cell is complete, the ones with the most finished trials compete. Ties go to the
    setting first in the grid's order.
    """
    source = pooled_source(frame)
    rows = []
    for values, group in source.groupby([*scientific, *nuisance], sort=False):
        values = dict(
            zip(
                [*scientific, *nuisance],
                values if isinstance(values, tuple) else (values,),
                strict=True,
            )
        )
        ok = finished(group)
        per_seed = ok.groupby("seed")[select_on].mean()
        interval = mean_interval(per_seed)
        rows.append(
            {
                "cell": cell_label({k: values[k] for k in scientific}),
                # a sampled key the cell never reads (momentum under Adam) names nothing
                "setting": cell_label({k: values[k] for k in nuisance if values[k] != NOT_READ}),
                **values,
                "n": interval.n,
                "finished": len(ok),
                "trials": len(group),
                "complete": len(ok) == len(group) and bool(per_seed.notna().all()),
                f"{select_on}_mean": interval.mean,
                f"{select_on}_low": interval.low,
                f"{select_on}_high": interval.high,
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table["selected"] = _selected_rows(table, select_on)
    table["edge"] = [
        _edge(table, row, nuisance, ranges or {}) if row["selected"] else ""
        for _, row in table.iterrows()
    ]
    return table


def _selected_rows(table: pd.DataFrame, select_on: str) -> list[bool]:
    better_first = direction(select_on) == "min"
    chosen = set()
    for _, settings in table.groupby("cell", sort=False):
        eligible = settings[settings[f"{select_on}_mean"].notna()]
        if eligible.empty:
            continue
        most = (
            eligible[eligible["complete"]]
            if eligible["complete"].any()
            else eligible[eligible["finished"] == eligible["finished"].max()]
        )
        ranked = most.sort_values(f"{select_on}_mean", ascending=better_first, kind="stable")
        chosen.add(ranked.index[0])
    return [index in chosen for index in table.index]


def _edge(table: pd.DataFrame, row: pd.Series, nuisance: list[str], ranges: dict) -> str:
    """`learning_rate: largest tried` for each numeric nuisance key whose selected value is the
    grid's smallest or largest, or `learning_rate: top 10% of 0.0001..1` for a sampled one in
    the outer RANGE_EDGE of its range: the best may lie outside (the playbook's warning)."""
    edges = []
    for key in nuisance:
        space = ranges.get(key.removesuffix(" (grid)"))
        if space is not None and "low" in space:
            edges += _range_edge(key, _number(row[key]), space)
            continue
        numbers = [_number(value) for value in dict.fromkeys(table[key])]
        chosen = _number(row[key])
        if len(numbers) < 2 or chosen is None or None in numbers:
            continue
        known = cast("list[float]", numbers)  # no None: skipped just above
        if chosen == min(known):
            edges.append(f"{key.split('.')[-1]}: {SMALLEST}")
        elif chosen == max(known):
            edges.append(f"{key.split('.')[-1]}: {LARGEST}")
    return "; ".join(edges)


def _range_edge(key: str, value: float | None, space: dict) -> list[str]:
    """Where `value` lies in the range `space` ({low, high, log}), if in its outer share."""
    low, high, log = float(space["low"]), float(space["high"]), bool(space.get("log"))
    if value is None:
        return []
    scale = math.log if log else (lambda x: x)
    position = (scale(value) - scale(low)) / (scale(high) - scale(low))
    span = f"{'log ' if log else ''}range {low:g}..{high:g}"
    share = f"{RANGE_EDGE:.0%}"
    if position <= RANGE_EDGE:
        return [f"{key.split('.')[-1]}: bottom {share} of its {span}"]
    if position >= 1 - RANGE_EDGE:
        return [f"{key.split('.')[-1]}: top {share} of its {span}"]
    return []


def _number(label: str) -> float | None:
    try:
        value = float(label)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def selected_frame(
    frame: pd.DataFrame, selection: pd.DataFrame, scientific: list[str], nuisance: list[str]
) -> pd.DataFrame:
    """The trials of each cell's selected setting (every backend's), relabelled by their
    scientific values only, with the setting as the `selected` column."""
    chosen = selection[selection["selected"]][[*scientific, *nuisance, "setting", "edge"]]
    kept = frame.merge(chosen, on=[*scientific, *nuisance], how="inner").rename(
        columns={"setting": "selected"}
    )
    kept["cell"] = [cell_label({k: row[k] for k in scientific}) for _, row in kept.iterrows()]
    return kept


def counterpart(select_on: str) -> str:
    """The metric a selection is reported on by default: the test split's version of a
    validation metric (`val_loss` -> `test_loss`), since a number chosen on validation is
    optimistic there; other metrics report themselves."""
    return (
        f"test_{select_on[4:]}"
        if select_on.startswith("val_")
        else "test_loss"
        if select_on == "best_val_loss"
        else select_on
    )


def protocol_sentence(
    scientific: list[str], nuisance: list[str], select_on: str, metric: str, seeds: int
) -> str:
    """The protocol in words: "each optimizer.name at its best optimizer.learning_rate by mean
    val_loss over 5 seeds; reported on test_loss"."""
    compared = scientific[0] if len(scientific) == 1 else f"({', '.join(scientific)}) cell"
    tuned = nuisance[0] if len(nuisance) == 1 else f"({', '.join(nuisance)}) setting"
    # A search over every key (no grid: keys) compares nothing: it finds the best point.
    head = f"each {compared} at its best {tuned}" if scientific else f"the best {tuned}"
    return f"{head} by mean {select_on} over {seeds} seed{'s' * (seeds != 1)}; reported on {metric}"
