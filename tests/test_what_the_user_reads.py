"""What a new user reads after a grid: which backends a ranking row pools and scikit-learn's own
value beside it, each dataset's split sizes and a warning where the selecting split is small,
intervals that stay within a metric's bounds, cell labels broken between settings only, and
`str()` of what the Python API returns.

One grid on JAX and scikit-learn (iris: 30 validation rows, under the warning's 50) serves the
module; the presentation of labels and bounds is also checked on hand-made values.
"""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pytest
from rich.console import Console
from scipy import stats

import mlpsuite
from mlpsuite.config import label_lines, short_label
from mlpsuite.config.grid import SETTING_CHARS, label_settings
from mlpsuite.data import load_dataset
from mlpsuite.present import report
from mlpsuite.present.terminal import ranking_table
from tests.grids import ready_store, run_in_process

SPLIT = {"test_size": 0.2, "val_size": 0.2}


def _config() -> dict:
    return {
        "name": "reads",
        "dataset": {"name": "iris", **SPLIT},
        "model": {"hidden": [8], "scaler": "standard"},
        "optimizer": {"name": "adam", "learning_rate": 0.05},
        "training": {"epochs": 3, "batch_size": 16},
        "backends": ["jax", "sklearn"],
        "seeds": [0, 1, 2],
        "grid": {"model.activation": ["tanh", "relu"]},
    }


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reads")
    uri = ready_store(folder)
    return folder, uri, mlpsuite.run(_config(), tracking_uri=uri, progress=False)


def _iris_rows() -> dict[str, int]:
    data = load_dataset("iris", test_size=SPLIT["test_size"], val_size=SPLIT["val_size"])
    return {"train": len(data.X_train), "val": len(data.X_val), "test": len(data.X_test)}


def test_the_ranking_says_what_it_pools_and_shows_sklearn_per_cell(grid):
    _, _, result = grid
    comparison = result.comparison
    cells = comparison.cells
    pooled = cells[cells["backend"] == "all"]
    assert set(pooled["backends"]) == {"jax"} and set(pooled["n"]) == {3}
    assert set(cells[cells["backend"] == "sklearn"]["backends"]) == {"sklearn"}
    runs = result.runs
    text = str(comparison)
    ranking = text[text.index("reads: ranked by") :]
    assert "sklearn" in ranking.splitlines()[2]  # the header row
    assert "over n seeds of jax" in " ".join(ranking.split())
    for activation in ("tanh", "relu"):
        own = runs[(runs["backend"] == "sklearn") & (runs["model.activation"] == activation)]
        expected = report.number(float(np.mean(own["val_loss"])))
        row = next(line for line in ranking.splitlines() if f" {activation} " in line)
        assert expected in row.split(), (expected, row)
    header, rows = report.ranking_rows(comparison)
    assert "sklearn val_loss" in header
    markdown = comparison.to_markdown()
    assert (
        "over n seeds of jax" in markdown and "sklearn: scikit-learn's MLP on its own" in markdown
    )


def test_split_sizes_in_the_dry_run_and_the_comparison_warn_on_a_small_selecting_split(
    grid, tmp_path
):
    import yaml

    folder, _, result = grid
    rows = _iris_rows()
    assert result.comparison.splits == [{"dataset": "iris", **rows}]
    words = f"iris {rows['train']} train / {rows['val']} val / {rows['test']} test"
    line = report.protocol_line(result.comparison)
    assert f"Rows: {words}." in line
    assert f"Selection on val_loss rests on {rows['val']} val rows (under 50)" in line
    assert report.protocol_line(result.comparison) in str(result.comparison).replace("\n", " ")
    larger = dataclasses.replace(result.comparison, splits=[{"dataset": "iris", **rows, "val": 60}])
    assert "Selection on" not in report.protocol_line(larger)
    path = tmp_path / "reads.yaml"
    path.write_text(yaml.safe_dump(_config()), encoding="utf-8")
    dry = run_in_process("run", str(path), "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert f"Rows per split: {words} (val under 50 rows on iris" in " ".join(dry.stdout.split())


def test_a_t_interval_is_clipped_at_the_metrics_bound_and_says_so():
    values = [0.01, 0.02, 0.4]  # a loss whose 95% t-interval reaches below 0
    mean = float(np.mean(values))
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    assert low < 0
    shown = report.with_interval(mean, low, high, n=3, metric="val_loss")
    assert shown == f"{mean:.4g} [0, {high:.4g}] (95% t, clipped, n=3)"
    # Unbounded metrics and intervals inside the bounds keep mean ± half-width.
    inside = report.with_interval(0.5, 0.4, 0.6, metric="val_loss")
    assert inside == "0.5 ± 0.1"
    accuracy = report.with_interval(0.95, 0.9, 1.04, metric="test_accuracy")
    assert accuracy == "0.95 [0.9, 1]"
    assert report.with_interval(0.0, -1.0, 1.0, metric="test_r2") == "0 ± 1"


def test_the_best_cell_prints_as_one_line_and_still_reads_as_its_row(grid):
    _, _, result = grid
    comparison = result.comparison
    best = comparison.best()
    pooled = comparison.cells[comparison.cells["backend"] == "all"]
    first = pooled.sort_values("val_loss_mean").iloc[0]
    line = str(best)
    assert "\n" not in line and line.startswith(f"{first['cell']}: val_loss ")
    assert f"{first['val_loss_mean']:.4g}" in line and "n=3 seeds; jax" in line
    assert best["val_loss_iqm"] == first["val_loss_iqm"] and "val_loss_median" in best
    ends = stats.t.interval(
        0.95,
        2,
        loc=first["val_loss_mean"],
        scale=stats.sem(
            result.runs[
                (result.runs["backend"] == "jax")
                & (result.runs["model.activation"] == first["model.activation"])
            ]["val_loss"]
        ),
    )
    assert best.high == pytest.approx(ends[1]) and best.low == pytest.approx(max(ends[0], 0.0))
    assert best.clipped == (ends[0] < 0)


def test_str_of_a_comparison_is_what_mlpsuite_compare_prints(grid):
    folder, uri, result = grid
    printed = run_in_process("compare", "reads", "--tracking-uri", uri, cwd=folder)
    assert printed.returncode == 0, printed.stderr
    lines = [line.rstrip() for line in printed.stdout.strip("\n").splitlines()]
    assert str(result.comparison).splitlines() == lines
    assert repr(result.comparison).startswith("<Comparison reads: 12 of 12 trials; best ")


def test_str_of_a_grid_result_is_its_counts_and_best_cell(grid):
    _, _, result = grid
    lines = str(result).splitlines()
    assert lines[0] == f"reads: 12 trials; {result.counts()}"
    assert lines[1] == f"best: {result.comparison.best()}"
    assert lines[2].endswith(result.url)


LONG = [
    "optimizer=adam(learning_rate=0.01), name=circles",
    "hidden=[32, 32], activation=leaky_relu(alpha=0.1), scaler=standard",
    "optimizer=adam(learning_rate=0.01,beta_1=0.9,beta_2=0.999,epsilon=1e-07), name=circles",
]


@pytest.mark.check
@pytest.mark.parametrize("label", LONG)
def test_a_label_breaks_between_settings_only(label):
    """Lines of at most 40 characters (and a comma), each made of whole settings; a setting
    over 40 characters is cut with … the same way in the Markdown label."""
    settings = label_settings(label)
    lines = label_lines(label).splitlines()
    assert all(len(line.rstrip(",")) <= SETTING_CHARS for line in lines)
    assert [part for line in lines for part in label_settings(line.rstrip(","))] == settings
    assert ", ".join(line.rstrip(",") for line in lines) == short_label(label)
    assert all(len(s) <= SETTING_CHARS and (s in label or s.endswith("…")) for s in settings)


def test_the_terminal_ranking_never_folds_a_setting_mid_word(grid):
    _, _, result = grid
    comparison = result.comparison
    cells = comparison.cells.copy()
    relabel = dict(zip(["activation=tanh", "activation=relu"], LONG[:2], strict=True))
    cells["cell"] = cells["cell"].map(lambda c: relabel.get(c, c))
    long = dataclasses.replace(comparison, cells=cells, scientific_keys=["a", "b"])
    console = Console(width=80, file=io.StringIO(), record=True, color_system=None)
    console.print(ranking_table(long, 15))
    text = console.export_text()
    for setting in ("optimizer=adam(learning_rate=0.01),", "activation=leaky_relu(alpha=0.1),"):
        assert setting in text, text
    # Nothing cut at the right edge: the last column's header and the caption's end are whole.
    assert "≈ best" in text, text
    assert " ".join(text.split()).endswith("(its own initial weights)"), text
    assert math.isfinite(float(cells["val_loss_mean"].iloc[0]))


def test_the_terminal_shows_an_iqm_column_only_where_it_can_differ_from_the_mean(grid):
    """scipy's trim_mean(x, 0.25) trims nothing from 3 or fewer seeds: the column would repeat
    the mean."""
    _, _, result = grid
    comparison = result.comparison
    values = result.runs[result.runs["backend"] == "jax"].groupby("model.activation")["val_loss"]
    for _, seeds in values:
        assert stats.trim_mean(seeds, 0.25) == pytest.approx(np.mean(seeds))

    def header(shown) -> str:
        console = Console(width=100, file=io.StringIO(), record=True, color_system=None)
        console.print(ranking_table(shown, 15))
        return console.export_text().splitlines()[2]

    assert "IQM" not in header(comparison)
    more = comparison.cells.assign(n=5)
    assert "IQM" in header(dataclasses.replace(comparison, cells=more))
