"""All MLflow writes (and the reads that resume and rerun need). The only module that writes.

One parent run per `mlpsuite run` (tag `mlpsuite.kind=grid`), one child run per trial
(`mlpsuite.kind=trial`) with dotted params, identity tags, per-epoch metrics (`step=epoch`,
batched with `log_batch`) and the resolved trial as `trial.json`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException

from mlpsuite.config import GridSpec, Trial
from mlpsuite.errors import StoreError
from mlpsuite.results import TrialResult

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"
TAG_KIND = "mlpsuite.kind"
TAG_KEY = "mlpsuite.trial_key"
TAG_BACKEND = "mlpsuite.backend"
TAG_SEED = "mlpsuite.seed"
TAG_FAILURE = "mlpsuite.failure"
TAG_PARENT = "mlflow.parentRunId"
T = TypeVar("T")


def resolve_uri(cli_uri: str | None = None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else the SQLite store in ./mlruns."""
    uri = cli_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    local = _sqlite_path(uri)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)
    return uri


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def _retrying(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """SQLite allows one writer at a time: wait out "database is locked" from another grid."""
    delay = 0.05
    for _ in range(40):
        try:
            return call(*args, **kwargs)
        except MlflowException as error:
            if "locked" not in str(error).lower():
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    return call(*args, **kwargs)


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


def _now_ms() -> int:
    return int(time.time() * 1000)


class Tracker:
    """Writes one grid's runs to one MLflow store."""

    def __init__(self, uri: str):
        self.uri = uri
        _check_server(uri)
        try:
            with _store_creation_lock(uri):
                self.client = MlflowClient(tracking_uri=uri)
                _retrying(self.client.search_experiments, max_results=1)
        except MlflowException as error:
            raise StoreError(f"tracking URI {uri}: {str(error.message).strip().splitlines()[0]}") from None

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
        return (local.parent / "artifacts" / name).resolve().as_uri()

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

    def start_grid(self, experiment_id: str, spec: GridSpec, config_path: Path,
                   n_trials: int, n_reused: int) -> str:
        run = _retrying(self.client.create_run, experiment_id, run_name=f"{spec.name} grid",
                        tags={TAG_KIND: "grid", "mlpsuite.config_file": str(config_path)})
        run_id = run.info.run_id
        params = {"grid_size": n_trials, "reused_trials": n_reused,
                  "backends": ",".join(spec.backends), "seeds": ",".join(map(str, spec.seeds)),
                  "grid_keys": ",".join(spec.grid) or "(none)"}
        _retrying(self.client.log_batch, run_id, params=[Param(k, str(v)) for k, v in params.items()])
        if config_path.is_file():
            _retrying(self.client.log_artifact, run_id, str(config_path))
        _retrying(self.client.log_dict, run_id, spec.model_dump(mode="json"), "resolved_config.json")
        return run_id

    def end_run(self, run_id: str, status: str, metrics: dict[str, float] | None = None) -> None:
        if metrics:
            self._log_metrics(run_id, metrics, step=0)
        _retrying(self.client.set_terminated, run_id, status=status)

    # ------------------------------------------------------------ one child run per trial

    def start_trial(self, experiment_id: str, trial: Trial, parent_run_id: str | None,
                    extra_tags: dict[str, str] | None = None) -> str:
        tags = {TAG_KIND: "trial", TAG_KEY: trial.key, TAG_BACKEND: trial.backend,
                TAG_SEED: str(trial.seed), **(extra_tags or {})}
        if parent_run_id:
            tags[TAG_PARENT] = parent_run_id
        run = _retrying(self.client.create_run, experiment_id, run_name=trial.label(), tags=tags)
        run_id = run.info.run_id
        params = [Param(key, value[:6000]) for key, value in trial.flat_params().items()]
        _retrying(self.client.log_batch, run_id, params=params)
        _retrying(self.client.log_dict, run_id, trial.model_dump(mode="json"), "trial.json")
        return run_id

    def log_epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        self._log_metrics(run_id, metrics, step=epoch)

    def finish_trial(self, run_id: str, result: TrialResult) -> None:
        finals = {f"test_{name}": value for name, value in result.test.items()}
        finals.update({name: value for name, value in (
            ("initial_loss", result.initial_loss), ("fit_time_s", result.fit_time_s),
            ("step_time_ms", result.step_time_ms)) if value is not None})
        tags = {"mlpsuite.threads": str(result.threads)} if result.threads else {}
        tags.update({f"mlpsuite.version.{lib}": version for lib, version in result.versions.items()})
        if result.failure:
            tags[TAG_FAILURE] = result.failure
            tags["mlpsuite.failure_message"] = result.message[:5000]
        if tags:
            self._set_tags(run_id, tags)
        self.end_run(run_id, "FINISHED" if result.status == "FINISHED" else "FAILED", finals)

    def kill(self, run_id: str, reason: str) -> None:
        self._set_tags(run_id, {TAG_FAILURE: reason})
        _retrying(self.client.set_terminated, run_id, status=RunStatus.to_string(RunStatus.KILLED))

    def _set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        _retrying(self.client.log_batch, run_id, tags=[RunTag(k, v) for k, v in tags.items()])

    def _log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        stamp = _now_ms()
        batch = [Metric(name, float(value), stamp, step) for name, value in metrics.items()]
        if batch:
            _retrying(self.client.log_batch, run_id, metrics=batch)

    # ------------------------------------------------------------ reading back (rerun)

    def load_trial(self, run_id: str) -> tuple[Trial, Any]:
        """The logged `trial.json` of a run, and the run itself."""
        run = _retrying(self.client.get_run, run_id)
        with tempfile.TemporaryDirectory() as scratch:
            path = _retrying(self.client.download_artifacts, run_id, "trial.json", scratch)
            trial = Trial.model_validate_json(Path(path).read_text(encoding="utf-8"))
        return trial, run
