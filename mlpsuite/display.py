"""What the terminal shows: a live progress bar, the trial table, the comparison as rich tables."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mlpsuite.config import Trial
from mlpsuite.executors.local import Event

if TYPE_CHECKING:  # pandas, scipy and MLflow load only when a comparison is shown
    from mlpsuite.analysis import Comparison


class GridProgress:
    """Trials done / failed / ETA, and one line per worker with its trial and epoch."""

    def __init__(self, console: Console):
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=console, transient=False)
        self.reused, self.failed = 0, 0
        self.overall: int | None = None
        self.workers: dict[int, int] = {}

    def start(self, to_run: int, reused: int) -> None:
        """Show the bar once the grid knows how many trials it runs and reuses."""
        self.reused = reused
        self.overall = self.progress.add_task(self._overall_text(), total=to_run)
        self.progress.start()

    def stop(self) -> None:
        self.progress.stop()

    def _overall_text(self) -> str:
        failed = f" [red]{self.failed} failed[/red]" if self.failed else ""
        reused = f" ({self.reused} reused)" if self.reused else ""
        return f"trials{reused}{failed}"

    def __call__(self, event: Event) -> None:
        line = self._worker_line(event.slot) if event.slot >= 0 else None
        if event.kind == "ready":
            self.progress.update(line, description=f"  worker {event.slot} {event.backend}: ready",
                                 completed=0, total=None)
        elif event.kind == "started":
            self.progress.update(line, description=f"  worker {event.slot} {event.trial.label()}",
                                 completed=0, total=event.trial.training.epochs)
        elif event.kind == "epoch":
            self.progress.update(line, completed=event.payload["epoch"])
        elif event.kind == "finished":
            self.failed += event.result.status != "FINISHED"
            self.progress.update(self.overall, advance=1, description=self._overall_text())

    def _worker_line(self, slot: int) -> int:
        if slot not in self.workers:
            self.workers[slot] = self.progress.add_task(f"  worker {slot}", total=None)
        return self.workers[slot]


def trial_table(trials: list[Trial]) -> Table:
    """The dry run's view: every trial the grid expands to, with its key."""
    table = Table(title=f"{len(trials)} trials")
    for column in ("#", "backend", "seed", "grid cell", "key"):
        table.add_column(column, overflow="fold")
    for number, trial in enumerate(trials, start=1):
        cell = ", ".join(f"{k}={v}" for k, v in trial.cell.items()) or "-"
        table.add_row(str(number), trial.backend, str(trial.seed), cell, trial.key)
    return table


def comparison_view(comparison: "Comparison", max_rows: int = 15, effects: bool = False) -> list:
    """What a grid ends with in the terminal: the ranking, the parity line, the speed table
    (and, for `mlpsuite compare`, the paired effects). Fits 100 columns."""
    from mlpsuite.analysis import ALL_BACKENDS
    from mlpsuite.report import better, effect_rows, parity_line, ranking_rows, speed_lines, speed_rows

    header, rows = ranking_rows(comparison, max_rows)
    if not rows:
        shown = [f"{comparison.experiment}: no FINISHED trial, nothing to rank"]
    else:
        wanted = [0, 1, 2, 3, *(i for i, h in enumerate(header) if h in ("test_accuracy", "test_r2")), len(header) - 1]
        keep = list(dict.fromkeys(wanted))
        title = (f"{comparison.experiment}: ranking by final {comparison.metric} ({better(comparison)} is "
                 "better; mean ± 95% t-interval over seeds)")
        shown = [_table(title, [header[i] for i in keep], [[row[i] for i in keep] for row in rows])]
    if len(comparison.cells[comparison.cells["backend"] == ALL_BACKENDS]) > max_rows:
        shown.append(f"… {len(rows)} of the cells shown; all in comparison/cells.csv on the parent run")
    if effects and not comparison.effects.empty:
        shown.append(_table(f"effects on {comparison.metric} (paired)", *effect_rows(comparison, max_rows)))
    shown.append(parity_line(comparison))
    if not comparison.speed.empty:
        shown.append(_table("speed per backend (medians; × = ratio to the fastest)", *speed_rows(comparison)))
    shown.extend(speed_lines(comparison))
    if comparison.n_counted < comparison.n_trials:
        reasons = ", ".join(f"{row.trials} {row.failure} ({row.backend})"
                            for row in comparison.failures.itertuples(index=False))
        shown.append(f"excluded from the statistics: {reasons}")
    return shown


def _table(title: str, header: list[str], rows: list[list[str]]) -> Table:
    table = Table(title=title, title_justify="left")
    for position, column in enumerate(header):
        table.add_column(column, justify="left" if position in (1,) or column in ("cell", "backend", "key", "level", "vs")
                         else "right", overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table
