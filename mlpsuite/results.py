"""What a trial gives back: `TrialResult`, the same for every executor and backend.

Keras-free: the coordinator reads results without importing a framework.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import resource
import sys
from pathlib import Path
from typing import Any

import numpy as np

# Failure reasons, as they appear in the `mlpsuite.failure` tag.
DIVERGED = "diverged"
TIMEOUT = "timeout"
WORKER_DIED = "worker died"
ERROR = "error"
INTERRUPTED = "interrupted"
COORDINATOR_DIED = "coordinator died"  # left RUNNING by an mlpsuite run that no longer exists
RETRIED = "retried"  # its worker died; the trial ran again in a new run


def peak_rss_mb() -> float:
    """This process's resident high-water mark so far, in MB: /proc's VmHWM on Linux, because
    getrusage's ru_maxrss keeps across exec the mark of the process it was forked from, so a
    worker started by a large process (a notebook's kernel) would report that one's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def resident_mb() -> float:
    """This process's resident memory now (/proc on Linux); elsewhere its peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


@dataclasses.dataclass
class TrialResult:
    """One trial's outcome.

    `history` maps a metric (`loss`, `val_loss`, `accuracy`, `val_accuracy`, `epoch_time_s`)
    to one value per finished epoch; `test` holds `loss` and `accuracy` (classification) or
    `r2` and `mae` (regression) on the test split.
    """

    key: str
    backend: str
    status: str = "FINISHED"  # or "FAILED"
    failure: str | None = None
    message: str = ""
    details: str = ""  # a traceback or a dead worker's last output: the run's failure.txt
    initial_loss: float | None = None
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    test: dict[str, float] = dataclasses.field(default_factory=dict)
    val: dict[str, float] = dataclasses.field(default_factory=dict)  # r2, mae of the tested weights
    stopped_epoch: int | None = None  # where early stopping stopped training
    tested_epoch: int | None = None  # whose weights the test metrics use (the best, if restored)
    fit_time_s: float | None = None
    step_time_ms: float | None = None
    steps_per_epoch: int | None = None
    classes: list[str] = dataclasses.field(default_factory=list)  # label of class index i
    weights_sha256: str | None = None  # of the initial trainable weights: the parity check
    threads: int | None = None
    reused_model: bool = False  # trained on the worker's compiled model of an earlier trial
    vectorized: int = 0  # trained with this many seeds of its cell as one program (0: alone)
    trial_time_s: float | None = None  # in the worker, from the trial's request to its result
    overhead_s: float | None = None  # trial_time_s less its training steps at steady speed
    versions: dict[str, str] = dataclasses.field(default_factory=dict)
    eval_compile_s: float | None = None  # a fresh model's first evaluation beyond a second one's
    jit_compile: bool | None = None  # as Keras resolved the trial's setting on its backend
    steps_per_execution: int | None = None  # training steps per compiled call, as resolved
    peak_rss_mb: float | None = None  # the worker's resident high-water mark at the trial's end
    start_rss_mb: float | None = None  # the worker's resident memory when it was ready
    model_dir: str | None = (
        None  # the trained model, saved by the worker for the coordinator to log
    )

    @property
    def final_loss(self) -> float | None:
        """The last epoch's training loss, or None when no epoch finished."""
        losses = self.history.get("loss") or []
        return losses[-1] if losses else None

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict (JSON-ready), as workers send it to the coordinator."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> TrialResult:
        """The result `to_dict` gave."""
        return cls(**payload)

    @property
    def evidence(self) -> str:
        """A failed trial's first evidence, one line: the last error line of its details (a
        traceback's exception, a dead worker's last words), else its message."""
        lines = [line.strip() for line in self.details.splitlines() if line.strip()]
        errors = [line for line in lines if _ERROR_LINE.match(line)]
        return (errors or lines or [self.message])[-1][:300]

    @classmethod
    def failed(
        cls, key: str, backend: str, failure: str, message: str = "", details: str = ""
    ) -> TrialResult:
        """A FAILED result without metrics: `failure` is the short reason (a tag), `message` one
        line, `details` the traceback or the dead worker's last output."""
        return cls(
            key=key,
            backend=backend,
            status="FAILED",
            failure=failure,
            message=message,
            details=details,
        )


# A line that states an error: `ValueError: ...`, `jax.errors.JaxRuntimeError: ...`.
_ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception|Exit|Interrupt)\b.*")


def failure_lines(results: list[TrialResult]) -> list[str]:
    """The distinct ways these trials failed, most frequent first, one line each with how many,
    the backends and the first evidence: `18 worker died (jax, torch): ImportError: ...`."""
    groups: dict[tuple[str, str], list[TrialResult]] = {}
    for result in results:
        if result.status != "FINISHED":
            groups.setdefault((result.failure or "failed", result.evidence), []).append(result)
    ranked = sorted(groups.items(), key=lambda item: -len(item[1]))
    return [
        f"{len(found)} {failure} ({', '.join(sorted({r.backend for r in found}))}): {evidence}"
        for (failure, evidence), found in ranked
    ]


def steady_step_time_ms(train_seconds: list[float], steps_per_epoch: int) -> float | None:
    """Median per-step time, leaving out epoch 1 (it pays for tracing and compilation)."""
    timed = train_seconds[1:] or train_seconds
    return float(np.median(timed)) / steps_per_epoch * 1000 if timed else None


def epoch_failure(
    loss: float, epoch: int, elapsed: float, max_seconds: float
) -> tuple[str, str] | None:
    """(failure, message) when training must stop after `epoch` (from 1): a loss that is not
    finite, or `elapsed` seconds past the trial's limit; else None."""
    if not math.isfinite(loss):
        return DIVERGED, f"loss became {loss} at epoch {epoch}"
    if elapsed > max_seconds:
        return (
            TIMEOUT,
            f"stopped after epoch {epoch}: {elapsed:.1f} s is past "
            f"training.max_seconds={max_seconds:g}",
        )
    return None
