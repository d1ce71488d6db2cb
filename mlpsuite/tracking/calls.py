"""Every store call goes through `StoreCalls`: what it waits out and what it turns into one line.

SQLite allows one writer at a time, so "database is locked" (another grid, a backup holding a
lock) is waited for up to `store_lock_s()`, said once on stderr. A tracking server that does
not answer is retried for up to `server_outage_s()`. A full disk is not waited for: the call
fails at once with a StoreError naming the store and what was being written.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from mlpsuite.errors import StoreError

T = TypeVar("T")
logger = logging.getLogger("mlpsuite")

# What a call was writing, for the disk-full message.
WRITING = {
    "create_run": "a new run",
    "log_batch": "a run's metrics, params or tags",
    "set_terminated": "a run's end status",
    "update_run": "a run's status",
    "create_experiment": "a new experiment",
    "set_experiment_tag": "the experiment's description",
    "log_inputs": "a run's dataset inputs",
    "delete_tag": "a run's tags",
    "delete_run": "a run's deletion",
    "search_experiments": "MLflow's tables (a new store)",
}
FULL_SIGNS = (
    "database or disk is full",
    "no space left on device",
    "disk quota exceeded",
    "disk i/o error",
    "file too large",
)
FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
LOCKED_SIGNS = ("database is locked", "database table is locked")


def server_outage_s() -> float:
    """How long a tracking server may be away before the grid gives up (default 120 s)."""
    return float(os.environ.get("MLPSUITE_SERVER_OUTAGE_S", "120"))


def store_lock_s() -> float:
    """How long a store locked by another process is waited for (default 60 s)."""
    return float(os.environ.get("MLPSUITE_STORE_LOCK_S", "60"))


class _Outage:
    """Set once an outage outlasted its bound: later calls (the clean-up of a grid that gave
    up) try once instead of waiting out the bound again; cleared when the server answers."""

    gave_up = False


class StoreCalls:
    """`calls(client.method, *args)`: the call, with the waiting and the one-line faults."""

    def __init__(self, shown_uri: str):
        self.shown_uri = shown_uri

    def __call__(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`call(*args, **kwargs)`, waiting out a locked SQLite store (up to `store_lock_s()`) and
        an unreachable server (up to `server_outage_s()`); a full disk is a StoreError at once, and
        any other error is raised as it is."""
        outage_began = locked_since = None
        raced = False
        while True:
            try:
                result = call(*args, **kwargs)
            except Exception as error:  # MLflow's, SQLAlchemy's or the artifact store's OSError
                text = str(error).lower()
                if is_disk_full(error, text):
                    raise StoreError(self.full_message(call, error)) from None
                if any(sign in text for sign in LOCKED_SIGNS):
                    locked_since = self.wait_for_lock(locked_since)
                    continue
                if getattr(call, "__name__", "") == "log_inputs" and _raced(text) and not raced:
                    raced = (
                        True  # two drivers logged one new dataset at once; now it exists: link it
                    )
                    continue
                if not _unreachable(text):
                    raise
                outage_began = self._wait_for_server(outage_began, error)
                continue
            if outage_began is not None:
                logger.warning(
                    "MLflow server answers again after %.0f s", time.monotonic() - outage_began
                )
            _Outage.gave_up = False
            return result

    def full_message(self, call: Callable, error: Exception) -> str:
        """The one-line StoreError message for a full disk: the store, what `call` was
        writing, and why."""
        name = getattr(call, "__name__", "")
        what = WRITING.get(
            name, "artifacts" if "artifact" in name or name.startswith("log_") else "to it"
        )
        reason = str(getattr(error, "strerror", None) or error).strip().splitlines()[0][:160]
        return (
            f"store {self.shown_uri}: out of space writing {what} ({reason}); free space and run "
            "the same command again: it marks the runs in flight KILLED and resumes the grid"
        )

    def wait_for_lock(self, since: float | None) -> float:
        """Sleep a little; `since` is when the store was first found locked (None: just now)."""
        now = time.monotonic()
        if since is None:
            logger.warning(
                "store %s is locked by another process (an open write transaction or a backup); "
                "waiting up to %g s (MLPSUITE_STORE_LOCK_S)",
                self.shown_uri,
                store_lock_s(),
            )
            since = now
        if now - since > store_lock_s():
            raise StoreError(
                f"store {self.shown_uri}: still locked by another process after "
                f"{store_lock_s():g} s (MLPSUITE_STORE_LOCK_S); finish or stop what holds it, "
                "then run the command again"
            )
        time.sleep(min(1.0, 0.05 + (now - since) / 4))
        return since

    def _wait_for_server(self, began: float | None, error: Exception) -> float:
        if began is None:
            began = time.monotonic()
            if not _Outage.gave_up:
                logger.warning(
                    "MLflow server not answering (%s); retrying for up to %g s",
                    str(error).splitlines()[0][:200],
                    server_outage_s(),
                )
        if _Outage.gave_up or time.monotonic() - began > server_outage_s():
            _Outage.gave_up = True
            raise StoreError(
                f"the MLflow server has not answered for {server_outage_s():g} s "
                "(MLPSUITE_SERVER_OUTAGE_S); run the grid again when it is back: that marks "
                "this grid's unfinished runs KILLED and resumes it"
            ) from None
        time.sleep(min(2.0, server_outage_s() / 10))
        return began


def is_disk_full(error: BaseException, text: str | None = None) -> bool:
    """A full disk (or quota, or file-size limit) under the database or the artifact folder."""
    if isinstance(error, OSError) and error.errno in FULL_ERRNOS:
        return True
    text = str(error).lower() if text is None else text
    return any(sign in text for sign in FULL_SIGNS)


def _raced(text: str) -> bool:
    return "unique constraint" in text or "duplicate key" in text


def _unreachable(text: str) -> bool:
    return any(
        sign in text
        for sign in (
            "connection refused",
            "max retries exceeded",
            "failed to establish",
            "remote end closed",
            "connection reset",
            "connection aborted",
        )
    )
