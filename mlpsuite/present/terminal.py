"""What the terminal shows: a live progress bar, the trial table, the comparison as rich tables."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column, Table

from mlpsuite.config import Trial, label_lines
from mlpsuite.executors.base import Event

if TYPE_CHECKING:  # pandas, scipy and MLflow load only when a comparison is shown
    from mlpsuite.analysis import Comparison


def make_console(stderr: bool = True) -> Console:
    """Progress and notes go to stderr, results to stdout; 100 columns when not a terminal (a
    notebook included: rich renders into its cells)."""
    console = Console(stderr=stderr)
    return console if console.is_terminal else Console(stderr=stderr, width=100)


class GridProgress:
    """Trials done / failed / ETA, and one line per worker with its trial and epoch."""

    def __init__(self, console: Console):
        # The bar, count and ETA keep their width; a long trial label is cut at 80 columns.
        label = Column(no_wrap=True, overflow="ellipsis", ratio=1)
        self.progress = Progress(
            TextColumn("{task.description}", table_column=label),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            expand=True,
        )
        self.reused, self.failed, self.elsewhere = 0, 0, 0
        self.overall: TaskID | None = None
        self.workers: dict[int, TaskID] = {}

    def start(self, to_run: int, reused: int) -> None:
        """Show the bar once the grid knows how many trials it runs and reuses."""
        self.reused = reused
        self.overall = self.progress.add_task(self._overall_text(), total=to_run)
        self.progress.start()

    def stop(self) -> None:
        """Stop redrawing; the bar's last state stays on the screen."""
        self.progress.stop()

    def _overall_text(self) -> str:
        failed = f" [red]{self.failed} failed[/red]" if self.failed else ""
        reused = f" ({self.reused} reused)" if self.reused else ""
        elsewhere = f" ({self.elsewhere} by another driver)" if self.elsewhere else ""
        return f"trials{reused}{elsewhere}{failed}"

    def __call__(self, event: Event) -> None:
        """Show one executor event: a worker ready, a trial started, an epoch done, a trial
        finished (or run by another driver of the grid)."""
        line = self._worker_line(event.slot) if event.slot >= 0 else None
        if event.kind == "ready":
            assert line is not None  # a worker's events carry its slot
            self.progress.update(
                line,
                description=f"  worker {event.slot} {event.backend}: ready",
                completed=0,
                total=None,
            )
        elif event.kind == "started":
            assert line is not None and event.trial is not None
            self.progress.update(
                line,
                description=_worker_label(event.slot, event.trial),
                completed=0,
                total=event.trial.training.epochs,
            )
        elif event.kind == "epoch":
            assert line is not None
            self.progress.update(line, completed=event.payload["epoch"])
        elif event.kind == "finished":
            assert self.overall is not None and event.result is not None  # `start` came first
            self.failed += event.result.status != "FINISHED"
            self.progress.update(self.overall, advance=1, description=self._overall_text())
        elif event.kind == "elsewhere":  # another driver of the grid ran it
            self.elsewhere += 1
            assert self.overall is not None
            self.progress.update(self.overall, advance=1, description=self._overall_text())

    def _worker_line(self, slot: int) -> TaskID:
        if slot not in self.workers:
            self.workers[slot] = self.progress.add_task(f"  worker {slot}", total=None)
        return self.workers[slot]


def _worker_label(slot: int, trial: Trial) -> str:
    """`  1 jax s2 elu standard`: the grid's values without their keys, so 80 columns keep them."""
    values = " ".join(trial.cell_values().values())
    return f"  {slot} {trial.backend} s{trial.seed} {values}".rstrip()


# Rows of each table `mlpsuite compare` (and `print(comparison)`) shows; a grid's end shows 15.
COMPARE_ROWS = 30


def comparison_view(comparison: Comparison, max_rows: int = 15, effects: bool = False) -> list:
    """What a grid ends with in the terminal: the protocol, the ranking, the parity line, the
    speed table (and, for `mlpsuite compare`, what was counted, the best cell and the paired
    effects). Fits 80 columns for short cell names."""
    from mlpsuite.analysis import pooled_rows
    from mlpsuite.analysis.versions import mixed_libraries, version_line
    from mlpsuite.present import report

    summary = [report.counted_line(comparison), report.best_line(comparison)] if effects else []
    versions = version_line(comparison.frame)
    mixed = [f"[bold yellow]{versions}[/bold yellow]"] if mixed_libraries(comparison.frame) else []
    shown: list = [
        *mixed,
        report.protocol_line(comparison),
        *summary,
        ranking_table(comparison, max_rows),
    ]
    pooled = pooled_rows(comparison.cells) if not comparison.cells.empty else []
    if len(pooled) > max_rows:
        where = "--format csv or --out DIR" if effects else "comparison/cells.csv on the parent run"
        shown.append(f"… best {max_rows} of {len(pooled)} cells shown; all of them: {where}")
    shown += [
        report.small_sample_line(comparison),
        report.budget_line(comparison),
        report.edge_line(comparison),
        report.importance_line(comparison),
    ]
    if effects and not comparison.effects.empty:
        shown.extend(effects_tables(comparison, max_rows))
    shown.append(report.parity_line(comparison))
    if not comparison.speed.empty:
        shown.append(speed_table(comparison))
    shown.extend(report.speed_lines(comparison))
    shown.append("" if mixed else versions)
    if comparison.n_counted < comparison.n_trials:
        reasons = ", ".join(
            f"{row.trials} {row.failure} ({row.backend})"
            for row in comparison.failures.itertuples(index=False)
        )
        shown.append(f"excluded from the statistics: {reasons}")
    return [item for item in shown if item != ""]


def ranking_table(comparison: Comparison, max_rows: int) -> Table | str:
    """Rank, cell, seeds, the ranking metric (and one other, without a nuisance column) as
    `mean ± half-width`, its IQM (from 4 seeds: below, it is the mean) and, where scikit-learn
    ran beside Keras backends, its own value per cell. One scientific or nuisance key heads its
    own column, so that the values alone fit in 80 columns."""
    from mlpsuite.analysis import pooled_rows, reference_rows
    from mlpsuite.present.report import (
        better,
        cell_value,
        interval_legend,
        number,
        pooled_note,
    )
    from mlpsuite.registry import REFERENCE_BACKEND

    cells = comparison.cells
    if cells.empty or "rank" not in cells:
        return f"{comparison.experiment}: no FINISHED trial, nothing to rank"
    metric = comparison.metric
    tuned, compared = comparison.nuisance_keys, comparison.scientific_keys
    shown = pooled_rows(cells).head(max_rows)
    labels = [
        label_lines(str(row[compared[0]]) if len(compared) == 1 else row["cell"])
        for _, row in shown.iterrows()
    ]
    # A second metric only beside short labels: with long ones it would push the table past
    # the terminal (the Markdown report and the CSV have every metric).
    short = max((len(line) for label in labels for line in label.splitlines()), default=0) <= 24
    second = (
        None
        if tuned or not short
        else next(
            (
                m
                for m in ("test_accuracy", "test_r2", "val_loss", "test_loss")
                if m != metric and f"{m}_mean" in cells
            ),
            None,
        )
    )
    columns = [metric] + ([second] if second else [])
    cell = compared[0].split(".")[-1] if len(compared) == 1 else "cell"
    selected = ([tuned[0].split(".")[-1]] if len(tuned) == 1 else ["at"]) if tuned else []
    reference = reference_rows(cells)
    beside = [REFERENCE_BACKEND] if len(reference) else []
    # The interquartile mean trims a quarter of the seeds from each end: none of 3 or fewer.
    robust = ["IQM"] if (shown["n"] >= 4).any() else []
    table = _table(
        f"{comparison.experiment}: ranked by final {metric} ({better(comparison)} is better)",
        ["#", cell, *selected, "n", *columns, *robust, *beside, "≈ best"],
        names=(cell,),
        caption=escape(f"{interval_legend(comparison, columns)} over n seeds")
        + f"{pooled_note(comparison)}"
        + (f"; IQM: interquartile mean of {metric}" if robust else "")
        + "; ≈ best: interval overlaps the best one's"
        + (
            f"; {selected[0]}: the selected setting (* {_edge_legend(comparison)})"
            if selected
            else ""
        )
        + (
            f"; {REFERENCE_BACKEND}: its own mean {metric}, not pooled (its own initial weights)"
            if beside
            else ""
        ),
    )
    for label, (_, row) in zip(labels, shown.iterrows(), strict=True):
        at = (
            [_starred(row[tuned[0]] if len(tuned) == 1 else row["selected"], row["edge"], tuned)]
            if tuned
            else []
        )
        table.add_row(
            str(int(row["rank"])),
            label,
            *at,
            str(int(row["n"])),
            *[cell_value(row, m, comparison.interval) for m in columns],
            *[number(row[f"{metric}_iqm"]) for _ in robust],
            *[_reference_mean(reference, row["cell"], metric) for _ in beside],
            "yes" if row["overlaps_best"] else "",
        )
    _keep_lines(table, 1)
    return table


def _reference_mean(reference, cell: str, metric: str) -> str:
    from mlpsuite.present.report import number

    column = f"{metric}_mean"
    return number(reference.at[cell, column]) if cell in reference.index else "–"


def effects_tables(comparison: Comparison, max_rows: int) -> list[Table]:
    """Per grid key, each level against the key's best level, paired on seed and the other keys."""
    from mlpsuite.present.report import effect_key, number

    tables = []
    for _key, effects in comparison.effects.groupby("key", sort=False):
        table = _table(
            f"paired effects of {effect_key(effects.iloc[0])} on {comparison.metric}",
            ["level − best", "pairs", "diff", "95% interval", "p t", "p W", "p Holm", "P(better)"],
            caption="p: paired t-test, Wilcoxon, t-test Holm-adjusted over the levels; P(better): "
            "probability that the level's run beats the best level's",
        )
        for _, row in effects.head(max_rows).iterrows():
            table.add_row(
                f"{label_lines(str(row['level']))} − {label_lines(str(row['reference']))}",
                str(int(row["n_pairs"])),
                number(row["mean_diff"], 3),
                f"[{number(row['diff_low'], 3)}, {number(row['diff_high'], 3)}]",
                number(row["p_ttest"], 2),
                number(row["p_wilcoxon"], 2),
                number(row["p_holm"], 2),
                number(row["prob_improvement"], 2),
            )
        tables.append(table)
    return tables


def speed_table(comparison: Comparison) -> Table:
    """The speed table for the terminal: medians per backend (or setting), ratios to the fastest."""
    from mlpsuite.present.report import number, worker_start

    target = "time_to_target_s" in comparison.speed
    table = _table(
        "speed per backend (medians)",
        [
            "backend",
            "trials",
            "ms/step",
            "×",
            "compile s",
            "s/trial",
            "×",
            "start s",
            "peak MB",
            *(["to target s", "×", "reached"] if target else []),
        ],
        caption="× ratio to the fastest; compile: 1st epoch − a steady one + 1st evaluation − "
        "a 2nd; start: worker start-up (warm: started by an earlier grid of this process); "
        "peak: the worker's resident high-water mark"
        + ("; to target: training time to the first epoch at the target" if target else ""),
    )
    for _, row in comparison.speed.iterrows():
        table.add_row(
            row["backend"],
            str(int(row["trials"])),
            number(row["step_time_ms"], 3),
            number(row["step_time_ms_x"], 3),
            number(row["first_epoch_overhead_s"], 2),
            number(row["trial_time_s"], 3),
            number(row["trial_time_s_x"], 3),
            worker_start(row, 2),
            number(row.get("peak_rss_mb")),
            *(
                [
                    number(row["time_to_target_s"], 3),
                    number(row["time_to_target_s_x"], 3),
                    f"{int(row['target_reached'])}/{int(row['trials'])}",
                ]
                if target
                else []
            ),
        )
    return table


def _table(
    title: str, header: list[str], caption: str | None = None, names: tuple[str, ...] = ()
) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        caption=caption,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    for column in header:
        text = column in ("cell", "backend", "level − best", *names)
        # Nothing is cut mid-value. A name comes broken between its settings
        # (config.label_lines) and is not wrapped again; rich narrows a table too wide for the
        # terminal by wrapping the other columns at their spaces (`mean` / `± half-width`).
        table.add_column(
            column,
            justify="left" if text else "right",
            no_wrap=text,
            overflow="fold" if text else "ellipsis",
            min_width=len(column),  # a header is never cut
        )
    return table


def _keep_lines(table: Table, column: int) -> None:
    """Let no line of `column` be folded: its narrowest width is its longest line."""
    lines = [line for cell in table.columns[column].cells for line in str(cell).splitlines()]
    table.columns[column].min_width = max(map(len, lines), default=0)


def _edge_legend(comparison: Comparison) -> str:
    """What the table's * means: a listed value at the grid's end, a sampled one near its
    range's."""
    from mlpsuite.analysis.protocol import RANGE_EDGE

    sampled = bool(comparison.sampled_keys)
    listed = len(comparison.sampled_keys) < len(comparison.nuisance_keys)
    if sampled and not listed:
        return f"in the outer {RANGE_EDGE:.0%} of its range"
    if sampled:
        return f"on the grid's edge, or in the outer {RANGE_EDGE:.0%} of its range"
    return "on the grid's edge"


def _starred(selected: str, edge: str, tuned: list[str]) -> str:
    """The selected setting with * after each value on an edge (`edge`: "learning_rate: top
    10% of ...; momentum: largest tried"); one tuned key: the value alone."""
    if not edge:
        return selected
    if len(tuned) == 1:
        return selected + "*"
    for part in edge.split("; "):
        short = part.split(":")[0]
        selected = re.sub(rf"(?<![\w.]){re.escape(short)}=[^,]*", r"\g<0>*", selected, count=1)
    return selected
