"""Every MLflow read and write. The only module that talks to MLflow.

One parent run per grid (tag `mlpsuite.kind=grid`; its identity is the experiment plus the set
of its trial keys, so running the same grid again reopens it), one child run per trial
(`mlpsuite.kind=trial`) with dotted params, identity tags, per-epoch metrics (`step=epoch`,
batched with `log_batch`) and the resolved trial as `trial.json`. The comparison of a grid is
logged on its parent (`log_report`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException

from mlpsuite.config import GridSpec, Trial
from mlpsuite.errors import ReportError, StoreError
from mlpsuite.run_records import curve_summary, dataset_input, grid_key, grid_manifest
from mlpsuite.results import COORDINATOR_DIED, TrialResult

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"
TAG_KIND = "mlpsuite.kind"
TAG_KEY = "mlpsuite.trial_key"
TAG_BACKEND = "mlpsuite.backend"
TAG_SEED = "mlpsuite.seed"
TAG_FAILURE = "mlpsuite.failure"
TAG_PARENT = "mlflow.parentRunId"
TAG_GRID_KEY = "mlpsuite.grid_key"
TAG_INVOCATIONS = "mlpsuite.invocations"
TAG_CELL = "mlpsuite.cell"
TAG_SUPERSEDED = "mlpsuite.superseded_by"
TAG_WEIGHTS = "mlpsuite.weights_sha256"
TAG_NOTE = "mlflow.note.content"  # the run's description in the MLflow UI
TAG_HOST = "mlpsuite.host"  # the coordinator that owns a RUNNING run: a later run can tell
TAG_PID = "mlpsuite.pid"    # whether that coordinator still exists
GRID_MANIFEST = "grid.json"
T = TypeVar("T")
logger = logging.getLogger("mlpsuite")


def resolve_uri(cli_uri: str | None = None, create: bool = True) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else the SQLite store in ./mlruns.

    With `create=False` (commands that only read) a SQLite file that does not exist is an
    error, not a new empty store in whatever folder the command ran from.
    """
    if cli_uri is not None and not cli_uri.strip():
        raise StoreError("--tracking-uri: empty; allowed: sqlite:///PATH, http(s)://HOST:PORT, postgresql://...")
    uri = cli_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    _check_scheme(uri)
    local = _sqlite_path(uri)
    if local is not None and create:
        try:  # the store's own folder, but not a mistyped path's missing parents
            local.parent.mkdir(exist_ok=True)
        except OSError as error:
            raise StoreError(f"tracking URI {uri}: cannot create {local.parent} ({error.strerror})") from None
    elif local is not None and not local.is_file():
        raise StoreError(f"tracking URI {uri}: no store at {local.resolve()} (paths are relative to the "
                         "current folder); run mlpsuite run there first, or pass --tracking-uri")
    return uri


URI_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql")


def _check_scheme(uri: str) -> None:
    scheme = uri.split("://", 1)[0].split("+", 1)[0] if "://" in uri else ""
    if scheme in URI_SCHEMES:
        return
    hint = f"; for a SQLite file write sqlite:///{uri}" if not scheme else ""
    raise StoreError(f"tracking URI {uri}: not a store mlpsuite can use{hint}; allowed: sqlite:///PATH, "
                     "http(s)://HOST:PORT (mlflow server), postgresql://, mysql://, mssql://")


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


class _Outage:
    """Set once an outage outlasted its bound: later calls (the clean-up of a grid that gave
    up) try once instead of waiting out the bound again; cleared when the server answers."""

    gave_up = False


def _retrying(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Every store call, with two kinds of waiting: SQLite allows one writer at a time, so
    "database is locked" from another grid is waited out; a tracking server that does not
    answer is retried with backoff for up to `server_outage_s()` (said once on stderr), and
    past that the call fails with a StoreError."""
    delay, locked_tries, outage_began = 0.05, 0, None
    while True:
        try:
            result = call(*args, **kwargs)
            if outage_began is not None:
                logger.warning("MLflow server answers again after %.0f s", time.monotonic() - outage_began)
            _Outage.gave_up = False
            return result
        except MlflowException as error:
            text = str(error).lower()
            if "locked" in text and locked_tries < 40:
                locked_tries += 1
                time.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if not _unreachable(text):
                raise
            outage_began = outage_began or _outage_began(error)
            if _Outage.gave_up or time.monotonic() - outage_began > server_outage_s():
                _Outage.gave_up = True
                raise StoreError(f"the MLflow server has not answered for {server_outage_s():g} s "
                                 "(MLPSUITE_SERVER_OUTAGE_S); run the grid again when it is back: that marks "
                                 "this grid's unfinished runs KILLED and resumes it") from None
            time.sleep(min(2.0, server_outage_s() / 10))


def server_outage_s() -> float:
    """How long a tracking server may be away before the grid gives up (default 120 s)."""
    return float(os.environ.get("MLPSUITE_SERVER_OUTAGE_S", "120"))


def _unreachable(text: str) -> bool:
    return any(sign in text for sign in ("connection refused", "max retries exceeded", "failed to establish",
                                         "remote end closed", "connection reset", "connection aborted"))


def _outage_began(error: Exception) -> float:
    if _Outage.gave_up:
        return time.monotonic()
    logger.warning("MLflow server not answering (%s); retrying for up to %g s",
                   str(error).splitlines()[0][:200], server_outage_s())
    return time.monotonic()


@contextlib.contextmanager
def _store_creation_lock(uri: str):
    """Two grids starting on a new SQLite file would both create MLflow's tables and clash
    ("table ... already exists"); a file lock beside the database lets one go first."""
    local = _sqlite_path(uri)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        fcntl = None
    if local is None or fcntl is None:
        yield
        return
    with open(local.with_name(local.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _check_server(uri: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds on a dead server: MLflow's own client retries for minutes."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            pass
    except (OSError, ValueError) as error:
        raise StoreError(f"tracking URI {uri}: no MLflow server answers ({error})") from None


DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")


def shown_uri(uri: str) -> str:
    """The URI as messages print it: a database password is not for the terminal."""
    if not uri.startswith(DATABASE_SCHEMES):
        return uri
    from sqlalchemy.engine import make_url

    return make_url(uri).render_as_string(hide_password=True)


def _check_database(uri: str, timeout_s: int = 5) -> None:
    """Fail in seconds on a database that cannot be used: MLflow retries a refused connection
    for about 100 s. A missing Python driver (SQLAlchemy 2.1 drives postgresql:// with psycopg
    3) is one line naming what to install."""
    if not uri.startswith(DATABASE_SCHEMES):
        return
    import sqlalchemy

    url = sqlalchemy.engine.make_url(uri)
    try:
        url.get_dialect().import_dbapi()
    except ImportError as error:
        extra = "pip install -e '.[postgres]'" if url.get_backend_name() == "postgresql" else "pip install it"
        raise StoreError(f"tracking URI {shown_uri(uri)}: the database driver is not installed "
                         f"({error}); {extra}") from None
    timeout = {"connect_timeout": timeout_s} if url.get_backend_name() in ("postgresql", "mysql") else {}
    engine = sqlalchemy.create_engine(url, connect_args=timeout)
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise StoreError(f"tracking URI {shown_uri(uri)}: {reason}") from None
    finally:
        engine.dispose()


# Epoch metrics are written at most this often per run (and when the run ends).
FLUSH_SECONDS = 1.0
# MLflow's limits for one log_batch call (mlflow.utils.validation): 1000 metrics, 100 tags,
# 1000 entities in all.
MAX_METRICS_PER_BATCH = 800  # MLflow's log_batch: 1000 entities in all, 100 params, 100 tags
MAX_TAGS_PER_BATCH = 100
MAX_PARAMS_PER_BATCH = 100


def _now_ms() -> int:
    return int(time.time() * 1000)


class Tracker:
    """Writes one grid's runs to one MLflow store."""

    def __init__(self, uri: str):
        # "Creating initial MLflow database tables..." on a new store, and a "View run" link on
        # stdout for every run ended on a server: noise in our output.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        # MLflow's client retries an unreachable server for minutes per call; a few seconds
        # here, and `_retrying` waits out an outage for the whole grid, within its bound.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        self.uri = uri
        self._pending: dict[str, list[Metric]] = {}  # epoch metrics not yet written, per run
        self._pending_params: dict[str, list[Param]] = {}  # a trial's, written with its first batch
        self._flushed_at: dict[str, float] = {}
        _check_server(uri)
        _check_database(uri)
        try:
            with _store_creation_lock(uri):
                self.client = MlflowClient(tracking_uri=uri)
                _retrying(self.client.search_experiments, max_results=1)
        except MlflowException as error:
            raise StoreError(f"tracking URI {shown_uri(uri)}: {str(error.message).strip().splitlines()[0]}") from None

    # ------------------------------------------------------------ experiments and resume

    def experiment_id(self, name: str) -> str:
        experiment = _retrying(self.client.get_experiment_by_name, name)
        if experiment is not None:
            return experiment.experiment_id
        return _retrying(self.client.create_experiment, name, artifact_location=self._artifact_root(name))

    def _artifact_root(self, name: str) -> str | None:
        """Artifacts of a local SQLite store live beside it: mlruns/artifacts/<experiment>."""
        local = _sqlite_path(self.uri)
        if local is None:
            return None  # a server decides where artifacts go
        root = (local.parent / "artifacts").resolve()
        folder = (root / name).resolve()
        if folder.parent != root:  # config validation refuses such names; never write outside
            raise StoreError(f"experiment name {name!r} would put artifacts outside {root}")
        return folder.as_uri()

    def finished_trial_keys(self, experiment_id: str) -> set[str]:
        """Keys of trials with a FINISHED run in the experiment: what resume skips."""
        runs = self.search(experiment_id, f"tags.`{TAG_KIND}` = 'trial' and attributes.status = 'FINISHED'")
        return {run.data.tags.get(TAG_KEY) for run in runs}

    def search(self, experiment_id: str, filter_string: str) -> list:
        runs, token = [], None
        while True:
            page = _retrying(self.client.search_runs, [experiment_id], filter_string,
                             max_results=1000, page_token=token)
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    # ------------------------------------------------------------ the grid's parent run

    def open_grid(self, experiment_id: str, spec: GridSpec, config_path: Path,
                  trials: list[Trial]) -> tuple[str, int]:
        """The grid's parent run, reopened if this set of trial keys has one, else new.

        Returns the run id and which invocation of the grid this is (1 for a new parent).
        """
        key = grid_key(trials)
        found = self.search(experiment_id, f"tags.`{TAG_KIND}` = 'grid' and tags.`{TAG_GRID_KEY}` = '{key}'")
        if found:
            parent = max(found, key=lambda run: run.info.start_time)
            invocation = int(parent.data.tags.get(TAG_INVOCATIONS, "1")) + 1
            _retrying(self.client.update_run, parent.info.run_id, status="RUNNING")
            self.set_tags(parent.info.run_id, {TAG_INVOCATIONS: str(invocation), **_owner()})
            if TAG_FAILURE in parent.data.tags:  # why an earlier invocation ended; not this one
                _retrying(self.client.delete_tag, parent.info.run_id, TAG_FAILURE)
            # The same trials, perhaps another protocol (`compare:`): the report follows the config.
            _retrying(self.client.log_dict, parent.info.run_id, grid_manifest(spec, trials, key), GRID_MANIFEST)
            self._log_grid_inputs(parent.info.run_id, trials)
            return parent.info.run_id, invocation
        run = _retrying(self.client.create_run, experiment_id, run_name=f"{spec.name} grid",
                        tags={TAG_KIND: "grid", TAG_GRID_KEY: key, TAG_INVOCATIONS: "1",
                              "mlpsuite.config_file": str(config_path), **_owner()})
        run_id = run.info.run_id
        params = {"grid_size": len(trials), "backends": ",".join(spec.backends),
                  "seeds": ",".join(map(str, spec.seeds)), "grid_keys": ",".join(spec.grid) or "(none)"}
        _retrying(self.client.log_batch, run_id, params=[Param(k, str(v)) for k, v in params.items()])
        if config_path.is_file():
            _retrying(self.client.log_artifact, run_id, str(config_path))
        else:  # a dict (`mlpsuite.run({...})`): the config as the YAML it would have been
            _retrying(self.client.log_text, run_id, yaml.safe_dump(spec.model_dump(mode="json", exclude_unset=True),
                                                                   sort_keys=False), "config.yaml")
        _retrying(self.client.log_dict, run_id, spec.model_dump(mode="json"), "resolved_config.json")
        _retrying(self.client.log_dict, run_id, grid_manifest(spec, trials, key), GRID_MANIFEST)
        self._log_grid_inputs(run_id, trials)
        return run_id, 1

    def _log_grid_inputs(self, run_id: str, trials: list[Trial]) -> None:
        """Every dataset of the grid, once, as the parent's inputs (the UI's Datasets column)."""
        inputs = {}
        for trial in trials:
            found = dataset_input(trial)
            inputs.setdefault((found.dataset.name, found.dataset.digest), found)
        _retrying(self.client.log_inputs, run_id, list(inputs.values()))

    def log_invocation(self, run_id: str, invocation: int, metrics: dict[str, float]) -> None:
        """Counts of one `mlpsuite run` on the parent, at step = the invocation number."""
        self._log_metrics(run_id, {**metrics, "invocations": invocation}, step=invocation)

    def end_run(self, run_id: str, status: str, metrics: dict[str, float] | None = None,
                tags: dict[str, str] | None = None) -> None:
        """End a run; the epochs still held back, `metrics` (at step 0) and `tags` go in one write."""
        stamp = _now_ms()
        pending = self._pending.pop(run_id, [])
        self._flushed_at.pop(run_id, None)
        batch = pending + [Metric(name, float(value), stamp, 0) for name, value in (metrics or {}).items()]
        self._log_batch(run_id, batch, [RunTag(k, v) for k, v in (tags or {}).items()])
        _retrying(self.client.set_terminated, run_id, status=status)

    # ------------------------------------------------------------ one child run per trial

    def start_trial(self, experiment_id: str, trial: Trial, parent_run_id: str | None,
                    extra_tags: dict[str, str] | None = None) -> str:
        tags = {TAG_KIND: "trial", TAG_KEY: trial.key, TAG_BACKEND: trial.backend,
                TAG_SEED: str(trial.seed), TAG_CELL: trial.cell_label(), **_owner(), **(extra_tags or {})}
        if parent_run_id:
            tags[TAG_PARENT] = parent_run_id
        run = _retrying(self.client.create_run, experiment_id, run_name=trial.run_name(), tags=tags)
        run_id = run.info.run_id
        # Written with the trial's first batch of metrics (a flush of its epochs, or its end):
        # the run's tags already say which trial it is, and a 0.03 s trial pays one round trip.
        self._pending_params[run_id] = [Param(key, value[:6000]) for key, value in trial.flat_params().items()]
        _retrying(self.client.log_inputs, run_id, [dataset_input(trial)])
        self._write_json(run.info.artifact_uri, trial.model_dump(mode="json"), "trial.json")
        return run_id

    def _write_json(self, artifact_uri: str, payload: Any, name: str) -> None:
        """`log_dict` without its `get_run`: the new run already says where its artifacts go."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repository = get_artifact_repository(artifact_uri, tracking_uri=self.uri)
        with tempfile.TemporaryDirectory(prefix="mlpsuite-") as folder:
            path = Path(folder) / name
            path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
            _retrying(repository.log_artifact, str(path))

    def log_epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        """Held back and written at most every FLUSH_SECONDS: the UI's live curve lags by that
        much, and a 50-epoch trial of a small MLP costs a few writes instead of fifty."""
        stamp = _now_ms()
        self._pending.setdefault(run_id, []).extend(
            Metric(name, float(value), stamp, epoch) for name, value in metrics.items())
        now = time.monotonic()
        if now - self._flushed_at.setdefault(run_id, now) >= FLUSH_SECONDS:
            self._log_batch(run_id, self._pending.pop(run_id), [])
            self._flushed_at[run_id] = now

    def log_worker_start(self, run_id: str, seconds: float) -> None:
        """On the first trial of a fresh worker: what starting it cost (process + import),
        written with the trial's next batch."""
        self._pending.setdefault(run_id, []).append(Metric("worker_start_s", float(seconds), _now_ms(), 0))

    def finish_trial(self, run_id: str, result: TrialResult) -> None:
        finals = {f"test_{name}": value for name, value in result.test.items()}
        finals.update({f"val_{name}": value for name, value in result.val.items()})
        finals.update({name: value for name, value in (
            ("initial_loss", result.initial_loss), ("fit_time_s", result.fit_time_s),
            ("step_time_ms", result.step_time_ms), ("stopped_epoch", result.stopped_epoch),
            ("tested_epoch", result.tested_epoch), ("trial_time_s", result.trial_time_s),
            ("overhead_s", result.overhead_s), ("peak_rss_mb", result.peak_rss_mb),
            ("start_rss_mb", result.start_rss_mb), ("eval_compile_s", result.eval_compile_s)) if value is not None})
        finals.update(curve_summary(result.history))
        tags = {"mlpsuite.threads": str(result.threads)} if result.threads else {}
        if result.status == "FINISHED":  # was the model built for it, or one built earlier reused
            tags["mlpsuite.reused_model"] = str(result.reused_model).lower()
        if result.jit_compile is not None:  # as Keras resolved `auto` on this backend
            tags["mlpsuite.jit_compile"] = str(result.jit_compile).lower()
            tags["mlpsuite.steps_per_execution"] = str(result.steps_per_execution)
        if result.vectorized:  # its times are the group's, divided by the group's size
            tags["mlpsuite.vectorized"] = str(result.vectorized)
        tags.update({f"mlpsuite.version.{lib}": version for lib, version in result.versions.items()})
        if result.weights_sha256:
            tags[TAG_WEIGHTS] = result.weights_sha256
        if result.classes:  # class index i is this label (string labels are encoded sorted)
            tags["mlpsuite.classes"] = json.dumps(result.classes)[:5000]
        if result.failure:
            tags[TAG_FAILURE] = result.failure
            tags["mlpsuite.failure_message"] = result.message[:5000]
        if result.details:
            _retrying(self.client.log_text, run_id, result.details, "failure.txt")
        if result.model_dir and result.status == "FINISHED":
            _retrying(self.client.log_artifacts, run_id, result.model_dir, "model")
        self.end_run(run_id, "FINISHED" if result.status == "FINISHED" else "FAILED", finals, tags)

    def supersede(self, experiment_id: str, trial_key: str, new_run_id: str) -> None:
        """Tag the older FINISHED runs of a trial that `--force` ran again."""
        older = self.search(experiment_id, f"tags.`{TAG_KEY}` = '{trial_key}' and attributes.status = 'FINISHED'")
        for run in older:
            if run.info.run_id != new_run_id and TAG_SUPERSEDED not in run.data.tags:
                self.set_tags(run.info.run_id, {TAG_SUPERSEDED: new_run_id})

    def kill_orphans(self, experiment_id: str) -> int:
        """Mark KILLED the runs left RUNNING by a coordinator of this host that no longer runs
        (it was SIGKILLed, or the machine lost power); returns how many."""
        running = self.search(experiment_id, "attributes.status = 'RUNNING'")
        orphans = [run for run in running if run.data.tags.get(TAG_HOST) == socket.gethostname()
                   and not _coordinator_alive(run.data.tags.get(TAG_PID, ""))]
        for run in orphans:
            self.kill(run.info.run_id, COORDINATOR_DIED)
        return len(orphans)

    def kill(self, run_id: str, reason: str) -> None:
        self.end_run(run_id, RunStatus.to_string(RunStatus.KILLED), tags={TAG_FAILURE: reason})

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        _retrying(self.client.log_batch, run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def _log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        stamp = _now_ms()
        self._log_batch(run_id, [Metric(name, float(value), stamp, step) for name, value in metrics.items()], [])

    def _log_batch(self, run_id: str, metrics: list[Metric], tags: list[RunTag]) -> None:
        """As few `log_batch` calls as MLflow's per-call limits allow, the run's params still
        held back included."""
        params = self._pending_params.pop(run_id, [])
        while metrics or tags or params:
            _retrying(self.client.log_batch, run_id, metrics=metrics[:MAX_METRICS_PER_BATCH],
                      tags=tags[:MAX_TAGS_PER_BATCH], params=params[:MAX_PARAMS_PER_BATCH])
            metrics, tags = metrics[MAX_METRICS_PER_BATCH:], tags[MAX_TAGS_PER_BATCH:]
            params = params[MAX_PARAMS_PER_BATCH:]

    # ------------------------------------------------------------ reading back

    def load_trial(self, run_id: str) -> tuple[Trial, Any]:
        """The logged `trial.json` of a run, and the run itself."""
        run = _retrying(self.client.get_run, run_id)
        trial = Trial.model_validate(self.load_json(run_id, "trial.json"))
        return trial, run

    def load_json(self, run_id: str, artifact: str) -> Any:
        with tempfile.TemporaryDirectory() as scratch:
            path = _retrying(self.client.download_artifacts, run_id, artifact, scratch)
            return json.loads(Path(path).read_text(encoding="utf-8"))

    def find_experiment(self, name: str) -> str | None:
        experiment = _retrying(self.client.get_experiment_by_name, name)
        return experiment.experiment_id if experiment is not None else None

    def experiment_names(self) -> list[str]:
        return sorted(e.name for e in _retrying(self.client.search_experiments, max_results=1000))

    def newest_grid_experiment(self) -> str | None:
        """The id of the experiment whose grid run started last, if any."""
        ids = [e.experiment_id for e in _retrying(self.client.search_experiments, max_results=1000)]
        runs = _retrying(self.client.search_runs, ids, f"tags.`{TAG_KIND}` = 'grid'", max_results=1,
                         order_by=["attributes.start_time DESC"]) if ids else []
        return runs[0].info.experiment_id if runs else None

    def grid_parents(self, experiment_id: str) -> list:
        """The experiment's grid runs, the most recently active first."""
        runs = self.search(experiment_id, f"tags.`{TAG_KIND}` = 'grid'")
        return sorted(runs, key=lambda run: max(run.info.start_time, run.info.end_time or 0), reverse=True)

    def get_run(self, run_id: str):
        return _retrying(self.client.get_run, run_id)

    def trial_runs(self, experiment_id: str, keys: set[str]) -> list:
        """Every trial run (any status) of the experiment whose key is in `keys`."""
        runs = self.search(experiment_id, f"tags.`{TAG_KIND}` = 'trial'")
        return [run for run in runs if run.data.tags.get(TAG_KEY) in keys]

    def metric_histories(self, run_ids: list[str], name: str) -> dict[str, list[float]]:
        """run id -> the metric's values ordered by step (epoch)."""
        return {run_id: [m.value for m in self._history(run_id, name)] for run_id in run_ids}

    def _history(self, run_id: str, name: str) -> list:
        """A metric's logged values in step order (a step logged twice: the later last)."""
        history = _retrying(self.client.get_metric_history, run_id, name)
        return sorted(history, key=lambda m: (m.step, m.timestamp))

    # ------------------------------------------------------------ the comparison on the parent

    def log_report(self, run_id: str, folder: Path, metrics: dict[str, float], note: str,
                   step: int, tags: dict[str, str] | None = None) -> None:
        """The comparison's files under `comparison/`, its headline metrics, the description
        and `tags`."""
        _retrying(self.client.log_artifacts, run_id, str(folder), "comparison")
        self._log_metrics(run_id, metrics, step=step)
        self.set_tags(run_id, {**(tags or {}), TAG_NOTE: note[:60000]})

    def set_experiment_note(self, experiment_id: str, note: str) -> None:
        """The experiment's description on its page in the MLflow UI."""
        _retrying(self.client.set_experiment_tag, experiment_id, TAG_NOTE, note[:60000])

    # ------------------------------------------------------------ the lecture's figures

    def log_figures(self, experiment: str, paths: list[Path]) -> str:
        """A new FINISHED run `figures` (tag mlpsuite.kind=figures) in `experiment` (created if
        missing) holding `paths` as artifacts; returns its id."""
        run = _retrying(self.client.create_run, self.experiment_id(experiment), run_name="figures",
                        tags={TAG_KIND: "figures", **_owner()})
        run_id = run.info.run_id
        try:
            for path in paths:
                _retrying(self.client.log_artifact, run_id, str(path))
        except BaseException:  # Ctrl-C included: never leave the run RUNNING
            _retrying(self.client.set_terminated, run_id, status="FAILED")
            raise
        _retrying(self.client.set_terminated, run_id, status="FINISHED")
        return run_id

    def trial_of_run(self, run_id: str) -> Trial:
        """The trial a run recorded; a ReportError naming the store for an unknown run id or a
        run that is not a trial."""
        try:
            return self.load_trial(run_id)[0]
        except MlflowException:
            raise ReportError(f"run {run_id!r}: no such trial run in {self.uri}") from None
        except OSError:
            raise ReportError(f"run {run_id!r}: not a trial run (it has no trial.json)") from None

    def download_model(self, run_id: str, folder: str | Path) -> Path:
        """A trial run's logged `model` (training.save_model) as a local folder under `folder`."""
        listed = {a.path for a in _retrying(self.client.list_artifacts, run_id, "model")}
        if "model/MLmodel" not in listed:
            raise ReportError(f"run {run_id} has no logged model; run its grid with training.save_model: true")
        return Path(_retrying(self.client.download_artifacts, run_id, "model", str(folder)))

    def diagnostic_histories(self, runs: list, prefix: str) -> dict[str, dict[str, dict[int, float]]]:
        """run id -> metric -> {step: value} for every metric of `runs` (as `search` returns
        them) named `prefix...`: `"grad_norm/"` gives grad_norm/dense_1 ... grad_norm/output.
        A step logged twice keeps its latest value."""
        histories = {}
        for run in runs:
            names = sorted(name for name in run.data.metrics if name.startswith(prefix))
            by_name = {}
            for name in names:
                by_name[name] = {m.step: m.value for m in self._history(run.info.run_id, name)}
            histories[run.info.run_id] = by_name
        return histories


def _owner() -> dict[str, str]:
    return {TAG_HOST: socket.gethostname(), TAG_PID: str(os.getpid())}


def _coordinator_alive(pid_text: str) -> bool:
    """Whether the pid still belongs to an mlpsuite coordinator (not a reused pid)."""
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except ValueError:
        return False
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return b"mlpsuite" in cmdline.read_bytes() if cmdline.parent.parent.is_dir() else True
    except OSError:
        return False


def run_url(uri: str, experiment_id: str, run_id: str, ui_port: int = 5000) -> str:
    """Where the MLflow UI shows a run (the server itself, or `mlpsuite ui` for a SQLite store),
    in its "Model training" view: MLflow 3 opens in its GenAI view otherwise."""
    base = uri.rstrip("/") if uri.startswith(("http://", "https://")) else f"http://127.0.0.1:{ui_port}"
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"
