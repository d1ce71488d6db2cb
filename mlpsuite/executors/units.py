"""The work of a grid as units for workers: one trial, or trials vectorized (a cell's seeds, a
program's population); queued per backend, grouped by compiled program, and claimed
(tracking/claims.py) just before a unit is sent. Shared by the local and the Ray executor."""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Callable

from mlpsuite.config import Trial
from mlpsuite.executors import populations


@dataclasses.dataclass
class _Unit:
    """What one request to a worker runs: one trial, or trials trained together (a cell's seeds,
    a program's population)."""

    program: str
    trials: list[Trial]


def vectorizable(trial: Trial) -> bool:
    """Whether `training.vectorize` applies: JAX only, not with diagnostics or saved models (one
    model each); `seeds` not with early stopping (a population stops each member on its own)."""
    vectorize = trial.training.vectorize
    return (
        vectorize != "none"
        and trial.backend == "jax"
        and (vectorize == "program" or trial.training.early_stopping is None)
        and not trial.diagnostics
        and not trial.training.save_model
    )


def vectorize_note(trials: list[Trial]) -> str | None:
    """What `training.vectorize` will not vectorize, and why, for the user to read."""
    asked = [
        trial for trial in trials if trial.training.vectorize != "none" and not vectorizable(trial)
    ]
    if not asked:
        return None
    other = sorted({trial.backend for trial in asked if trial.backend != "jax"})
    why = [f"{', '.join(other)} (JAX only)"] if other else []
    if any(
        trial.training.early_stopping is not None and trial.training.vectorize == "seeds"
        for trial in asked
    ):
        why.append("early stopping (each seed stops at its own epoch; vectorize: program can)")
    if any(trial.diagnostics for trial in asked):
        why.append("diagnostics (they probe one model at a time)")
    if any(trial.training.save_model for trial in asked):
        why.append("save_model (one model per run)")
    modes = "/".join(sorted({trial.training.vectorize for trial in asked}))
    return (
        f"training.vectorize: {modes} does not apply to {len(asked)} trials, because of "
        f"{' and '.join(why)}: they run one at a time, reusing their compiled model"
    )


def populations_note(trials: list[Trial]) -> str | None:
    """How `training.vectorize: program` groups `trials`: populations, their sizes, and those
    split in chunks by the memory budget (populations.py)."""
    units = [
        unit
        for queue in _queues(trials).values()
        for unit in queue
        if unit.trials[0].training.vectorize == "program" and vectorizable(unit.trials[0])
    ]
    if not units:
        return None
    whole = collections.Counter(unit.program for unit in units)
    sizes = sorted((len(unit.trials) for unit in units), reverse=True)
    shown = ", ".join(str(size) for size in sizes[:8]) + (", …" if len(sizes) > 8 else "")
    note = (
        f"training.vectorize: program: {sum(sizes):,} trials train as {len(whole):,} "
        f"population{'s' if len(whole) != 1 else ''} of one program each (members per "
        f"population: {shown})"
    )
    split = {program: count for program, count in whole.items() if count > 1}
    if split:
        note += (
            f"; {len(split)} larger than the memory budget allows ({populations.budget_mb():g} "
            f"MB, ${populations.BUDGET_ENV}) train in {sum(split.values())} chunks"
        )
    return note


def _queues(trials: list[Trial]) -> dict[str, collections.deque]:
    """One queue of units per backend, grouped by compiled program (in order of first
    appearance), so a worker's next unit can usually reuse its last one's model. Seeds of a
    vectorizable cell make one unit; so do the trials of a population (in chunks, if it is
    larger than the memory budget allows)."""
    units: dict[str, dict[str, dict[str, _Unit]]] = {}
    for trial in trials:
        together = vectorizable(trial)
        population = together and trial.training.vectorize == "program"
        program = trial.population_key if population else trial.program_key
        by_cell = units.setdefault(trial.backend, {}).setdefault(program, {})
        cell = trial.key  # a trial alone, a cell's seeds, or a population
        if together:
            cell = "population" if population else _seedless_key(trial)
        by_cell.setdefault(cell, _Unit(program, [])).trials.append(trial)
    return {
        backend: collections.deque(
            _Unit(unit.program, chunk)
            for cells in programs.values()
            for unit in cells.values()
            for chunk in (
                populations.chunked(unit.trials)
                if len(unit.trials) > 1 and unit.trials[0].training.vectorize == "program"
                else [unit.trials]
            )
        )
        for backend, programs in units.items()
    }


def _seedless_key(trial: Trial) -> str:
    return Trial.model_validate({**trial.model_dump(), "seed": 0}).key


def _take(queue: collections.deque, program: str | None, taken: set[str]) -> _Unit:
    """The first queued unit of `program` (the worker's compiled model fits it), else the
    first of a program no other worker holds (two workers never compile the same one while a
    third is waiting), else the next."""
    for wanted in (lambda p: p == program, lambda p: p not in taken):
        for index, unit in enumerate(queue):
            if wanted(unit.program):
                del queue[index]
                return unit
    return queue.popleft()


# `claim(trials, ahead)`: the trials of `trials` this coordinator owns; `ahead(n)` lists up to
# n of the queue's next ones, for the claims to take in the same batch (tracking/claims.py).
Claim = Callable[[list[Trial], Callable[[int], list[Trial]]], list[Trial]]


def take_claimed(
    queue: collections.deque, program: str | None, taken: set[str], claim: Claim | None
) -> _Unit | None:
    """The next unit (as `_take` picks it) with the trials of it this coordinator could claim;
    None once the queue holds none (another driver of the grid has the rest)."""
    while queue:
        unit = _take(queue, program, taken)
        if claim is not None:
            unit.trials = claim(unit.trials, functools.partial(_ahead, queue, unit.program))
        if unit.trials:
            return unit
    return None


def _ahead(queue: collections.deque, program: str, wanted: int) -> list[Trial]:
    """Up to `wanted` trials (whole units) this worker will likely take next, as `_take`
    picks: the queued units of its `program` first, then the queue's first units."""
    ahead: list[Trial] = []
    for same in (True, False):
        for unit in queue:
            if len(ahead) >= wanted:
                return ahead
            if (unit.program == program) == same:
                ahead.extend(unit.trials)
    return ahead


def next_claimed(
    queues: dict[str, collections.deque],
    serving: list[str],
    programs: Callable[[str], set[str]],
    claim: Claim | None,
) -> tuple[str | None, _Unit | None]:
    """The backend a free slot should serve next (`next_backend`) and its first claimed unit."""
    while (backend := next_backend(queues, serving)) is not None:
        unit = take_claimed(queues[backend], None, programs(backend), claim)
        if unit is not None:
            return backend, unit
    return None, None


def next_backend(queues: dict[str, collections.deque], serving: list[str]) -> str | None:
    """The backend with work left and the fewest workers on it (most work on a tie)."""
    waiting = [b for b, q in queues.items() if q]
    if not waiting:
        return None
    counts = collections.Counter(serving)
    return min(waiting, key=lambda b: (counts[b], -len(queues[b])))
