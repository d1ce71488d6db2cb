"""A grid's whole comparison: read its runs, apply its protocol, compute every table.

`compare` is the one entry point; `Comparison` holds what the report, the terminal and the
figures show. Without nuisance keys every grid key is scientific: cells are every grid
combination and a level's effect is averaged over the other keys. With nuisance keys each
scientific cell is taken at its best nuisance setting (analysis/protocol.py) first.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pandas as pd
from pydantic import ValidationError

from mlpsuite.analysis.frame import (
    finished,
    grid_column,
    grid_frame,
    pooled_rows,
    with_curve_measures,
)
from mlpsuite.analysis.protocol import (
    counterpart,
    protocol_sentence,
    selected_frame,
    selection_table,
)
from mlpsuite.analysis.tables import (
    bounded_interval,
    bounds,
    cell_table,
    direction,
    effect_table,
    failure_table,
    parity_summary,
    parity_table,
    seed_budget,
    speed_table,
)
from mlpsuite.config import short_value
from mlpsuite.config.compare import CompareSpec, protocol_problem
from mlpsuite.errors import ReportError
from mlpsuite.learning_curves import TARGET_METRICS
from mlpsuite.registry import RANKABLE, TARGET_MEASURES, did_you_mean
from mlpsuite.tracking import GRID_MANIFEST, TAG_MISSING, MissingRecordError, Tracker

SCIENTIFIC, NUISANCE = "scientific", "nuisance"


@dataclasses.dataclass(frozen=True)
class BestCell:
    """The ranking's first cell, as one line: `print(comparison.best())`.

    `low`/`high` are the comparison's interval (`interval`: "t" or "bootstrap") kept within
    the values the metric can take (`clipped` says a t-interval reached past them); `n` is
    the seeds, each the mean over `backends`. `best["val_loss_iqm"]` reads any column of the
    cell's row in `Comparison.cells` (`row`), as `best()` returned before.
    """

    cell: str
    metric: str
    mean: float
    low: float
    high: float
    n: int
    interval: str
    backends: str
    selected: str | None = None  # with nuisance keys: the setting the cell was taken at
    clipped: bool = False
    row: pd.Series = dataclasses.field(default_factory=pd.Series, repr=False, compare=False)

    @classmethod
    def of(cls, row: pd.Series, metric: str, interval: str) -> BestCell:
        """The best cell of a `cells` row: its mean and interval on `metric`, the interval
        clipped to the values the metric can take."""
        low, high = bounds(row, metric, interval)
        low, high, clipped = bounded_interval(metric, low, high)
        return cls(
            cell=str(row["cell"]),
            metric=metric,
            mean=float(row[f"{metric}_mean"]),
            low=float(low),
            high=float(high),
            n=int(row["n"]),
            interval=interval,
            backends=str(row.get("backends", "")),
            selected=row.get("selected"),
            clipped=clipped,
            row=row,
        )

    def __getitem__(self, column: str) -> Any:
        return self.row[column]

    def __contains__(self, column: str) -> bool:
        return column in self.row

    def __str__(self) -> str:
        at = f" at {self.selected}" if self.selected else ""
        if self.n < 2:
            spread = ""
        elif self.interval == "t" and not self.clipped:
            spread = f" ± {(self.high - self.low) / 2:.4g}"
        else:
            spread = f" [{self.low:.4g}, {self.high:.4g}]"
        which = "bootstrap" if self.interval == "bootstrap" else "t"
        kind = f"95% {which}{', clipped' if self.clipped else ''}, " if self.n >= 2 else ""
        pooled = f"; {self.backends}" if self.backends else ""
        return (
            f"{self.cell}{at}: {self.metric} {self.mean:.4g}{spread} "
            f"({kind}n={self.n} seeds{pooled})"
        )


@dataclasses.dataclass
class Comparison:
    """Everything the report shows, for one grid (its parent run)."""

    experiment: str
    parent_run_id: str
    metric: str
    grid_keys: list[str]
    frame: pd.DataFrame
    cells: pd.DataFrame
    effects: pd.DataFrame
    parity: pd.DataFrame
    speed: pd.DataFrame
    failures: pd.DataFrame
    curves: dict[str, list[float]]  # run id -> the ranking's loss per epoch
    losses: dict[str, list[float]]  # run id -> training loss per epoch (parity)
    ranked: pd.DataFrame | None = None  # the trials the cells summarise (the selected ones)
    protocol: CompareSpec = CompareSpec()
    scientific_keys: list[str] = dataclasses.field(default_factory=list)
    nuisance_keys: list[str] = dataclasses.field(default_factory=list)
    selection: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)  # every setting tried
    budget: dict[str, Any] | None = None  # seeds the closest unseparated pair would need
    seeds: int = 0
    description: str = ""  # the question the grid's config asks (`description:`)
    experiment_id: str = ""
    # Rows of each dataset's splits, as the grid's check counted them (empty for grids run
    # before the manifest kept them): [{"dataset": "iris", "train": 90, "val": 30, "test": 30}]
    splits: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    # A searched grid's keys by the share of select_on's variance each explains (fANOVA);
    # empty for a grid without `search:`.
    importance: pd.DataFrame = dataclasses.field(default_factory=pd.DataFrame)
    # A searched grid's space ({key: {low, high, log, integer} or {choices}}); empty otherwise.
    search_space: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def sampled_keys(self) -> list[str]:
        """The nuisance keys a search sampled over ranges or choices (none for a listed grid)."""
        return [key for key in self.nuisance_keys if key in self.search_space]

    @property
    def n_trials(self) -> int:
        """The trials of the grid (of the `where` part compared), whatever their status."""
        return len(self.frame)

    @property
    def n_counted(self) -> int:
        """The FINISHED trials: those the statistics count."""
        return len(finished(self.frame))

    @property
    def direction(self) -> str:
        """The better direction of `metric`: "min" when lower is better, "max" when higher."""
        return direction(self.metric)

    @property
    def interval(self) -> str:
        """The interval the ranking reports: "t" or "bootstrap" (`protocol.interval`)."""
        return self.protocol.interval

    @property
    def ranked_trials(self) -> pd.DataFrame:
        """The trials behind the cells: each cell's selected setting, or every trial."""
        return self.frame if self.ranked is None else self.ranked

    def protocol_sentence(self) -> str:
        """How the cells were compared, in words (the parent run's description opens with it)."""
        if self.nuisance_keys:
            return protocol_sentence(
                self.scientific_keys,
                self.nuisance_keys,
                self.protocol.select_on,
                self.metric,
                self.seeds,
            )
        if len(self.grid_keys) > 1:
            return (
                f"every grid key scientific ({', '.join(self.grid_keys)}): each cell as run, a "
                "key's effect averaged over the other keys' values; settings outside the grid fixed"
            )
        if self.grid_keys:
            return f"{self.grid_keys[0]} compared, every other setting fixed as the config sets it"
        return "one cell, every setting fixed as the config sets it"

    def selecting_split(self) -> tuple[str, str, int] | None:
        """(metric, split, rows) of what picks the winner: `select_on` with nuisance keys, else
        the ranking metric; rows: the split's smallest over the grid's datasets. None where
        the manifest has no split sizes."""
        chooser = self.protocol.select_on if self.nuisance_keys else self.metric
        split = "test" if chooser.startswith("test_") else "val" if "val_" in chooser else "train"
        rows = [int(entry[split]) for entry in self.splits if split in entry]
        return (chooser, split, min(rows)) if rows else None

    def best(self) -> BestCell | None:
        """The first cell of the ranking (None before any trial finished)."""
        pooled = pooled_rows(self.cells) if not self.cells.empty else self.cells
        if pooled.empty or f"{self.metric}_mean" not in pooled:
            return None
        return BestCell.of(pooled.iloc[0], self.metric, self.interval)

    def headline_metrics(self) -> dict[str, float]:
        """Parent-run metrics: the answer at a glance in the MLflow UI's chart view."""
        metrics: dict[str, float] = {
            "trials_counted": self.n_counted,
            "trials_excluded": self.n_trials - self.n_counted,
        }
        best = self.best()
        if best is not None:
            metrics[f"best_{self.metric}"] = float(best[f"{self.metric}_mean"])
            metrics[f"best_{self.metric}_iqm"] = float(best[f"{self.metric}_iqm"])
        summary = parity_summary(self.parity)
        if summary.get("compared"):
            metrics["parity_max_rel_diff"] = summary["worst"]
        for _, row in self.speed.iterrows():
            label = row["backend"].replace("=", "_")  # MLflow's metric names have no "="
            for column in ("step_time_ms", "trial_time_s", "time_to_target_s", "peak_rss_mb"):
                if column in row:
                    metrics[f"{column}_{label}"] = float(row[column])
        return {
            name: value
            for name, value in metrics.items()
            if value is not None and math.isfinite(value)
        }


def compare(
    tracker: Tracker,
    experiment: str,
    parent_run_id: str | None = None,
    by: str | None = None,
    metric: str | None = None,
    where: dict[str, str] | None = None,
    protocol: dict[str, Any] | None = None,
) -> Comparison:
    """The comparison of one grid of `experiment` (default: its most recently active grid).

    `where` ({grid key: value label}) keeps the trials with those grid values only; `protocol`
    overrides fields of the grid's own `compare:` section (`{"nuisance": []}` compares every
    key as scientific); `metric` is the reported metric.
    """
    parent, manifest, runs = grid_runs(tracker, experiment, parent_run_id)
    frame = grid_frame(manifest, runs)
    grid_keys = [grid_column(key) for key in manifest["grid_keys"]]
    frame = _selected(frame, grid_keys, where or {})
    spec = _protocol(manifest, protocol, metric, frame)
    _check_protocol(spec, manifest["grid_keys"], frame, searched=bool(manifest.get("search")))
    frame, curves, losses = _with_histories(tracker, frame, spec.target_pair())
    nuisance = [grid_column(key) for key in spec.nuisance]
    scientific = [key for key in grid_keys if key not in nuisance]
    metric = _checked_metric(
        frame, spec.metric or (counterpart(spec.select_on) if nuisance else None)
    )
    selection, ranked, importance = pd.DataFrame(), frame, pd.DataFrame()
    ranges = dict((manifest.get("search") or {}).get("space") or {})
    if ranges:  # which settings mattered, over every setting tried
        from mlpsuite.analysis.importance import importance_table

        seed = manifest.get("grid_key", experiment)
        importance = importance_table(frame, grid_keys, ranges, spec.select_on, seed)
    if nuisance:
        selection = selection_table(frame, scientific, nuisance, spec.select_on, ranges)
        ranked = selected_frame(frame, selection, scientific, nuisance)
    cells = cell_table(
        ranked,
        [*grid_keys, *(["selected", "edge"] if nuisance else [])],
        metric,
        spec.interval,
        seed=manifest.get("grid_key", experiment),
    )
    # A sampled key's points differ in every key at once: no two trials pair on the others, so
    # its effect is its importance, not a paired table of empty rows.
    paired = [key for key in _checked_keys(grid_keys, by) if key not in ranges]
    effects = _effects(frame, ranked, scientific, nuisance, paired, metric)
    return Comparison(
        experiment=experiment,
        parent_run_id=parent.info.run_id,
        metric=metric,
        grid_keys=grid_keys,
        frame=frame,
        cells=cells,
        effects=effects,
        parity=parity_table(frame, losses),
        speed=speed_table(frame),
        failures=failure_table(frame),
        curves=curves,
        losses=losses,
        ranked=ranked,
        protocol=spec,
        scientific_keys=scientific,
        nuisance_keys=nuisance,
        selection=selection,
        budget=seed_budget(ranked, cells, metric),
        seeds=int(frame["seed"].nunique()),
        description=manifest.get("description", ""),
        experiment_id=parent.info.experiment_id,
        splits=list(manifest.get("splits", [])),
        importance=importance,
        search_space=ranges,
    )


def _protocol(
    manifest: dict[str, Any],
    overrides: dict[str, Any] | None,
    metric: str | None,
    frame: pd.DataFrame,
) -> CompareSpec:
    """The grid's declared protocol (its manifest's `compare`), with the flags given laid over
    it."""
    declared = dict(manifest.get("compare") or {})
    given = {key: value for key, value in (overrides or {}).items() if value is not None}
    if metric is not None:
        given["metric"] = metric
    if given.get("nuisance") == []:  # every key scientific: nothing left to select
        declared.pop("select_on", None)
    try:
        return CompareSpec.model_validate({**declared, **given})
    except ValidationError as error:  # a metric name nobody records
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "metric"
        if field in ("select_on", "metric") and first["input"] not in RANKABLE:
            allowed = ", ".join(
                _recorded(frame, bool(given.get("target") or declared.get("target")))
            )
            raise ReportError(
                f"{first['input']} is not recorded by this grid's runs; allowed: {allowed}",
                field,
                first["input"],
            ) from None
        shown = first["input"] if isinstance(first["input"], str) else ""
        raise ReportError(first["msg"].removeprefix("Value error, "), field, shown) from None


def _recorded(frame: pd.DataFrame, target: bool) -> list[str]:
    """The rankable metrics this grid's runs have (curve measures included, as computed later)."""
    have = {name for name in RANKABLE if name in frame and frame[name].notna().any()}
    if "val_loss" in have:
        have.add("auc_val_loss")
    if target:
        have |= set(TARGET_MEASURES)
    return [name for name in RANKABLE if name in have]


def _check_protocol(
    spec: CompareSpec, grid_keys: list[str], frame: pd.DataFrame, searched: bool = False
) -> None:
    curves = [name for name in TARGET_METRICS if name in frame and frame[name].notna().any()]
    recorded = _recorded(frame, bool(spec.target))
    problem = protocol_problem(spec, grid_keys, recorded, curves, searched=searched)
    if problem is not None:
        field, message = problem
        given = getattr(spec, field)
        shown = (
            ",".join(given)
            if field == "nuisance"
            else ",".join(f"{k}={v:g}" for k, v in given.items())
            if field == "target"
            else given
        )
        raise ReportError(message, field, shown)


def _with_histories(tracker: Tracker, frame: pd.DataFrame, target: tuple[str, float] | None):
    """The frame with its curve measures, the ranking's curves (val_loss, else loss) and the
    training losses (parity), each run id -> values per epoch."""
    run_ids = list(finished(frame)["run_id"])
    histories = {"loss": tracker.metric_histories(run_ids, "loss")}
    wanted = ["val_loss"] if frame["val_loss"].notna().any() else []
    if target is not None:
        wanted += [target[0], "epoch_time_s"]
    for name in dict.fromkeys(wanted):
        if name not in histories:
            histories[name] = tracker.metric_histories(run_ids, name)
    frame = with_curve_measures(
        frame,
        histories.get("val_loss", {}),
        target,
        histories.get(target[0]) if target else None,
        histories.get("epoch_time_s"),
    )
    return frame, histories.get("val_loss", histories["loss"]), histories["loss"]


def _effects(
    frame: pd.DataFrame,
    ranked: pd.DataFrame,
    scientific: list[str],
    nuisance: list[str],
    keys: list[str],
    metric: str,
) -> pd.DataFrame:
    """Scientific keys on the selected trials, paired on seed and the other scientific keys;
    nuisance keys on every trial, paired on seed and every other grid key, as without a protocol."""
    tables = []
    for key in keys:
        if key in nuisance:
            table = effect_table(frame, key, [*scientific, *nuisance], metric)
        else:
            table = effect_table(ranked, key, scientific, metric)
        if not table.empty:
            tables.append(table.assign(role=NUISANCE if key in nuisance else SCIENTIFIC))
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def grid_runs(
    tracker: Tracker, experiment: str, parent_run_id: str | None = None
) -> tuple[Any, dict, list]:
    """(parent run, its manifest, every run of its trial keys) of one grid of `experiment`
    (default: its most recently active grid); one-line ReportErrors for what is not there."""
    experiment_id = tracker.find_experiment(experiment)
    if experiment_id is None:
        known = tracker.experiment_names()
        hint = did_you_mean(experiment, known)
        raise ReportError(
            f"no experiment {experiment!r} in {tracker.uri}; {hint}"
            f"experiments: {', '.join(known) or '(none)'}"
        )
    parent = _parent(tracker, experiment, experiment_id, parent_run_id)
    manifest = _manifest(tracker, parent.info.run_id)
    keys = {trial["key"] for trial in manifest["trials"]}
    return parent, manifest, tracker.grid_trial_runs(experiment_id, parent, keys)


def _parent(tracker: Tracker, experiment: str, experiment_id: str, parent_run_id: str | None):
    parents = tracker.grid_parents(experiment_id)
    if not parents:
        raise ReportError(
            f"experiment {experiment!r} has no grid run yet; run one with mlpsuite run"
        )
    if parent_run_id is None:
        return parents[0]
    for parent in parents:
        if parent.info.run_id == parent_run_id:
            return parent
    listed = ", ".join(p.info.run_id for p in parents[:10])
    raise ReportError(
        f"not a grid run of experiment {experiment!r}; its grid runs: {listed}",
        "parent",
        parent_run_id,
    )


def _manifest(tracker: Tracker, parent_run_id: str) -> dict[str, Any]:
    try:
        return tracker.load_json(parent_run_id, GRID_MANIFEST)
    except MissingRecordError:
        missing = tracker.get_run(parent_run_id).data.tags.get(TAG_MISSING)
        why = f"it could not be written: {missing}" if missing else "an older mlpsuite made it"
        raise ReportError(
            f"grid run {parent_run_id} has no {GRID_MANIFEST} ({why}); "
            "run its config again to record one"
        ) from None


def _selected(frame: pd.DataFrame, grid_keys: list[str], where: dict[str, str]) -> pd.DataFrame:
    """The trials whose grid value of each key in `where` has the given label."""
    for key, wanted in where.items():
        column = grid_column(key)
        if column not in grid_keys:
            raise ReportError(
                f"{key} is not a grid key of this grid; allowed: "
                f"{', '.join(grid_keys) or '(none: one cell)'}",
                "where",
                f"{key}={wanted}",
            )
        labels = frame[column].map(short_value)
        if wanted not in set(labels):
            raise ReportError(
                f"no such value; allowed: {', '.join(dict.fromkeys(labels))}",
                "where",
                f"{key}={wanted}",
            )
        frame = frame[labels == wanted]
    return frame.reset_index(drop=True)


def _checked_metric(frame: pd.DataFrame, metric: str | None) -> str:
    available = [name for name in RANKABLE if name in frame and frame[name].notna().any()]
    if metric is None:
        return next(
            (name for name in ("val_loss", "loss") if name in available),
            available[0] if available else "val_loss",
        )
    if metric not in available:
        raise ReportError(
            f"{metric} is not recorded by this grid's runs; allowed: "
            f"{', '.join(available) or '(none)'}",
            "metric",
            metric,
        )
    return metric


def _checked_keys(grid_keys: list[str], by: str | None) -> list[str]:
    if by is None:
        return grid_keys
    by = grid_column(by)
    if by not in grid_keys:
        raise ReportError(
            f"not a grid key of this grid; allowed: {', '.join(grid_keys) or '(none: one cell)'}",
            "by",
            by,
        )
    return [by]
