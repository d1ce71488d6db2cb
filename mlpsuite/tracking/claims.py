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
import functools
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from mlpsuite.results import COORDINATOR_DIED
from mlpsuite.tracking.tags import TAG_CLAIM, TAG_DRIVER, TAG_HOST, TAG_KEY, TAG_KIND, TAG_PID

TAG_HEARTBEAT = "mlpsuite.heartbeat"
PENDING, WON = "pending", "won"
# Other machines' clocks stamp the end of their runs: a look for runs ended since the last one
# goes back this far before the newest end it saw.
CLOCK_MARGIN_MS = 2000
RESOLVE_WAIT_S = 2.0
MAX_CLAIM_BATCH = 8  # how long the lowest claim waits for its rivals to be won or withdrawn


def heartbeat_s() -> float:
    """How often a coordinator refreshes the heartbeat of its runs in flight (default 15 s)."""
    return float(os.environ.get("MLPSUITE_HEARTBEAT_S", "15"))


def claim_stale_s() -> float:
    """A heartbeat unchanged this long (as this coordinator saw it) means its owner is gone."""
    return float(os.environ.get("MLPSUITE_CLAIM_STALE_S", "90"))


def claim_batch(trials: int) -> int:
    """How many trials one claim takes at once, for a coordinator with `trials` to run: the
    searches for rival claims are paid once per batch, not once per trial; a batch won is
    held (RUNNING, `mlpsuite.claim = pending`) until its trials run, so it stays a small share
    of the grid, and other drivers of it still find keys to claim."""
    return max(1, min(MAX_CLAIM_BATCH, trials // 32))


def owner_tags(driver: str) -> dict[str, str]:
    """Who owns a run: this host and process, and `driver` (the Tracker's invocation)."""
    return {TAG_HOST: socket.gethostname(), TAG_PID: str(os.getpid()), TAG_DRIVER: driver}


def new_driver_id() -> str:
    """One coordinator invocation, unique across processes and machines (a pid is not: two
    containers' can be equal, and one notebook process runs several grids)."""
    return uuid.uuid4().hex


def claim_tags(driver: str) -> dict[str, str]:
    """The tags of a new claim by `driver`: its owner, `mlpsuite.claim = pending`, a heartbeat."""
    return {**owner_tags(driver), TAG_CLAIM: PENDING, TAG_HEARTBEAT: _beat()}


def _beat() -> str:
    return f"{time.time():.0f}"


def order(run) -> tuple[int, str]:
    """The order claims of one key are settled in: earliest start first, then run id."""
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
        """Whether the owner of RUNNING `run` is still there: not a dead process of this host, and
        its heartbeat changed within `claim_stale_s()` as this coordinator saw it."""
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
        """Stop refreshing (the thread ends at its next wake-up)."""
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
        trials: int = 0,
    ):
        self.tracker, self.experiment_id, self.parent = tracker, experiment_id, parent
        self.known, self.extra_tags = set(known), extra_tags or {}
        self.mine: dict[str, str] = {}  # key -> run id of a won claim
        self.waiting: dict[str, object] = {}  # key -> Trial, held by another live coordinator
        self.done_elsewhere: dict[str, str] = {}  # key -> the status another driver ended it with
        # Other drivers' runs ended after this (ms, the store's clocks) are looked at: those
        # ended before the grid's runs were read are among `known`.
        self._since = (tracker.read_ms or int(time.time() * 1000)) - CLOCK_MARGIN_MS
        self._ended_elsewhere: dict[str, str] = {}  # key -> status, other drivers' ends seen
        self.batch = claim_batch(trials)
        self.liveness = Liveness()
        self.heartbeat = Heartbeat(tracker.set_tags)

    def claim(self, trials: list, ahead: Callable[[int], list] | None = None) -> list:
        """The trials of `trials` this coordinator now owns; the others wait or are done.
        `ahead(n)` (up to n of the trials queued next) are claimed in the same batch when
        `trials` need a claim, and held until they are asked for."""
        # A key this coordinator owns already comes back on a retry (a Ray actor died): its
        # new run was made before the old one ended, so no other driver could take it meanwhile.
        if any(self._open(trial) for trial in trials):
            more = ahead(self.batch - len(trials)) if ahead is not None else []
            batch = {trial.key: trial for trial in [*trials, *more] if self._open(trial)}
            self._claim_batch(list(batch.values()))
        return [trial for trial in trials if trial.key in self.mine]

    def _open(self, trial) -> bool:
        """Not claimed yet: neither owned here, nor waiting for its owner, nor done by one."""
        return not (
            trial.key in self.mine or trial.key in self.waiting or trial.key in self.done_elsewhere
        )

    def _claim_batch(self, trials: list) -> None:
        """A claim (a RUNNING run) per trial, then one look at the other drivers' runs for the
        whole batch: every claim is made before the look, so a claim that saw no rival is seen
        by every later rival, as with one claim at a time."""
        runs = [
            self.tracker.create_trial_run(
                self.experiment_id,
                trial,
                self.parent,
                {**self.extra_tags, **claim_tags(self.tracker.driver)},
            )
            for trial in trials
        ]
        self.known.update(run.info.run_id for run in runs)
        live = self._others()
        for trial, run in zip(trials, runs, strict=True):
            run_id = run.info.run_id
            done = self._ended_elsewhere.get(trial.key)
            rivals = [r for r in live if r.data.tags.get(TAG_KEY) == trial.key]
            if rivals:  # rare: another driver at this key now; settle it as one claim does
                done, rivals = self.rivals(trial.key, run_id)
            if (
                not done
                and verdict(run, rivals, functools.partial(self._live_rivals, trial.key, run_id))
                == WON
            ):
                self.tracker.complete_trial_run(run, trial)
                self.own(trial.key, run_id)
                continue
            self.tracker.delete_run(run_id)
            if done:
                self.done_elsewhere[trial.key] = done
            else:
                self.waiting[trial.key] = trial

    def _others(self) -> list:
        """Other drivers' RUNNING trial runs of the experiment (their live claims); on the way,
        the keys they ended since the last look (`_ended_elsewhere`, runs this driver had not
        seen when it began). Two searches, whatever the batch; none of this driver's runs is
        read."""
        not_mine = f"tags.`{TAG_KIND}` = 'trial' and tags.`{TAG_DRIVER}` != '{self.tracker.driver}'"
        live = self.tracker.search(
            self.experiment_id, f"{not_mine} and attributes.status = 'RUNNING'"
        )
        ended = self.tracker.search(
            self.experiment_id, f"{not_mine} and attributes.end_time > {self._since}"
        )
        ended = [
            run
            for run in ended
            if run.info.run_id not in self.known and run.info.status in ("FINISHED", "FAILED")
        ]
        # Later looks start where this one's newest end left off, less a margin for the
        # clocks of other machines (a run ended "earlier" than one already seen).
        newest = max((run.info.end_time for run in ended), default=0)
        self._since = max(self._since, newest - CLOCK_MARGIN_MS)
        for run in ended:
            self._ended_elsewhere.setdefault(run.data.tags.get(TAG_KEY, ""), run.info.status)
        return [run for run in live if self._alive(run)]

    def _alive(self, run) -> bool:
        """A rival claim whose owner is still there; a dead owner's is marked KILLED."""
        if self.liveness.alive(run):
            return True
        self.tracker.kill(run.info.run_id, COORDINATOR_DIED)
        return False

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
        live = [
            run
            for run in others
            if run.info.status == "RUNNING"
            and run.info.run_id not in self.mine.values()
            and self._alive(run)
        ]
        return done, live

    def _live_rivals(self, key: str, mine: str) -> list:
        return self.rivals(key, mine)[1]

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
        """Stop the heartbeat of a run that ended."""
        self.heartbeat.runs.discard(run_id)

    def close(self) -> None:
        """Stop the heartbeat thread: this coordinator is done with the grid."""
        self.heartbeat.stop()
