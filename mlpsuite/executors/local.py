"""The local executor: long-lived worker processes, one Keras backend each.

A worker imports its framework once and then runs trials back to back; it switches backend
only when its backend's queue is empty. A worker that dies mid-trial turns that trial into a
`worker died` failure and is replaced; a trial past its time limit is killed as `timeout`.
Imports no framework: workers are separate `python -m mlpsuite.trial.worker` processes.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
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
from pathlib import Path

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
from mlpsuite.executors.units import _Unit
from mlpsuite.results import WORKER_DIED, TrialResult


@dataclasses.dataclass(kw_only=True)
class _Worker(Slot):
    generation: int
    process: subprocess.Popen
    stderr_path: Path
    ready: bool = False
    trials: dict[str, Trial] = dataclasses.field(default_factory=dict)  # in flight, by key
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


class LocalExecutor(SlotExecutor):
    """Runs trials on `jobs` worker processes of this machine: the transport is a pipe each
    way, JSON lines (`wire`), and a reader thread per worker feeding one event queue."""

    assign_before_ready = True  # a request waits in the pipe while the worker imports

    def __init__(self, jobs: int | None = None, reuse: bool = True):
        super().__init__(jobs or default_jobs())
        self.reuse = reuse  # False: workers build and compile a fresh model for every trial
        self.threads = max(1, (os.cpu_count() or 1) // self.jobs)
        self._slots: dict[int, _Worker] = {}  # pyright: ignore[reportIncompatibleVariableOverride]
        self._events: queue.Queue = queue.Queue()
        self._generation = 0
        self._log_dir = Path(tempfile.mkdtemp(prefix="mlpsuite-workers-"))

    def shutdown(self, kill: bool = False) -> None:
        """Stop every worker: politely when idle, at once when `kill` (Ctrl-C). The log folder
        goes with them, unless a worker died."""
        super().shutdown(kill)
        if self.kept_logs is None:
            shutil.rmtree(self._log_dir, ignore_errors=True)

    def prestart(self, backends: list[str]) -> None:
        """Start workers for the grid's backends now, so their framework imports overlap the
        coordinator's own start-up (MLflow, the store). `run` uses them or stops them."""
        planned = collections.Counter(backends)
        for slot in range(min(self.jobs, len(backends))):
            serving = collections.Counter(w.backend for w in self._slots.values())
            backend = min(planned, key=lambda b: (serving[b], -planned[b]))
            self._start(slot, backend)

    # ------------------------------------------------------------ scheduling hooks

    def _in_flight(self, slot: Slot) -> list[Trial]:
        assert isinstance(slot, _Worker)
        return list(slot.trials.values())

    def _busy(self, slot: Slot) -> bool:
        assert isinstance(slot, _Worker)
        return bool(slot.trials) or not slot.ready or slot.retiring

    def _assign(self, slot: Slot, unit: _Unit) -> None:
        assert isinstance(slot, _Worker)
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
            index, generation, message = self._events.get(timeout=POLL_SECONDS)
        except queue.Empty:
            return
        worker = self._slots.get(index)
        if worker is not None and worker.generation == generation:
            self._on_message(worker, message, queues, handle)

    def _on_message(self, worker: _Worker, message: dict, queues: Queues, handle: Handler) -> None:
        kind = message["event"]
        if kind == "ready":
            worker.ready = True
            self._start_succeeded(worker.backend)
            # Process start, Python and the framework import: what a fresh worker costs.
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

    def _on_exit(self, worker: _Worker, message: dict, queues: Queues, handle: Handler) -> None:
        del self._slots[worker.index]
        self._stop(worker)  # it has exited: this only closes our end of its pipe
        if worker.retiring and not worker.trials and message["code"] == 0:
            return  # the slot gets a fresh worker on the next fill
        reason = exit_reason(message["code"])
        self.kept_logs = self._log_dir
        details = (
            worker.stderr_tail() or f"The worker ({reason}) wrote nothing to stderr before it died."
        )
        for trial in worker.trials.values():
            fail(trial, worker.index, WORKER_DIED, reason, handle, details)
        if not worker.ready:
            self._start_failed(worker.backend, queues, f"worker could not start ({reason})", handle)

    # ------------------------------------------------------------ processes

    def _start(self, index: int, backend: str) -> _Worker:
        self._generation += 1
        # Again: a run after a shutdown (a takeover) finds the folder gone.
        self._log_dir.mkdir(parents=True, exist_ok=True)
        stderr_path = self._log_dir / f"worker-{index}-{self._generation}-{backend}.log"
        env = {
            **os.environ,
            **wire.worker_environment(backend, self.threads, self.reuse, self._log_dir / "models"),
        }
        with open(stderr_path, "w", encoding="utf-8") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-m", "mlpsuite.trial.worker"],
                env=env,
                text=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                bufsize=1,
                start_new_session=True,  # a terminal's Ctrl-C goes to the coordinator only
            )
        worker = _Worker(
            index=index,
            backend=backend,
            generation=self._generation,
            process=process,
            stderr_path=stderr_path,
        )
        self._slots[index] = worker
        threading.Thread(target=self._read, args=(worker,), daemon=True).start()
        return worker

    def _read(self, worker: _Worker) -> None:
        """Forward a worker's events, tagged so a replaced worker's last words are ignored."""
        tag = (worker.index, worker.generation)
        assert worker.process.stdout is not None  # started with stdout=PIPE
        for line in worker.process.stdout:
            try:
                self._events.put((*tag, json.loads(line)))
            except json.JSONDecodeError:
                continue
        worker.process.stdout.close()  # this thread owns the read end
        self._events.put((*tag, wire.exited(worker.process.wait())))

    def _stop(self, slot: Slot, kill: bool = False) -> None:
        assert isinstance(slot, _Worker)
        process = slot.process
        assert process.stdin is not None  # started with stdin=PIPE
        # One still importing holds nothing: it is killed, not asked.
        if process.poll() is None and not kill and slot.ready:
            try:
                process.stdin.write(json.dumps(wire.stop_request()) + "\n")
                process.stdin.close()
                process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if process.poll() is None:
            process.kill()
            process.wait()
        # Our write end, also when the worker was killed or retired; a line still buffered for
        # a dead worker has nowhere to go.
        with contextlib.suppress(OSError):
            process.stdin.close()
