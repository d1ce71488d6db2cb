"""Faults injected at the executor contract: a real executor (local worker processes or Ray
actors) whose events a test acts on as they happen, in this process.

A test that must kill or freeze a worker mid-trial does it on the event that says the trial is
under way (`epoch`), on the pid the worker reported when it was `ready`: no polling of the
store, no scanning of process tables, and the worker cannot finish the trial first.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

from mlpsuite.config import expand, load_config
from mlpsuite.executors.base import Event, Executor
from mlpsuite.executors.local import LocalExecutor


class Acting:
    """A real executor; every event reaches `act(event, self)` right after the runner's handler."""

    def __init__(self, executor, act: Callable[[Event, Acting], None]):
        self.executor = executor
        self.act = act
        self.pids: dict[int, int] = {}  # slot -> the pid its worker or actor reported when ready
        self.events: list[Event] = []

    def __getattr__(self, name):
        return getattr(self.executor, name)

    def run(self, trials, handle, should_stop=None, claim=None) -> None:
        def acting(event: Event) -> None:
            if event.kind == "ready":
                self.pids[event.slot] = event.payload["pid"]
            self.events.append(event)
            handle(event)
            self.act(event, self)

        self.executor.run(trials, acting, should_stop, claim)

    def signal_worker(self, event: Event, signum: int) -> int:
        """Send `signum` to the worker of `event`'s slot; its pid."""
        pid = self.pids[event.slot]
        os.kill(pid, signum)
        return pid


def executor(kind: str, jobs: int = 1, **options):
    """A fresh local or Ray executor (Ray: the instance this process already started)."""
    if kind == "ray":
        from mlpsuite.executors.ray import RayExecutor

        return RayExecutor(jobs, **options)
    return LocalExecutor(jobs, **options)


def on_first(kind: str, then: Callable[[Event, Acting], None]) -> Callable[[Event, Acting], None]:
    """An `act` that calls `then` on the first event of `kind` only."""
    done = []

    def act(event: Event, acting: Acting) -> None:
        if event.kind == kind and not done:
            done.append(event)
            then(event, acting)

    return act


def freeze(event: Event, acting: Acting) -> None:
    acting.signal_worker(event, signal.SIGSTOP)


def kill(event: Event, acting: Acting) -> None:
    acting.signal_worker(event, signal.SIGKILL)


def run_grid_acting(path: Path, uri: str, acting: Acting):
    """The grid at `path` through the runner into the store at `uri`, on `acting`'s executor:
    what `mlpsuite run` records, with the test's faults injected. Its GridOutcome."""
    from mlpsuite.runner import run_grid
    from mlpsuite.tracking import Tracker, resolve_uri

    spec = load_config(path)
    executor = cast(Executor, acting)  # it runs, and forwards the rest, as its executor
    return run_grid(
        spec, path, Tracker(resolve_uri(uri)), executor=executor, trials=expand(spec, path)
    )


def alive(pid: int) -> bool:
    """Whether `pid` is a process that has not exited (a zombie has)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition: Callable[[], object], timeout: float, every: float = 0.1) -> object:
    """`condition()` once it is true, polled every `every` s; None after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value or None
        time.sleep(every)


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (a driver's grid workers), read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # ended between the listing and the read
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found
