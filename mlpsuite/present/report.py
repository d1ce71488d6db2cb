"""A comparison as text and files: Markdown, CSV, JSON, and the folder logged on the parent run.

The terminal (display.py), the parent run's description and `mlpsuite compare` all say the same
numbers; this module words them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from scipy import stats

from mlpsuite.analysis import (
    CELL_METRICS,
    Comparison,
    is_pooled,
    parity_summary,
    pooled_backends,
    pooled_rows,
    reference_rows,
)
from mlpsuite.analysis.protocol import RANGE_EDGE
from mlpsuite.analysis.stats import MAX_SEEDS
from mlpsuite.analysis.tables import bounded_interval
from mlpsuite.analysis.versions import mixed_libraries, version_sets
from mlpsuite.config import short_label
from mlpsuite.learning_curves import reach_sign
from mlpsuite.present.plan import SMALL_SPLIT_ROWS, split_sizes
from mlpsuite.registry import REFERENCE_BACKEND, TARGET_MEASURES

TABLES = ("cells", "effects", "selection", "parity", "speed", "failures")
INTERVAL_NAMES = {"t": "mean ± 95% t-interval", "bootstrap": "mean [95% BCa bootstrap interval]"}
NOTE_ROWS = 10


def number(value: Any, digits: int = 4) -> str:
    """`digits` significant digits; '–' for a missing value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def worker_start(row: Any, digits: int = 4) -> str:
    """A speed row's worker start-up: the median over the workers this grid started, `warm`
    where every worker was one an earlier grid of the same process had started (nothing paid
    here), and both where some were each (`4.1 (+1 warm)`)."""
    started = row.get("worker_start_s")
    warm = row.get("warm_workers")
    if warm is None or not math.isfinite(warm) or warm < 1:
        return number(started, digits)
    if started is None or not math.isfinite(started):
        return "warm"
    return f"{number(started, digits)} (+{int(warm)} warm)"


def with_interval(
    mean: float,
    low: float,
    high: float,
    n: int | None = None,
    interval: str = "t",
    metric: str | None = None,
) -> str:
    """`0.412 ± 0.018 (95% t, n=5)`, or with a bootstrap interval (not symmetric)
    `0.412 [0.398, 0.431] (95% bootstrap, n=5)`; `0.412 (n=1)` where one seed gives no interval.
    A t-interval reaching past what `metric` can take (a loss below 0) is cut there and shown
    as `0.165 [0, 0.364]` (`95% t, clipped`)."""
    count = f"n={n}" if n is not None else ""
    if not math.isfinite(low):
        return f"{number(mean)}" + (f" ({count})" if count else "")
    if interval == "bootstrap":
        return f"{number(mean)} [{number(low)}, {number(high)}]" + (
            f" (95% bootstrap, {count})" if count else ""
        )
    if metric is not None:
        low, high, clipped = bounded_interval(metric, low, high)
        if clipped:
            return f"{number(mean)} [{number(low)}, {number(high)}]" + (
                f" (95% t, clipped, {count})" if count else ""
            )
    return f"{number(mean)} ± {number((high - low) / 2)}" + (f" (95% t, {count})" if count else "")


def interval_legend(comparison: Comparison, metrics: list[str] | None = None) -> str:
    """`mean ± 95% t-interval`, and where a shown one was cut at its metric's bound how it reads."""
    legend = INTERVAL_NAMES[comparison.interval]
    if comparison.interval != "t" or comparison.cells.empty:
        return legend
    pooled = pooled_rows(comparison.cells)
    for metric in metrics or [comparison.metric]:
        if f"{metric}_low" not in pooled:
            continue
        ends = zip(pooled[f"{metric}_low"], pooled[f"{metric}_high"], strict=True)
        if any(bounded_interval(metric, low, high)[2] for low, high in ends):
            return legend + " ([low, high]: clipped at the metric's bound, e.g. a loss at 0)"
    return legend


def cell_value(row: pd.Series, metric: str, interval: str = "t", n: bool = False) -> str:
    """A cell's `metric` with the chosen interval; `(3/5 reached)` where seeds missed a target."""
    low, high = ("low", "high") if interval == "t" else ("boot_low", "boot_high")
    text = with_interval(
        row[f"{metric}_mean"],
        row[f"{metric}_{low}"],
        row[f"{metric}_{high}"],
        int(row["n"]) if n else None,
        interval,
        metric,
    )
    if metric in TARGET_MEASURES and row[f"{metric}_n"] < row["n"]:
        text += f" ({int(row[f'{metric}_n'])}/{int(row['n'])} reached)"
    return text


def better(comparison: Comparison) -> str:
    """Which way the ranking metric is better, in words: "lower" or "higher"."""
    return "lower" if comparison.direction == "min" else "higher"


def headline(comparison: Comparison) -> list[str]:
    """The answer in a few sentences: what was counted, the protocol, the best cell, the seed
    budget, nuisance values on the grid's edge, parity, speed."""
    lines = [
        counted_line(comparison),
        protocol_line(comparison),
        best_line(comparison),
        small_sample_line(comparison),
        budget_line(comparison),
        edge_line(comparison),
        importance_line(comparison),
        parity_line(comparison),
        *speed_lines(comparison),
    ]
    return [line for line in lines if line]


def counted_line(comparison: Comparison) -> str:
    """How many trials the statistics count (and exclude), and the metric they are ranked on."""
    excluded = comparison.n_trials - comparison.n_counted
    return (
        f"{comparison.n_counted} of {comparison.n_trials} trials counted"
        + (f"; {excluded} failed or not run, excluded from the statistics" if excluded else "")
        + f". Ranked by final {comparison.metric} ({better(comparison)} is better)."
    )


def best_line(comparison: Comparison) -> str:
    """The best cell in one sentence: its mean and interval, IQM and median, and the cells
    whose intervals overlap it; "" before any trial finished."""
    best = comparison.best()
    if best is None:
        return ""
    m = comparison.metric
    cells = comparison.cells
    rivals = cells[is_pooled(cells) & cells["overlaps_best"] & (cells["rank"] > 1)]
    selected = f" at {best['selected']}" if "selected" in best else ""
    return (
        f"Best cell: {best['cell']}{selected}, {m} "
        f"{cell_value(best.row, m, comparison.interval, n=True)}, IQM {number(best[f'{m}_iqm'])}, "
        f"median {number(best[f'{m}_median'])}"
        + (
            "; one seed per cell gives no interval (add seeds for one)."
            if best["n"] < 2
            else f"; intervals overlapping it: {named_cells(rivals['cell'])}."
            if len(rivals)
            else "; no other cell's interval overlaps it."
        )
    )


def named_cells(cells, most: int = 5) -> str:
    """`a=1, b=2; a=3, b=4 and 7 more`: cells apart by semicolons, since a cell's keys take
    commas."""
    cells = list(cells)
    return "; ".join(cells[:most]) + (f" and {len(cells) - most} more" if len(cells) > most else "")


def protocol_line(comparison: Comparison) -> str:
    """How the cells were compared (DESIGN: a comparison states its protocol), on how many
    rows, and a warning where the split that picks the winner is small."""
    rows = f" Rows: {split_sizes(comparison.splits)}." if comparison.splits else ""
    return f"Protocol: {comparison.protocol_sentence()}.{rows}{small_split_warning(comparison)}"


def small_split_warning(comparison: Comparison) -> str:
    """` Selection on val_loss rests on 18 val rows …` where that split has under
    SMALL_SPLIT_ROWS rows: one misclassified row moves accuracy by more than 2 points there."""
    chooser = comparison.selecting_split()
    if chooser is None or chooser[2] >= SMALL_SPLIT_ROWS:
        return ""
    metric, split, rows = chooser
    return (
        f" Selection on {metric} rests on {rows} {split} rows (under {SMALL_SPLIT_ROWS}): noisy; "
        "a close ranking may not hold on other rows (a larger val_size, more data or "
        "dataset.seed as a grid key shows how much it moves)."
    )


def budget_line(comparison: Comparison) -> str:
    """The seeds the closest pair that does not separate would need, from its paired spread."""
    budget = comparison.budget
    if not budget:
        return ""
    if budget["rival"] is None:
        return (
            f"Paired on seed, a t-test separates every other cell from {budget['best']} (p < 0.05)."
        )
    needed = budget["seeds_needed"]
    head = (
        f"Seed budget: paired on seed, {budget['best']} and {budget['rival']} do not separate "
        f"(paired t p = {number(budget['p_ttest'], 2)}; {budget['metric']} difference "
        f"{number(budget['mean_diff'])}, paired spread {number(budget['sd_diff'])} over "
        f"{budget['pairs']} seeds)"
    )
    if not math.isfinite(needed):
        return (
            head + f"; at that difference a paired t-test would need more than {MAX_SEEDS:,} seeds."
        )
    return (
        head
        + f"; were that difference real, a paired t-test would need {int(needed)} seeds for 80% "
        f"power at alpha 0.05 (power now {number(budget['power_now'], 2)})."
    )


def edge_line(comparison: Comparison) -> str:
    """Selected nuisance values on the grid's edge: the best may lie outside the grid."""
    if comparison.selection.empty or not comparison.selection["selected"].any():
        return ""
    edges = comparison.selection[comparison.selection["edge"] != ""]
    if edges.empty:
        sampled = comparison.sampled_keys
        listed = [key for key in comparison.nuisance_keys if key not in sampled]
        inside = [f"{', '.join(listed)} lies inside the grid"] if listed else []
        if sampled:
            inside.append(
                f"{', '.join(sampled)} lies inside its range, clear of its outer {RANGE_EDGE:.0%}"
            )
        return f"Every selected {'; every selected '.join(inside)}."
    named = "; ".join(
        f"{row['cell']} ({row['edge']})" for _, row in edges.head(NOTE_ROWS).iterrows()
    )
    more = f" and {len(edges) - NOTE_ROWS} more" if len(edges) > NOTE_ROWS else ""
    if "of its " in named:  # a sampled key's edge names its range
        return (
            f"Selected near the edge of what was tried, the best may lie outside it (widen the "
            f"range): {named}{more}."
        )
    return (
        f"Selected on the grid's edge, the best may lie outside it (widen the grid): {named}{more}."
    )


def importance_line(comparison: Comparison) -> str:
    """A searched grid's keys by the share of the selection metric's variance each explains;
    a key some cells never read, by its share over the settings of the cells that read it."""
    from mlpsuite.analysis.importance import EVERY, MIN_SETTINGS

    table = comparison.importance
    if table.empty:
        return ""
    every = table[table["among"] == EVERY]
    shares = ", ".join(
        f"{row['key'].split('.')[-1]} {row['importance']:.0%}" for _, row in every.iterrows()
    )
    rest = table.drop(every.index)
    measured = rest[rest["importance"].notna()]
    where = ", ".join(
        f"{row['key'].split('.')[-1]} {row['importance']:.0%} of {row['settings']}"
        for _, row in measured.iterrows()
    )
    unmeasured = [row["key"].split(".")[-1] for _, row in rest.drop(measured.index).iterrows()]
    settings = int(every["settings"].max()) if not every.empty else 0
    return (
        f"Which settings mattered (fANOVA over a random forest, share of "
        f"{comparison.protocol.select_on}'s variance over {settings} settings): {shares}"
        + (f"; where read, over those cells' settings: {where}" if where else "")
        + (
            f"; not measured ({', '.join(unmeasured)}): fewer than {MIN_SETTINGS} settings read it"
            if unmeasured
            else ""
        )
        + "."
    )


def small_sample_line(comparison: Comparison) -> str:
    """Few seeds make wide t-intervals and floor Wilcoxon's p: say so next to the numbers."""
    pooled = pooled_rows(comparison.cells) if not comparison.cells.empty else None
    if pooled is None or pooled.empty:
        return ""
    n = int(pooled["n"].min())
    bootstrap = (
        f"With n={n} seeds a bootstrap interval is too narrow: it resamples only the values seen "
        "(read the t-interval beside it)."
        if comparison.interval == "bootstrap" and 2 <= n < 10
        else ""
    )
    if n < 2 or n >= 5:
        return bootstrap
    return (
        f"Few seeds: with n={n} the 95% t-interval is ±{stats.t.ppf(0.975, n - 1):.3g} standard "
        f"errors wide, and a paired Wilcoxon test cannot give p below {2 / 2**n:.3g}; add seeds to "
        "separate close cells." + (f" {bootstrap}" if bootstrap else "")
    )


def parity_line(comparison: Comparison) -> str:
    """Backend parity in one sentence: the largest relative difference of the losses between
    Keras backends over the (cell, seed) pairs run on several, and how many started from
    identical weights."""
    summary = parity_summary(comparison.parity)
    dropout = (
        f" {summary['not_expected']} (cell, seed) pairs with dropout are not expected to "
        "agree and are not counted."
        if summary.get("not_expected")
        else ""
    )
    if REFERENCE_BACKEND in set(comparison.frame["backend"]):
        dropout += f" {REFERENCE_BACKEND} starts from its own initial weights: not compared."
    if not summary.get("compared"):
        return "Backend parity: no (cell, seed) ran on two Keras backends." + dropout
    return (
        f"Backend parity: largest relative difference of the initial and every epoch's loss "
        f"{number(summary['worst'])} (median {number(summary['median'])}) over "
        f"{summary['compared']} (cell, seed) pairs; initial weights identical in "
        f"{summary['weights_matched']} of {summary['compared']}.{dropout}"
    )


def speed_lines(comparison: Comparison) -> list[str]:
    """The fastest backend per step and per trial against the slowest, then memory and the
    target line; [] with fewer than two backends (or settings) to compare."""
    speed = comparison.speed
    if len(speed) < 2:
        return []
    per_step = speed.sort_values("step_time_ms").iloc
    per_trial = speed.sort_values("trial_time_s").iloc
    together = per_step[0].get("vectorized", 0) or 0
    per_seed = ""
    if together > 1:
        per_seed = (
            f" per member, up to {int(together)} trials trained as one population"
            if per_step[0].get("population", False)
            else f" per seed, {int(together)} seeds trained as one program"
        )
    return [
        f"Fastest per step: {per_step[0]['backend']} ({number(per_step[0]['step_time_ms'])} "
        f"ms/step{per_seed}, {number(per_step[-1]['step_time_ms_x'])}× faster than "
        f"{per_step[-1]['backend']}). Fastest to a result: {per_trial[0]['backend']} (median trial "
        f"{number(per_trial[0]['trial_time_s'])} s, {number(per_trial[-1]['trial_time_s_x'])}× "
        f"faster than {per_trial[-1]['backend']}).",
        memory_line(speed),
        target_line(comparison),
    ]


def memory_line(speed) -> str:
    """The workers' resident high-water marks, smallest first (the other half of a backend
    choice)."""
    rows = (
        speed.dropna(subset=["peak_rss_mb"]).sort_values("peak_rss_mb")
        if "peak_rss_mb" in speed
        else speed[:0]
    )
    return (
        "Peak worker memory (median over trials): "
        + ", ".join(f"{row['backend']} {row['peak_rss_mb']:.0f} MB" for _, row in rows.iterrows())
        + "."
        if len(rows)
        else ""
    )


def target_line(comparison: Comparison) -> str:
    """Which backend reaches the target first (MLPerf's time to train), not only which steps
    fastest."""
    speed, target = comparison.speed, comparison.protocol.target_pair()
    if (
        target is None
        or "time_to_target_s" not in speed
        or not speed["time_to_target_s"].notna().any()
    ):
        return (
            f"No trial reached {target[0]} {reach_sign(target[0])} {target[1]:g}."
            if target and len(speed)
            else ""
        )
    metric, value = target
    ordered = speed.dropna(subset=["time_to_target_s"]).sort_values("time_to_target_s")
    first, last = ordered.iloc[0], ordered.iloc[-1]
    reached = ", ".join(
        f"{row['backend']} {int(row['target_reached'])}/{int(row['trials'])}"
        for _, row in speed.iterrows()
    )
    return (
        f"First to {metric} {reach_sign(target[0])} {value:g}: {first['backend']} (median "
        f"{number(first['time_to_target_s'])} s of training, {number(last['time_to_target_s_x'])}× "
        f"sooner than {last['backend']}); trials that reached it: {reached}."
    )


# ---------------------------------------------------------------- Markdown


def markdown(comparison: Comparison, max_rows: int | None = None, short: bool = False) -> str:
    """The whole report; `short` (the run description the MLflow UI shows first) keeps the
    answer, the ranking, the effects and the speed, each at most `max_rows` long."""
    parts = [
        f"### {comparison.experiment}: comparison of {comparison.n_trials} trials",
        "",
        *[f"- {line}" for line in headline(comparison)],
        "",
        f"#### Ranking by final {comparison.metric} "
        f"({interval_legend(comparison, [comparison.metric, *CELL_METRICS])} over n "
        f"seeds{pooled_note(comparison)}; IQM: interquartile mean"
        f"{reference_note(comparison)})",
        "",
        markdown_table(*ranking_rows(comparison, max_rows)),
    ]
    if not comparison.effects.empty:
        parts += [
            "",
            f"#### Paired effects on {comparison.metric} (paired on seed and the other grid keys; "
            "a seed's backends averaged; P(better): probability that a level's run beats the "
            "reference's; d: mean difference / its standard deviation)",
            "",
            markdown_table(*effect_rows(comparison, max_rows)),
        ]
    if not short and not comparison.selection.empty:
        parts += [
            "",
            f"#### Selection: {comparison.protocol.select_on} at each "
            f"{', '.join(comparison.nuisance_keys)} (mean ± 95% t-interval over n seeds)",
            "",
            markdown_table(*selection_rows(comparison, max_rows and 3 * max_rows)),
        ]
    if not short and _per_backend(comparison).shape[0]:
        parts += [
            "",
            f"#### Per backend: {comparison.metric} (mean ± 95% t-interval over n seeds; "
            "sklearn from its own initial weights)",
            "",
            markdown_table(*backend_rows(comparison, max_rows)),
        ]
    if not comparison.parity.empty and not short:
        parts += [
            "",
            "#### Backend parity (relative differences across backends; worst pairs first)",
            "",
            markdown_table(*parity_rows(comparison, max_rows)),
        ]
    if not comparison.speed.empty:
        parts += [
            "",
            "#### Speed per backend (medians; × = ratio to the fastest; compile = the first epoch "
            "minus a steady one, plus a fresh model's first evaluation minus a second)",
            "",
            markdown_table(*speed_rows(comparison)),
        ]
    if not comparison.failures.empty:
        parts += [
            "",
            "#### Failures (excluded from the statistics)",
            "",
            markdown_table(
                list(comparison.failures.columns),
                [[number(v) for v in row] for row in comparison.failures.itertuples(index=False)],
            ),
        ]
    listed = ", ".join(
        f"{name}.csv"
        for name, table in tables(comparison).items()
        if name != "selection" or len(table)
    )
    parts += [
        "",
        f"Grid run {comparison.parent_run_id}; tables in full under comparison/ ({listed}) with "
        "the figures.",
    ]
    return "\n".join(parts) + "\n"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table (pipes inside cells escaped)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def ranking_rows(
    comparison: Comparison, max_rows: int | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the pooled ranking: one column per metric, `mean ± half-width`."""
    cells = comparison.cells
    if cells.empty or "rank" not in cells:
        return ["cell"], []
    pooled = pooled_rows(cells)
    m = comparison.metric
    metrics = [name for name in dict.fromkeys([m, *CELL_METRICS]) if f"{name}_mean" in cells]
    selected = ["selected"] if "selected" in cells else []
    robust = [f"IQM {m}"] + (
        [f"95% bootstrap {m}"] if comparison.interval == "t" else [f"95% t {m}"]
    )
    reference = reference_rows(cells)
    beside = [f"{REFERENCE_BACKEND} {m}"] if len(reference) else []
    header = ["rank", "cell", "n", *selected, *metrics, *robust, *beside, "overlaps best"]
    rows = [
        [
            str(int(row["rank"])),
            short_label(row["cell"]),
            str(int(row["n"]))
            + ("" if row["n"] == row["trials"] else f" ({int(row['trials'])} runs)"),
            *[_selected_label(row) for _ in selected],
            *[cell_value(row, name, comparison.interval) for name in metrics],
            number(row[f"{m}_iqm"]),
            _other_interval(row, m, comparison.interval),
            *[reference_value(reference, row["cell"], m, comparison.interval) for _ in beside],
            "yes" if row["overlaps_best"] else "",
        ]
        for _, row in pooled.head(max_rows or len(pooled)).iterrows()
    ]
    return header, rows


def pooled_note(comparison: Comparison) -> str:
    """What a ranking row's n counts, to follow "over n seeds": ` of jax`, or `, each the mean
    over jax, torch` where the row pools several backends."""
    backends = pooled_backends(comparison.cells)
    if len(backends) > 1:
        return f", each the mean over {', '.join(backends)}"
    return f" of {backends[0]}" if backends else ""


def reference_note(comparison: Comparison) -> str:
    """What the scikit-learn column is, where the ranking has one."""
    if reference_rows(comparison.cells).empty:
        return ""
    return (
        f"; {REFERENCE_BACKEND}: scikit-learn's MLP on its own, mean over its seeds (it starts "
        "from its own weights, so it is shown beside the ranking, not pooled into it)"
    )


def reference_value(reference: pd.DataFrame, cell: str, metric: str, interval: str) -> str:
    """scikit-learn's value of `metric` in `cell`, with its interval; '–' where it has none."""
    if cell not in reference.index or f"{metric}_mean" not in reference:
        return "–"
    return cell_value(reference.loc[cell], metric, interval)


def _selected_label(row: pd.Series) -> str:
    """`learning_rate=0.1 (edge: largest tried)`."""
    return row["selected"] + (
        f" (edge: {row['edge'].split(': ', 1)[-1]})" if row.get("edge") else ""
    )


def _other_interval(row: pd.Series, metric: str, interval: str) -> str:
    low, high = ("boot_low", "boot_high") if interval == "t" else ("low", "high")
    if not math.isfinite(row[f"{metric}_{low}"]):
        return "–"
    return f"[{number(row[f'{metric}_{low}'])}, {number(row[f'{metric}_{high}'])}]"


def selection_rows(
    comparison: Comparison, max_rows: int | None = None
) -> tuple[list[str], list[list[str]]]:
    """Every setting tried per scientific cell, the selected one marked: the isolation plot's
    numbers."""
    name = comparison.protocol.select_on
    header = ["cell", "setting", "n", name, "finished", "selected"]
    selection = comparison.selection
    rows = [
        [
            short_label(row["cell"]),
            short_label(row["setting"]),
            str(int(row["n"])),
            with_interval(
                row[f"{name}_mean"], row[f"{name}_low"], row[f"{name}_high"], metric=name
            ),
            f"{int(row['finished'])}/{int(row['trials'])}",
            ("yes" + (f" ({row['edge']})" if row["edge"] else "")) if row["selected"] else "",
        ]
        for _, row in selection.head(max_rows or len(selection)).iterrows()
    ]
    return header, rows


def _per_backend(comparison: Comparison) -> pd.DataFrame:
    cells = comparison.cells
    if cells.empty or "rank" not in cells:
        return cells
    return cells[~is_pooled(cells)]


def backend_rows(
    comparison: Comparison, max_rows: int | None = None
) -> tuple[list[str], list[list[str]]]:
    """Header and rows of each cell on each backend, in the pooled ranking's order."""
    m = comparison.metric
    header = ["rank", "cell", "backend", "n", m]
    per_backend = _per_backend(comparison).sort_values(["rank", "backend"])
    rows = [
        [
            str(int(row["rank"])) if math.isfinite(row["rank"]) else "–",
            short_label(row["cell"]),
            row["backend"],
            str(int(row["n"])),
            with_interval(row[f"{m}_mean"], row[f"{m}_low"], row[f"{m}_high"], metric=m),
        ]
        for _, row in per_backend.head(max_rows or len(per_backend)).iterrows()
    ]
    return header, rows


def effect_rows(
    comparison: Comparison, max_rows: int | None = None
) -> tuple[list[str], list[list[str]]]:
    """The effects table as text: its header and one row per key and level (at most
    `max_rows`), with the difference's interval and the p-values."""
    header = [
        "key",
        "level",
        "vs",
        "pairs",
        "difference [95%]",
        "p (paired t)",
        "p (Wilcoxon)",
        "p (Holm)",
        "P(better)",
        "d",
    ]
    rows = [
        [
            effect_key(row),
            str(row["level"]),
            str(row["reference"]),
            _pairs(row),
            f"{number(row['mean_diff'])} [{number(row['diff_low'])}, {number(row['diff_high'])}]",
            number(row["p_ttest"]),
            number(row["p_wilcoxon"]),
            number(row["p_holm"]),
            number(row["prob_improvement"], 2),
            number(row["effect_size"], 3),
        ]
        for _, row in comparison.effects.head(max_rows or len(comparison.effects)).iterrows()
    ]
    return header, rows


def effect_key(row: pd.Series) -> str:
    """A grid key, marked when it is a nuisance key (its effect is over every trial, not the
    selected)."""
    return f"{row['key']} (nuisance)" if row.get("role") == "nuisance" else row["key"]


def _pairs(row: pd.Series) -> str:
    missing = int(row.get("pairs_missing", 0) or 0)
    return str(int(row["n_pairs"])) + (f" ({missing} without a value)" if missing else "")


def parity_rows(
    comparison: Comparison, max_rows: int | None = None
) -> tuple[list[str], list[list[str]]]:
    """The parity table as text: its header and one row per (cell, seed) run on several
    backends (at most `max_rows`)."""
    parity = comparison.parity
    header = [
        "cell",
        "seed",
        "backends",
        "weights identical",
        "initial loss",
        "epochs (max)",
        "at epoch",
        "epochs",
        "note",
    ]
    rows = [
        [
            short_label(row["cell"]),
            str(row["seed"]),
            row["backends"],
            "yes" if row["weights_match"] else "NO",
            number(row["initial_rel_diff"]),
            number(row["max_epoch_rel_diff"]),
            number(row["worst_epoch"]),
            str(row["epochs_compared"]),
            "" if row["expected_to_agree"] else "dropout: not expected to agree",
        ]
        for _, row in parity.head(max_rows or len(parity)).iterrows()
    ]
    return header, rows


def speed_rows(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    """The speed table as text: its header and one row per backend (or setting), with the
    ratios to the fastest and, with a target, the time to reach it."""
    target = "time_to_target_s" in comparison.speed
    header = [
        "backend",
        "trials",
        "ms/step",
        "×",
        "compile s",
        "s/trial",
        "×",
        "worker start s",
        "peak MB",
        *(["to target s", "×", "reached"] if target else []),
    ]
    rows = [
        [
            row["backend"],
            str(int(row["trials"])),
            number(row["step_time_ms"]),
            number(row["step_time_ms_x"]),
            number(row["first_epoch_overhead_s"]),
            number(row["trial_time_s"]),
            number(row["trial_time_s_x"]),
            worker_start(row),
            number(row.get("peak_rss_mb")),
            *(
                [
                    number(row["time_to_target_s"]),
                    number(row["time_to_target_s_x"]),
                    f"{int(row['target_reached'])}/{int(row['trials'])}",
                ]
                if target
                else []
            ),
        ]
        for _, row in comparison.speed.iterrows()
    ]
    return header, rows


# ---------------------------------------------------------------- CSV, JSON, the folder


def tables(comparison: Comparison) -> dict[str, pd.DataFrame]:
    """The comparison's DataFrames by the name their CSV gets (cells, effects, selection,
    parity, speed, failures, and importance for a searched grid)."""
    named = {name: getattr(comparison, name) for name in TABLES}
    if not comparison.importance.empty:  # a searched grid's keys by what they explain
        named["importance"] = comparison.importance
    return named


def as_json(comparison: Comparison) -> str:
    """Stable keys, plain numbers (NaN as null): for scripts."""
    payload = {
        "experiment": comparison.experiment,
        "parent_run_id": comparison.parent_run_id,
        "metric": comparison.metric,
        "better": better(comparison),
        "grid_keys": comparison.grid_keys,
        "trials": comparison.n_trials,
        "trials_counted": comparison.n_counted,
        "protocol": {
            **comparison.protocol.model_dump(mode="json"),
            "metric": comparison.metric,
            "scientific": comparison.scientific_keys,
            "nuisance": comparison.nuisance_keys,
            "sentence": comparison.protocol_sentence(),
        },
        # A searched grid's space ({key: {low, high, log, integer} or {choices}}): what the
        # selection's `edge` and the importance are measured against.
        **({"search_space": comparison.search_space} if comparison.search_space else {}),
        "seed_budget": comparison.budget,
        "parity_summary": parity_summary(comparison.parity),
        "version_sets": version_sets(comparison.frame),
        "mixed_libraries": mixed_libraries(comparison.frame),
        **{name: _records(table) for name, table in tables(comparison).items()},
    }
    return json.dumps(_plain(payload), indent=2, allow_nan=False)


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(table.to_json(orient="records")) if not table.empty else []


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(comparison: Comparison, folder: Path, figures: bool = True) -> list[Path]:
    """cells.csv, effects.csv, parity.csv, speed.csv, failures.csv, report.md and the figures."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, table in tables(comparison).items():
        path = folder / f"{name}.csv"
        table.to_csv(path, index=False)
        written.append(path)
    (folder / "report.md").write_text(markdown(comparison), encoding="utf-8")
    written.append(folder / "report.md")
    if figures:
        from mlpsuite.present.plots import comparison_figures

        written += comparison_figures(comparison, folder)
    return written
