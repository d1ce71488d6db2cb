"""Local worker processes, and the warm ones a Python process keeps between grids.

A worker is a Python process running `mlpsuite.trial.worker` with one backend; starting one costs a
process, Python and a framework import (seconds), and its first trial of a program compiles.
The pool starts workers for the local executor and, when a grid ends, keeps the healthy idle
ones for `keep_s` seconds: the next grid of the same process (a notebook's next cell, a
script's next grid, the test session's next test) that needs the same backend in the same
worker environment takes one instead of starting it, compiled program and all. A worker is
lent to one executor at a time; anything that differs in its environment (backend, threads,
model reuse, flags and thread variables, library versions, the interpreter) gets a new one.

Idle workers end when their time is up, when the pool holds too many, at interpreter exit,
on `shutdown()`, and when this process dies: a worker reads its requests from a pipe this
process holds, and exits at the end of that input (a SIGKILL of this process closes it too).
Imports no framework.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import importlib.metadata
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from mlpsuite.config import Trial
from mlpsuite.executors import wire
from mlpsuite.executors.base import Slot, default_jobs

KEEP_ENV = "MLPSUITE_KEEP_WORKERS"  # seconds an idle worker is kept, when a run names none
DEFAULT_KEEP_S = 300.0
# Variables that change under a worker without changing what it computes: a test's name, the
# store a coordinator writes to (workers never open it), a terminal's size.
_IGNORED_ENV = frozenset(
    {"PYTEST_CURRENT_TEST", "MLFLOW_TRACKING_URI", "COLUMNS", "LINES", "OLDPWD", "PWD", "_"}
)
# How a worker starts: with its coordinator's own mlpsuite, whatever the current folder.
# `python -m mlpsuite.trial.worker` would put the current folder first on the path, where a
# folder named `mlpsuite` (a clone, from the folder that holds it) shadows the installed package
# and every trial fails. The worker runs in its log folder instead, and the coordinator's package
# root goes first on its path only where `mlpsuite` would resolve elsewhere or nowhere (a source
# tree run from its own folder, uninstalled). The worker checks what it imported (`start`).
_BOOT = """\
import importlib.util, os, sys
root = sys.argv[1]
spec = importlib.util.find_spec("mlpsuite")
found = os.path.dirname(os.path.dirname(spec.origin or "")) if spec else ""
if os.path.realpath(found) != os.path.realpath(root):
    sys.path.insert(0, root)
from mlpsuite.trial.worker import start
start(root)
"""
# The folder that holds the coordinator's `mlpsuite` package.
PACKAGE_ROOT = Path(__file__).resolve().parents[2]
# The distributions whose version a worker's results depend on: a change (an upgrade in a
# notebook's `%pip`) retires the warm workers that imported the old one.
_VERSIONED = ("keras", "numpy", "tensorflow", "tensorflow-cpu", "torch", "jax", "jaxlib")


def default_keep_s() -> float:
    """How long an idle worker is kept: `$MLPSUITE_KEEP_WORKERS` seconds, else 5 minutes."""
    chosen = os.environ.get(KEEP_ENV)
    try:
        return max(0.0, float(chosen)) if chosen else DEFAULT_KEEP_S
    except ValueError:
        return DEFAULT_KEEP_S


@dataclasses.dataclass(kw_only=True, eq=False)
class Worker(Slot):
    """One local worker process, as its executor and the pool see it."""

    generation: int
    process: subprocess.Popen
    stderr_path: Path
    key: tuple  # its environment: a warm worker is lent only where this is equal
    ready: bool = False
    warm: bool = False  # lent again after an earlier grid: ready, its framework imported
    trials: dict[str, Trial] = dataclasses.field(default_factory=dict)  # in flight, by key
    retiring: bool = False  # it said it will exit (its memory grew): give it no more work
    # Where its reader thread puts its events: the executor it is lent to (None while idle).
    events: queue.Queue | None = None
    exit_code: int | None = None  # set by its reader thread once the process has ended

    def stderr_tail(self, lines: int = 200) -> str:
        """The worker's last output lines: the failure.txt of a trial it died in."""
        try:
            text = (
                self.stderr_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            )
        except OSError:
            return ""
        return "\n".join(text[-lines:])


@dataclasses.dataclass(eq=False)
class _Idle:
    worker: Worker
    until: float  # time.monotonic() after which it is stopped


class WorkerPool:
    """Starts local workers, lends them, keeps the idle ones warm; one per Python process
    (`POOL`). Thread-safe: an executor's thread, a worker's reader thread and the reaper
    meet here under one lock."""

    def __init__(self, max_idle: int | None = None):
        # Two per core: a grid's backends each keep a worker on a 2-core machine.
        self.max_idle = max_idle if max_idle is not None else 2 * default_jobs()
        self._lock = threading.RLock()
        self._idle: list[_Idle] = []
        self._alive: dict[int, Worker] = {}  # by generation: started, not yet stopped or dead
        self._generation = 0
        self._log_dir: Path | None = None
        self.kept_logs: Path | None = None  # the log folder, kept because a worker died
        self._wake = threading.Condition(self._lock)
        self._reaper: threading.Thread | None = None

    # ------------------------------------------------------------ lending

    @staticmethod
    def environment(backend: str, threads: int, reuse: bool, model_dir: Path) -> dict[str, str]:
        """The whole environment a worker for `backend` starts with."""
        return {**os.environ, **wire.worker_environment(backend, threads, reuse, model_dir)}

    @staticmethod
    def key_of(env: dict[str, str]) -> tuple:
        """What must be equal for a warm worker to stand in for a fresh one: its environment
        (but the variables that cannot change a result), the interpreter and the versions
        installed now."""
        versions = []
        for name in _VERSIONED:
            with contextlib.suppress(importlib.metadata.PackageNotFoundError):
                versions.append((name, importlib.metadata.version(name)))
        kept = sorted((k, v) for k, v in env.items() if k not in _IGNORED_ENV)
        return (sys.executable, tuple(kept), tuple(versions))

    def take(self, backend: str, threads: int, reuse: bool, events: queue.Queue) -> Worker:
        """A worker for `backend` lent to the executor whose event queue is `events`: a warm
        one of the same environment if one is idle, else a new process (not yet ready)."""
        env = self.environment(backend, threads, reuse, self.model_dir())
        key = self.key_of(env)
        with self._lock:
            for idle in reversed(self._idle):  # the most recently used first
                worker = idle.worker
                if worker.key == key and worker.exit_code is None:
                    self._idle.remove(idle)
                    worker.events, worker.warm = events, True
                    return worker
            worker = self._spawn(backend, env, key)
            worker.events = events
            return worker

    def give_back(self, worker: Worker, keep_s: float) -> None:
        """An executor is done with `worker`: kept idle for `keep_s` seconds if it is ready,
        idle and healthy, stopped otherwise."""
        ended: list[Worker] = []
        with self._lock:
            worker.events = None
            keep = (
                keep_s > 0
                and worker.ready
                and not worker.trials
                and not worker.retiring
                and worker.exit_code is None
                and worker.process.poll() is None
            )
            if keep:
                worker.index, worker.started_at, worker.assigned_at = -1, None, None
                self._idle.append(_Idle(worker, time.monotonic() + keep_s))
                while len(self._idle) > self.max_idle:  # the least recently used goes
                    ended.append(self._idle.pop(0).worker)
                self._start_reaper()
                self._wake.notify()
            else:
                ended.append(worker)
        for each in ended:
            self._end(each)

    def stop(self, worker: Worker, kill: bool = False) -> None:
        """End a lent worker now: politely (when it is ready and idle), or at once."""
        with self._lock:
            worker.events = None
        self._end(worker, kill=kill)

    def ended(self, worker: Worker, unasked: bool) -> Path | None:
        """A lent worker's process has exited: `unasked` (it died), its log folder is kept as
        evidence and returned; else (it retired as it said it would) nothing is kept."""
        with self._lock:
            if unasked:  # before it leaves the pool: the last worker gone takes the folder
                self.kept_logs = self.log_dir()
        self.stop(worker)  # only closes our end of its pipe
        return self.kept_logs if unasked else None

    def shutdown(self) -> int:
        """End every idle worker now (politely, all at once); returns how many. Lent ones are
        their executors' to end."""
        with self._lock:
            idle, self._idle = [idle.worker for idle in self._idle], []
        for worker in idle:  # ask them all first: they exit side by side
            _ask_to_stop(worker)
        for worker in idle:
            self._end(worker)
        return len(idle)

    @property
    def idle(self) -> int:
        """How many warm workers wait to be lent."""
        with self._lock:
            return len(self._idle)

    def idle_pids(self) -> list[int]:
        """The process ids of the warm workers waiting to be lent."""
        with self._lock:
            return [idle.worker.process.pid for idle in self._idle]

    # ------------------------------------------------------------ processes

    def model_dir(self) -> Path:
        """Where this process's workers save trained models for the coordinator to log."""
        return self.log_dir() / "models"

    def log_dir(self) -> Path:
        """The workers' stderr logs (made again after a shutdown emptied the pool)."""
        with self._lock:
            if self._log_dir is None or not self._log_dir.is_dir():
                self._log_dir = Path(tempfile.mkdtemp(prefix="mlpsuite-workers-"))
            return self._log_dir

    def _spawn(self, backend: str, env: dict[str, str], key: tuple) -> Worker:
        self._generation += 1
        stderr_path = self.log_dir() / f"worker-{self._generation}-{backend}.log"
        with open(stderr_path, "w", encoding="utf-8") as stderr:
            process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(PACKAGE_ROOT)],
                cwd=self.log_dir(),  # no folder of the user's on its path
                env=env,
                text=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                bufsize=1,
                start_new_session=True,  # a terminal's Ctrl-C goes to the coordinator only
            )
        worker = Worker(
            index=-1,
            backend=backend,
            generation=self._generation,
            process=process,
            stderr_path=stderr_path,
            key=key,
        )
        self._alive[worker.generation] = worker
        threading.Thread(target=self._read, args=(worker,), daemon=True).start()
        return worker

    def _read(self, worker: Worker) -> None:
        """Forward a worker's events to the executor it is lent to, for its whole life."""
        assert worker.process.stdout is not None  # started with stdout=PIPE
        for line in worker.process.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._lock:
                if worker.events is not None:
                    worker.events.put((worker, message))
        worker.process.stdout.close()  # this thread owns the read end
        code = worker.process.wait()
        with self._lock:
            worker.exit_code = code
            if worker.events is not None:
                worker.events.put((worker, wire.exited(code)))
            else:  # idle (or already given up on): nobody waits for its events
                self._idle = [idle for idle in self._idle if idle.worker is not worker]
                self._alive.pop(worker.generation, None)
                self._tidy()

    def _end(self, worker: Worker, kill: bool = False) -> None:
        process = worker.process
        assert process.stdin is not None  # started with stdin=PIPE
        # One still importing holds nothing: it is killed, not asked.
        if process.poll() is None and not kill and worker.ready:
            _ask_to_stop(worker)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        if process.poll() is None:
            process.kill()
            process.wait()
        # Our write end, also when the worker was killed or retired; a line still buffered for
        # a dead worker has nowhere to go.
        with contextlib.suppress(OSError):
            process.stdin.close()
        with self._lock:
            self._alive.pop(worker.generation, None)
            self._tidy()

    def _tidy(self) -> None:
        """With no worker left, their log folder goes, unless a death keeps it."""
        if not self._alive and self._log_dir is not None and self.kept_logs != self._log_dir:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None

    # ------------------------------------------------------------ retiring the idle

    def _start_reaper(self) -> None:
        if self._reaper is None or not self._reaper.is_alive():
            self._reaper = threading.Thread(target=self._reap, daemon=True, name="mlpsuite-reaper")
            self._reaper.start()

    def _reap(self) -> None:
        """Stop each idle worker when its time is up; ends once none is idle."""
        while True:
            with self._lock:
                now = time.monotonic()
                expired = [idle for idle in self._idle if idle.until <= now]
                if not expired and not self._idle:
                    self._reaper = None
                    return
                if not expired:
                    self._wake.wait(timeout=min(idle.until for idle in self._idle) - now)
                    continue
                for idle in expired:
                    self._idle.remove(idle)
            for idle in expired:  # outside the lock: a polite stop waits for the exit
                self._end(idle.worker)


def _ask_to_stop(worker: Worker) -> None:
    """Ask a worker to exit once idle, and close its input (the end of its requests)."""
    stdin = worker.process.stdin
    assert stdin is not None  # started with stdin=PIPE
    with contextlib.suppress(OSError, ValueError):
        stdin.write(json.dumps(wire.stop_request()) + "\n")
        stdin.close()


POOL = WorkerPool()
atexit.register(POOL.shutdown)


def shutdown() -> int:
    """End this process's warm workers now; returns how many were idle."""
    return POOL.shutdown()
