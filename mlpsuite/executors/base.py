"""The executor contract and the one scheduling loop both executors share.

An executor runs a grid's trials on workers, one backend per worker, and reports what happens
as `Event`s to one handler in the calling thread. `Executor` is what `runner.run_grid` needs;
`SlotExecutor` is the scheduling both executors share: per-backend queues of units, `jobs`
slots, the program each worker holds compiled, the claim taken just before a unit is sent, the
hard time limit and start failures. A subclass keeps only its transport: how a worker starts,
how a request reaches it, how its events come back, and how it is stopped (`local.py`:
processes and pipes; `ray.py`: actors and streaming calls).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from mlpsuite.config import Trial
from mlpsuite.executors.units import Claim, _queues, _Unit, next_backend, next_claimed, take_claimed
from mlpsuite.results import TIMEOUT, WORKER_DIED, TrialResult

# A worker that dies this many times in a row before it is ready fails its backend's trials.
MAX_START_FAILURES = 2
POLL_SECONDS = 0.2

Queues = dict[str, collections.deque]


@dataclasses.dataclass
class Event:
    """What the executor reports: `ready`, `started`, `epoch`, `finished` (with a result),
    `retrying` (Ray); the runner adds `elsewhere` for a trial another driver ran."""

    kind: str
    slot: int
    backend: str
    trial: Trial | None = None
    payload: dict = dataclasses.field(default_factory=dict)
    result: TrialResult | None = None


Handler = Callable[[Event], None]


class Executor(Protocol):
    """What the runner drives: `LocalExecutor` and `RayExecutor` implement it."""

    @property
    def jobs(self) -> int:
        """Workers at once."""
        ...

    @property
    def retired(self) -> int:
        """Workers that exited because their memory grew."""
        ...

    @property
    def kept_logs(self) -> Path | None:
        """The workers' log folder, kept when one died (evidence)."""
        ...

    def prestart(self, backends: list[str]) -> None:
        """Start workers for these backends now, if the transport gains from it."""
        ...

    def run(
        self,
        trials: list[Trial],
        handle: Handler,
        should_stop: Callable[[], bool] | None = None,
        claim: Claim | None = None,
    ) -> None:
        """Run every trial, each event to `handle`; KeyboardInterrupt once `should_stop()`."""
        ...

    def shutdown(self, kill: bool = False) -> None:
        """Stop every worker: politely, or at once when `kill`."""
        ...


def fail(
    trial: Trial, slot: int, reason: str, message: str, handle: Handler, details: str = ""
) -> None:
    """Report a trial the worker could not finish as a FAILED result."""
    result = TrialResult.failed(trial.key, trial.backend, reason, message, details)
    handle(Event("finished", slot, trial.backend, trial, result=result))


def fail_queue(queue: collections.deque, message: str, handle: Handler, details: str = "") -> None:
    """Every trial still queued for a backend whose workers cannot start: FAILED, `worker died`,
    with the last worker's output as `details`."""
    while queue:
        for trial in queue.popleft().trials:
            fail(trial, -1, WORKER_DIED, message, handle, details)


def overrun(trials: list[Trial], started_at: float | None) -> str | None:
    """Why a request in flight since `started_at` must be killed, or None. A trial stops itself
    at the first epoch end past `training.max_seconds`; this is the hard stop for one that
    never reaches an epoch end (a huge epoch, a hung worker), with room for the last epoch."""
    if not trials or started_at is None:
        return None
    max_seconds = max(trial.training.max_seconds for trial in trials)
    # Trials trained together share the request's time: each may use its limit's worth.
    limit = max_seconds * len(trials) * 1.1 + 5.0
    if time.monotonic() - started_at <= limit:
        return None
    return f"killed after {limit:.0f} s (training.max_seconds={max_seconds:g})"


def default_jobs() -> int:
    """One worker per core: small models gain little from intra-op threads."""
    return max(1, os.cpu_count() or 1)


@dataclasses.dataclass(kw_only=True)
class Slot:
    """One worker's place in the pool, as the scheduling sees it; each transport adds its own
    handles (a process, an actor)."""

    index: int
    backend: str
    spawned_at: float = dataclasses.field(default_factory=time.monotonic)
    program: str | None = None  # the program key of its last unit: what its compiled model fits
    started_at: float | None = None  # when its request's latest trial started: the time limit
    assigned_at: float | None = None  # when its request was sent: the limit of one never started


class SlotExecutor:
    """The scheduling loop over `jobs` slots; subclasses provide the transport hooks below."""

    # A local process queues a request on its stdin while it imports its framework: the unit is
    # claimed and sent at once. A Ray actor may never be placed (a lost node): it gets work only
    # once ready, or its unit would wait while other actors idle.
    assign_before_ready = False
    jobs: int
    retired: int
    kept_logs: Path | None

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.retired = 0
        self.kept_logs: Path | None = None
        self._slots: dict[int, Slot] = {}
        self._claim: Claim | None = None
        self._start_failures: collections.Counter = collections.Counter()

    # ------------------------------------------------------------ the transport's part

    def _start(self, index: int, backend: str) -> Slot:
        """Start a worker for `backend` in slot `index` (and record it in `_slots`)."""
        raise NotImplementedError

    def _assign(self, slot: Slot, unit: _Unit) -> None:
        """Send the unit's request to the slot's worker."""
        raise NotImplementedError

    def _wait_and_handle(self, queues: Queues, handle: Handler) -> None:
        """Wait up to `POLL_SECONDS` for the workers' events and handle those that came."""
        raise NotImplementedError

    def _in_flight(self, slot: Slot) -> list[Trial]:
        """The trials sent to the slot's worker that have not reported `finished`."""
        raise NotImplementedError

    def _busy(self, slot: Slot) -> bool:
        """Whether the slot can take no unit now (working, not ready, retiring)."""
        raise NotImplementedError

    def _stop(self, slot: Slot, kill: bool = False) -> None:
        """Stop the slot's worker: politely, or at once when `kill`."""
        raise NotImplementedError

    def _tick(self) -> None:
        """Anything the transport checks once per loop (Ray: actors it has not placed)."""

    def shutdown(self, kill: bool = False) -> None:
        """Stop every worker."""
        for slot in list(self._slots.values()):
            self._stop(slot, kill=kill)
        self._slots.clear()

    # ------------------------------------------------------------ the loop

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
            while any(queues.values()) or any(map(self._in_flight, self._slots.values())):
                if should_stop is not None and should_stop():
                    raise KeyboardInterrupt
                self._fill_slots(queues)
                self._wait_and_handle(queues, handle)
                self._enforce_time_limits(handle)
                self._tick()
        finally:
            self.shutdown()

    def _fill_slots(self, queues: Queues) -> None:
        """Each free slot: its worker's next unit (its program first), else a worker for the
        backend with the fewest workers and work left; an idle worker with none is stopped."""
        for index in range(self.jobs):
            slot = self._slots.get(index)
            if slot is not None and self._busy(slot):
                continue
            if slot is not None and queues.get(slot.backend):
                taken = self._programs(slot.backend, index)
                unit = take_claimed(queues[slot.backend], slot.program, taken, self._claim)
                if unit is not None:
                    self._assign(slot, unit)
                    continue
            serving = [s.backend for s in self._slots.values() if s is not slot]
            if self.assign_before_ready:
                programs = functools.partial(self._programs, index=index)
                backend, unit = next_claimed(queues, serving, programs, self._claim)
            else:
                backend, unit = next_backend(queues, serving), None
            if slot is not None:
                self._stop(slot)
                del self._slots[index]
            if backend is not None:
                started = self._start(index, backend)
                if unit is not None:
                    self._assign(started, unit)

    def _programs(self, backend: str, index: int) -> set[str]:
        """The programs the workers of other slots on `backend` hold compiled."""
        return {
            s.program
            for s in self._slots.values()
            if s.index != index and s.backend == backend and s.program
        }

    def _enforce_time_limits(self, handle: Handler) -> None:
        """The hard stop; the worker itself stops at the first epoch end past the limit."""
        for slot in list(self._slots.values()):
            left = self._in_flight(slot)
            message = overrun(left, slot.started_at or slot.assigned_at)
            if message:
                self._stop(slot, kill=True)
                del self._slots[slot.index]
                for trial in left:
                    fail(trial, slot.index, TIMEOUT, message, handle)

    def _start_succeeded(self, backend: str) -> None:
        self._start_failures[backend] = 0

    def _start_failed(
        self, backend: str, queues: Queues, message: str, handle: Handler, details: str = ""
    ) -> None:
        """A worker died before it was ready; after `MAX_START_FAILURES` in a row its backend's
        queued trials fail (`message` says why, `details` is what the worker last wrote)."""
        self._start_failures[backend] += 1
        if self._start_failures[backend] >= MAX_START_FAILURES:
            fail_queue(queues[backend], message, handle, details)
