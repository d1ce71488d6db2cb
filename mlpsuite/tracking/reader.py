"""Every read of the store: resume, the comparison, rerun and the figures read through here."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, cast

from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from mlpsuite.config import Trial
from mlpsuite.errors import ReportError, StoreError
from mlpsuite.tracking.calls import StoreCalls
from mlpsuite.tracking.index import (
    INDEX_MARGIN_MS,
    TRIAL_INDEX,
    WRITE_MARGIN_MS,
    RunRecord,
    TrialIndex,
    load_index,
)
from mlpsuite.tracking.schema import Settling, check_sqlite_store
from mlpsuite.tracking.store import (
    _check_database,
    _check_server,
    _sqlite_path,
    _store_creation_lock,
    creation_lock_path,
    shown_uri,
)
from mlpsuite.tracking.tags import (
    GRID_MANIFEST,
    TAG_CLAIM,
    TAG_DRIVER,
    TAG_GRID_KEY,
    TAG_HOST,
    TAG_INDEXED,
    TAG_KEY,
    TAG_KIND,
    TAG_PARENT,
)


class MissingRecordError(LookupError):
    """A run or artifact the store does not have; `message` says which, in MLflow's words.
    Raised instead of MLflow's own exception, which stays inside `tracking/`."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class StoreReader:
    """Reads one MLflow store; `Tracker` adds the writes."""

    def __init__(self, uri: str):
        # "Creating initial MLflow database tables..." on a new store, every database error logged
        # with its traceback before MLflow raises it (it reaches the user through StoreCalls, one
        # line when the store is at fault), a "View run" link on stdout for every run ended on a
        # server: noise in our output.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        # Nor a progress bar per artifact read (the trial index, the manifest), where tqdm is
        # installed (Optuna brings it).
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        # MLflow's client retries an unreachable server for minutes per call; a few seconds
        # here, and `_retrying` waits out an outage for the whole grid, within its bound.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        self.uri = uri
        self._call = StoreCalls(shown_uri(uri))
        # Every run read or written, by id, with the curves read so far (tracking/index.py);
        # the trial indexes read or written, by parent run id.
        self.records: dict[str, RunRecord] = {}
        self._indexes: dict[str, TrialIndex] = {}
        # Grid runs whose index, as read, still says what the store holds (nothing changed).
        self.current_indexes: set[str] = set()
        self.read_ms = 0  # when the store was last read for a grid's runs (ms, this clock)
        _check_server(uri)
        _check_database(uri)
        local = _sqlite_path(uri)
        # No mlpsuite process is creating this store (creators hold that lock file): a file that
        # is not a store is refused before a lock file is left beside it, and checked once.
        checked = local is not None and local.is_file() and not creation_lock_path(local).exists()
        if checked:
            check_sqlite_store(uri, cast(Path, local))  # checked: not None
        settle = Settling(shown_uri(uri), local) if local is not None else None
        while True:
            try:
                with _store_creation_lock(uri):
                    if (
                        local is not None and not checked
                    ):  # before MLflow opens it: it would write its tables into any file
                        check_sqlite_store(uri, local)
                    self.client = MlflowClient(tracking_uri=uri)
                    self._call(self.client.search_experiments, max_results=1)
                return
            except StoreError:
                raise
            except Exception as error:
                # Another MLflow client creating the same new store at this moment (it takes no
                # lock of ours): both ran MLflow's migrations. Wait until it is done, then open
                # the store it made.
                if settle is not None and settle.wait():
                    checked = False
                    continue
                if not isinstance(error, MlflowException):
                    raise
                message = str(error.message).strip().splitlines()[0]
                raise StoreError(f"tracking URI {shown_uri(uri)}: {message}") from None

    def running_children(self, experiment_id: str, parent_run_id: str) -> list:
        """The parent's child runs still RUNNING (any driver's)."""
        return self.search(
            experiment_id,
            f"tags.`{TAG_PARENT}` = '{parent_run_id}' and attributes.status = 'RUNNING'",
        )

    def search(
        self, experiment_id: str, filter_string: str, view: int = ViewType.ACTIVE_ONLY
    ) -> list:
        """Every run of the experiment matching `filter_string` (MLflow's search syntax), read
        page by page."""
        runs, token = [], None
        while True:
            page = self._call(
                self.client.search_runs,
                [experiment_id],
                filter_string,
                run_view_type=view,
                max_results=1000,
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def load_trial(self, run_id: str) -> tuple[Trial, Any]:
        """The logged `trial.json` of a run, and the run itself; `MissingRecordError` if the store
        has no such run or file."""
        try:
            run = self._call(self.client.get_run, run_id)
        except MlflowException as error:
            raise MissingRecordError(error.message) from error
        trial = Trial.model_validate(self.load_json(run_id, "trial.json"))
        return trial, run

    def load_json(self, run_id: str, artifact: str) -> Any:
        """A run's JSON artifact; `MissingRecordError` if the store has no such file."""
        with tempfile.TemporaryDirectory() as scratch:
            try:
                path = self._call(self.client.download_artifacts, run_id, artifact, scratch)
                return json.loads(Path(path).read_text(encoding="utf-8"))
            except MlflowException as error:
                raise MissingRecordError(error.message) from error
            except OSError as error:
                raise MissingRecordError(f"{artifact}: {error}") from error

    def find_experiment(self, name: str) -> str | None:
        """The experiment's id, or None when the store has no experiment of that name."""
        experiment = self._call(self.client.get_experiment_by_name, name)
        return experiment.experiment_id if experiment is not None else None

    def experiment_names(self) -> list[str]:
        """The names of the store's experiments, sorted (for messages naming what exists)."""
        return sorted(e.name for e in self._call(self.client.search_experiments, max_results=1000))

    def newest_grid_experiment(self) -> str | None:
        """The id of the experiment whose grid run started last, if any."""
        ids = [
            e.experiment_id for e in self._call(self.client.search_experiments, max_results=1000)
        ]
        runs = (
            self._call(
                self.client.search_runs,
                ids,
                f"tags.`{TAG_KIND}` = 'grid'",
                max_results=1,
                order_by=["attributes.start_time DESC"],
            )
            if ids
            else []
        )
        return runs[0].info.experiment_id if runs else None

    def grid_parents(self, experiment_id: str) -> list:
        """The experiment's grid runs, the most recently active first."""
        runs = self.search(experiment_id, f"tags.`{TAG_KIND}` = 'grid'")
        return sorted(
            runs, key=lambda run: max(run.info.start_time, run.info.end_time or 0), reverse=True
        )

    def get_run(self, run_id: str):
        """The run as MLflow returns it (through the store's waiting and one-line faults)."""
        return self._call(self.client.get_run, run_id)

    def trial_runs(self, experiment_id: str, keys: set[str]) -> list[RunRecord]:
        """Every trial run (any status) of the experiment whose key is in `keys`, read run by
        run (a grid without an index yet)."""
        runs = self.search(experiment_id, f"tags.`{TAG_KIND}` = 'trial'")
        return [self._remember(run) for run in runs if run.data.tags.get(TAG_KEY) in keys]

    def find_grid(self, experiment_id: str, key: str):
        """The newest grid run of the grid whose key (`run_records.grid_key`) is `key`, or None."""
        found = self.search(
            experiment_id, f"tags.`{TAG_KIND}` = 'grid' and tags.`{TAG_GRID_KEY}` = '{key}'"
        )
        return max(found, key=lambda run: run.info.start_time) if found else None

    def grid_trial_runs(self, experiment_id: str, parent, keys: set[str]) -> list[RunRecord]:
        """Every trial run of the experiment whose key is in `keys`: from the trial index of
        grid run `parent` (tracking/index.py) and what changed in the store since it was
        written; without a parent or an index, from the store run by run."""
        self.read_ms = int(time.time() * 1000)
        index = self._index(parent) if parent is not None else None
        if parent is None or index is None:
            return self.trial_runs(experiment_id, keys)
        found = {record.info.run_id: record for record in index.records}
        for record in found.values():
            self.records.setdefault(record.info.run_id, record)
        running = {r.info.run_id for r in index.records if r.info.status == "RUNNING"}
        changed, deleted = self._changed_since(
            experiment_id, index.written_ms, index.driver, index.host, running
        )
        if not changed and not deleted & found.keys():
            self.current_indexes.add(parent.info.run_id)  # the store holds what it says
        for run in changed:
            found[run.info.run_id] = self._remember(run)
        records = [found[run_id] for run_id in found.keys() - deleted]
        return [record for record in records if record.data.tags.get(TAG_KEY) in keys]

    def logged_splits(self, parent) -> list[dict[str, Any]] | None:
        """The data splits a grid run's manifest recorded; None if it has none to read."""
        try:
            splits = self.load_json(parent.info.run_id, GRID_MANIFEST).get("splits")
        except MissingRecordError:
            return None
        return splits if isinstance(splits, list) and splits else None

    def _index(self, parent) -> TrialIndex | None:
        """The parent's trial index, if it has one this mlpsuite reads."""
        run_id = parent.info.run_id
        if run_id in self._indexes:
            return self._indexes[run_id]
        if not parent.data.tags.get(TAG_INDEXED):
            return None
        with tempfile.TemporaryDirectory() as scratch:
            try:
                path = self._call(self.client.download_artifacts, run_id, TRIAL_INDEX, scratch)
                index = load_index(Path(path).read_bytes())
            except (MlflowException, OSError):  # gone or unreadable: the store is read instead
                return None
        if index is not None:
            self._indexes[run_id] = index
        return index

    def _changed_since(
        self, experiment_id: str, read_ms: int, driver: str, host: str, running: set[str]
    ) -> tuple[list, set[str]]:
        """Trial runs that may differ from what was read at `read_ms` (the reader's clock, on
        `host`), where the runs `running` were RUNNING: those ended since (not `driver`'s,
        which the reader noted itself), those still RUNNING, those of `running` (whenever they
        ended), and the ids of those deleted. A run's end is stamped before it is written, and
        another machine's clock may run behind: ends are looked for a margin earlier."""
        trials = f"tags.`{TAG_KIND}` = 'trial'"
        ended = self.search(
            experiment_id,
            f"{trials} and attributes.end_time > {read_ms - WRITE_MARGIN_MS} and "
            f"tags.`{TAG_DRIVER}` != '{driver}'",
        )
        elsewhere = self.search(
            experiment_id,
            f"{trials} and attributes.end_time > {read_ms - INDEX_MARGIN_MS} and "
            f"tags.`{TAG_HOST}` != '{host}'",
        )
        still = self.search(experiment_id, f"{trials} and attributes.status = 'RUNNING'")
        ids = sorted(running)
        were = [
            run
            for start in range(0, len(ids), 100)  # MLflow's IN takes a list; a page of them
            for run in self.search(
                experiment_id,
                "attributes.run_id IN ("
                + ", ".join(f"'{run_id}'" for run_id in ids[start : start + 100])
                + ")",
            )
        ]
        deleted = self.search(
            experiment_id, f"{trials} and tags.`{TAG_CLAIM}` = 'won'", ViewType.DELETED_ONLY
        )
        return ended + elsewhere + still + were, {run.info.run_id for run in deleted}

    def _remember(self, run) -> RunRecord:
        """The run as a record, kept for its curves to be read once."""
        known = self.records.get(run.info.run_id)
        record = RunRecord.of_run(run)
        if known is not None and known.info.status == record.info.status:
            record.curves, record.complete = known.curves, known.complete
        self.records[run.info.run_id] = record
        return record

    def metric_histories(self, run_ids: list[str], name: str) -> dict[str, list[float]]:
        """Each run id's values of the metric, ordered by step (epoch)."""
        return {run_id: [value for _, value in self._curve(run_id, name)] for run_id in run_ids}

    def _curve(self, run_id: str, name: str) -> list[list[float]]:
        """A metric's logged (step, value)s in step order (a step logged twice: the later
        last): from the run's record where it holds the curve, else from the store (once)."""
        record = self.records.get(run_id)
        if record is not None and record.has_curve(name):
            return record.curve(name)
        history = self._call(self.client.get_metric_history, run_id, name)
        curve = [[m.step, m.value] for m in sorted(history, key=lambda m: (m.step, m.timestamp))]
        if record is not None:
            record.curves[name] = curve
        return curve

    def trial_of_run(self, run_id: str) -> Trial:
        """The trial a run recorded; a ReportError naming the store for an unknown run id or a
        run that is not a trial."""
        try:
            self._call(self.client.get_run, run_id)
        except MlflowException:
            raise ReportError(f"run {run_id!r}: no such trial run in {self.uri}") from None
        try:
            return Trial.model_validate(self.load_json(run_id, "trial.json"))
        except MissingRecordError:
            raise ReportError(f"run {run_id!r}: not a trial run (it has no trial.json)") from None

    def download_model(self, run_id: str, folder: str | Path) -> Path:
        """A trial run's logged `model` (training.save_model) as a local folder under `folder`."""
        listed = {a.path for a in self._call(self.client.list_artifacts, run_id, "model")}
        if "model/MLmodel" not in listed:
            raise ReportError(
                f"run {run_id} has no logged model; run its grid with training.save_model: true"
            )
        return Path(self._call(self.client.download_artifacts, run_id, "model", str(folder)))

    def diagnostic_histories(
        self, runs: list, prefix: str
    ) -> dict[str, dict[str, dict[int, float]]]:
        """Run id -> metric -> {step: value} for every metric of `runs` (as `search` returns
        them) named `prefix...`: `"grad_norm/"` gives grad_norm/dense_1 ... grad_norm/output.
        A step logged twice keeps its latest value."""
        histories = {}
        for run in runs:
            names = sorted(name for name in run.data.metrics if name.startswith(prefix))
            by_name = {}
            for name in names:
                by_name[name] = {
                    int(step): value for step, value in self._curve(run.info.run_id, name)
                }
            histories[run.info.run_id] = by_name
        return histories
