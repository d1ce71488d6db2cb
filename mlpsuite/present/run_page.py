"""The MLflow UI as the page of the answer: the parent run's description with the comparison's
figures in it, and the experiment's description listing its grids.

MLflow renders both descriptions as Markdown, with HTML sanitised (an image keeps no width or
style). A relative URL `get-artifact?path=...&run_uuid=...` is served by `mlflow ui` and by
`mlflow server`, with or without `--serve-artifacts`, so the page needs no absolute address.
The run page shows the first three lines of a description until "Show more" is clicked:
the question and the best cell come first, then the ranking figure and the curves.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from urllib.parse import quote

from mlpsuite.analysis import Comparison
from mlpsuite.analysis.versions import mixed_libraries, version_line
from mlpsuite.present.report import NOTE_ROWS, better, cell_value, markdown

FIRST_FIGURES = ("final_metric", "curves")  # the ranking and the curves, above the tables
LATER_FIGURES = ("isolation", "parity", "speed")
FIGURE_TITLES = {
    "final_metric": "ranking",
    "curves": "curves",
    "isolation": "isolation",
    "parity": "backend parity",
    "speed": "backend speed",
}
TAG_BEST = "mlpsuite.best"  # the best cell in one line, for the experiment's description
TAG_QUESTION = "mlpsuite.question"  # the config's `description:`
VIEW = "workflowType=machine_learning"  # MLflow 3 opens in its GenAI view otherwise


def figure_url(run_id: str, name: str) -> str:
    """The relative URL the MLflow UI serves `comparison/NAME.png` of run `run_id` at."""
    return f"get-artifact?path={quote(f'comparison/{name}.png', safe='')}&run_uuid={run_id}"


def best_summary(comparison: Comparison) -> str:
    """`activation=elu at learning_rate=0.01: test_loss 0.0114 ± 0.002 (n=10)`; '' without cells."""
    best = comparison.best()
    if best is None:
        return ""
    selected = f" at {best['selected']}" if "selected" in best else ""
    m = comparison.metric
    return f"{best['cell']}{selected}: {m} {cell_value(best.row, m, comparison.interval, n=True)}"


def run_note(comparison: Comparison, figures: Iterable[str]) -> str:
    """The parent run's description: question, best cell, ranking and curves, the short report,
    the other figures. `figures` names the PNGs written (`curves`, `final_metric`, ...)."""
    made, best = set(figures), best_summary(comparison)
    answer = (
        f"**Best: {best}** ({comparison.n_counted} of {comparison.n_trials} trials counted; "
        f"{better(comparison)} {comparison.metric} is better)"
        if best
        else "No cell has a finished trial yet."
    )
    versions = version_line(comparison.frame)
    mixed = f"**{versions}**" if mixed_libraries(comparison.frame) else ""
    top = [
        mixed,
        f"**{comparison.description}**" if comparison.description else "",
        answer,
        _images(comparison.parent_run_id, [name for name in FIRST_FIGURES if name in made]),
    ]
    later = _images(comparison.parent_run_id, [name for name in LATER_FIGURES if name in made])
    parts = (
        [part for part in top if part]
        + [markdown(comparison, NOTE_ROWS, short=True)]
        + ([] if mixed else [versions])
    )
    return "\n\n".join(parts + ([f"#### Figures\n\n{later}"] if later else []))


def _images(run_id: str, names: list[str]) -> str:
    return "\n".join(f"![{FIGURE_TITLES[name]}]({figure_url(run_id, name)})" for name in names)


def grid_tags(comparison: Comparison) -> dict[str, str]:
    """What the experiment's description reads back from each grid's parent run."""
    return {
        TAG_BEST: best_summary(comparison) or "no finished trial",
        TAG_QUESTION: comparison.description,
    }


def experiment_note(experiment: str, experiment_id: str, parents: list) -> str:
    """The experiment's description: the latest grid's question and answer first (the runs page
    shows one line of it until expanded), then each grid with a link to its parent run."""
    if not parents:
        return f"{experiment}: no grid run yet."
    entries = [_grid_entry(experiment_id, parent) for parent in parents[:50]]
    more = (
        [f"- … and {len(parents) - len(entries)} older grids."]
        if len(parents) > len(entries)
        else []
    )
    return (
        "\n".join(
            [
                f"**Latest grid:** {entries[0]}",
                "",
                f"{experiment}: {len(parents)} grid{'' if len(parents) == 1 else 's'}, the most "
                "recently run first. Each grid's parent run holds its comparison: figures, tables "
                "and the protocol.",
                "",
                *[f"- {entry}" for entry in entries],
                *more,
            ]
        )
        + "\n"
    )


def _grid_entry(experiment_id: str, parent) -> str:
    """`[quickstart grid](#/...) (54 trials, 2026-12-01 10:42): Question? Best: ...`."""
    tags, info = parent.data.tags, parent.info
    started = datetime.datetime.fromtimestamp(info.start_time / 1000).strftime("%Y-%m-%d %H:%M")
    link = f"#/experiments/{experiment_id}/runs/{info.run_id}?{VIEW}"
    question = f" {tags[TAG_QUESTION]}" if tags.get(TAG_QUESTION) else ""
    trials = parent.data.params.get("grid_size", "?")
    return (
        f"[{info.run_name or info.run_id}]({link}) ({trials} trials, {started}):{question} "
        f"Best: {tags.get(TAG_BEST, 'not compared yet')}."
    )
