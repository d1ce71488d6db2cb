"""Run the ready ablations and write their answers into the site's Results page (docs/results.md).

    python experiments/results.py [--tracking-uri URI] [--only NAME ...] [--skip-run]

Each experiment is run with `mlpsuite run` (trials already FINISHED in the store are reused),
then its comparison is read back from the store. For each: the question, the ranking table
(`mlpsuite compare --format markdown`'s), a figure, and a one-sentence answer built from the
comparison's own numbers. Written between the page's results markers (figures under
`docs/results/`), with the date, the machine and each run's wall time. `make results` runs it;
the README links to the page rather than copying its numbers.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "results"
PAGE = ROOT / "docs" / "results.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
MAX_ROWS = 12


@dataclass(frozen=True)
class Experiment:
    name: str
    protocol: str  # why its settings are tuned or fixed
    parts: tuple[dict[str, str], ...] = ({},)  # `--where` selections, one answer each
    lecture_figures: tuple[str, ...] = ()  # `mlpsuite figures NAME --experiment` extras

    @property
    def question(self) -> str:
        """The config's own `description:`, which its parent run and experiment page show too."""
        return yaml.safe_load(
            (ROOT / "experiments" / f"{self.name}.yaml").read_text(encoding="utf-8")
        )["description"]


TUNED = (
    "The learning rate is a nuisance key: each cell is taken at its own best rate (lowest mean "
    "val_loss over the seeds) and reported on test_loss, as the Deep Learning Tuning Playbook "
    "does; averaged over the rates instead, a level that is poor at one rate would lose to one "
    "that is mediocre at all."
)
EXPERIMENTS = (
    Experiment("activations", TUNED),
    Experiment(
        "scaling",
        TUNED + " Unscaled inputs get the rate that "
        "suits them, not the one chosen for scaled ones.",
        tuple({"dataset.name": name} for name in ("wine", "breast_cancer", "diabetes")),
    ),
    Experiment(
        "optimizers",
        "The learning rate and each setting an optimizer reads (momentum, beta_1, weight decay) "
        "are nuisance keys, searched quasi-randomly (9 points of a scrambled Sobol' sequence, "
        "the same for every optimizer): each optimizer is taken at its own best point (lowest "
        "mean val_loss over the seeds) and reported on test_loss, the Deep Learning Tuning "
        "Playbook's protocol and its recommended search.",
    ),
    Experiment(
        "optimizers-grid",
        TUNED + " The same budget as the searched design above, 9 settings per optimizer, "
        "spent on the learning rate alone (momentum 0.9, beta_1 0.9, weight decay 0.004 fixed).",
    ),
    Experiment(
        "depth",
        "Fixed hyperparameters (momentum SGD at 0.01 for every depth and activation): the question "
        "is the gradient at initialisation (epoch 0), which no learning rate changes, so the rate "
        "is not tuned; the ranking below compares the cells at that one rate.",
        lecture_figures=("gradients", "dead_units"),
    ),
    Experiment(
        "backends",
        "Fixed hyperparameters by design: the same settings on every backend, compared for parity, "
        "speed and time to a val_loss of 0.5.",
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__ and __doc__.splitlines()[0])
    parser.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlruns/mlflow.db"),
    )
    parser.add_argument("--only", nargs="+", choices=[e.name for e in EXPERIMENTS])
    parser.add_argument("--skip-run", action="store_true", help="report on what the store has")
    args = parser.parse_args(argv)
    os.chdir(ROOT)
    DOCS.mkdir(parents=True, exist_ok=True)
    timings = (
        json.loads((DOCS / "timings.json").read_text()) if (DOCS / "timings.json").exists() else {}
    )
    chosen = [e for e in EXPERIMENTS if not args.only or e.name in args.only]
    for experiment in chosen:
        if not args.skip_run:
            timings[experiment.name] = _run(experiment, args.tracking_uri)
    (DOCS / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    sections = [
        _section(e, args.tracking_uri, timings.get(e.name))
        for e in EXPERIMENTS
        if _in_store(e.name, args.tracking_uri)
    ]
    _into_page("\n".join([_preamble(), *sections]))
    print(f"wrote the Results page (docs/results.md) and its figures in {DOCS}", file=sys.stderr)
    return 0


def _in_store(name: str, uri: str) -> bool:
    from mlpsuite.tracking import Tracker

    return Tracker(uri).find_experiment(name) is not None


def _mlpsuite(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlpsuite.cli", *args], check=True, text=True, **kwargs
    )


def _run(experiment: Experiment, uri: str) -> dict:
    began = time.perf_counter()
    _mlpsuite("run", f"experiments/{experiment.name}.yaml", "--tracking-uri", uri)
    return {
        "wall_s": round(time.perf_counter() - began, 1),
        "date": datetime.date.today().isoformat(),
    }


def _section(experiment: Experiment, uri: str, timing: dict | None) -> str:
    from mlpsuite.analysis import compare
    from mlpsuite.tracking import Tracker

    tracker = Tracker(uri)
    lines = [
        f"## {experiment.name}: {experiment.question}",
        "",
        f"`mlpsuite run experiments/{experiment.name}.yaml`"
        + (f" — {timing['wall_s']:.0f} s on {timing['date']}" if timing else ""),
        "",
        f"*Protocol:* {experiment.protocol}",
        "",
    ]
    for where in experiment.parts:
        comparison = compare(tracker, experiment.name, where=where)
        label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in where.items())
        figure = _figure(comparison, experiment.name + "".join(f"-{v}" for v in where.values()))
        lines += ([f"**{label}**", ""] if label else []) + [
            f"**Answer:** {answer(comparison, where)}",
            "",
            _table(comparison),
            "",
            f"![{experiment.name} {label}]({figure})",
            "",
        ]
    if experiment.name == "depth":
        lines += [f"**Vanishing gradient:** {depth_answer(uri)}", ""]
    for name in experiment.lecture_figures:
        _mlpsuite(
            "figures",
            name,
            "--experiment",
            experiment.name,
            "--tracking-uri",
            uri,
            "--out",
            str(DOCS),
        )
        lines += [f"![{name} in {experiment.name}](results/{name}.png)", ""]
    return "\n".join(lines)


def answer(comparison, where: dict[str, str] | None = None) -> str:
    """Sentences from the comparison's numbers: the protocol, the best cell with its interval,
    IQM and setting, who ties with it and the chance a runner-up's run beats it, the last, the
    seed budget, each scientific key's paired effect, the target, and for several backends
    their agreement and speed."""
    from mlpsuite.present import report

    pooled = comparison.cells[comparison.cells["backend"] == "all"]
    m = comparison.metric
    best, worst = pooled.iloc[0], pooled.iloc[-1]
    ties = [
        _short(cell, where)
        for cell, overlaps, rank in zip(
            pooled["cell"], pooled["overlaps_best"], pooled["rank"], strict=True
        )
        if overlaps and rank > 1
    ]
    at = f" at {best['selected']}" if "selected" in best else ""
    sentence = (
        f"{_protocol_lead(comparison)}{_short(best['cell'], where)}{at} ranks first on {m} "
        f"({report.cell_value(best, m, n=True)}; IQM {report.number(best[f'{m}_iqm'])}, 95% "
        f"bootstrap [{report.number(best[f'{m}_boot_low'])}, "
        f"{report.number(best[f'{m}_boot_high'])}])"
    )
    if ties:
        named = "; ".join(ties[:3]) + (f" and {len(ties) - 3} more" if len(ties) > 3 else "")
        sentence += (
            f"; {len(ties)} other cells' intervals overlap it ({named})"
            if len(ties) > 1
            else f"; {named}'s interval overlaps it"
        )
    else:
        sentence += "; no other cell's interval overlaps it"
    if len(pooled) > 2:
        sentence += (
            f"; {_short(worst['cell'], where)} is last ({report.number(worst[f'{m}_mean'])})"
        )
    sentences = [
        sentence + ".",
        _improvement_sentence(comparison, pooled, where),
        report.budget_line(comparison),
        report.edge_line(comparison),
        *_effect_sentences(comparison, where),
        _target_sentence(comparison, pooled, where),
    ]
    if comparison.speed.shape[0] > 1:
        sentences += [report.parity_line(comparison), *report.speed_lines(comparison)]
    return " ".join(line for line in sentences if line)


def _protocol_lead(comparison) -> str:
    if not comparison.nuisance_keys:
        return ""
    return (
        f"Each at its best {', '.join(comparison.nuisance_keys)} (selected on mean "
        f"{comparison.protocol.select_on} over {comparison.seeds} seeds, reported on "
        f"{comparison.metric}): "
    )


def _improvement_sentence(comparison, pooled, where) -> str:
    """rliable's probability of improvement of the runner-up over the best, from the paired
    effects."""
    if len(comparison.scientific_keys) != 1 or len(pooled) < 2 or comparison.effects.empty:
        return ""
    key = comparison.scientific_keys[0]
    effects = comparison.effects[comparison.effects["key"] == key]
    runner_up = pooled.iloc[1][key]
    row = effects[effects["level"] == runner_up]
    if row.empty:
        return ""
    row = row.iloc[0]
    return (
        f"The probability that a run of {_short(pooled.iloc[1]['cell'], where)} beats one of "
        f"{_short(pooled.iloc[0]['cell'], where)} is {row['prob_improvement']:.2f} "
        f"(paired t p = {row['p_ttest']:.2g} over {int(row['n_pairs'])} seeds)."
    )


def _target_sentence(comparison, pooled, where) -> str:
    """Epochs to the target per cell, the fastest three, with how many seeds got there."""
    target = comparison.protocol.target_pair()
    if target is None or "epochs_to_target_mean" not in pooled or comparison.speed.shape[0] > 1:
        return ""
    from mlpsuite.learning_curves import reach_sign
    from mlpsuite.present import report

    ordered = pooled.assign(_missing=pooled["n"] - pooled["epochs_to_target_n"]).sort_values(
        ["_missing", "epochs_to_target_mean"]
    )
    shown = [
        f"{_short(row['cell'], where)} {report.number(row['epochs_to_target_mean'], 3)} epochs "
        f"({int(row['epochs_to_target_n'])}/{int(row['n'])} seeds)"
        for _, row in ordered.head(3).iterrows()
    ]
    never = int((pooled["epochs_to_target_n"] == 0).sum())
    return (
        f"First to {target[0]} {reach_sign(target[0])} {target[1]:g}: {', '.join(shown)}"
        + (f"; {never} cells never reached it" if never else "")
        + "."
    )


def _effect_sentences(comparison, where: dict[str, str] | None) -> list[str]:
    """Per grid key: which levels are worse than the best level, paired on seed and the other
    keys, at Holm-adjusted p < 0.05, and which cannot be separated from it."""
    effects = comparison.effects
    sentences = []
    for key in [] if effects.empty else dict.fromkeys(effects["key"]):
        if (where and key in where) or key in comparison.nuisance_keys:
            continue
        rows = effects[effects["key"] == key]
        worse = [
            str(level) for level, p in zip(rows["level"], rows["p_holm"], strict=True) if p < 0.05
        ]
        unclear = [
            str(level)
            for level, p in zip(rows["level"], rows["p_holm"], strict=True)
            if not p < 0.05
        ]
        sentence = (
            f"Paired on seed and the other keys, {key} = {rows['reference'].iloc[0]} is best; "
            + (
                f"worse at Holm p < 0.05: {', '.join(worse)}"
                if worse
                else "no level is worse at Holm p < 0.05"
            )
        )
        if unclear:
            sentence += f"; not separated from it: {', '.join(unclear)}"
        sentences.append(sentence + f" ({int(rows['n_pairs'].max())} pairs each).")
    return sentences


def _short(cell: str, where: dict[str, str] | None) -> str:
    """A cell label without the parts `where` fixed."""
    fixed = {f"{key.split('.')[-1]}={value}" for key, value in (where or {}).items()}
    return ", ".join(part for part in cell.split(", ") if part not in fixed) or cell


def depth_answer(uri: str) -> str:
    """The question of depth.yaml, from the diagnostics: the first layer's initial gradient with
    sigmoid against ReLU, at each depth."""
    from mlpsuite.figures import grid_gradient_norms

    panels = grid_gradient_norms("depth", uri)
    ratios = []
    for hidden, by_activation in panels.items():
        if {"sigmoid", "relu"} <= set(by_activation):
            first = {name: float(np.nanmean(rows[:, 0])) for name, rows in by_activation.items()}
            depth = len(json.loads(hidden))
            ratios.append(
                f"{depth} layer{'s' if depth > 1 else ''}: {first['relu'] / first['sigmoid']:.3g}×"
            )
    return (
        "At initialisation the first layer's gradient norm with ReLU is, over sigmoid's, "
        + "; ".join(ratios)
        + " (mean over seeds, `grad_norm/dense_1` at epoch 0)."
    )


def _table(comparison) -> str:
    from mlpsuite.present import report

    header, rows = report.ranking_rows(comparison, MAX_ROWS)
    table = report.markdown_table(header, rows)
    if comparison.speed.shape[0] > 1:
        table += "\n\n" + report.markdown_table(*report.backend_rows(comparison, MAX_ROWS))
        table += "\n\n" + report.markdown_table(*report.speed_rows(comparison))
    return table


def _figure(comparison, stem: str) -> str:
    from mlpsuite.present.plots import backend_speed, isolation, loss_curves

    # Several backends: their speed; a tuned nuisance key: the isolation plot; else the curves.
    draw = (
        backend_speed
        if comparison.speed.shape[0] > 1
        else isolation
        if comparison.nuisance_keys
        else loss_curves
    )
    figure = draw(comparison)
    if figure is None:
        raise SystemExit(f"{stem}: no finished trial to draw")
    path = DOCS / f"{stem}.png"
    figure.savefig(path, dpi=90, bbox_inches="tight")
    return str(path.relative_to(PAGE.parent))  # the page's own folder, docs/


def _preamble() -> str:
    cores = os.cpu_count()
    return (
        "Measured by `make results` (`experiments/results.py`) on "
        f"{datetime.date.today().isoformat()}, {platform.machine()} Linux with {cores} cores, "
        f"Python {platform.python_version()}. Each answer is computed from the runs in the store: "
        "intervals are 95% t-intervals over seeds (bootstrap intervals and interquartile means "
        'beside them), "overlaps" means the intervals overlap, and each section says whether its '
        "learning rate was tuned per cell or fixed.\n"
    )


def _into_page(body: str) -> None:
    text = PAGE.read_text(encoding="utf-8")
    if START not in text:
        raise SystemExit(f"{PAGE}: no {START} ... {END} markers")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    PAGE.write_text(pattern.sub(lambda _: f"{START}\n{body}\n{END}", text), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
