"""Measures of a whole learning curve, not only its last point: the area under it, and when it
first reaches a target. Plain NumPy, used by the tracker (logged per run) and the comparison.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Epoch curves a target can be set on, and whether reaching means at or under, or at or over.
TARGET_METRICS = {"val_loss": "min", "loss": "min", "val_accuracy": "max", "accuracy": "max"}


def reach_sign(metric: str) -> str:
    """How reaching a target reads: "≤" for a loss target, "≥" for an accuracy one."""
    return "≤" if TARGET_METRICS.get(metric, "min") == "min" else "≥"


def area_under_curve(curve: Sequence[float]) -> float:
    """The mean of a curve over its epochs: the area under it per epoch, so curves of different
    lengths compare. NaN for an empty curve or one that went non-finite."""
    values = np.asarray(curve, dtype=float)
    if not len(values) or not np.all(np.isfinite(values)):
        return math.nan
    return float(values.mean())


def epochs_to_target(curve: Sequence[float], target: float, metric: str) -> int | None:
    """The first epoch (1-based) whose value is at or under the target (at or over it for
    accuracy); None when the curve never gets there."""
    values = np.asarray(curve, dtype=float)
    reached = values <= target if TARGET_METRICS.get(metric, "min") == "min" else values >= target
    hits = np.flatnonzero(reached & np.isfinite(values))
    return int(hits[0]) + 1 if len(hits) else None


def time_to_target(
    curve: Sequence[float], epoch_times: Sequence[float], target: float, metric: str
) -> float | None:
    """Training wall time until the first epoch at the target: the sum of the epoch times up to
    and including it (the first epoch's compilation included; worker start and model build not)."""
    epoch = epochs_to_target(curve, target, metric)
    if epoch is None or len(epoch_times) < epoch:
        return None
    return float(np.sum(np.asarray(epoch_times, dtype=float)[:epoch]))
