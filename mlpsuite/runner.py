"""Run a grid: expand, skip what the store already has, execute, record, compare.

The coordinator side of the data flow; it never imports Keras or a framework. Events from the
executor are written to MLflow as they arrive (tracking/writer.py is the only writer) and shown by
the display. A grid is one parent run: running the same set of trial keys again reopens it, and
every run that completes ends by logging the whole grid's comparison on it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import signal
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlpsuite.config import GridSpec, Trial, expand, file_digest, unique_trials
from mlpsuite.environment import requirements_text, same_as_installed
from mlpsuite.errors import ConfigError, StoreError, UserError
from mlpsuite.executors.base import Event, Executor
from mlpsuite.executors.local import LocalExecutor
from mlpsuite.results import INTERRUPTED, RETRIED, TrialResult, failure_lines
from mlpsuite.run_records import grid_key
from mlpsuite.tracking import TAG_INVOCATIONS, TAG_KEY, StoreReader, Tracker
from mlpsuite.tracking.claims import GridClaims, owner_tags
from mlpsuite.tracking.tags import TAG_REPORT_DIGEST, TAG_TEXT_CHARS, run_versions

if TYPE_CHECKING:
    from mlpsuite.analysis import Comparison

Display = Callable[[Event], None]
SAME_VERSIONS = "same-versions"


@dataclasses.dataclass
class GridOutcome:
    """What `run_grid` did: the parent run, the trials this invocation ran with their results,
    how many were reused, and the comparison logged on the parent (or why there is none)."""

    parent_run_id: str
    results: list[tuple[Trial, TrialResult]]
    n_trials: int
    reused: int
    interrupted: bool = False
    invocation: int = 1
    comparison: Comparison | None = None
    report_error: str | None = None
    kept_logs: Path | None = None  # the workers' log folder, kept because one died
    signal: int = 0  # what interrupted the grid: SIGINT, SIGTERM or SIGHUP
    orphans_killed: int = 0  # runs a dead coordinator had left RUNNING, now KILLED
    record_s: float = 0.0  # the coordinator's time turning events into MLflow writes
    experiment_id: str = ""
    elsewhere: int = 0  # trials this grid waited for while another driver of it ran them
    reused_other_versions: int = (
        0  # reused trials recorded with other library versions than installed
    )
    keys: set[str] = dataclasses.field(default_factory=set)  # the grid's trial keys

    @property
    def failed(self) -> int:
        """The trials this invocation ran that did not finish."""
        return sum(result.status != "FINISHED" for _, result in self.results)

    @property
    def none_finished(self) -> bool:
        """Whether trials ran and not one of the grid's is FINISHED (none reused, none run by
        another driver meanwhile): nothing to compare."""
        ran = bool(self.results) and self.failed == len(self.results)
        return ran and not self.reused and not self.elsewhere

    @property
    def failures(self) -> list[str]:
        """How this invocation's trials failed: one line per distinct reason (`failure_lines`)."""
        return failure_lines([result for _, result in self.results])


def run_grid(
    spec: GridSpec,
    config_path: Path,
    tracker: Tracker,
    jobs: int | None = None,
    force: bool = False,
    display: Display | None = None,
    on_plan: Callable[[int, int, int], None] | None = None,
    executor: Executor | None = None,
    trials: list[Trial] | None = None,
    splits: list[dict[str, Any]] | None = None,
    check_data: Callable[[], list[dict[str, Any]]] | None = None,
) -> GridOutcome:
    """Run every trial of `spec` not already FINISHED in its experiment (all with `force`),
    then log the comparison of the whole grid on its parent run. `executor` may start its
    workers early (`prestart`) once there is work; `trials` may come already expanded;
    `splits` (`grid_checks.check_grid`'s) go into the grid's manifest for the comparison to
    show, or `check_data()` returns them, called before anything is written unless nothing
    is to run (then the splits the grid's run logged before are kept)."""
    trials = trials if trials is not None else unique_trials(expand(spec, config_path))
    by_key = {trial.key: trial for trial in trials}  # a key costs a hash of the whole trial
    keys = set(by_key)
    # Read first, write after: a grid with nothing to run checks no data, and a grid whose
    # data check fails has written nothing.
    experiment_id, found, known = _known_runs(tracker, spec, trials, keys)
    finished, other_versions = _reusable(known, keys, force, spec.reuse)
    todo = [trial for key, trial in by_key.items() if key not in finished]
    if splits is None and check_data is not None:
        logged = tracker.logged_splits(found) if found is not None and not todo else None
        splits = logged if logged is not None else check_data()
    if experiment_id is None:
        experiment_id = tracker.experiment_id(spec.name)
    orphans_killed = tracker.kill_orphans(experiment_id)
    if todo and executor is not None and os.environ.get("MLPSUITE_PRESTART", "1") != "0":
        # Their framework imports overlap opening the grid's run and claiming its trials;
        # nothing to run starts no worker. (0: not at all, for benchmarks/startup.py.)
        executor.prestart(sorted({trial.backend for trial in todo}))
    if on_plan:
        on_plan(len(todo), len(trials) - len(todo), other_versions)
    parent, invocation = tracker.open_grid(experiment_id, spec, config_path, trials, splits)
    if todo or invocation == 1:  # the environment the grid's trials ran in, as they ran
        tracker.log_requirements(
            parent,
            requirements_text(getattr(executor, "threads", None), getattr(executor, "jobs", None)),
        )
    outcome = GridOutcome(
        parent,
        [],
        len(trials),
        len(trials) - len(todo),
        invocation=invocation,
        experiment_id=experiment_id,
        orphans_killed=orphans_killed,
        reused_other_versions=other_versions,
        keys=keys,
    )
    # Runs that had ended before this driver began: a result appearing on another run is another
    # driver's (a RUNNING one included, though it existed already).
    ended = {run.info.run_id for run in known if run.info.status != "RUNNING"}
    claims = GridClaims(tracker, experiment_id, parent, ended, trials=len(todo))
    recorder = _Recorder(
        tracker,
        experiment_id,
        parent,
        outcome,
        display,
        supersede=force or spec.reuse == SAME_VERSIONS,
        claims=claims,
    )
    executor = executor or LocalExecutor(jobs)
    _execute(executor, todo, recorder, tracker, experiment_id, parent, outcome)
    outcome.kept_logs = executor.kept_logs
    if not outcome.interrupted:
        _close_grid(tracker, spec.name, outcome)
    return outcome


def reusable_keys(reader: StoreReader, spec: GridSpec, trials: list[Trial]) -> set[str]:
    """The keys of `trials` that `run_grid` would reuse from the store (read only)."""
    keys = {trial.key for trial in trials}
    _, _, known = _known_runs(reader, spec, trials, keys)
    return _reusable(known, keys, False, spec.reuse)[0]


def _known_runs(reader: StoreReader, spec: GridSpec, trials: list[Trial], keys: set[str]):
    """(the experiment's id, the grid's run, every trial run of `keys`), read only; (None,
    None, []) where the experiment does not exist yet."""
    experiment_id = reader.find_experiment(spec.name)
    if experiment_id is None:
        return None, None, []
    # The grid run of these keys, if it ran before: its trial index holds them all.
    found = reader.find_grid(experiment_id, grid_key(trials))
    return experiment_id, found, reader.grid_trial_runs(experiment_id, found, keys)


def _reusable(known: list, keys: set[str], force: bool, reuse: str) -> tuple[set[str], int]:
    """The grid's keys with a FINISHED run to reuse (none with `force`; with `same-versions`
    only runs of the installed library versions), and how many of those reused came from
    other versions than the installed ones."""
    if force:
        return set(), 0
    newest = {}  # key -> its newest FINISHED run, the one the comparison counts
    for run in sorted(known, key=lambda run: run.info.start_time):
        if run.info.status == "FINISHED":
            newest[run.data.tags[TAG_KEY]] = run
    current = {key for key, run in newest.items() if same_as_installed(run_versions(run.data.tags))}
    if reuse == SAME_VERSIONS:
        return current, 0
    return set(newest), len(newest) - len(current)


def _close_grid(tracker: Tracker, experiment: str, outcome: GridOutcome) -> None:
    """Count this invocation, log the whole grid's comparison, end the parent FINISHED."""
    parent = outcome.parent_run_id
    try:
        # What recording cost the coordinator (every MLflow write of the trials' runs): the
        # bound on how many trials per second one coordinator can take.
        record_s = outcome.record_s / max(1, len(outcome.results))
        tracker.log_invocation(
            parent,
            outcome.invocation,
            {
                "trials_run": len(outcome.results),
                "trials_failed": outcome.failed,
                "trials_reused": outcome.reused,
                "record_s_per_trial": record_s,
            },
        )
        tracker.write_index(outcome.experiment_id, parent, outcome.keys)
        if outcome.none_finished:
            # No comparison: it could only say that its metric was never recorded. The parent
            # says why the grid failed; the next run of it tries every trial again.
            reasons = outcome.failures
            note = "No trial finished, so there is nothing to compare:\n\n" + "".join(
                f"- {line}\n" for line in reasons
            )
            tracker.set_tags(
                parent,
                {
                    "mlpsuite.report_error": f"no trial finished: {'; '.join(reasons)}"[
                        :TAG_TEXT_CHARS
                    ],
                    "mlflow.note.content": note[:TAG_TEXT_CHARS],
                },
            )
            tracker.end_run(parent, "FAILED")
            return
        outcome.comparison = log_comparison(tracker, experiment, parent, outcome.invocation)
    except KeyboardInterrupt:  # every trial is recorded; the next run writes the report
        tracker.end_run(parent, "KILLED")
        outcome.interrupted = True
        return
    except Exception as error:  # a bug in the report must not leave the parent RUNNING
        if not isinstance(error, UserError):  # a bug: its traceback; the store's fault: its line
            traceback.print_exc()
        outcome.report_error = f"{type(error).__name__}: {error}".splitlines()[0]
        tracker.set_tags(parent, {"mlpsuite.report_error": outcome.report_error[:TAG_TEXT_CHARS]})
    tracker.end_run(parent, "FINISHED")


def log_comparison(
    tracker: Tracker,
    experiment: str,
    parent_run_id: str | None = None,
    step: int | None = None,
    by: str | None = None,
    metric: str | None = None,
    protocol: dict | None = None,
) -> Comparison:
    """Compute the grid's comparison (under its config's protocol, or `protocol`'s fields over
    it) and log it on its parent: files under `comparison/`, headline metrics and the Markdown
    description the MLflow UI shows."""
    began = time.perf_counter()
    from mlpsuite.analysis import compare
    from mlpsuite.present.report import write_report
    from mlpsuite.present.run_page import experiment_note, grid_tags, run_note

    comparison = compare(
        tracker, experiment, parent_run_id, by=by, metric=metric, protocol=protocol
    )
    parent_run_id = comparison.parent_run_id
    logged = tracker.get_run(parent_run_id).data.tags
    if step is None:
        step = int(logged.get(TAG_INVOCATIONS, "1"))
    digest = report_digest(comparison)
    if logged.get(TAG_REPORT_DIGEST) == digest:  # the parent shows this very report already
        return comparison
    with tempfile.TemporaryDirectory(prefix="mlpsuite-comparison-") as folder:
        written = write_report(comparison, Path(folder))
        # What the report itself cost (reads, statistics, figures): benchmarks/report.py reads it.
        metrics = {**comparison.headline_metrics(), "report_time_s": time.perf_counter() - began}
        note = run_note(comparison, [path.stem for path in written if path.suffix == ".png"])
        tags = {**grid_tags(comparison), TAG_REPORT_DIGEST: digest}
        tracker.log_report(parent_run_id, Path(folder), metrics, note, step, tags=tags)
    experiment_id = comparison.experiment_id
    tracker.set_experiment_note(
        experiment_id,
        experiment_note(experiment, experiment_id, tracker.grid_parents(experiment_id)),
    )
    return comparison


def report_digest(comparison: Comparison) -> str:
    """What the report is a function of: the grid's frame and tables as compared (the frame
    names each counted run and its end state, which fix its curves), the protocol and this
    mlpsuite. Equal digests, equal reports: a grid run again with nothing
    to run, or compared again unchanged, keeps the report its parent shows."""
    import pandas as pd

    from mlpsuite import __version__

    digest = hashlib.sha256(__version__.encode())
    # The frame names each counted run and its end state: its curves, logged before it ended,
    # are the same while it is.
    digest.update(pd.util.hash_pandas_object(comparison.frame.astype(str)).to_numpy().tobytes())
    for table in (comparison.cells, comparison.effects):
        digest.update(table.to_csv(index=False).encode())
    digest.update(comparison.protocol.model_dump_json().encode())
    return digest.hexdigest()[:32]


def rerun(
    tracker: Tracker,
    run_id: str,
    jobs: int = 1,
    display: Display | None = None,
    allow_changed_data: bool = False,
) -> tuple[Trial, TrialResult, str, float]:
    """Re-execute one run's logged trial into a new run of its experiment, from any folder.

    Returns the trial, the new result, the new run id and the largest relative difference
    between the old and new final losses (train, validation and test).
    """
    trial, old_run = tracker.load_trial(run_id)
    trial = _same_data(trial, allow_changed_data)
    experiment_id = old_run.info.experiment_id
    outcome = GridOutcome("", [], 1, 0)
    recorder = _Recorder(
        tracker,
        experiment_id,
        None,
        outcome,
        display,
        extra_tags={"mlpsuite.rerun_of": run_id},
        claims=None,
    )
    _execute(LocalExecutor(jobs), [trial], recorder, tracker, experiment_id, None, outcome)
    _, result = outcome.results[0]
    old = {
        name: value
        for name, value in old_run.data.metrics.items()
        if name in ("loss", "val_loss", "test_loss")
    }
    new = {
        "loss": result.final_loss,
        "val_loss": (result.history.get("val_loss") or [None])[-1],
        "test_loss": result.test.get("loss"),
    }
    diffs = [abs(new[k] - v) / max(abs(v), 1e-12) for k, v in old.items() if new.get(k) is not None]
    return trial, result, recorder.run_ids[trial.key], max(diffs, default=float("nan"))


def _same_data(trial: Trial, allow_changed: bool) -> Trial:
    """The trial as logged, if its data file is still the one it ran on."""
    if not trial.data_path:
        return trial
    current = file_digest(trial.data_path)
    if current is None:
        raise ConfigError(f"{trial.data_path}: the run's data file no longer exists")
    if current != trial.data_sha256 and not allow_changed:
        raise ConfigError(
            f"{trial.data_path}: changed since the run (sha256 {trial.data_sha256} -> {current}); "
            "pass --allow-changed-data to rerun on the new contents"
        )
    return trial.model_copy(update={"data_sha256": current})


class _Recorder:
    """Turns executor events into MLflow writes, as they happen."""

    def __init__(
        self,
        tracker: Tracker,
        experiment_id: str,
        parent: str | None,
        outcome: GridOutcome,
        display: Display | None,
        extra_tags: dict | None = None,
        supersede: bool = False,
        claims: GridClaims | None = None,
    ):
        self.tracker, self.experiment_id, self.parent = tracker, experiment_id, parent
        self.outcome, self.display, self.extra_tags = outcome, display, extra_tags
        self.supersede, self.claims = supersede, claims
        # Trial key -> its run: the claims' won runs, else (a rerun) created on first sight.
        self.run_ids: dict[str, str] = claims.mine if claims is not None else {}
        # Slot -> start-up seconds (None: a warm worker), until its first trial.
        self.new_workers: dict[int, float | None] = {}

    def __call__(self, event: Event) -> None:
        began = time.perf_counter()
        self._record(event)
        self.outcome.record_s += time.perf_counter() - began
        if self.display:
            self.display(event)

    def _record(self, event: Event) -> None:
        if event.kind == "ready":
            self.new_workers[event.slot] = event.payload.get("start_s")
            return
        trial, result = event.trial, event.result
        assert trial is not None  # every event but `ready` is about a trial
        if event.kind == "started":
            run_id = self._run_id(trial)
            if event.slot in self.new_workers:
                self.tracker.log_worker_start(run_id, self.new_workers.pop(event.slot))
        elif event.kind == "epoch":
            self.tracker.log_epoch(
                self._run_id(trial), event.payload["epoch"], event.payload["metrics"]
            )
        elif event.kind == "retrying" and trial.key in self.run_ids:
            # The retry gets a run of its own: its epochs must not mix with the dead attempt's.
            # Made before the old one ends, so that the key is never without a live claim.
            old = self.run_ids.pop(trial.key)
            self._run_id(trial)
            self._ended(old)
            self.tracker.kill(old, RETRIED)
        elif event.kind == "elsewhere":
            self.outcome.elsewhere += 1
        elif event.kind == "finished":
            assert result is not None  # a `finished` event carries its result
            run_id = self._run_id(trial)
            self.tracker.finish_trial(run_id, result)
            self._ended(run_id)
            if result.model_dir:  # logged: the worker's copy is no longer needed
                shutil.rmtree(Path(result.model_dir).parent, ignore_errors=True)
            if self.supersede and result.status == "FINISHED":
                self.tracker.supersede(self.experiment_id, trial.key, run_id)
            self.outcome.results.append((trial, result))

    def _run_id(self, trial: Trial) -> str:
        """The trial's run: its won claim, else created on first sight (a rerun, a retry)."""
        if trial.key not in self.run_ids:
            run_id = self.tracker.start_trial(
                self.experiment_id, trial, self.parent, self.extra_tags
            )
            if self.claims is not None:
                self.claims.own(trial.key, run_id)
            self.run_ids[trial.key] = run_id
        return self.run_ids[trial.key]

    def _ended(self, run_id: str) -> None:
        if self.claims is not None:
            self.claims.finished(run_id)

    def done_elsewhere(self, trial: Trial, status: str) -> None:
        """A trial this grid waited for, ended by another driver of the grid."""
        self(Event("elsewhere", -1, trial.backend, trial, payload={"status": status}))


class _StopRequest:
    """Ctrl-C, SIGTERM or SIGHUP, noted by the signal handler and acted on by the executor's
    loop between events: raising inside the handler could cut an MLflow write in half and
    leave SQLite's write lock held by this very process."""

    def __init__(self):
        self.signum = 0

    def __call__(self, signum, frame) -> None:
        self.signum = self.signum or signum

    def requested(self) -> bool:
        return bool(self.signum)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _execute(
    executor: Executor,
    trials: list[Trial],
    recorder: _Recorder,
    tracker: Tracker,
    experiment_id: str,
    parent: str | None,
    outcome: GridOutcome,
) -> None:
    """Run and record; on Ctrl-C, SIGTERM or SIGHUP mark what was in flight KILLED, never
    RUNNING."""
    stop = _StopRequest()
    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        while trials:  # then the trials other drivers held, if their owners went away
            executor.run(
                trials,
                recorder,
                should_stop=stop.requested,
                claim=recorder.claims.claim if recorder.claims else None,
            )
            trials = (
                recorder.claims.wait_for_others(stop.requested, recorder.done_elsewhere)
                if recorder.claims
                else []
            )
    except BaseException as error:
        for signum in STOP_SIGNALS:  # a second signal must not skip the clean-up
            signal.signal(signum, signal.SIG_IGN)
        executor.shutdown(kill=True)
        try:
            _kill_unfinished(tracker, experiment_id, parent, recorder, outcome)
            if parent:
                tracker.end_run(parent, "KILLED")
        except StoreError:
            if not isinstance(error, StoreError):
                raise
            # The server is still away: the runs stay RUNNING until the next `mlpsuite run`
            # finds their coordinator gone and marks them KILLED (`kill_orphans`).
        if not isinstance(error, KeyboardInterrupt):
            raise
        outcome.interrupted = True
        outcome.signal = stop.signum or signal.SIGINT
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if recorder.claims is not None:
            recorder.claims.close()


def _kill_unfinished(
    tracker: Tracker,
    experiment_id: str,
    parent: str | None,
    recorder: _Recorder,
    outcome: GridOutcome,
) -> None:
    done = {trial.key for trial, _ in outcome.results}
    run_ids = {run_id for key, run_id in recorder.run_ids.items() if key not in done}
    if parent:  # also any run whose creation the interrupt cut short
        running = tracker.running_children(experiment_id, parent)
        mine = owner_tags(tracker.driver)  # not another driver's of this grid: its claims are alive
        run_ids |= {
            run.info.run_id
            for run in running
            if all(run.data.tags.get(tag) == value for tag, value in mine.items())
        }
    for run_id in run_ids:
        tracker.kill(run_id, INTERRUPTED)
