"""mlpsuite's Python API: run a grid from a YAML file or a dict, read a grid's comparison back.

    import mlpsuite
    result = mlpsuite.run("experiments/quickstart.yaml")  # or run({...}) in the YAML's shape
    result                                                # in Jupyter: ranking, parity, curves
    mlpsuite.compare("quickstart").cells                  # any grid in the store, later

The `mlpsuite` command is a layer over these functions: it parses flags and prints. They
import MLflow, pandas and the executors only when called, so `import mlpsuite` stays light.
A user mistake raises `mlpsuite.ConfigError` (a bad config, flag or value), `StoreError` (an
unusable store) or `ReportError` (what the store does not hold), each one line naming what to
fix, before anything is written.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpsuite.errors import ConfigError

if TYPE_CHECKING:
    from mlpsuite.config import GridSpec, Trial
    from mlpsuite.config.search import SearchSpec
    from mlpsuite.present.notebook import Comparison, GridResult

Config = str | Path | Mapping[str, Any]
EXECUTORS = ("local", "ray")
NO_NUISANCE = "none"
REUSE_RUNS = ("any", "same-versions")


class Plan(list):  # of Trial (a runtime import of config would make `import mlpsuite` heavier)
    """What `plan` returns: the trials, in order (a list); `splits`, the rows of each
    dataset's train, val and test splits (`[{"dataset": "iris", "train": 90, ...}]`);
    `reused`, the keys of the trials the store would reuse (None: no store read), and
    `store`, which store that is (or why none was read); `search`, the grid's `search:`
    section (None: its cells are all listed)."""

    def __init__(
        self,
        trials: list[Trial],
        splits: list[dict[str, Any]],
        reused: set[str] | None = None,
        store: str = "",
        search: SearchSpec | None = None,
    ):
        super().__init__(trials)
        self.splits, self.reused, self.store = splits, reused, store
        self.search = search  # the grid's `search:` section, if it samples points


def plan(
    config: Config,
    *,
    backends: str | Sequence[str] | None = None,
    tracking_uri: str | None = None,
) -> Plan:
    """The trials `run` would consider, validated and with every dataset loaded, and which of
    them the store (`tracking_uri`, else as `run` picks it) would reuse, if it exists;
    nothing is written."""
    from mlpsuite.config import expand, load_config, source_path, unique_trials
    from mlpsuite.grid_checks import check_grid

    spec = load_config(config, backends=_backends(backends))
    splits = check_grid(spec, source_path(config))
    trials = unique_trials(expand(spec, source_path(config)))
    reused, store = _reusable_in_store(spec, trials, tracking_uri)
    return Plan(trials, splits, reused, store, spec.search)


def _reusable_in_store(spec: GridSpec, trials: list[Trial], tracking_uri: str | None):
    """(the keys the store would reuse, the store's name), or (None, why it was not read)."""
    from mlpsuite.errors import StoreError
    from mlpsuite.tracking.store import existing_store, given_uri, shown_uri

    uri = given_uri(tracking_uri)
    if not existing_store(uri):
        return None, f"no store at {shown_uri(uri)} yet"
    from mlpsuite.runner import reusable_keys
    from mlpsuite.tracking import StoreReader

    try:
        return reusable_keys(StoreReader(uri), spec, trials), shown_uri(uri)
    except StoreError as error:  # a plan needs no store: say why it was not read
        return None, f"store not read ({error})"


def run(
    config: Config,
    *,
    tracking_uri: str | None = None,
    backends: str | Sequence[str] | None = None,
    jobs: int | None = None,
    force: bool = False,
    executor: str = "local",
    progress: bool = True,
    reuse_models: bool = True,
    address: str | None = None,
    max_retries: int = 1,
    reuse_runs: str | None = None,
    reuse: bool | None = None,
) -> GridResult:
    """Run every trial of a grid not already FINISHED in its experiment, then its comparison.

    `config` is a YAML path or a dict in the YAML's shape. `backends` ("tf,jax" or a list)
    overrides the config's; `jobs` is the number of workers (default: one per core); `force`
    runs FINISHED trials again; `executor` is "local" (worker processes) or "ray" (`address`:
    an existing cluster; `max_retries`: runs of a trial whose actor died);
    `reuse_models=False` builds and compiles a fresh model for every trial (results are
    bit-identical). `progress` shows a live bar (terminal or notebook). `reuse_runs` overrides
    the config's `reuse:`: "any" FINISHED trial of a key is reused, or only those recorded with
    the installed library versions ("same-versions"). `reuse` is the old name of
    `reuse_models`, deprecated (a warning), to go in the next release.
    """
    from mlpsuite.config import load_config, source_path

    if reuse is not None:
        warnings.warn(
            "mlpsuite.run(reuse=...) is deprecated: it is reuse_models= (compiled models); "
            "reuse_runs= is the config's reuse: (FINISHED runs)",
            DeprecationWarning,
            stacklevel=2,
        )
        reuse_models = reuse
    if executor not in EXECUTORS:
        raise ConfigError(
            f"executor: {executor!r} is not an executor; allowed: {', '.join(EXECUTORS)}"
        )
    if jobs is not None and (not isinstance(jobs, int) or jobs < 1):
        raise ConfigError(f"jobs: expected a positive integer, got {jobs!r}")
    spec = load_config(
        config, backends=_backends(backends)
    )  # the data is checked once the workers start
    if reuse_runs is not None:
        if reuse_runs not in REUSE_RUNS:
            raise ConfigError(f"reuse: {reuse_runs!r}; allowed: {', '.join(REUSE_RUNS)}")
        spec = spec.model_copy(update={"reuse": reuse_runs})
    pool = _executor(executor, jobs, reuse_models, address, max_retries)
    try:
        return _run_started(spec, source_path(config), pool, tracking_uri, force, progress)
    finally:
        pool.shutdown()


def compare(
    experiment: str,
    *,
    tracking_uri: str | None = None,
    parent: str | None = None,
    by: str | None = None,
    metric: str | None = None,
    where: Mapping[str, Any] | None = None,
    nuisance: str | Sequence[str] | None = None,
    select_on: str | None = None,
    interval: str | None = None,
    target: Mapping[str, float] | None = None,
    log: bool = False,
) -> Comparison:
    """The comparison of one grid of `experiment` (default: its most recently run grid), read
    from the store. `where` keeps the trials with those grid values ({"dataset.name": "wine"});
    `nuisance`, `select_on`, `interval` and `target` override the grid's `compare:` section
    (`nuisance="none"` or [] compares every key); `log` (re)writes it onto the parent run."""
    from mlpsuite.present.notebook import Comparison
    from mlpsuite.tracking import Tracker, resolve_uri

    if log and where:
        raise ConfigError(
            "--log with --where: the parent run's comparison covers its whole grid; "
            "drop --where to log, or --log to look at a part"
        )
    tracker = Tracker(resolve_uri(tracking_uri, create=False))
    protocol = protocol_overrides(nuisance, select_on, interval, target)
    if log:
        from mlpsuite.runner import log_comparison

        return Comparison.of(
            log_comparison(tracker, experiment, parent, by=by, metric=metric, protocol=protocol)
        )
    from mlpsuite.analysis import compare as compare_grid

    found = compare_grid(
        tracker,
        experiment,
        parent,
        by=by,
        metric=metric,
        where={key: str(value) for key, value in (where or {}).items()},
        protocol=protocol,
    )
    return Comparison.of(found)


def protocol_overrides(
    nuisance: str | Sequence[str] | None,
    select_on: str | None,
    interval: str | None,
    target: Mapping[str, float] | None,
) -> dict[str, Any]:
    """The protocol fields given (None: the grid's own); `nuisance` "none" means no nuisance key."""
    if isinstance(nuisance, str):
        nuisance = [nuisance]
    if nuisance is not None:
        nuisance = [key for key in nuisance if key != NO_NUISANCE]
    return {
        "nuisance": nuisance,
        "select_on": select_on,
        "interval": interval,
        "target": dict(target) if target is not None else None,
    }


def _backends(backends: str | Sequence[str] | None) -> str | None:
    return backends if backends is None or isinstance(backends, str) else ",".join(backends)


def _executor(
    kind: str, jobs: int | None, reuse_models: bool, address: str | None, max_retries: int
):
    if kind == "ray":
        from mlpsuite.executors.ray import RayExecutor

        return RayExecutor(jobs, reuse=reuse_models, address=address, max_retries=max_retries)
    if address is not None:
        raise ConfigError("address: applies only to executor='ray' (--executor ray)")
    from mlpsuite.executors.local import LocalExecutor

    return LocalExecutor(jobs, reuse=reuse_models)


def _run_started(
    spec: GridSpec, source: Path, pool, tracking_uri: str | None, force: bool, progress: bool
) -> GridResult:
    from mlpsuite.config import expand
    from mlpsuite.grid_checks import check_grid
    from mlpsuite.tracking.store import existing_store, given_uri

    # A store that exists may hold every trial already: the runner checks the data only if
    # some trial is to run (before it writes). A new one would be created by opening it.
    splits = None if existing_store(given_uri(tracking_uri)) else check_grid(spec, source)
    from mlpsuite.config import unique_trials
    from mlpsuite.runner import run_grid  # MLflow comes with it
    from mlpsuite.tracking import Tracker, resolve_uri

    trials = unique_trials(expand(spec, source))
    tracker = Tracker(resolve_uri(tracking_uri))
    display, on_plan, stop = (
        _progress(spec.name, trials, tracker.uri) if progress else (None, None, lambda: None)
    )
    try:
        outcome = run_grid(
            spec,
            source,
            tracker,
            force=force,
            display=display,
            on_plan=on_plan,
            executor=pool,
            trials=trials,
            splits=splits,
            check_data=functools.partial(check_grid, spec, source),
        )
    finally:
        stop()
    return _result(spec.name, tracker.uri, outcome)


def _progress(
    experiment: str, trials: list[Trial], uri: str
) -> tuple[Callable, Callable, Callable]:
    """The live display: what the grid will run and reuse, then a bar per worker."""
    from mlpsuite.config.reference import sklearn_note
    from mlpsuite.executors.units import populations_note, vectorize_note
    from mlpsuite.present.terminal import GridProgress, make_console
    from mlpsuite.tracking import shown_uri

    console = make_console()
    progress = GridProgress(console)

    def on_plan(to_run: int, reused: int, other_versions: int = 0) -> None:
        console.print(
            f"{experiment}: {to_run} trials to run, {reused} reused from {shown_uri(uri)}"
        )
        if other_versions:
            console.print(
                f"{other_versions} of the reused trials were recorded with other library versions "
                "than the installed ones; --reuse same-versions (or reuse: same-versions) runs "
                "them again"
            )
        notes = (vectorize_note(trials), populations_note(trials), sklearn_note(trials))
        for note in notes if to_run else ():
            if note:
                console.print(note)
        progress.start(to_run, reused)

    return progress, on_plan, progress.stop


def _result(experiment: str, uri: str, outcome) -> GridResult:
    from mlpsuite.present.notebook import Comparison, GridResult, runs_frame

    comparison = Comparison.of(outcome.comparison) if outcome.comparison is not None else None
    return GridResult(
        experiment=experiment,
        experiment_id=outcome.experiment_id,
        parent_run_id=outcome.parent_run_id,
        tracking_uri=uri,
        comparison=comparison,
        n_trials=outcome.n_trials,
        n_run=len(outcome.results),
        n_failed=outcome.failed,
        n_reused=outcome.reused,
        invocation=outcome.invocation,
        interrupted=outcome.interrupted,
        signal=int(outcome.signal or 0),
        report_error=outcome.report_error,
        orphans_killed=outcome.orphans_killed,
        kept_logs=outcome.kept_logs,
        n_elsewhere=outcome.elsewhere,
        runs=runs_frame(comparison) if comparison is not None else _trial_rows(outcome),
    )


def _trial_rows(outcome):
    """Without a comparison (interrupted, or its report failed): the trials this invocation ran."""
    import pandas as pd

    return pd.DataFrame(
        [
            {
                "backend": trial.backend,
                "seed": trial.seed,
                "status": result.status,
                "failure": result.failure,
                **trial.cell_values(),
                **{f"test_{name}": value for name, value in result.test.items()},
                "key": trial.key,
            }
            for trial, result in outcome.results
        ]
    )
