"""What `mlpsuite run` shows: a live progress bar, the trial table, the final summary."""

from __future__ import annotations

import statistics
from collections import defaultdict

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mlpsuite.config import Trial
from mlpsuite.executors.local import Event
from mlpsuite.results import TrialResult


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


def summary_table(results: list[tuple[Trial, TrialResult]]) -> Table:
    """Per backend: trials, failed, mean final val_loss, median step time."""
    by_backend: dict[str, list[TrialResult]] = defaultdict(list)
    for trial, result in results:
        by_backend[trial.backend].append(result)
    table = Table(title="summary of this run")
    for column in ("backend", "trials", "failed", "mean final val_loss", "median step ms"):
        table.add_column(column, justify="right" if column != "backend" else "left")
    for backend, backend_results in by_backend.items():
        ok = [r for r in backend_results if r.status == "FINISHED"]
        val = [r.history["val_loss"][-1] for r in ok if r.history.get("val_loss")]
        steps = [r.step_time_ms for r in ok if r.step_time_ms is not None]
        table.add_row(backend, str(len(backend_results)), str(len(backend_results) - len(ok)),
                      f"{statistics.fmean(val):.4f}" if val else "-",
                      f"{statistics.median(steps):.2f}" if steps else "-")
    return table
