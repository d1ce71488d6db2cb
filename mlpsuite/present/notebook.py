"""What the Python API hands back: `Comparison` (the analysis' own, with Markdown, figures and
HTML) and `GridResult` (what `mlpsuite.run` returns).

A bare `result` at the end of a Jupyter cell calls `_repr_html_`: the protocol and the best
cell, the ranking table, the parity and speed lines and the curves as an inline PNG.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from mlpsuite import analysis
from mlpsuite.present import report

if TYPE_CHECKING:  # matplotlib loads when a figure is drawn: `mlpsuite compare` draws none
    from matplotlib.figure import Figure

HTML_ROWS = 15
# The columns of GridResult.runs, before the metrics (grid keys come after `seed`).
RUN_COLUMNS = ("backend", "seed", "status", "failure")
RUN_IDS = ("run_id", "key")


class Comparison(analysis.Comparison):
    """A grid's comparison: what `mlpsuite.compare` returns and `GridResult.comparison` holds.

    The DataFrames are also written as CSV under the parent run's `comparison/`. `best()`
    gives the first cell as one line, `str(comparison)` is the report `mlpsuite compare`
    prints, `to_markdown()` the parent run's `report.md` and `figures()` its plots; a bare
    `comparison` at the end of a Jupyter cell shows the ranking, parity, speed and curves.

    Attributes:
        experiment: the experiment's name (the config's `name`).
        experiment_id: its MLflow id.
        parent_run_id: the grid's parent run.
        description: the question the config asks (`description:`), or "".
        metric: the metric the cells are ranked on, e.g. "val_loss".
        grid_keys: the grid's keys as columns, e.g. `["model.activation"]`.
        scientific_keys: the keys compared; every grid key without nuisance keys.
        nuisance_keys: the keys tuned per cell (`compare.nuisance`), each cell taken at its
            best setting by `protocol.select_on`.
        protocol: the `compare:` section applied (`CompareSpec`), with any overrides.
        seeds: the number of distinct seeds the grid ran.
        splits: each dataset's train/val/test rows,
            `[{"dataset": "iris", "train": 105, "val": 15, "test": 30}]`.
        cells: one row per cell and backend, ranked; `backend == "all"` pools the Keras
            backends (the ranking). Columns: `cell` (its grid values in words), one column
            per grid key, `selected` and `edge` (with nuisance keys: the setting chosen, and
            whether it lies on the grid's edge), `backend`, `backends` (those the row pools:
            scikit-learn has its own row), `n` (seeds), `trials`, then for each metric M:
            `M_mean`, `M_low`/`M_high` (95% t-interval, as computed: reports clip it at the
            metric's bound), `M_boot_low`/`M_boot_high` (95% BCa bootstrap), `M_iqm`
            (interquartile mean), `M_median`, `M_n`; and `rank`, `overlaps_best`.
        effects: one row per grid key and level against its reference level: `key`,
            `level`, `reference`, `metric`, `level_mean`, `reference_mean`, `n_pairs`,
            `mean_diff` with `diff_low`/`diff_high`, `p_ttest`, `p_wilcoxon`, `p_holm`,
            `effect_size` (d_z), `prob_improvement`, `pairs_missing`, `role` (scientific or
            nuisance).
        parity: one row per cell and seed run on several backends: `cell`, `seed`,
            `backends`, `expected_to_agree`, `weights_match`, `initial_rel_diff`,
            `max_epoch_rel_diff`, `worst_epoch`, `epochs_compared`.
        speed: one row per backend, and per execution setting the grid varies (`backend`
            then reads `tensorflow/jit=true`, and `jax/population` for trials trained as a
            population; `framework` is the bare name): `trials`, `vectorized`,
            `population`, medians of `step_time_ms`, `first_epoch_overhead_s` (compile s),
            `trial_time_s`, `worker_start_s` (of the workers this grid started),
            `peak_rss_mb` (and `time_to_target_s`, `target_reached` with a target), each
            time also as a ratio to the fastest row (`..._x`); `warm_workers`: how many
            workers an earlier grid of the same process had started (none: absent).
        failures: `failure`, `backend`, `trials`: what the statistics leave out.
        selection: with nuisance keys, every setting tried per cell and its `select_on`
            mean; empty otherwise.
        frame: one row per trial (what `GridResult.runs` shows).
        ranked: the trials the cells summarise (each cell's selected setting), or None
            when that is every trial.
        curves: run id -> the ranked metric's loss per epoch (val_loss, else loss).
        losses: run id -> training loss per epoch (for parity).
        budget: the seeds the closest pair of cells that the intervals do not separate
            would need, or None.
        importance: a searched grid's keys by the share of `select_on`'s variance each
            explains (fANOVA); empty for a listed grid.
        search_space: a searched grid's space (`{key: {low, high, log, integer}}` or
            `{key: {choices}}`); empty for a listed grid.

    Examples:
        >>> import tempfile
        >>> import mlpsuite
        >>> store = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"
        >>> config = {
        ...     "name": "demo",
        ...     "dataset": {"name": "iris"},
        ...     "training": {"epochs": 2},
        ...     "backends": ["sklearn"],
        ...     "seeds": [0, 1],
        ...     "grid": {"model.activation": ["identity", "relu"]},
        ... }
        >>> comparison = mlpsuite.run(config, tracking_uri=store, progress=False).comparison
        >>> comparison
        <Comparison demo: 4 of 4 trials; best activation=identity: val_loss ...>
        >>> comparison.best().cell, comparison.best().n
        ('activation=identity', 2)
        >>> comparison.scientific_keys, comparison.nuisance_keys, comparison.failures.empty
        (['model.activation'], [], True)
        >>> comparison.protocol_sentence()
        'model.activation compared, every other setting fixed as the config sets it'
    """

    @classmethod
    def of(cls, comparison: analysis.Comparison) -> Comparison:
        """The same comparison, as this class (with the notebook's HTML, Markdown and
        figures)."""
        return cls(
            **{
                field.name: getattr(comparison, field.name)
                for field in dataclasses.fields(comparison)
            }
        )

    def to_markdown(self, max_rows: int | None = None) -> str:
        """The whole report, as the parent run's `comparison/report.md` holds it."""
        return report.markdown(self, max_rows)

    def figures(self) -> dict[str, Figure]:
        """{name: matplotlib Figure}: curves, final_metric (the ranking), isolation, parity, speed;
        those with data only. In IPython a figure at the end of a cell shows as a PNG."""
        _figures_display_in_ipython()
        from mlpsuite.present.plots import figures

        return figures(self)

    def _repr_html_(self) -> str:
        return comparison_html(self)

    def __str__(self) -> str:
        """The report `mlpsuite compare` prints: `print(comparison)` in a script."""
        return terminal_text(self)

    def __repr__(self) -> str:
        best = self.best()
        answer = f"; best {best}" if best is not None else "; no finished trial"
        return f"<Comparison {self.experiment}: {self.n_counted} of {self.n_trials} trials{answer}>"


def terminal_text(comparison: analysis.Comparison, width: int = 100) -> str:
    """What the terminal shows of a comparison (`mlpsuite compare`), as plain text."""
    from rich.console import Console

    from mlpsuite.present.terminal import COMPARE_ROWS, comparison_view

    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    for item in comparison_view(comparison, max_rows=COMPARE_ROWS, effects=True):
        console.print(item)
    lines = console.export_text().splitlines()  # rich pads a table's lines to its width
    return "\n".join(line.rstrip() for line in lines).strip("\n") + "\n"


def comparison_html(comparison: analysis.Comparison, max_rows: int = HTML_ROWS) -> str:
    """The answer as HTML: headline lines, the ranking table, parity and speed, the curves and,
    for a search, its axis plots."""
    title = f"{comparison.experiment}: comparison of {comparison.n_trials} trials"
    lines = [
        report.protocol_line(comparison),
        report.best_line(comparison),
        report.small_sample_line(comparison),
        report.budget_line(comparison),
        report.edge_line(comparison),
        report.importance_line(comparison),
    ]
    after = [report.parity_line(comparison), *report.speed_lines(comparison)]
    question = f"<p><b>{_text(comparison.description)}</b></p>" if comparison.description else ""
    from mlpsuite.present.plots import isolation, loss_curves

    curves = loss_curves(comparison)
    # A search's axis plots: what shows a range too narrow (the playbook's reason to look).
    axes = isolation(comparison) if comparison.search_space else None
    return "\n".join(
        [
            f"<h4>{_text(title)}</h4>",
            question,
            _paragraphs(lines),
            _table(*report.ranking_rows(comparison, max_rows)),
            _paragraphs(after),
            _png(curves, "curves") if curves is not None else "",
            _png(axes, "axis plots") if axes is not None else "",
        ]
    )


def _text(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


def _paragraphs(lines: list[str]) -> str:
    return "".join(f"<p>{_text(line)}</p>" for line in lines if line)


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_text(name)}</th>" for name in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_text(value)}</td>" for value in row) + "</tr>" for row in rows
    )
    return (
        f'<table class="mlpsuite-ranking"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _png(figure: Figure, alt: str) -> str:
    encoded = base64.b64encode(_png_bytes(figure)).decode("ascii")
    return f'<img alt="{alt}" src="data:image/png;base64,{encoded}">'


def _png_bytes(figure: Figure, dpi: int = 80) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _figures_display_in_ipython() -> None:
    """Show a Figure as PNG in IPython, as `%matplotlib inline` does for pyplot's: these are
    drawn without pyplot (plots.py), so IPython has no formatter for them of its own."""
    try:
        from IPython import get_ipython
    except ImportError:  # not in IPython: nothing displays figures
        return
    shell = get_ipython()
    if shell is not None:
        # By name: the formatter applies once matplotlib is imported, without importing it.
        formatter = shell.display_formatter.formatters["image/png"]
        formatter.for_type_by_name("matplotlib.figure", "Figure", _png_bytes)


@dataclasses.dataclass
class GridResult:
    """What `mlpsuite.run` returns: the grid's parent run, its trials and its comparison.

    `print(result)` gives the counts, the best cell and the parent run's page in the MLflow
    UI; a bare `result` at the end of a Jupyter cell shows the comparison.

    Attributes:
        experiment: the experiment's name (the config's `name`).
        experiment_id: its MLflow id.
        parent_run_id: the grid's parent run, reopened each time the grid runs again.
        tracking_uri: the store the grid was recorded in.
        comparison: the whole grid's comparison, or None when the grid was interrupted or
            its report failed (`report_error` says why).
        n_trials: the grid's trials (its cells times backends times seeds).
        n_run: the trials this call ran (FAILED ones included).
        n_failed: those of them that did not finish.
        n_reused: the trials already FINISHED in the store, not run again.
        invocation: how many times this grid has been run, this call included.
        interrupted: whether Ctrl-C or a stop signal cut the grid short (in-flight runs are
            then marked KILLED).
        signal: the signal that interrupted it (SIGINT, SIGTERM or SIGHUP), else 0.
        report_error: why the comparison could not be written, or None.
        orphans_killed: runs a dead coordinator had left RUNNING, now marked KILLED.
        n_elsewhere: trials another driver of the same grid ran meanwhile (two
            `mlpsuite run` at once).
        kept_logs: the workers' log folder, kept because a worker died; else None.
        failures: how this call's trials failed, one line per distinct reason with how many,
            the backends and the first evidence (a worker's last error line):
            `9 worker died (jax): ImportError: ...`; empty when none failed.
        none_finished: trials ran and not one of the grid's finished: there is no
            comparison, and the parent run is FAILED (its `mlpsuite.report_error` tag says
            why).
        runs: one row per trial of the grid (run now or reused): `backend`, `seed`,
            `status`, `failure`, the grid keys, the final metrics the runs recorded (loss,
            val_loss, test_loss, accuracies, step_time_ms, ...), `run_id` and `key` (the
            trial key).

    Examples:
        >>> import tempfile
        >>> import mlpsuite
        >>> store = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"
        >>> config = {
        ...     "name": "demo",
        ...     "dataset": {"name": "iris"},
        ...     "training": {"epochs": 2},
        ...     "backends": ["sklearn"],
        ...     "seeds": [0],
        ...     "grid": {"model.activation": ["identity", "relu"]},
        ... }
        >>> result = mlpsuite.run(config, tracking_uri=store, progress=False)
        >>> print(result)
        demo: 2 trials; parent run ... (invocation 1): 2 run, 0 failed, 0 reused
        best: activation=identity: val_loss ...
        parent run in the MLflow UI: http://127.0.0.1:5000/#/experiments/.../runs/...
        >>> result.runs[["seed", "model.activation", "status"]]
           seed model.activation    status
        0     0         identity  FINISHED
        1     0             relu  FINISHED
    """

    experiment: str
    experiment_id: str
    parent_run_id: str
    tracking_uri: str
    comparison: Comparison | None
    n_trials: int
    n_run: int
    n_failed: int
    n_reused: int
    invocation: int = 1
    interrupted: bool = False
    signal: int = 0
    report_error: str | None = None
    orphans_killed: int = 0
    n_elsewhere: int = 0  # run meanwhile by another driver of the grid (two `mlpsuite run` at once)
    kept_logs: Path | None = None
    runs: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    failures: list[str] = dataclasses.field(default_factory=list)
    none_finished: bool = False

    @property
    def url(self) -> str:
        """The parent run's page in the MLflow UI (`mlpsuite ui` on a local store)."""
        from mlpsuite.tracking import run_url

        return run_url(self.tracking_uri, self.experiment_id, self.parent_run_id)

    def counts(self) -> str:
        """The parent run, the invocation and what this call ran, failed and reused, in one
        line."""
        return (
            f"parent run {self.parent_run_id} (invocation {self.invocation}): {self.n_run} run, "
            f"{self.n_failed} failed, {self.n_reused} reused"
            + (
                f", {self.n_elsewhere} run by another driver of this grid meanwhile"
                if self.n_elsewhere
                else ""
            )
        )

    def __repr__(self) -> str:
        state = " (interrupted)" if self.interrupted else ""
        return f"<GridResult {self.experiment}: {self.n_trials} trials; {self.counts()}{state}>"

    def __str__(self) -> str:
        """`print(result)` in a script: the counts, the best cell, where to look."""
        best = self.comparison.best() if self.comparison is not None else None
        lines = [f"{self.experiment}: {self.n_trials} trials; {self.counts()}"]
        if self.interrupted:
            lines.append("interrupted: in-flight runs marked KILLED; run the grid again to finish")
        elif self.none_finished:
            lines.append("no trial finished, so there is nothing to compare:")
            lines.extend(f"  {line}" for line in self.failures)
        elif self.report_error:
            lines.append(f"the comparison failed: {self.report_error}")
        elif best is not None:
            lines.append(f"best: {best}")
        lines.append(f"parent run in the MLflow UI: {self.url}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        note = (
            "<p><b>Interrupted</b>: in-flight runs marked KILLED; "
            "run the grid again to finish it.</p>"
            if self.interrupted
            else "<p><b>No trial finished</b>, so there is nothing to compare:</p><ul>"
            + "".join(f"<li>{_text(line)}</li>" for line in self.failures)
            + "</ul>"
            if self.none_finished
            else f"<p>The comparison failed: {_text(self.report_error)}</p>"
            if self.report_error
            else ""
        )
        link = (
            f'<p>{_text(self.counts())}. <a href="{html.escape(self.url)}">'
            "Parent run in the MLflow UI</a></p>"
        )
        return (
            (comparison_html(self.comparison) if self.comparison is not None else "") + note + link
        )


def runs_frame(comparison: analysis.Comparison) -> pd.DataFrame:
    """One row per trial: backend, seed, status, failure, grid keys, final metrics, run id, key."""
    frame = comparison.frame
    metrics = [
        name
        for name in (*analysis.RUN_METRICS, "auc_val_loss", "epochs_to_target", "time_to_target_s")
        if name in frame and frame[name].notna().any()
    ]
    columns = [*RUN_COLUMNS, *comparison.grid_keys, *metrics, *RUN_IDS]
    return frame[[column for column in dict.fromkeys(columns) if column in frame]].reset_index(
        drop=True
    )
