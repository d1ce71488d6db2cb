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

from mlpsuite.analysis import ALL_BACKENDS, CELL_METRICS, Comparison, parity_summary
from mlpsuite.registry import REFERENCE_BACKEND

TABLES = ("cells", "effects", "parity", "speed", "failures")
NOTE_ROWS = 10


def number(value: Any, digits: int = 4) -> str:
    """`digits` significant digits; '–' for a missing value."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def with_interval(mean: float, low: float, high: float, n: int | None = None) -> str:
    """`0.412 ± 0.018 (95% t, n=5)`; `0.412 (n=1)` where one seed gives no interval."""
    count = f"n={n}" if n is not None else ""
    if not math.isfinite(low):
        return f"{number(mean)}" + (f" ({count})" if count else "")
    return f"{number(mean)} ± {number((high - low) / 2)}" + (f" (95% t, {count})" if count else "")


def better(comparison: Comparison) -> str:
    return "lower" if comparison.direction == "min" else "higher"


def headline(comparison: Comparison) -> list[str]:
    """The answer in a few sentences: what was counted, the best cell, parity, speed."""
    lines = [counted_line(comparison), best_line(comparison), small_sample_line(comparison),
             parity_line(comparison), *speed_lines(comparison)]
    return [line for line in lines if line]


def counted_line(comparison: Comparison) -> str:
    excluded = comparison.n_trials - comparison.n_counted
    return (f"{comparison.n_counted} of {comparison.n_trials} trials counted"
            + (f"; {excluded} failed or not run, excluded from the statistics" if excluded else "")
            + f". Ranked by final {comparison.metric} ({better(comparison)} is better).")


def best_line(comparison: Comparison) -> str:
    best = comparison.best()
    if best is None:
        return ""
    m = comparison.metric
    cells = comparison.cells
    rivals = cells[(cells["backend"] == ALL_BACKENDS) & cells["overlaps_best"] & (cells["rank"] > 1)]
    return (f"Best cell: {best['cell']}, {m} "
            f"{with_interval(best[f'{m}_mean'], best[f'{m}_low'], best[f'{m}_high'], int(best['n']))}"
            + ("; one seed per cell gives no interval (add seeds for one)." if best["n"] < 2
               else f"; intervals overlapping it: {', '.join(rivals['cell'])}." if len(rivals)
               else "; no other cell's interval overlaps it."))


def small_sample_line(comparison: Comparison) -> str:
    """Few seeds make wide t-intervals and floor Wilcoxon's p: say so next to the numbers."""
    pooled = comparison.cells[comparison.cells["backend"] == ALL_BACKENDS] if not comparison.cells.empty else None
    if pooled is None or pooled.empty:
        return ""
    n = int(pooled["n"].min())
    if n < 2 or n >= 5:
        return ""
    return (f"Few seeds: with n={n} the 95% t-interval is ±{stats.t.ppf(0.975, n - 1):.3g} standard errors "
            f"wide, and a paired Wilcoxon test cannot give p below {2 / 2 ** n:.3g}; add seeds to "
            "separate close cells.")


def parity_line(comparison: Comparison) -> str:
    summary = parity_summary(comparison.parity)
    dropout = (f" {summary['not_expected']} (cell, seed) pairs with dropout are not expected to "
               "agree and are not counted." if summary.get("not_expected") else "")
    if REFERENCE_BACKEND in set(comparison.frame["backend"]):
        dropout += f" {REFERENCE_BACKEND} starts from its own initial weights: not compared."
    if not summary.get("compared"):
        return ("Backend parity: no (cell, seed) ran on two Keras backends." + dropout)
    return (f"Backend parity: largest relative difference of the initial and every epoch's loss "
            f"{number(summary['worst'])} (median {number(summary['median'])}) over "
            f"{summary['compared']} (cell, seed) pairs; initial weights identical in "
            f"{summary['weights_matched']} of {summary['compared']}.{dropout}")


def speed_lines(comparison: Comparison) -> list[str]:
    speed = comparison.speed
    if len(speed) < 2:
        return []
    per_step = speed.sort_values("step_time_ms").iloc
    per_trial = speed.sort_values("trial_time_s").iloc
    together = per_step[0].get("vectorized", 0) or 0
    per_seed = f" per seed, {int(together)} seeds trained as one program" if together > 1 else ""
    return [f"Fastest per step: {per_step[0]['backend']} ({number(per_step[0]['step_time_ms'])} ms/step{per_seed}, "
            f"{number(per_step[-1]['step_time_ms_x'])}× faster than {per_step[-1]['backend']}). "
            f"Fastest to a result: {per_trial[0]['backend']} (median trial {number(per_trial[0]['trial_time_s'])} s, "
            f"{number(per_trial[-1]['trial_time_s_x'])}× faster than {per_trial[-1]['backend']})."]


# ---------------------------------------------------------------- Markdown


def markdown(comparison: Comparison, max_rows: int | None = None, short: bool = False) -> str:
    """The whole report; `short` (the run description the MLflow UI shows first) keeps the
    answer, the ranking, the effects and the speed, each at most `max_rows` long."""
    parts = [f"### {comparison.experiment}: comparison of {comparison.n_trials} trials", "",
             *[f"- {line}" for line in headline(comparison)], "",
             f"#### Ranking by final {comparison.metric} (mean ± 95% t-interval over n seeds)", "",
             markdown_table(*ranking_rows(comparison, max_rows))]
    if not comparison.effects.empty:
        parts += ["", f"#### Paired effects on {comparison.metric} (paired on seed and the other grid keys; "
                  "a seed's backends averaged)", "", markdown_table(*effect_rows(comparison, max_rows))]
    if not short and _per_backend(comparison).shape[0]:
        parts += ["", f"#### Per backend: {comparison.metric} (mean ± 95% t-interval over n seeds; "
                  "sklearn from its own initial weights)", "", markdown_table(*backend_rows(comparison, max_rows))]
    if not comparison.parity.empty and not short:
        parts += ["", "#### Backend parity (relative differences across backends; worst pairs first)", "",
                  markdown_table(*parity_rows(comparison, max_rows))]
    if not comparison.speed.empty:
        parts += ["", "#### Speed per backend (medians; × = ratio to the fastest; compile = the first "
                  "epoch minus a steady one)", "", markdown_table(*speed_rows(comparison))]
    if not comparison.failures.empty:
        parts += ["", "#### Failures (excluded from the statistics)", "",
                  markdown_table(list(comparison.failures.columns),
                                  [[number(v) for v in row] for row in comparison.failures.itertuples(index=False)])]
    parts += ["", f"Grid run {comparison.parent_run_id}; tables in full under comparison/ "
              "(cells.csv, effects.csv, parity.csv, speed.csv, failures.csv) with the figures."]
    return "\n".join(parts) + "\n"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """A GitHub Markdown table (pipes inside cells escaped)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def ranking_rows(comparison: Comparison, max_rows: int | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the pooled ranking: one column per metric, `mean ± half-width`."""
    cells = comparison.cells
    if cells.empty or "rank" not in cells:
        return ["cell"], []
    pooled = cells[cells["backend"] == ALL_BACKENDS]
    metrics = [m for m in dict.fromkeys([comparison.metric, *CELL_METRICS]) if f"{m}_mean" in cells]
    header = ["rank", "cell", "n", *metrics, "overlaps best"]
    rows = [[str(int(row["rank"])), row["cell"], str(int(row["n"])) + ("" if row["n"] == row["trials"]
                                                                      else f" ({int(row['trials'])} runs)"),
             *[with_interval(row[f"{m}_mean"], row[f"{m}_low"], row[f"{m}_high"]) for m in metrics],
             "yes" if row["overlaps_best"] else ""]
            for _, row in pooled.head(max_rows or len(pooled)).iterrows()]
    return header, rows


def _per_backend(comparison: Comparison) -> pd.DataFrame:
    cells = comparison.cells
    if cells.empty or "rank" not in cells:
        return cells
    return cells[cells["backend"] != ALL_BACKENDS]


def backend_rows(comparison: Comparison, max_rows: int | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of each cell on each backend, in the pooled ranking's order."""
    m = comparison.metric
    header = ["rank", "cell", "backend", "n", m]
    per_backend = _per_backend(comparison).sort_values(["rank", "backend"])
    rows = [[str(int(row["rank"])) if math.isfinite(row["rank"]) else "–", row["cell"], row["backend"],
             str(int(row["n"])), with_interval(row[f"{m}_mean"], row[f"{m}_low"], row[f"{m}_high"])]
            for _, row in per_backend.head(max_rows or len(per_backend)).iterrows()]
    return header, rows


def effect_rows(comparison: Comparison, max_rows: int | None = None) -> tuple[list[str], list[list[str]]]:
    header = ["key", "level", "vs", "pairs", "difference [95%]", "p (paired t)", "p (Wilcoxon)", "p (Holm)"]
    rows = [[row["key"], str(row["level"]), str(row["reference"]), str(int(row["n_pairs"])),
             f"{number(row['mean_diff'])} [{number(row['diff_low'])}, {number(row['diff_high'])}]",
             number(row["p_ttest"]), number(row["p_wilcoxon"]), number(row["p_holm"])]
            for _, row in comparison.effects.head(max_rows or len(comparison.effects)).iterrows()]
    return header, rows


def parity_rows(comparison: Comparison, max_rows: int | None = None) -> tuple[list[str], list[list[str]]]:
    parity = comparison.parity
    header = ["cell", "seed", "backends", "weights identical", "initial loss", "epochs (max)", "at epoch",
              "epochs", "note"]
    rows = [[row["cell"], str(row["seed"]), row["backends"], "yes" if row["weights_match"] else "NO",
             number(row["initial_rel_diff"]), number(row["max_epoch_rel_diff"]), number(row["worst_epoch"]),
             str(row["epochs_compared"]), "" if row["expected_to_agree"] else "dropout: not expected to agree"]
            for _, row in parity.head(max_rows or len(parity)).iterrows()]
    return header, rows


def speed_rows(comparison: Comparison) -> tuple[list[str], list[list[str]]]:
    header = ["backend", "trials", "ms/step", "×", "compile s", "s/trial", "×", "worker start s"]
    rows = [[row["backend"], str(int(row["trials"])), number(row["step_time_ms"]), number(row["step_time_ms_x"]),
             number(row["first_epoch_overhead_s"]), number(row["trial_time_s"]), number(row["trial_time_s_x"]),
             number(row["worker_start_s"])]
            for _, row in comparison.speed.iterrows()]
    return header, rows


# ---------------------------------------------------------------- CSV, JSON, the folder


def tables(comparison: Comparison) -> dict[str, pd.DataFrame]:
    return {name: getattr(comparison, name) for name in TABLES}


def as_json(comparison: Comparison) -> str:
    """Stable keys, plain numbers (NaN as null): for scripts."""
    payload = {"experiment": comparison.experiment, "parent_run_id": comparison.parent_run_id,
               "metric": comparison.metric, "better": better(comparison), "grid_keys": comparison.grid_keys,
               "trials": comparison.n_trials, "trials_counted": comparison.n_counted,
               "parity_summary": parity_summary(comparison.parity),
               **{name: _records(table) for name, table in tables(comparison).items()}}
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
        from mlpsuite.plots import comparison_figures

        written += comparison_figures(comparison, folder)
    return written
