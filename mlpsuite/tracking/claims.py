"""Which coordinator runs which trial, decided through the store alone (DESIGN decision 15).

A claim is the trial's RUNNING run, created with its owner (host, pid), the tag
`mlpsuite.claim = pending` and a heartbeat. Its creator then reads every run of that key:
  * none other alive: the claim is `won` (tagged so), and the trial runs here;
  * another one that is lower in the order (start time, run id: the same order everywhere,
    whatever the clocks): this claim is withdrawn (deleted) and the key waits;
  * this one is the lowest: it waits until the others are won (it withdraws) or withdrawn.
Whichever two claims are made at once, at most one is won: a claim that saw no rival is seen
by every later rival, which then withdraws or waits for it. A claim whose owner is gone (its
pid on this host, or a heartbeat that did not change for `claim_stale_s()` as this coordinator
measures it: no clock of another machine is read) is taken over.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mlpsuite.results import COORDINATOR_DIED
from mlpsuite.tracking.tags import TAG_HOST, TAG_KEY, TAG_PID

TAG_CLAIM = "mlpsuite.claim"
TAG_HEARTBEAT = "mlpsuite.heartbeat"
PENDING, WON = "pending", "won"
RESOLVE_WAIT_S = 2.0  # how long the lowest claim waits for its rivals to be won or withdrawn


def heartbeat_s() -> float:
    """How often a coordinator refreshes the heartbeat of its runs in flight (default 15 s)."""
    return float(os.environ.get("MLPSUITE_HEARTBEAT_S", "15"))


def claim_stale_s() -> float:
    """A heartbeat unchanged this long (as this coordinator saw it) means its owner is gone."""
    return float(os.environ.get("MLPSUITE_CLAIM_STALE_S", "90"))


def owner_tags() -> dict[str, str]:
    return {TAG_HOST: socket.gethostname(), TAG_PID: str(os.getpid())}


def claim_tags() -> dict[str, str]:
    return {**owner_tags(), TAG_CLAIM: PENDING, TAG_HEARTBEAT: _beat()}


def _beat() -> str:
    return f"{time.time():.0f}"


def order(run) -> tuple[int, str]:
    return run.info.start_time, run.info.run_id


def owner_dead(run) -> bool:
    """Its coordinator ran on this host and no longer does (SIGKILLed, the machine rebooted)."""
    tags = run.data.tags
    return tags.get(TAG_HOST) == socket.gethostname() and not coordinator_alive(
        tags.get(TAG_PID, "")
    )


def coordinator_alive(pid_text: str) -> bool:
    """Whether the pid still belongs to an mlpsuite coordinator (not a reused pid)."""
    try:
        pid = int(pid_text)
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return b"mlpsuite" in cmdline.read_bytes() if cmdline.parent.parent.is_dir() else True
    except OSError:
        return False


def verdict(mine, rivals: list, reread: Callable[[], list]) -> str:
    """`won` or `lost` for claim `mine` against the live RUNNING claims `rivals` of its key."""
    deadline = time.monotonic() + RESOLVE_WAIT_S
    while True:
        if not rivals:
            return WON
        if any(run.data.tags.get(TAG_CLAIM, WON) == WON for run in rivals):
            return "lost"  # a claim without the tag is an older mlpsuite's run: taken as won
        if min(order(run) for run in rivals) < order(mine) or time.monotonic() > deadline:
            return "lost"
        time.sleep(0.02)
        rivals = reread()


class Liveness:
    """Whether the owners of other coordinators' RUNNING runs are still there, judged by this
    coordinator's own clock: a heartbeat value is alive while it keeps changing."""

    def __init__(self):
        self._seen: dict[str, tuple[str, float]] = {}  # run id -> (heartbeat, when it last changed)

    def alive(self, run) -> bool:
        if owner_dead(run):
            return False
        beat, now = run.data.tags.get(TAG_HEARTBEAT, ""), time.monotonic()
        last = self._seen.get(run.info.run_id)
        if last is None or last[0] != beat:
            self._seen[run.info.run_id] = (beat, now)
            return True
        return now - last[1] <= claim_stale_s()


class Heartbeat:
    """A thread refreshing `mlpsuite.heartbeat` on this coordinator's runs in flight."""

    def __init__(self, set_tags: Callable[[str, dict[str, str]], None]):
        self.set_tags, self.runs = set_tags, set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="mlpsuite-heartbeat")
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(heartbeat_s()):
            for run_id in list(self.runs):
                # The store is away: the main loop says so.
                with contextlib.suppress(Exception):
                    self.set_tags(run_id, {TAG_HEARTBEAT: _beat()})

    def stop(self) -> None:
        self._stop.set()


class GridClaims:
    """The claims of one coordinator on one grid's trials; `tracker` is its Tracker.

    `known` holds the ids of the trial runs the experiment had when this coordinator began: a
    FINISHED or FAILED run of a key not among them was made by another driver of the grid
    meanwhile, and is that key's result.
    """

    def __init__(
        self,
        tracker,
        experiment_id: str,
        parent: str | None,
        known: set[str],
        extra_tags: dict[str, str] | None = None,
    ):
        self.tracker, self.experiment_id, self.parent = tracker, experiment_id, parent
        self.known, self.extra_tags = set(known), extra_tags or {}
        self.mine: dict[str, str] = {}  # key -> run id of a won claim
        self.waiting: dict[str, object] = {}  # key -> Trial, held by another live coordinator
        self.liveness = Liveness()
        self.heartbeat = Heartbeat(tracker.set_tags)

    def claim(self, trials: list) -> list:
        """The trials of `trials` this coordinator now owns; the others wait or are done."""
        # A key this coordinator owns already comes back on a retry (a Ray actor died): its
        # new run was made before the old one ended, so no other driver could take it meanwhile.
        return [trial for trial in trials if trial.key in self.mine or self._claim(trial) == WON]

    def _claim(self, trial) -> str:
        run = self.tracker.create_trial_run(
            self.experiment_id, trial, self.parent, {**self.extra_tags, **claim_tags()}
        )
        run_id = run.info.run_id
        self.known.add(run_id)
        done, rivals = self.rivals(trial.key, run_id)
        if not done and verdict(run, rivals, lambda: self.rivals(trial.key, run_id)[1]) == WON:
            self.tracker.set_tags(run_id, {TAG_CLAIM: WON})
            self.tracker.complete_trial_run(run, trial)
            self.own(trial.key, run_id)
            return WON
        self.tracker.delete_run(run_id)
        if not done:
            self.waiting[trial.key] = trial
        return done or "waiting"

    def own(self, key: str, run_id: str) -> None:
        """`run_id` is now this coordinator's run of `key` (a won claim, a retry's new run)."""
        self.known.add(run_id)
        self.mine[key] = run_id
        self.heartbeat.runs.add(run_id)

    def rivals(self, key: str, mine: str | None) -> tuple[str | None, list]:
        """The status another driver ended `key` with (FINISHED or FAILED), if it did; and the
        other live RUNNING claims of `key`. A dead owner's claim is marked KILLED on the way."""
        runs = self.tracker.search(self.experiment_id, f"tags.`{TAG_KEY}` = '{key}'")
        others = [run for run in runs if run.info.run_id != mine]
        done = next(
            (
                run.info.status
                for run in others
                if run.info.run_id not in self.known and run.info.status in ("FINISHED", "FAILED")
            ),
            None,
        )
        live = []
        for run in others:
            if run.info.status != "RUNNING" or run.info.run_id in self.mine.values():
                continue
            if self.liveness.alive(run):
                live.append(run)
            else:
                self.tracker.kill(run.info.run_id, COORDINATOR_DIED)
        return done, live

    def wait_for_others(self, should_stop: Callable[[], bool], on_done: Callable) -> list:
        """Block until every waiting key is done by its owner (`on_done(trial, status)`) or its
        owner is gone; returns the trials to take over (to claim and run here)."""
        while self.waiting:
            takeover = []
            for key, trial in list(self.waiting.items()):
                if should_stop():
                    raise KeyboardInterrupt
                done, live = self.rivals(key, None)
                if done or not live:
                    del self.waiting[key]
                    on_done(trial, done) if done else takeover.append(trial)
            if takeover:
                return takeover
            time.sleep(
                random.uniform(0.5, 1.5)
            )  # two drivers taking over at once rarely meet again
        return []

    def finished(self, run_id: str) -> None:
        self.heartbeat.runs.discard(run_id)

    def close(self) -> None:
        self.heartbeat.stop()
