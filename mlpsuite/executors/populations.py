"""How many members one population may hold (`training.vectorize: program`): an estimate of a
member's memory, and a budget per worker, so a program with more trials than fit is trained as
several populations (chunks), said once.

The estimate counts float32 numbers a member keeps while a population trains: its weights, their
gradients, the optimizer's slots, the state a masked step keeps beside the new one, the best
epoch's weights (early stopping), and the activations of one training batch forward and back and
of one evaluation batch; doubled for XLA's temporaries. It needs the data's input and output
widths, so the first trial of each data spec loads its data (once per process).
"""

from __future__ import annotations

import math
import os

from mlpsuite.config import Trial

BUDGET_ENV = "MLPSUITE_POPULATION_MB"
DEFAULT_BUDGET_MB = 1024.0  # per worker: two workers and the coordinator fit a 4 GB machine
_EVAL_BATCH = 1024  # trial/evaluation.py's EVAL_BATCH_SIZE (this side imports no Keras)
_SLACK = 2.0  # XLA's temporaries beyond what is counted


def budget_mb() -> float:
    """The memory one population may use: `$MLPSUITE_POPULATION_MB`, else DEFAULT_BUDGET_MB."""
    chosen = os.environ.get(BUDGET_ENV)
    return float(chosen) if chosen else DEFAULT_BUDGET_MB


def member_mb(trial: Trial) -> float:
    """The estimated memory of one member of `trial`'s population, in MB."""
    inputs, outputs = _widths(trial)
    widths = [inputs, *trial.model.hidden, outputs]
    parameters = sum(a * b + b for a, b in zip(widths, widths[1:], strict=False))
    slots = {"sgd": 0, "rmsprop": 1, "adagrad": 1, "momentum": 1, "nesterov": 1}
    # weights, gradients, the masked step's old and new state, best weights, optimizer slots
    kept = parameters * (5 + slots.get(trial.optimizer.name, 2))
    units = sum(widths[1:])
    batch = trial.training.batch_size
    activations = batch * (2 * inputs + 4 * units) + _EVAL_BATCH * (inputs + 2 * units)
    return 4 * (kept + activations) * _SLACK / 2**20


def largest(trial: Trial) -> int:
    """How many members of `trial`'s population fit the budget (at least one)."""
    return max(1, int(budget_mb() // member_mb(trial)))


def chunked(trials: list[Trial]) -> list[list[Trial]]:
    """`trials` (one population) in as few chunks as fit the budget, of near-equal sizes."""
    chunks = math.ceil(len(trials) / largest(trials[0]))
    size = math.ceil(len(trials) / chunks)
    return [trials[start : start + size] for start in range(0, len(trials), size)]


_WIDTHS: dict[str, tuple[int, int]] = {}  # data key -> (input width, output width)


def _widths(trial: Trial) -> tuple[int, int]:
    if trial.data_key not in _WIDTHS:
        data = trial.load_data()
        _WIDTHS[trial.data_key] = (data.input_dim, data.output_dim)
    return _WIDTHS[trial.data_key]
