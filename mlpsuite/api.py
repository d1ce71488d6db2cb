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
    """What `plan` returns: the grid's trials, in order (a list of `mlpsuite.config.Trial`).

    Attributes:
        splits: the rows of each dataset's train, val and test splits,
            `[{"dataset": "iris", "train": 105, "val": 15, "test": 30}]`.
        reused: the keys of the trials the store would reuse (FINISHED runs of the same
            trial key); None when no store was read.
        store: the store that was read (its URI), or why none was (no store there yet, or
            the error that kept it from being read).
        search: the grid's `search:` section when it samples points; None when its cells
            are all listed.
    """

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
    them the store would reuse; nothing is written (`mlpsuite run --dry-run`).

    Args:
        config: a YAML file's path, or a dict in the YAML's shape.
        backends: overrides the config's `backends`: "tf,jax" or a list of names.
        tracking_uri: the store to look in for reusable trials; default as `run` picks it
            (`$MLFLOW_TRACKING_URI`, else `sqlite:///mlruns/mlflow.db`). A store that does
            not exist yet is not created.

    Returns:
        The trials in the order `run` would start them (a `Plan`, which is a list), with
            their datasets' split sizes and the keys the store would reuse.

    Raises:
        ConfigError: the config does not validate (every schema mistake of it, one line
            each), or a check that needs its data fails: a dataset that cannot be loaded, a
            loss that does not fit the task, a `compare:` protocol the grid cannot carry
            out. Each line names the file (or `<config dict>`) and the key.
        StoreError: `tracking_uri` is not a URI mlpsuite can use (a store that exists but
            cannot be read is reported in `Plan.store` instead).

    Examples:
        Two activations, two seeds each, on one backend: four trials.

        >>> import tempfile
        >>> import mlpsuite
        >>> config = {
        ...     "name": "demo",
        ...     "dataset": {"name": "iris"},
        ...     "backends": ["jax"],
        ...     "seeds": [0, 1],
        ...     "grid": {"model.activation": ["relu", "elu"]},
        ... }
        >>> store = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"
        >>> trials = mlpsuite.plan(config, tracking_uri=store)
        >>> len(trials)
        4
        >>> [(trial.cell["model.activation"], trial.seed) for trial in trials]
        [('relu', 0), ('relu', 1), ('elu', 0), ('elu', 1)]
        >>> trials.splits
        [{'dataset': 'iris', 'train': 105, 'val': 15, 'test': 30}]
        >>> trials.store
        'no store at sqlite:///.../mlflow.db yet'
        >>> print(trials.reused)
        None

        `backends` overrides the config's: three backends, twelve trials.

        >>> len(mlpsuite.plan(config, backends="tf,torch,jax", tracking_uri=store))
        12

        A mistake is one line naming the key, before anything runs:

        >>> mlpsuite.plan({**config, "dataset": {"name": "irs"}}, tracking_uri=store)
        Traceback (most recent call last):
        ...
        mlpsuite.errors.ConfigError: <config dict>: dataset: ... did you mean 'iris'? ...
    """
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
    keep_workers: float | None = None,
    reuse: bool | None = None,
) -> GridResult:
    """Run every trial of a grid not already FINISHED in its experiment, then its comparison.

    The grid is one parent run in the experiment named by the config's `name`: running the
    same grid again reopens it and reuses its FINISHED trials, so an interrupted grid resumes
    where it stopped. A trial that fails is recorded as FAILED and counted in
    `GridResult.n_failed`; it does not raise.

    Args:
        config: a YAML file's path, or a dict in the YAML's shape.
        tracking_uri: the MLflow store: `sqlite:///PATH`, `http(s)://HOST:PORT` (an
            `mlflow server`) or a database URI. Default: `$MLFLOW_TRACKING_URI`, else
            `sqlite:///mlruns/mlflow.db` in the current folder.
        backends: overrides the config's `backends`: "tf,jax" or a list of names.
        jobs: the number of workers; default one per core.
        force: run FINISHED trials again instead of reusing them.
        executor: "local" (worker processes on this machine) or "ray".
        progress: show a live progress bar (in a terminal or a notebook).
        reuse_models: False builds and compiles a fresh model for every trial instead of
            reusing a worker's compiled one (the results are bit-identical either way).
        address: with `executor="ray"`, the address of an existing Ray cluster.
        max_retries: with `executor="ray"`, how many times a trial whose actor died is run
            again.
        reuse_runs: overrides the config's `reuse:`: "any" FINISHED run of a trial's key is
            reused, or only those recorded with the installed library versions
            ("same-versions").
        keep_workers: seconds the grid's local workers are kept once it ends, for the next
            `run` of this process that needs the same backend and worker environment: it
            takes them warm (framework imported, last program compiled; its runs record
            exactly what fresh workers' would, and its speed table says `warm`). Default
            `$MLPSUITE_KEEP_WORKERS`, else 300; 0 stops them with the grid. Idle workers
            also end at interpreter exit, with this process, and on `mlpsuite.shutdown()`.
        reuse: the old name of `reuse_models`; deprecated (it warns), to go in the next
            release.

    Returns:
        The grid's parent run, counts of its trials (run now, reused, failed), one row per
            trial in `runs`, and its comparison (None when the grid was interrupted or its report
            failed).

    Raises:
        ConfigError: the config does not validate, a dataset cannot be loaded, or an argument
            is out of range (`executor`, `jobs`, `reuse_runs`, `address` without Ray); raised
            before anything is written.
        StoreError: the store cannot be used: a URI of an unknown scheme, a server that does
            not answer, a SQLite file that cannot be created or read.

    Examples:
        A grid of two activations, two seeds each, on scikit-learn's own MLP (the reference
        backend, quick to start), recorded in a new SQLite store:

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
        >>> result = mlpsuite.run(config, tracking_uri=store, progress=False)
        >>> result.n_trials, result.n_run, result.n_failed, result.n_reused
        (4, 4, 0, 0)
        >>> result.runs[["backend", "seed", "status", "model.activation"]]
           backend  seed    status model.activation
        0  sklearn     0  FINISHED         identity
        1  sklearn     1  FINISHED         identity
        2  sklearn     0  FINISHED             relu
        3  sklearn     1  FINISHED             relu
        >>> result.comparison.best().cell
        'activation=identity'

        The same grid again reopens its parent run and reuses every FINISHED trial:

        >>> again = mlpsuite.run(config, tracking_uri=store, progress=False)
        >>> again.parent_run_id == result.parent_run_id, again.invocation
        (True, 2)
        >>> again.n_run, again.n_reused
        (0, 4)
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
    if keep_workers is not None and (
        not isinstance(keep_workers, int | float) or not keep_workers >= 0
    ):
        raise ConfigError(f"keep_workers: expected seconds >= 0, got {keep_workers!r}")
    spec = load_config(
        config, backends=_backends(backends)
    )  # the data is checked once the workers start
    if reuse_runs is not None:
        if reuse_runs not in REUSE_RUNS:
            raise ConfigError(f"reuse: {reuse_runs!r}; allowed: {', '.join(REUSE_RUNS)}")
        spec = spec.model_copy(update={"reuse": reuse_runs})
    pool = _executor(executor, jobs, reuse_models, address, max_retries, keep_workers)
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
    from the store; nothing is written unless `log`.

    Args:
        experiment: the experiment's name (the grid config's `name`).
        tracking_uri: the store to read; default as `run` picks it. It must exist: a
            SQLite file that is not there is an error, not a new empty store.
        parent: the parent run id of one grid of the experiment; default its most recently
            run grid.
        by: rank the cells of this grid key alone (its effect averaged over the others).
        metric: the metric to rank on, e.g. "test_accuracy"; default `val_loss` (`loss`
            without a validation split), or the grid's `compare.metric`.
        where: keep only the trials with these grid values, e.g. `{"dataset.name": "wine"}`.
        nuisance: overrides the grid's `compare.nuisance`: the keys tuned per cell rather
            than compared; "none" or [] compares every key.
        select_on: overrides `compare.select_on`: the metric that picks each cell's best
            nuisance setting.
        interval: overrides `compare.interval`: "t" or "bootstrap".
        target: overrides `compare.target`: a metric and the value to reach, e.g.
            `{"val_accuracy": 0.9}`, for the epochs and seconds each cell takes to reach it.
        log: (re)write the comparison onto the parent run (its `comparison/` artifacts).

    Returns:
        The comparison: the ranked cells, the effects of each grid key, backend parity and
            speed, as DataFrames.

    Raises:
        ConfigError: `log` with `where` (the parent run's comparison covers its whole grid).
        StoreError: the store cannot be used, or a SQLite store does not exist.
        ReportError: the store does not hold what was asked: an unknown experiment or parent
            run, a `by`, `where` or `nuisance` key that is not a grid key, a metric the runs
            did not record; `error.parameter` names the argument.

    Examples:
        A grid run into a new store, then read back:

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
        >>> _ = mlpsuite.run(config, tracking_uri=store, progress=False)
        >>> comparison = mlpsuite.compare("demo", tracking_uri=store)
        >>> comparison.n_trials, comparison.metric, comparison.grid_keys
        (4, 'val_loss', ['model.activation'])
        >>> comparison.cells[["cell", "backend", "n", "rank"]]
                          cell backend  n  rank
        0  activation=identity     all  2     1
        1      activation=relu     all  2     2
        >>> comparison.effects[["key", "level", "reference", "n_pairs"]]
                        key level reference  n_pairs
        0  model.activation  relu  identity        2

        `where` keeps a part of the grid:

        >>> relu = mlpsuite.compare("demo", tracking_uri=store, where={"model.activation": "relu"})
        >>> relu.n_trials, relu.cells["cell"].tolist()
        (2, ['activation=relu'])

        What the store does not hold is a `ReportError` naming the argument:

        >>> mlpsuite.compare("demo", tracking_uri=store, by="model.hidden")
        Traceback (most recent call last):
        ...
        mlpsuite.errors.ReportError: by='model.hidden': not a grid key of this grid; ...
    """
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


def shutdown() -> int:
    """End the warm workers this process keeps between grids (`run(keep_workers=...)`) now,
    instead of when they have been idle for their time or at interpreter exit.

    Returns:
        How many idle workers were ended.

    Examples:
        A grid whose one worker is kept for a minute, ended at once instead:

        >>> import tempfile
        >>> import mlpsuite
        >>> store = f"sqlite:///{tempfile.mkdtemp()}/mlflow.db"
        >>> config = {
        ...     "name": "demo",
        ...     "dataset": {"name": "iris"},
        ...     "training": {"epochs": 2},
        ...     "backends": ["sklearn"],
        ... }
        >>> _ = mlpsuite.shutdown()  # none left from before
        >>> _ = mlpsuite.run(config, tracking_uri=store, progress=False, keep_workers=60)
        >>> mlpsuite.shutdown()
        1
        >>> mlpsuite.shutdown()
        0
    """
    from mlpsuite.executors.pool import shutdown as end_idle_workers

    return end_idle_workers()


def _executor(
    kind: str,
    jobs: int | None,
    reuse_models: bool,
    address: str | None,
    max_retries: int,
    keep_workers: float | None = None,
):
    if kind == "ray":
        from mlpsuite.executors.ray import RayExecutor

        return RayExecutor(jobs, reuse=reuse_models, address=address, max_retries=max_retries)
    if address is not None:
        raise ConfigError("address: applies only to executor='ray' (--executor ray)")
    from mlpsuite.executors.local import LocalExecutor
    from mlpsuite.executors.pool import default_keep_s

    keep_s = default_keep_s() if keep_workers is None else float(keep_workers)
    return LocalExecutor(jobs, reuse=reuse_models, keep_s=keep_s)


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
        failures=outcome.failures,
        none_finished=outcome.none_finished,
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
