"""What `mlpsuite run --dry-run` prints: every trial of a small grid, a summary of a large one
(trials per backend and cell, seeds, programs, what the store would reuse, the data's splits),
or every trial as CSV (`--format csv`). Light on purpose: rich and the standard library only,
so planning 12,000 trials takes about a second."""

from __future__ import annotations

import collections
import csv
import io
from typing import TYPE_CHECKING, Any

from rich.table import Table

from mlpsuite.config import Trial, cell_label

if TYPE_CHECKING:
    from mlpsuite.config.search import SearchSpec

# A grid of up to this many trials is listed trial by trial; a larger one is summarised.
LISTED_TRIALS = 50
# Cells the summary's table shows (the first ones, in the grid's order).
SUMMARY_CELLS = 30
# Points of a search the plan lists (the first ones, in draw order).
LISTED_POINTS = 20
# Where a split has fewer rows, a ranking by a metric on it is noisy (one row of 49 is 2%).
SMALL_SPLIT_ROWS = 50


def split_sizes(splits: list[dict[str, Any]]) -> str:
    """`iris 90 train / 30 val / 30 test`; datasets apart by semicolons."""
    return "; ".join(
        f"{split['dataset']} {split['train']} train / {split['val']} val / {split['test']} test"
        for split in splits
    )


def splits_line(splits: list[dict[str, Any]]) -> str:
    """`Rows per split: …`, warning of a val split under SMALL_SPLIT_ROWS rows."""
    small = [s["dataset"] for s in splits if 0 < s["val"] < SMALL_SPLIT_ROWS]
    warning = (
        f" (val under {SMALL_SPLIT_ROWS} rows on {', '.join(dict.fromkeys(small))}: a "
        "ranking by a val_ metric is noisy there)"
        if small
        else ""
    )
    return f"Rows per split: {split_sizes(splits)}{warning}"


def trial_table(trials: list[Trial]) -> Table:
    """Every trial the grid expands to, with its key."""
    table = Table(title=f"{len(trials)} trials")
    for column in ("#", "backend", "seed", "grid cell", "key"):
        table.add_column(column, overflow="fold")
    for number, trial in enumerate(trials, start=1):
        cell = ", ".join(f"{k}={v}" for k, v in trial.cell.items()) or "-"
        table.add_row(str(number), trial.backend, str(trial.seed), cell, trial.key)
    return table


def plan_summary(trials: list[Trial], reuse: str) -> list:
    """A large grid in a few lines and one table: trials per backend, cells and seeds, the
    compiled programs they share, `reuse` (what the store holds already), and trials per
    cell and backend for the first SUMMARY_CELLS cells."""
    backends = collections.Counter(trial.backend for trial in trials)
    per_cell: dict[str, collections.Counter] = {}
    for trial in trials:
        per_cell.setdefault(trial.cell_label(), collections.Counter())[trial.backend] += 1
    seeds = sorted({trial.seed for trial in trials})
    programs = len({(trial.backend, trial.program_key) for trial in trials})
    lines = [
        f"{len(trials):,} trials: "
        + ", ".join(f"{backend} {count:,}" for backend, count in backends.items()),
        f"{len(per_cell):,} cells × {len(seeds):,} seeds ({_seed_range(seeds)}); "
        f"{programs:,} compiled programs (a worker reuses one model across a program's trials)",
        reuse,
    ]
    table = Table(
        title=f"trials per cell and backend (first {SUMMARY_CELLS} cells)"
        if len(per_cell) > SUMMARY_CELLS
        else "trials per cell and backend"
    )
    table.add_column("cell", overflow="fold")
    for backend in backends:
        table.add_column(backend, justify="right")
    for cell, counts in list(per_cell.items())[:SUMMARY_CELLS]:
        table.add_row(cell, *(f"{counts[backend]:,}" for backend in backends))
    after = []
    if len(per_cell) > SUMMARY_CELLS:
        after.append(
            f"… and {len(per_cell) - SUMMARY_CELLS:,} more cells; --format csv lists every trial"
        )
    return [*lines, table, *after]


def search_summary(search: SearchSpec, trials: list[Trial]) -> list:
    """A searched grid's points: how they were drawn, over which ranges, how many distinct
    trials each crossing of `grid:` runs per seed and backend (a sampled key its cells never
    read makes points that differ only there one trial), and the first LISTED_POINTS points."""
    sampled = list(search.space)
    ranges = "; ".join(f"{key} {dimension.label()}" for key, dimension in search.space.items())
    distinct: dict[str, set] = {}
    for trial in trials:
        values = trial.cell_values()
        crossing = cell_label({k: v for k, v in values.items() if k not in search.space})
        distinct.setdefault(crossing, set()).add(tuple(values.get(k) for k in sampled))
    points = search.points()
    table = Table(
        title=f"the first {LISTED_POINTS} of {len(points)} points"
        if len(points) > LISTED_POINTS
        else f"{len(points)} points"
    )
    table.add_column("point", justify="right")
    for key in sampled:
        table.add_column(key, justify="right")
    for number, point in enumerate(points[:LISTED_POINTS], start=1):
        table.add_row(
            str(number),
            *(
                f"{point[key]:g}" if isinstance(point[key], float) else str(point[key])
                for key in sampled
            ),
        )
    return [
        f"{search.method} search: {search.trials} points (seed {search.seed}) over {ranges}; "
        "every grid cell runs each point",
        "distinct points per grid cell: "
        + "; ".join(f"{crossing} {len(found)}" for crossing, found in distinct.items()),
        table,
    ]


def reuse_line(trials: list[Trial], reused: set[str] | None, store: str) -> str:
    """What the store would reuse, or why nothing (no store yet, or it could not be read)."""
    if reused is None:
        return f"{len(trials):,} trials to run: {store}"
    to_run = sum(trial.key not in reused for trial in trials)
    return f"{to_run:,} trials to run, {len(trials) - to_run:,} reused from {store}"


def _seed_range(seeds: list[int]) -> str:
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def trials_csv(trials: list[Trial], reused: set[str] | None = None) -> str:
    """Every trial as CSV: number, backend, seed, one column per grid key, the program and
    the key (and, with a store, whether it would be reused)."""
    grid_keys = list(dict.fromkeys(key for trial in trials for key in trial.cell))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["number", "backend", "seed", *grid_keys, "program", "key"]
    writer.writerow([*header, "reused"] if reused is not None else header)
    for number, trial in enumerate(trials, start=1):
        values = trial.cell_values()
        row = [number, trial.backend, trial.seed, *(values.get(k, "") for k in grid_keys)]
        row += [trial.program_key, trial.key]
        writer.writerow([*row, trial.key in reused] if reused is not None else row)
    return out.getvalue()
