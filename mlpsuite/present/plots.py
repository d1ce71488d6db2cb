"""Figures of a grid's comparison: each a function of the real runs' numbers.

`comparison_figures` writes them into a folder; the runner logs that folder on the parent run;
`figures` hands them to a notebook. Drawn on `matplotlib.figure.Figure` itself, never through
pyplot: no backend is chosen here (a notebook's inline one stays), and nothing needs closing.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, overload

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mlpsuite.analysis import (
    Comparison,
    direction,
    finished,
    is_pooled,
    mean_interval,
    metric_range,
    pooled_rows,
    pooled_source,
)
from mlpsuite.config import label_lines

MAX_CELLS_SHOWN = 10
BEST_POINTS = 3  # a search's curves: this many best points per cell
BEST_POINT_CELLS = 4  # of this many best cells, a panel each
TINY = 1e-16  # where a relative difference of exactly 0 sits on a log axis


def comparison_figures(comparison: Comparison, folder: Path) -> list[Path]:
    """Every figure that has data, as PNG files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name, figure in figures(comparison).items():
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=100, bbox_inches="tight")
        made.append(path)
    return made


def figures(comparison: Comparison) -> dict[str, Figure]:
    """{name: figure} of every figure that has data: curves, final_metric (the ranking),
    isolation (a search's: one panel per sampled key), best_points and importance (a
    search's), parity, speed."""
    drawn = {
        name: draw(comparison)
        for name, draw in (
            ("curves", loss_curves),
            ("final_metric", final_metric),
            ("isolation", isolation),
            ("best_points", best_points),
            ("importance", importance),
            ("parity", backend_parity),
            ("speed", backend_speed),
        )
    }
    return {name: figure for name, figure in drawn.items() if figure is not None}


def _ranked_cells(comparison: Comparison) -> list[str]:
    if comparison.cells.empty:
        return []
    pooled = pooled_rows(comparison.cells)
    return list(pooled["cell"])[:MAX_CELLS_SHOWN]


def loss_curves(comparison: Comparison):
    """Mean loss per epoch of each cell (seeds and backends pooled) with its 95% interval band."""
    cells = _ranked_cells(comparison)
    ok = finished(comparison.ranked_trials)
    if not cells or not comparison.curves:
        return None
    metric = "val_loss" if ok["val_loss"].notna().any() else "loss"
    figure, axes = _subplots(figsize=(8, 4.5))
    for cell in cells:
        curves = [
            comparison.curves.get(run_id) or [] for run_id in ok[ok["cell"] == cell]["run_id"]
        ]
        epochs = min((len(c) for c in curves), default=0)
        if epochs == 0:
            continue
        intervals = [mean_interval([c[e] for c in curves]) for e in range(epochs)]
        x = np.arange(1, epochs + 1)
        mean = np.array([i.mean for i in intervals])
        (line,) = axes.plot(x, mean, label=label_lines(cell))
        low = np.array([i.low if math.isfinite(i.low) else i.mean for i in intervals])
        high = np.array([i.high if math.isfinite(i.high) else i.mean for i in intervals])
        axes.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
    axes.set(
        xlabel="epoch",
        ylabel=f"{metric} (mean, 95% band over seeds)",
        yscale="log",
        title=f"{comparison.experiment}: {metric} per cell"
        + (f" (best {len(cells)} shown)" if len(cells) < _n_cells(comparison) else ""),
    )
    axes.legend(fontsize="small")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def _n_cells(comparison: Comparison) -> int:
    return int(is_pooled(comparison.cells).sum()) if not comparison.cells.empty else 0


def final_metric(comparison: Comparison):
    """The ranking metric per cell: mean and 95% interval, best at the top."""
    if comparison.cells.empty or f"{comparison.metric}_mean" not in comparison.cells:
        return None
    pooled = pooled_rows(comparison.cells).iloc[::-1]
    metric = comparison.metric
    mean = pooled[f"{metric}_mean"].to_numpy()
    low, high, clipped = _bounded(metric, mean, pooled[f"{metric}_low"], pooled[f"{metric}_high"])
    labels = [
        label_lines(f"{cell} (n={n})") for cell, n in zip(pooled["cell"], pooled["n"], strict=True)
    ]
    lines = sum(label.count("\n") + 1 for label in labels)
    figure, axes = _subplots(figsize=(8, 0.3 * lines + 0.15 * len(pooled) + 1.5))
    positions = np.arange(len(pooled))
    axes.errorbar(mean, positions, xerr=[mean - low, high - mean], fmt="o", capsize=3)
    axes.set_yticks(positions, labels)
    axes.set(
        xlabel=f"final {metric} (mean, 95% t-interval over seeds"
        + (", clipped at the metric's bound)" if clipped else ")"),
        title=f"{comparison.experiment}: ranking by {metric}",
    )
    return figure


def _bounded(
    metric: str, mean: np.ndarray, lows: pd.Series, highs: pd.Series
) -> tuple[np.ndarray, np.ndarray, bool]:
    """(low, high, whether any was clipped): a missing interval (one seed) drawn as the mean
    itself, and a t-interval kept within the values `metric` can take (a loss ≥ 0)."""
    floor, ceiling = metric_range(metric)
    low = np.where(np.isnan(lows), mean, lows)
    high = np.where(np.isnan(highs), mean, highs)
    clipped = bool((low < floor).any() or (high > ceiling).any())
    return np.maximum(low, floor), np.minimum(high, ceiling), clipped


def backend_parity(comparison: Comparison):
    """The worst-agreeing (cell, seed): its training loss on each backend, and their relative
    difference per epoch (the bound the parity line states)."""
    if comparison.parity.empty:
        return None
    cell, seed = comparison.parity.iloc[0][["cell", "seed"]]  # the table lists the worst first
    ok = finished(comparison.frame)
    runs = ok[(ok["cell"] == cell) & (ok["seed"] == seed)].sort_values("backend")
    curves = {
        row["backend"]: comparison.losses.get(row["run_id"]) or [] for _, row in runs.iterrows()
    }
    epochs = min(len(c) for c in curves.values())
    if epochs == 0:
        return None
    figure, (top, bottom) = _subplots(
        2, 1, figsize=(8, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    x = np.arange(1, epochs + 1)
    for backend, curve in curves.items():
        top.plot(
            x, curve[:epochs], label=backend, linestyle="-" if backend == "tensorflow" else "--"
        )
    stacked = np.array([c[:epochs] for c in curves.values()])
    spread = (stacked.max(axis=0) - stacked.min(axis=0)) / np.abs(stacked).max(axis=0)
    bottom.plot(x, np.maximum(spread, TINY), marker="o")
    top.set(
        ylabel="training loss",
        title=f"{comparison.experiment}: {cell}, seed {seed} on each backend",
    )
    top.legend()
    bottom.set(xlabel="epoch", ylabel=f"relative difference\n(0 drawn at {TINY:g})", yscale="log")
    bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure


def backend_speed(comparison: Comparison):
    """Median step time, median trial wall time and peak worker memory per backend (and per
    execution setting the grid varies)."""
    speed = comparison.speed
    if speed.empty:
        return None
    memory = "peak_rss_mb" in speed and speed["peak_rss_mb"].notna().any()
    figure, (steps, trials, *rest) = _subplots(
        1, 3 if memory else 2, figsize=(12 if memory else 9, 3.5), layout="constrained"
    )
    labels = speed["backend"]
    steps.bar(labels, speed["step_time_ms"])
    steps.set(ylabel="ms/step (median)", title="training step")
    trials.bar(labels, speed["trial_time_s"], label="whole trial")
    trials.bar(labels, speed["first_epoch_overhead_s"].fillna(0), label="first-epoch overhead")
    trials.set(ylabel="s/trial (median)", title="trial wall time")
    trials.legend(fontsize="small")
    if memory:
        rest[0].bar(labels, speed["peak_rss_mb"].fillna(0))
        rest[0].set(ylabel="MB (median)", title="peak worker memory")
    for axes in (steps, trials, *rest):
        if len(labels) > 3:  # backend/setting labels are long
            axes.tick_params(axis="x", labelrotation=30)
    figure.suptitle(f"{comparison.experiment}: speed per backend")
    return figure


def isolation(comparison: Comparison):
    """The playbook's isolation plot: for each scientific cell, the selection metric at each
    nuisance setting (mean and 95% t-interval over seeds), its selected setting starred; for a
    searched grid, its axis plots (`search_axes`)."""
    selection = comparison.selection
    if selection.empty:
        return None
    sampled = comparison.sampled_keys
    if sampled:
        return search_axes(comparison, sampled)
    name = comparison.protocol.select_on
    numbers = _numeric_settings(selection, comparison.nuisance_keys)
    settings = list(dict.fromkeys(selection["setting"]))
    # A diverging setting can sit decades above the rest (SGD at rate 3: 1e3 against 0.2).
    log_y = _spans_decades(selection[f"{name}_mean"].dropna())
    figure, axes = _subplots(figsize=(8, 4.5))
    clipped = False
    for cell in (
        _ranked_cells(comparison) or list(dict.fromkeys(selection["cell"]))[:MAX_CELLS_SHOWN]
    ):
        rows = selection[selection["cell"] == cell]
        x = np.array(
            [numbers[s] if numbers else settings.index(s) for s in rows["setting"]], dtype=float
        )
        order = np.argsort(x)
        rows, x = rows.iloc[order], x[order]
        mean = rows[f"{name}_mean"].to_numpy(dtype=float)
        low, high, cut = _bounded(name, mean, rows[f"{name}_low"], rows[f"{name}_high"])
        clipped = clipped or cut
        if log_y:  # a loss's interval may reach 0, which a log axis cannot draw
            low = np.maximum(low, mean / 10)
        line = axes.errorbar(
            x, mean, yerr=[mean - low, high - mean], marker="o", capsize=3, label=label_lines(cell)
        )
        chosen = rows["selected"].to_numpy(dtype=bool)
        axes.scatter(
            x[chosen],
            mean[chosen],
            marker="*",
            s=220,
            color=line[0].get_color(),
            edgecolor="black",
            zorder=3,
        )
    tuned = ", ".join(comparison.nuisance_keys)
    if _spans_decades(list(numbers.values())):
        axes.set_xscale("log")
    if not numbers:
        axes.set_xticks(range(len(settings)), settings, rotation=30, ha="right")
    if log_y:
        axes.set_yscale("log")
    axes.set(
        xlabel=tuned,
        ylabel=f"{name} (mean, 95% t-interval over seeds"
        + (", clipped at the metric's bound" if clipped else "")
        + (", log" if log_y else "")
        + ")",
        title=f"{comparison.experiment}: {name} at each {tuned}; ★ the selected setting",
    )
    axes.legend(fontsize="small")
    return figure


def search_axes(comparison: Comparison, sampled: list[str]):
    """The playbook's axis plots of a search: for each sampled key, every setting's selection
    metric (mean over seeds) against the key's value (a log axis for a log range), a colour per
    cell, each cell's selected setting starred and a setting with a failed trial as a cross; a
    key drawn from `choices` (names, or numbers) gets a categorical axis, each cell's points
    side by side at each choice. What shows a range too narrow: the best points crowd against
    one side."""
    from mlpsuite.analysis.frame import NOT_READ

    selection = comparison.selection
    name = comparison.protocol.select_on
    mean = f"{name}_mean"
    log_y = _spans_decades(selection[mean].dropna())
    figure, panels = _subplots(
        1, len(sampled), figsize=(4.2 * len(sampled), 4), squeeze=False, sharey=True
    )
    cells = _ranked_cells(comparison) or list(dict.fromkeys(selection["cell"]))[:MAX_CELLS_SHOWN]
    colours = {cell: f"C{number % 10}" for number, cell in enumerate(cells)}
    for axes, key in zip(panels[0], sampled, strict=True):
        space = comparison.search_space[key]
        choices = [str(choice) for choice in space.get("choices", [])]
        for number, cell in enumerate(cells):
            rows = selection[(selection["cell"] == cell) & (selection[key] != NOT_READ)]
            if rows.empty:
                continue
            if choices:  # each cell a little to the side of the choice's place
                offset = (number - (len(cells) - 1) / 2) * 0.6 / max(1, len(cells))
                x = rows[key].astype(str).map(choices.index).to_numpy(dtype=float) + offset
            else:
                x = rows[key].astype(float).to_numpy()
            y = rows[mean].to_numpy(dtype=float)
            complete = rows["complete"].to_numpy(dtype=bool)
            chosen = rows["selected"].to_numpy(dtype=bool)
            colour = colours[cell]
            axes.scatter(x[complete], y[complete], s=18, color=colour, label=label_lines(cell))
            axes.scatter(x[~complete], y[~complete], s=30, marker="x", color=colour)
            axes.scatter(
                x[chosen], y[chosen], marker="*", s=220, color=colour, edgecolor="black", zorder=3
            )
        if choices:
            axes.set_xticks(range(len(choices)), choices)
            axes.set_xlim(-0.5, len(choices) - 0.5)
        if space.get("log"):
            axes.set_xscale("log")
        if "low" in space:
            axes.set_xlim(float(space["low"]), float(space["high"]))
        if log_y:
            axes.set_yscale("log")
        kind = "choices" if choices else f"{'log ' if space.get('log') else ''}range"
        axes.set(xlabel=f"{key} ({kind})")
    panels[0][0].set_ylabel(f"{name} (mean over seeds{', log' if log_y else ''})")
    panels[0][0].legend(fontsize="small")
    figure.suptitle(
        f"{comparison.experiment}: {name} at every point; ★ each cell's selected one, × a "
        "point with a failed trial"
    )
    return figure


def best_points(comparison: Comparison):
    """A search's training curves of its best few points: for each of the best cells, the mean
    curve over seeds of its `BEST_POINTS` best points on the selection metric, the selected one
    starred. What the playbook looks at before trusting a best point: one still falling when
    training stops wants more epochs, one that turns up overfits, a noisy one is unstable."""
    sampled = comparison.sampled_keys
    selection = comparison.selection
    if not sampled or selection.empty or not comparison.curves:
        return None
    name = comparison.protocol.select_on
    trials = pooled_source(finished(comparison.frame))  # the runs the selection pooled
    metric = "val_loss" if trials["val_loss"].notna().any() else "loss"
    cells = (_ranked_cells(comparison) or list(dict.fromkeys(selection["cell"])))[:BEST_POINT_CELLS]
    figure, panels = _subplots(
        1, len(cells), figsize=(4.2 * len(cells), 4), squeeze=False, sharey=True
    )
    for axes, cell in zip(panels[0], cells, strict=True):
        rows = selection[selection["cell"] == cell].sort_values(
            f"{name}_mean", ascending=direction(name) == "min"
        )
        for _, row in rows.head(BEST_POINTS).iterrows():
            same = np.ones(len(trials), dtype=bool)
            for key in [*comparison.scientific_keys, *comparison.nuisance_keys]:
                same &= (trials[key] == row[key]).to_numpy()
            curves = [comparison.curves.get(run) or [] for run in trials[same]["run_id"]]
            epochs = min((len(curve) for curve in curves), default=0)
            if epochs == 0:
                continue
            mean = np.mean([curve[:epochs] for curve in curves], axis=0)
            axes.plot(
                np.arange(1, epochs + 1),
                mean,
                marker="*" if row["selected"] else None,
                label=("★ " if row["selected"] else "") + label_lines(row["setting"]),
            )
        axes.set(title=label_lines(cell), xlabel="epoch", yscale="log")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.legend(fontsize="x-small")
    panels[0][0].set_ylabel(f"{metric} (mean over seeds)")
    figure.suptitle(
        f"{comparison.experiment}: the best {BEST_POINTS} points of each cell by {name}; "
        "★ the selected one",
        y=1.03,  # above the panels' own titles
    )
    return figure


def importance(comparison: Comparison):
    """A searched grid's keys by their share of the selection metric's variance (fANOVA); a
    key some cells never read by its share where read, in its own colour."""
    from mlpsuite.analysis.importance import EVERY

    table = comparison.importance
    if table.empty:
        return None
    measured = table[table["importance"].notna()].iloc[::-1]  # the largest on top
    every = measured["among"] == EVERY
    labels = [
        key if whole else f"{key}\n(where read, {settings} settings)"
        for key, whole, settings in zip(measured["key"], every, measured["settings"], strict=True)
    ]
    figure, axes = _subplots(figsize=(6, 0.5 * len(measured) + 1.5))
    axes.barh(labels, measured["importance"], color=["C0" if whole else "C1" for whole in every])
    axes.set_xlim(0, 1)
    settings = int(measured.loc[every, "settings"].max()) if every.any() else 0
    axes.set(
        xlabel=f"share of {comparison.protocol.select_on}'s variance (fANOVA over a random "
        f"forest, {settings} settings)",
        title=f"{comparison.experiment}: which settings mattered",
    )
    return figure


def _numeric_settings(selection, nuisance: list[str]) -> dict[str, float]:
    """Each setting label's value, when one numeric nuisance key makes an axis; else {}."""
    if len(nuisance) != 1:
        return {}
    try:
        return {row["setting"]: float(row[nuisance[0]]) for _, row in selection.iterrows()}
    except (TypeError, ValueError):
        return {}


def _spans_decades(values) -> bool:
    """Positive values a factor of 10 or more apart: a log axis shows them all."""
    values = np.asarray(values, dtype=float)
    return bool(len(values)) and values.min() > 0 and values.max() / values.min() >= 10


# No grid shape: one Axes; a shape (1 x n, n x 1 or n x m): an array of them.
@overload
def _subplots(*, figsize: tuple[float, float], **options: Any) -> tuple[Figure, Axes]: ...
@overload
def _subplots(
    *grid: int, figsize: tuple[float, float], **options: Any
) -> tuple[Figure, np.ndarray]: ...
def _subplots(
    *grid: int, figsize: tuple[float, float], **options: Any
) -> tuple[Figure, Axes | np.ndarray]:
    """`plt.subplots` without pyplot's global figure list."""
    figure = Figure(figsize=figsize, layout=options.pop("layout", None))
    return figure, figure.subplots(*grid, **options)
