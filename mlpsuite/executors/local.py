"""The local executor: long-lived worker processes, one Keras backend each.

A worker imports its framework once and then runs trials back to back; it switches backend
only when its backend's queue is empty. Workers come from, and go back to, this process's
pool (`pool.py`), which keeps them warm between grids when asked. A worker that dies
mid-trial turns that trial into a `worker died` failure and is replaced; a trial past its
time limit is killed as `timeout`.
Imports no framework: workers are separate processes running `mlpsuite.trial.worker`.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import time

from mlpsuite.config import Trial
from mlpsuite.executors import wire
from mlpsuite.executors.base import (
    POLL_SECONDS,
    Event,
    Handler,
    Queues,
    Slot,
    SlotExecutor,
    default_jobs,
    fail,
)
from mlpsuite.executors.pool import POOL, Worker
from mlpsuite.executors.units import _Unit
from mlpsuite.results import WORKER_DIED, TrialResult


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


class LocalExecutor(SlotExecutor):
    """Runs trials on `jobs` worker processes of this machine: the transport is a pipe each
    way, JSON lines (`wire`), and a reader thread per worker feeding one event queue. Its
    workers come from this process's pool (`pool.POOL`): warm ones an earlier grid left, when
    their environment is the same, and go back to it for `keep_s` seconds when the grid ends
    (0: they are stopped, as the CLI's are)."""

    assign_before_ready = True  # a request waits in the pipe while the worker imports

    def __init__(self, jobs: int | None = None, reuse: bool = True, keep_s: float = 0.0):
        super().__init__(jobs or default_jobs())
        self.reuse = reuse  # False: workers build and compile a fresh model for every trial
        self.keep_s = keep_s
        self.threads = max(1, (os.cpu_count() or 1) // self.jobs)
        self._slots: dict[int, Worker] = {}  # pyright: ignore[reportIncompatibleVariableOverride]
        self._events: queue.Queue = queue.Queue()

    def prestart(self, backends: list[str]) -> None:
        """Start workers for the grid's backends now (or take warm ones), so their framework
        imports overlap the coordinator's own start-up (MLflow, the store). `run` uses them or
        stops them."""
        planned = collections.Counter(backends)
        for slot in range(min(self.jobs, len(backends))):
            serving = collections.Counter(w.backend for w in self._slots.values())
            backend = min(planned, key=lambda b: (serving[b], -planned[b]))
            self._start(slot, backend)

    # ------------------------------------------------------------ scheduling hooks

    def _in_flight(self, slot: Slot) -> list[Trial]:
        assert isinstance(slot, Worker)
        return list(slot.trials.values())

    def _busy(self, slot: Slot) -> bool:
        assert isinstance(slot, Worker)
        return bool(slot.trials) or not slot.ready or slot.retiring

    def _assign(self, slot: Slot, unit: _Unit) -> None:
        assert isinstance(slot, Worker)
        # The clock starts at once: a worker hung before it says `started` is killed as well.
        slot.trials, slot.started_at, slot.program = (
            {t.key: t for t in unit.trials},
            None,
            unit.program,
        )
        slot.assigned_at = time.monotonic()
        request = wire.run_request([trial.model_dump(mode="json") for trial in unit.trials])
        assert slot.process.stdin is not None  # started with stdin=PIPE
        try:
            slot.process.stdin.write(json.dumps(request) + "\n")
            slot.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the reader thread reports the exit; the trial fails as `worker died`

    # ------------------------------------------------------------ messages

    def _wait_and_handle(self, queues: Queues, handle: Handler) -> None:
        try:
            worker, message = self._events.get(timeout=POLL_SECONDS)
        except queue.Empty:
            return
        if self._slots.get(worker.index) is worker:  # not a replaced worker's last words
            self._on_message(worker, message, queues, handle)

    def _on_message(self, worker: Worker, message: dict, queues: Queues, handle: Handler) -> None:
        kind = message["event"]
        if kind == "ready":
            worker.ready = True
            self._start_succeeded(worker.backend)
            if worker.warm:  # lent again: what it cost was paid by an earlier grid
                message = {**message, "warm": True}
            else:  # process start, Python and the framework import: what a fresh worker costs
                message["start_s"] = time.monotonic() - worker.spawned_at
            handle(Event("ready", worker.index, worker.backend, payload=message))
        elif kind == "started":
            worker.started_at = time.monotonic()
            trial = worker.trials[message["key"]]
            handle(Event("started", worker.index, worker.backend, trial, message))
        elif kind == "epoch":
            trial = worker.trials[message["key"]]
            handle(Event("epoch", worker.index, worker.backend, trial, message))
        elif kind == "finished":
            trial = worker.trials.pop(message["key"])
            if not worker.trials:
                worker.started_at = None
            result = TrialResult.from_dict(message["result"])
            handle(Event("finished", worker.index, worker.backend, trial, result=result))
        elif kind == "retiring":
            worker.retiring = True
            self.retired += 1
        elif kind == "exit":
            self._on_exit(worker, message, queues, handle)

    def _on_exit(self, worker: Worker, message: dict, queues: Queues, handle: Handler) -> None:
        del self._slots[worker.index]
        retired = worker.retiring and not worker.trials and message["code"] == 0
        reason = exit_reason(message["code"])
        details = (
            worker.stderr_tail() or f"The worker ({reason}) wrote nothing to stderr before it died."
        )
        kept = POOL.ended(worker, unasked=not retired)
        if retired:
            return  # the slot gets a fresh worker on the next fill
        self.kept_logs = kept
        for trial in worker.trials.values():
            fail(trial, worker.index, WORKER_DIED, reason, handle, details)
        if not worker.ready:
            self._start_failed(
                worker.backend, queues, f"worker could not start ({reason})", handle, details
            )

    # ------------------------------------------------------------ processes

    def _start(self, index: int, backend: str) -> Worker:
        worker = POOL.take(backend, self.threads, self.reuse, self._events)
        worker.index = index
        self._slots[index] = worker
        if worker.warm:  # ready already: said through the queue, as a fresh one says it
            ready = {"event": "ready", "backend": backend, "pid": worker.process.pid}
            self._events.put((worker, ready))
        return worker

    def _stop(self, slot: Slot, kill: bool = False) -> None:
        assert isinstance(slot, Worker)
        if kill:
            POOL.stop(slot, kill=True)
        else:  # kept warm for a later grid when it is idle and healthy, else stopped
            POOL.give_back(slot, self.keep_s)
