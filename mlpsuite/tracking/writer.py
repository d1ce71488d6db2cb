"""Every write to the store, and the only code that writes to MLflow.

One parent run per grid (tag `mlpsuite.kind=grid`; its identity is the experiment plus the set
of its trial keys, so running the same grid again reopens it), one child run per trial
(`mlpsuite.kind=trial`) with dotted params, identity tags, per-epoch metrics (`step=epoch`,
batched with `log_batch`) and the resolved trial as `trial.json`. The comparison of a grid is
logged on its parent (`log_report`).
"""

from __future__ import annotations

import json
import logging
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException

from mlpsuite.config import GridSpec, Trial
from mlpsuite.errors import StoreError
from mlpsuite.results import COORDINATOR_DIED, TrialResult
from mlpsuite.run_records import (
    curve_summary,
    dataset_input,
    grid_key,
    grid_manifest,
    search_points_csv,
)
from mlpsuite.tracking.claims import (
    WON,
    claim_tags,
    new_driver_id,
    owner_dead,
    owner_tags,
    verdict,
)
from mlpsuite.tracking.index import TRIAL_INDEX, RunRecord, TrialIndex, dump_index
from mlpsuite.tracking.reader import StoreReader
from mlpsuite.tracking.store import _sqlite_path
from mlpsuite.tracking.tags import (
    GRID_MANIFEST,
    NOTE_CHARS,
    PARAM_CHARS,
    SEARCH_POINTS,
    TAG_BACKEND,
    TAG_CELL,
    TAG_CLAIM,
    TAG_DRIVER,
    TAG_FAILURE,
    TAG_GRID_KEY,
    TAG_INDEXED,
    TAG_INVOCATIONS,
    TAG_KEY,
    TAG_KIND,
    TAG_MISSING,
    TAG_NOTE,
    TAG_PARENT,
    TAG_SEED,
    TAG_SUPERSEDED,
    TAG_TEXT_CHARS,
    TAG_WEIGHTS,
)

logger = logging.getLogger("mlpsuite")

# Epoch metrics are written at most this often per run (and when the run ends).
FLUSH_SECONDS = 1.0
# MLflow's limits for one log_batch call (mlflow.utils.validation): 1000 metrics, 100 tags,
# 1000 entities in all.
MAX_METRICS_PER_BATCH = 800  # MLflow's log_batch: 1000 entities in all, 100 params, 100 tags
MAX_TAGS_PER_BATCH = 100
MAX_PARAMS_PER_BATCH = 100


def _now_ms() -> int:
    return int(time.time() * 1000)


class Tracker(StoreReader):
    """Writes one grid's runs to one MLflow store (and reads it, as `StoreReader`)."""

    def __init__(self, uri: str):
        super().__init__(uri)
        self.driver = new_driver_id()  # this invocation's runs carry it (tags.TAG_DRIVER)
        self._pending: dict[str, list[Metric]] = {}  # epoch metrics not yet written, per run
        # A trial's params and its won claim, written with its first batch of metrics.
        self._pending_first: dict[str, tuple[list[Param], list[RunTag]]] = {}
        self._flushed_at: dict[str, float] = {}
        self._warned = False
        self._missing: dict[
            str, dict[str, list[str]]
        ] = {}  # run id -> why -> artifacts not written

    def experiment_id(self, name: str) -> str:
        """The id of the experiment `name`, created when the store has none."""
        experiment = self._call(self.client.get_experiment_by_name, name)
        if experiment is not None:
            return experiment.experiment_id
        return self.create_experiment(name)

    def create_experiment(self, name: str) -> str:
        """A new experiment `name`, or the one another driver created since this one looked."""
        try:
            return self._call(
                self.client.create_experiment, name, artifact_location=self._artifact_root(name)
            )
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
        experiment = self._call(self.client.get_experiment_by_name, name)
        assert experiment is not None  # creating it failed because it exists
        return experiment.experiment_id

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

    def open_grid(
        self,
        experiment_id: str,
        spec: GridSpec,
        config_path: Path,
        trials: list[Trial],
        splits: list[dict[str, Any]] | None = None,
    ) -> tuple[str, int]:
        """The grid's parent run, reopened if this set of trial keys has one, else new.
        `splits`: each dataset's split rows, for the manifest.

        Returns the run id and which invocation of the grid this is (1 for a new parent).
        """
        key = grid_key(trials)
        parent = self.find_grid(experiment_id, key)
        if parent is not None:
            invocation = int(parent.data.tags.get(TAG_INVOCATIONS, "1")) + 1
            self._call(self.client.update_run, parent.info.run_id, status="RUNNING")
            self.set_tags(
                parent.info.run_id, {TAG_INVOCATIONS: str(invocation), **owner_tags(self.driver)}
            )
            if TAG_FAILURE in parent.data.tags:  # why an earlier invocation ended; not this one
                self._call(self.client.delete_tag, parent.info.run_id, TAG_FAILURE)
            # The same trials, perhaps another protocol (`compare:`): the report follows the config.
            self._artifact(
                parent.info.run_id,
                GRID_MANIFEST,
                self.client.log_dict,
                parent.info.run_id,
                grid_manifest(spec, trials, key, splits),
                GRID_MANIFEST,
            )
            self._log_grid_inputs(parent.info.run_id, trials)
            return parent.info.run_id, invocation
        run = self._call(
            self.client.create_run,
            experiment_id,
            run_name=f"{spec.name} grid",
            tags={
                TAG_KIND: "grid",
                TAG_GRID_KEY: key,
                TAG_INVOCATIONS: "1",
                "mlpsuite.config_file": str(config_path),
                **claim_tags(self.driver),
            },
        )
        run_id = run.info.run_id
        if not self._won_parent(
            run, experiment_id, key
        ):  # another driver made the grid's parent at once
            self.delete_run(run_id)
            return self.open_grid(experiment_id, spec, config_path, trials, splits)
        params = {
            "grid_size": len(trials),
            "backends": ",".join(spec.backends),
            "seeds": ",".join(map(str, spec.seeds)),
            "grid_keys": ",".join(spec.keys()) or "(none)",
        }
        self._call(
            self.client.log_batch, run_id, params=[Param(k, str(v)) for k, v in params.items()]
        )
        if config_path.is_file():
            self._artifact(
                run_id, config_path.name, self.client.log_artifact, run_id, str(config_path)
            )
        else:  # a dict (`mlpsuite.run({...})`): the config as the YAML it would have been
            self._artifact(
                run_id,
                "config.yaml",
                self.client.log_text,
                run_id,
                yaml.safe_dump(spec.model_dump(mode="json", exclude_unset=True), sort_keys=False),
                "config.yaml",
            )
        self._artifact(
            run_id,
            "resolved_config.json",
            self.client.log_dict,
            run_id,
            spec.model_dump(mode="json"),
            "resolved_config.json",
        )
        self._artifact(
            run_id,
            GRID_MANIFEST,
            self.client.log_dict,
            run_id,
            grid_manifest(spec, trials, key, splits),
            GRID_MANIFEST,
        )
        if spec.search is not None:  # the sampled points, one row each (the manifest has them too)
            self._artifact(
                run_id,
                SEARCH_POINTS,
                self.client.log_text,
                run_id,
                search_points_csv(spec),
                SEARCH_POINTS,
            )
        self._log_grid_inputs(run_id, trials)
        return run_id, 1

    def _won_parent(self, run, experiment_id: str, key: str) -> bool:
        """Two drivers starting one new grid at once: the claim protocol picks one parent."""

        def rivals() -> list:
            found = self.search(
                experiment_id, f"tags.`{TAG_KIND}` = 'grid' and tags.`{TAG_GRID_KEY}` = '{key}'"
            )
            return [other for other in found if other.info.run_id != run.info.run_id]

        if verdict(run, rivals(), rivals) != WON:
            return False
        self.set_tags(run.info.run_id, {TAG_CLAIM: WON})
        return True

    def _log_grid_inputs(self, run_id: str, trials: list[Trial]) -> None:
        """Every dataset of the grid, once, as the parent's inputs (the UI's Datasets column)."""
        inputs, seen = {}, set()
        for trial in trials:
            # A 10,000-trial grid has a few datasets: each is described once.
            source = (trial.data_path, trial.data_sha256, trial.dataset.model_dump_json())
            if source in seen:
                continue
            seen.add(source)
            found = dataset_input(trial)
            inputs.setdefault((found.dataset.name, found.dataset.digest), found)
        self._call(self.client.log_inputs, run_id, list(inputs.values()))

    def log_requirements(self, run_id: str, text: str) -> None:
        """The grid's environment as `requirements.txt` (pip freeze, CPU, threads) on its parent."""
        self._artifact(
            run_id, "requirements.txt", self.client.log_text, run_id, text, "requirements.txt"
        )

    def log_invocation(self, run_id: str, invocation: int, metrics: dict[str, float]) -> None:
        """Counts of one `mlpsuite run` on the parent, at step = the invocation number."""
        self._log_metrics(run_id, {**metrics, "invocations": invocation}, step=invocation)

    def end_run(
        self,
        run_id: str,
        status: str,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
    ) -> None:
        """End a run; the epochs still held back, `metrics` (at step 0) and `tags` go in one
        write."""
        stamp = _now_ms()
        pending = self._pending.pop(run_id, [])
        self._flushed_at.pop(run_id, None)
        self._missing.pop(run_id, None)
        batch = pending + [
            Metric(name, float(value), stamp, 0) for name, value in (metrics or {}).items()
        ]
        self._log_batch(run_id, batch, [RunTag(k, v) for k, v in (tags or {}).items()])
        self._call(self.client.set_terminated, run_id, status=status, end_time=stamp)
        record = self.records.get(run_id)
        if record is not None:
            record.info.status, record.info.end_time = status, stamp
            self.current_indexes.clear()

    def start_trial(
        self,
        experiment_id: str,
        trial: Trial,
        parent_run_id: str | None,
        extra_tags: dict[str, str] | None = None,
    ) -> str:
        """A trial's run, owned by this coordinator (a rerun, a retry: no rival to claim it
        from)."""
        run = self.create_trial_run(
            experiment_id,
            trial,
            parent_run_id,
            {**(extra_tags or {}), **claim_tags(self.driver), TAG_CLAIM: WON},
        )
        self.complete_trial_run(run, trial)
        return run.info.run_id

    def create_trial_run(
        self, experiment_id: str, trial: Trial, parent_run_id: str | None, tags: dict[str, str]
    ):
        """The trial's RUNNING run with its identity tags and `tags`: a claim, until it is won."""
        tags = {
            TAG_KIND: "trial",
            TAG_KEY: trial.key,
            TAG_BACKEND: trial.backend,
            TAG_SEED: str(trial.seed),
            TAG_CELL: trial.cell_label(),
            **tags,
        }
        if parent_run_id:
            tags[TAG_PARENT] = parent_run_id
        run = self._call(
            self.client.create_run, experiment_id, run_name=trial.run_name(), tags=tags
        )
        # Everything this coordinator writes to the run is noted in its record too: the
        # grid's trial index is written from the records, not read back run by run.
        record = RunRecord.of_run(run)
        record.complete = True
        self.records[run.info.run_id] = record
        self.current_indexes.clear()
        return run

    def complete_trial_run(self, run, trial: Trial) -> None:
        """What a won claim's run holds besides its tags: params, dataset, trial.json."""
        run_id = run.info.run_id
        # Written with the trial's first batch of metrics (a flush of its epochs, or its end):
        # the run's tags already say which trial it is, and a 0.03 s trial pays one round trip.
        # Until then its claim reads `pending`: a rival claim made later is later in the order
        # and withdraws all the same (claims.verdict).
        self._pending_first[run_id] = (
            [Param(key, value[:PARAM_CHARS]) for key, value in trial.flat_params().items()],
            [RunTag(TAG_CLAIM, WON)],
        )
        self._call(self.client.log_inputs, run_id, [dataset_input(trial)])
        self._write_json(run_id, run.info.artifact_uri, trial.model_dump(mode="json"), "trial.json")

    def delete_run(self, run_id: str) -> None:
        """A withdrawn claim: gone from searches and from the UI's runs (MLflow's trash)."""
        self._pending_first.pop(run_id, None)
        if self.records.pop(run_id, None) is not None:
            self.current_indexes.clear()
        self._call(self.client.delete_run, run_id)

    def _write_json(self, run_id: str, artifact_uri: str, payload: Any, name: str) -> None:
        """`log_dict` without its `get_run`: the new run already says where its artifacts go."""
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repository = get_artifact_repository(artifact_uri, tracking_uri=self.uri)
        with tempfile.TemporaryDirectory(prefix="mlpsuite-") as folder:
            path = Path(folder) / name
            path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
            self._artifact(run_id, name, repository.log_artifact, str(path))

    def _artifact(self, run_id: str, name: str, call: Callable, *args: Any) -> None:
        """An artifact upload whose failure (a folder not writable, a server refusing) does not
        fail the grid: the run ends with tag `mlpsuite.missing_artifacts` naming it, and the
        user reads one warning. A full disk or a server gone for good is a StoreError still."""
        try:
            self._call(call, *args)
        except (StoreError, KeyboardInterrupt):
            raise
        except Exception as error:
            reason = (
                f"{type(error).__name__}: {str(error).strip().splitlines()[0][:300]}"
                if str(error)
                else type(error).__name__
            )
            if not self._warned:
                self._warned = True
                logger.warning(
                    "could not write artifact %s of run %s (%s); the runs go on without their "
                    "artifacts (tag %s)",
                    name,
                    run_id,
                    reason,
                    TAG_MISSING,
                )
            missing = self._missing.setdefault(run_id, {})
            missing.setdefault(reason, []).append(name)
            # At once, not with the run's end: the grid's comparison reads its parent's tags.
            text = "; ".join(f"{', '.join(names)} ({reason})" for reason, names in missing.items())
            self.set_tags(run_id, {TAG_MISSING: text[:TAG_TEXT_CHARS]})

    def log_epoch(self, run_id: str, epoch: int, metrics: dict[str, float]) -> None:
        """Held back and written at most every FLUSH_SECONDS: the UI's live curve lags by that
        much, and a 50-epoch trial of a small MLP costs a few writes instead of fifty."""
        stamp = _now_ms()
        self._pending.setdefault(run_id, []).extend(
            Metric(name, float(value), stamp, epoch) for name, value in metrics.items()
        )
        now = time.monotonic()
        if now - self._flushed_at.setdefault(run_id, now) >= FLUSH_SECONDS:
            self._log_batch(run_id, self._pending.pop(run_id), [])
            self._flushed_at[run_id] = now

    def log_worker_start(self, run_id: str, seconds: float | None) -> None:
        """On a worker's first trial of this grid: what starting it cost (process + import),
        or, for a warm worker an earlier grid of the same process started (`seconds` None),
        `worker_warm` 1; written with the trial's next batch."""
        metric = (
            Metric("worker_warm", 1.0, _now_ms(), 0)
            if seconds is None
            else Metric("worker_start_s", float(seconds), _now_ms(), 0)
        )
        self._pending.setdefault(run_id, []).append(metric)

    def finish_trial(self, run_id: str, result: TrialResult) -> None:
        """End a trial's run with its result: the final test/val metrics, times and curve summary,
        its tags (versions, failure, weights digest, ...), a failure's details and a saved model as
        artifacts; FINISHED or FAILED."""
        finals = {f"test_{name}": value for name, value in result.test.items()}
        finals.update({f"val_{name}": value for name, value in result.val.items()})
        finals.update(
            {
                name: value
                for name, value in (
                    ("initial_loss", result.initial_loss),
                    ("fit_time_s", result.fit_time_s),
                    ("step_time_ms", result.step_time_ms),
                    ("stopped_epoch", result.stopped_epoch),
                    ("tested_epoch", result.tested_epoch),
                    ("trial_time_s", result.trial_time_s),
                    ("overhead_s", result.overhead_s),
                    ("peak_rss_mb", result.peak_rss_mb),
                    ("start_rss_mb", result.start_rss_mb),
                    ("eval_compile_s", result.eval_compile_s),
                )
                if value is not None
            }
        )
        finals.update(curve_summary(result.history))
        tags = {"mlpsuite.threads": str(result.threads)} if result.threads else {}
        if result.status == "FINISHED":  # was the model built for it, or one built earlier reused
            tags["mlpsuite.reused_model"] = str(result.reused_model).lower()
        if result.jit_compile is not None:  # as Keras resolved `auto` on this backend
            tags["mlpsuite.jit_compile"] = str(result.jit_compile).lower()
            tags["mlpsuite.steps_per_execution"] = str(result.steps_per_execution)
        if result.vectorized:  # its times are the group's, divided by the group's size
            tags["mlpsuite.vectorized"] = str(result.vectorized)
        tags.update(
            {f"mlpsuite.version.{lib}": version for lib, version in result.versions.items()}
        )
        if result.weights_sha256:
            tags[TAG_WEIGHTS] = result.weights_sha256
        if result.classes:  # class index i is this label (string labels are encoded sorted)
            tags["mlpsuite.classes"] = json.dumps(result.classes)[:TAG_TEXT_CHARS]
        if result.failure:
            tags[TAG_FAILURE] = result.failure
            tags["mlpsuite.failure_message"] = result.message[:TAG_TEXT_CHARS]
        if result.details:
            self._artifact(
                run_id, "failure.txt", self.client.log_text, run_id, result.details, "failure.txt"
            )
        if result.model_dir and result.status == "FINISHED":
            self._artifact(
                run_id, "model", self.client.log_artifacts, run_id, result.model_dir, "model"
            )
        self.end_run(run_id, "FINISHED" if result.status == "FINISHED" else "FAILED", finals, tags)

    def supersede(self, experiment_id: str, trial_key: str, new_run_id: str) -> None:
        """Tag the older FINISHED runs of a trial that `--force` ran again."""
        older = self.search(
            experiment_id, f"tags.`{TAG_KEY}` = '{trial_key}' and attributes.status = 'FINISHED'"
        )
        for run in older:
            if run.info.run_id != new_run_id and TAG_SUPERSEDED not in run.data.tags:
                self.set_tags(run.info.run_id, {TAG_SUPERSEDED: new_run_id})

    def kill_orphans(self, experiment_id: str) -> int:
        """Mark KILLED the runs left RUNNING by a coordinator of this host that no longer runs
        (it was SIGKILLed, or the machine lost power); returns how many."""
        running = self.search(experiment_id, "attributes.status = 'RUNNING'")
        orphans = [run for run in running if owner_dead(run)]
        for run in orphans:
            self.kill(run.info.run_id, COORDINATOR_DIED)
        return len(orphans)

    def kill(self, run_id: str, reason: str) -> None:
        """End the run KILLED, tagging why (`mlpsuite.failure = reason`)."""
        self.end_run(run_id, RunStatus.to_string(RunStatus.KILLED), tags={TAG_FAILURE: reason})

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        """Set tags on the run, in the store and in this tracker's records of it."""
        self._call(self.client.log_batch, run_id, tags=[RunTag(k, v) for k, v in tags.items()])
        if run_id in self.records:
            self.records[run_id].data.tags.update(tags)
            self.current_indexes.clear()

    def _log_metrics(self, run_id: str, metrics: dict[str, float], step: int) -> None:
        stamp = _now_ms()
        self._log_batch(
            run_id, [Metric(name, float(value), stamp, step) for name, value in metrics.items()], []
        )

    def _log_batch(self, run_id: str, metrics: list[Metric], tags: list[RunTag]) -> None:
        """As few `log_batch` calls as MLflow's per-call limits allow, the run's params still
        held back included."""
        params, first_tags = self._pending_first.pop(run_id, ([], []))
        tags = first_tags + tags
        record = self.records.get(run_id)
        if record is not None:
            record.log_metrics(metrics)
            record.data.params.update((param.key, param.value) for param in params)
            record.data.tags.update((tag.key, tag.value) for tag in tags)
            self.current_indexes.clear()
        while metrics or tags or params:
            self._call(
                self.client.log_batch,
                run_id,
                metrics=metrics[:MAX_METRICS_PER_BATCH],
                tags=tags[:MAX_TAGS_PER_BATCH],
                params=params[:MAX_PARAMS_PER_BATCH],
            )
            metrics, tags = metrics[MAX_METRICS_PER_BATCH:], tags[MAX_TAGS_PER_BATCH:]
            params = params[MAX_PARAMS_PER_BATCH:]

    def write_index(self, experiment_id: str, parent_run_id: str, keys: set[str]) -> None:
        """The grid's trial index (tracking/index.py) on its parent: every trial run of its
        keys this tracker read or wrote, brought up to date with the store first; not written
        again when the one it read still says what the store holds."""
        if parent_run_id in self.current_indexes:
            return
        written_ms = _now_ms()
        # Other drivers' runs changed since this one read the grid (its own are all noted).
        running = {
            run_id
            for run_id, record in self.records.items()
            if record.info.status == "RUNNING" and record.data.tags.get(TAG_DRIVER) != self.driver
        }
        changed, deleted = self._changed_since(
            experiment_id, self.read_ms, self.driver, socket.gethostname(), running
        )
        for run in changed:
            self._remember(run)
        records = [
            record
            for run_id, record in self.records.items()
            if run_id not in deleted
            and record.data.tags.get(TAG_KIND) == "trial"
            and record.data.tags.get(TAG_KEY) in keys
        ]
        index = TrialIndex(records, written_ms, self.driver, socket.gethostname())
        with tempfile.TemporaryDirectory(prefix="mlpsuite-") as folder:
            path = Path(folder) / TRIAL_INDEX
            path.write_bytes(dump_index(index))
            self._artifact(
                parent_run_id, TRIAL_INDEX, self.client.log_artifact, parent_run_id, str(path)
            )
        self._indexes[parent_run_id] = index
        self.set_tags(parent_run_id, {TAG_INDEXED: str(written_ms)})

    def log_report(
        self,
        run_id: str,
        folder: Path,
        metrics: dict[str, float],
        note: str,
        step: int,
        tags: dict[str, str] | None = None,
    ) -> None:
        """The comparison's files under `comparison/`, its headline metrics, the description
        and `tags`."""
        self._artifact(
            run_id, "comparison", self.client.log_artifacts, run_id, str(folder), "comparison"
        )
        self._log_metrics(run_id, metrics, step=step)
        self.set_tags(run_id, {**(tags or {}), TAG_NOTE: note[:NOTE_CHARS]})

    def set_experiment_note(self, experiment_id: str, note: str) -> None:
        """The experiment's description on its page in the MLflow UI."""
        self._call(self.client.set_experiment_tag, experiment_id, TAG_NOTE, note[:NOTE_CHARS])

    def log_figures(self, experiment: str, paths: list[Path]) -> str:
        """A new FINISHED run `figures` (tag mlpsuite.kind=figures) in `experiment` (created if
        missing) holding `paths` as artifacts; returns its id."""
        run = self._call(
            self.client.create_run,
            self.experiment_id(experiment),
            run_name="figures",
            tags={TAG_KIND: "figures", **owner_tags(self.driver)},
        )
        run_id = run.info.run_id
        try:
            for path in paths:
                self._call(self.client.log_artifact, run_id, str(path))
        except BaseException:  # Ctrl-C included: never leave the run RUNNING
            self._call(self.client.set_terminated, run_id, status="FAILED")
            raise
        self._call(self.client.set_terminated, run_id, status="FINISHED")
        return run_id
