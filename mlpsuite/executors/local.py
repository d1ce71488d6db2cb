"""The local executor: long-lived worker processes, one Keras backend each.

A worker imports its framework once and then runs trials back to back; it switches backend
only when its backend's queue is empty. A worker that dies mid-trial turns that trial into a
`worker died` failure and is replaced; a trial past its time limit is killed as `timeout`.
Imports no framework: workers are separate `python -m mlpsuite.executors.worker` processes.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mlpsuite.backends import thread_environment
from mlpsuite.config import Trial
from mlpsuite.executors.units import Claim, _queues, _Unit, next_claimed, take_claimed
from mlpsuite.registry import REFERENCE_BACKEND
from mlpsuite.results import TIMEOUT, WORKER_DIED, TrialResult
from mlpsuite.saved_models import MODEL_DIR_ENV

# A worker that dies this many times in a row before it is ready fails its backend's trials.
MAX_START_FAILURES = 2
POLL_SECONDS = 0.2


@dataclasses.dataclass
class Event:
    """What the executor reports: `ready`, `started`, `epoch`, `finished` (with a result)."""

    kind: str
    slot: int
    backend: str
    trial: Trial | None = None
    payload: dict = dataclasses.field(default_factory=dict)
    result: TrialResult | None = None


Handler = Callable[[Event], None]


@dataclasses.dataclass
class _Worker:
    slot: int
    generation: int
    backend: str
    process: subprocess.Popen
    stderr_path: Path
    spawned_at: float = dataclasses.field(default_factory=time.monotonic)
    ready: bool = False
    trials: dict[str, Trial] = dataclasses.field(default_factory=dict)  # in flight, by key
    started_at: float | None = None
    assigned_at: float | None = None  # when its request was sent: the limit of one never started
    program: str | None = None  # the program key of its last trial: what its compiled model fits
    retiring: bool = False  # it said it will exit (its memory grew): give it no more work

    def stderr_tail(self, lines: int = 200) -> str:
        """The worker's last output lines: the failure.txt of a trial it died in."""
        try:
            text = (
                self.stderr_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            )
        except OSError:
            return ""
        return "\n".join(text[-lines:])


def exit_reason(code: int) -> str:
    """What a worker's exit code means: a signal by name, and SIGKILL's usual sender."""
    if code >= 0:
        return f"exit code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    why = (
        "; not sent by mlpsuite: the kernel's out-of-memory killer is the usual sender"
        if name == "SIGKILL"
        else ""
    )
    return f"killed by {name} (exit code {code}{why})"


def _fail(
    trial: Trial, slot: int, reason: str, message: str, handle: Handler, details: str = ""
) -> None:
    """Report a trial the worker could not finish as a FAILED result."""
    result = TrialResult.failed(trial.key, trial.backend, reason, message, details)
    handle(Event("finished", slot, trial.backend, trial, result=result))


def fail_queue(queue: collections.deque, message: str, handle: Handler) -> None:
    """Every trial still queued for a backend whose workers cannot start: FAILED, `worker died`."""
    while queue:
        for trial in queue.popleft().trials:
            _fail(trial, -1, WORKER_DIED, message, handle)


def overrun(trials: list[Trial], started_at: float | None) -> str | None:
    """Why a request in flight since `started_at` must be killed, or None. A trial stops itself
    at the first epoch end past `training.max_seconds`; this is the hard stop for one that
    never reaches an epoch end (a huge epoch, a hung worker), with room for the last epoch."""
    if not trials or started_at is None:
        return None
    max_seconds = max(trial.training.max_seconds for trial in trials)
    limit = max_seconds * 1.1 + 5.0
    if time.monotonic() - started_at <= limit:
        return None
    return f"killed after {limit:.0f} s (training.max_seconds={max_seconds:g})"


def worker_environment(backend: str, threads: int, reuse: bool, model_dir: Path) -> dict[str, str]:
    """What a worker's process needs in its environment before it imports a framework: its
    backend, its thread budget, whether to reuse compiled models, where to save models."""
    env = {
        **thread_environment(threads),
        "MLPSUITE_BACKEND": backend,
        "MLPSUITE_THREADS": str(threads),
        "MLPSUITE_REUSE": "1" if reuse else "0",
        MODEL_DIR_ENV: str(model_dir),
    }
    if backend != REFERENCE_BACKEND:
        env["KERAS_BACKEND"] = backend
    return env


def default_jobs() -> int:
    """One worker per core: small models gain little from intra-op threads."""
    return max(1, os.cpu_count() or 1)


class LocalExecutor:
    """Runs trials on `jobs` worker processes of this machine."""

    def __init__(self, jobs: int | None = None, reuse: bool = True):
        self.jobs = jobs or default_jobs()
        self.reuse = reuse  # False: workers build and compile a fresh model for every trial
        self.threads = max(1, (os.cpu_count() or 1) // self.jobs)
        self._workers: dict[int, _Worker] = {}
        self._events: queue.Queue = queue.Queue()
        self._generation = 0
        self._start_failures: collections.Counter = collections.Counter()
        self._log_dir = Path(tempfile.mkdtemp(prefix="mlpsuite-workers-"))
        self.kept_logs: Path | None = None  # set when a worker died: its log is evidence
        self.retired = 0  # workers that exited because their memory grew
        self._claim: Claim | None = None

    def run(
        self,
        trials: list[Trial],
        handle: Handler,
        should_stop: Callable[[], bool] | None = None,
        claim: Claim | None = None,
    ) -> None:
        """Run every trial; `handle` gets each event in the calling thread. Blocks until done,
        or raises KeyboardInterrupt between events once `should_stop()` says so. `claim` keeps
        the trials of a unit that this coordinator owns, just before the unit is sent."""
        self._claim = claim
        queues = _queues(trials)
        self.jobs = min(self.jobs, max(1, len(trials)))
        try:
            while any(queues.values()) or any(w.trials for w in self._workers.values()):
                if should_stop is not None and should_stop():
                    raise KeyboardInterrupt
                self._fill_slots(queues, handle)
                try:
                    slot, generation, message = self._events.get(timeout=POLL_SECONDS)
                except queue.Empty:
                    self._enforce_time_limits(handle)
                    continue
                worker = self._workers.get(slot)
                if worker is not None and worker.generation == generation:
                    self._on_message(worker, message, queues, handle)
                self._enforce_time_limits(handle)
        finally:
            self.shutdown()

    def shutdown(self, kill: bool = False) -> None:
        """Stop every worker: politely when idle, at once when `kill` (Ctrl-C). The log folder
        goes with them, unless a worker died."""
        for worker in list(self._workers.values()):
            self._stop(worker, kill=kill)
        self._workers.clear()
        if self.kept_logs is None:
            shutil.rmtree(self._log_dir, ignore_errors=True)

    def prestart(self, backends: list[str]) -> None:
        """Start workers for the grid's backends now, so their framework imports overlap the
        coordinator's own start-up (MLflow, the store). `run` uses them or stops them."""
        planned = collections.Counter(backends)
        for slot in range(min(self.jobs, len(backends))):
            serving = collections.Counter(w.backend for w in self._workers.values())
            backend = min(planned, key=lambda b: (serving[b], -planned[b]))
            self._start(slot, backend)

    # ------------------------------------------------------------ scheduling

    def _fill_slots(self, queues, handle: Handler) -> None:
        for slot in range(self.jobs):
            worker = self._workers.get(slot)
            if worker is not None and (worker.trials or not worker.ready or worker.retiring):
                continue
            if worker is not None and queues.get(worker.backend):
                unit = take_claimed(
                    queues[worker.backend],
                    worker.program,
                    self._programs(worker.backend, slot),
                    self._claim,
                )
                if unit is not None:
                    self._assign(worker, unit)
                    continue
            backend, unit = next_claimed(
                queues,
                [w.backend for w in self._workers.values()],
                functools.partial(self._programs, slot=slot),
                self._claim,
            )
            if worker is not None:
                self._stop(worker)
                del self._workers[slot]
            if backend is not None:
                assert unit is not None  # next_claimed gives both or neither
                self._assign(self._start(slot, backend), unit)

    def _programs(self, backend: str, slot: int) -> set[str]:
        """The programs the workers of other slots on `backend` hold compiled."""
        return {
            w.program
            for w in self._workers.values()
            if w.slot != slot and w.backend == backend and w.program
        }

    def _assign(self, worker: _Worker, unit: _Unit) -> None:
        # The clock starts at once: a worker hung before it says `started` is killed as well.
        worker.trials, worker.started_at, worker.program = (
            {t.key: t for t in unit.trials},
            None,
            unit.program,
        )
        worker.assigned_at = time.monotonic()
        request = {"op": "run", "trials": [trial.model_dump(mode="json") for trial in unit.trials]}
        assert worker.process.stdin is not None  # started with stdin=PIPE
        try:
            worker.process.stdin.write(json.dumps(request) + "\n")
            worker.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the reader thread reports the exit; the trial fails as `worker died`

    # ------------------------------------------------------------ messages

    def _on_message(self, worker: _Worker, message: dict, queues, handle: Handler) -> None:
        kind = message["event"]
        if kind == "ready":
            worker.ready = True
            self._start_failures[worker.backend] = 0
            # Process start, Python and the framework import: what a fresh worker costs.
            message["start_s"] = time.monotonic() - worker.spawned_at
            handle(Event("ready", worker.slot, worker.backend, payload=message))
        elif kind == "started":
            worker.started_at = time.monotonic()
            handle(
                Event(
                    "started", worker.slot, worker.backend, worker.trials[message["key"]], message
                )
            )
        elif kind == "epoch":
            handle(
                Event("epoch", worker.slot, worker.backend, worker.trials[message["key"]], message)
            )
        elif kind == "finished":
            trial = worker.trials.pop(message["key"])
            if not worker.trials:
                worker.started_at = None
            result = TrialResult.from_dict(message["result"])
            handle(Event("finished", worker.slot, worker.backend, trial, result=result))
        elif kind == "retiring":
            worker.retiring = True
            self.retired += 1
        elif kind == "exit":
            self._on_exit(worker, message, queues, handle)

    def _on_exit(self, worker: _Worker, message: dict, queues, handle: Handler) -> None:
        del self._workers[worker.slot]
        if worker.retiring and not worker.trials and message["code"] == 0:
            return  # the slot gets a fresh worker on the next fill
        reason = exit_reason(message["code"])
        self.kept_logs = self._log_dir
        if not worker.ready:
            self._start_failures[worker.backend] += 1
        details = (
            worker.stderr_tail() or f"The worker ({reason}) wrote nothing to stderr before it died."
        )
        for trial in worker.trials.values():
            _fail(trial, worker.slot, WORKER_DIED, reason, handle, details)
        if self._start_failures[worker.backend] >= MAX_START_FAILURES:
            fail_queue(queues[worker.backend], f"worker could not start ({reason})", handle)

    def _enforce_time_limits(self, handle: Handler) -> None:
        """The hard stop; the worker itself stops at the first epoch end past the limit."""
        for worker in list(self._workers.values()):
            message = overrun(list(worker.trials.values()), worker.started_at or worker.assigned_at)
            if message:
                self._stop(worker, kill=True)
                del self._workers[worker.slot]
                for trial in worker.trials.values():
                    _fail(trial, worker.slot, TIMEOUT, message, handle)

    # ------------------------------------------------------------ processes

    def _start(self, slot: int, backend: str) -> _Worker:
        self._generation += 1
        self._log_dir.mkdir(
            parents=True, exist_ok=True
        )  # again: a run after a shutdown (a takeover)
        stderr_path = self._log_dir / f"worker-{slot}-{self._generation}-{backend}.log"
        env = {
            **os.environ,
            **worker_environment(backend, self.threads, self.reuse, self._log_dir / "models"),
        }
        with open(stderr_path, "w", encoding="utf-8") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "mlpsuite.executors.worker"],
                env=env,
                text=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                bufsize=1,
                start_new_session=True,  # a terminal's Ctrl-C goes to the coordinator only
            )
        worker = _Worker(slot, self._generation, backend, process, stderr_path)
        self._workers[slot] = worker
        threading.Thread(target=self._read, args=(worker,), daemon=True).start()
        return worker

    def _read(self, worker: _Worker) -> None:
        """Forward a worker's events, tagged so a replaced worker's last words are ignored."""
        tag = (worker.slot, worker.generation)
        assert worker.process.stdout is not None  # started with stdout=PIPE
        for line in worker.process.stdout:
            try:
                self._events.put((*tag, json.loads(line)))
            except json.JSONDecodeError:
                continue
        self._events.put((*tag, {"event": "exit", "code": worker.process.wait()}))

    def _stop(self, worker: _Worker, kill: bool = False) -> None:
        process = worker.process
        assert process.stdin is not None  # started with stdin=PIPE
        if (
            process.poll() is None and not kill and worker.ready
        ):  # one still importing holds nothing
            try:
                process.stdin.write(json.dumps({"op": "stop"}) + "\n")
                process.stdin.close()
                process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if process.poll() is None:
            process.kill()
            process.wait()
