"""A long-lived worker process: one Keras backend (or scikit-learn), many trials.

Started by the local executor (`pool.py`, through `start`) with `KERAS_BACKEND`
(or `MLPSUITE_BACKEND=sklearn`) and the thread limits already in its environment. Protocol:
JSON lines. The coordinator writes `{"op": "run", "trials": [{...}]}` to stdin (one trial, or
a cell's seeds to train as one program); the worker answers on its original stdout
with `ready`, `started`, `epoch`, `finished` events, and `retiring` before it exits because
its memory grew (the executor then starts a fresh worker). Anything else the frameworks print is
sent to stderr so it cannot corrupt the protocol.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from typing import TYPE_CHECKING

from mlpsuite.executors import wire

WRONG_PACKAGE = 3  # the exit code of a worker that imported another mlpsuite than its coordinator

if TYPE_CHECKING:  # the worker imports its modules once it knows its backend
    from mlpsuite.results import TrialResult


def _protocol_stream():
    """Keep the real stdout for events; point fd 1 at stderr for everything else."""
    events = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return events


class _MemoryWatch:
    """The worker's resident memory against what it was after its first request: past
    `max_growth` (a fraction) the worker retires and the executor starts a fresh one."""

    def __init__(self, max_growth: float):
        self.max_growth = max_growth
        self.baseline_mb: float | None = None

    @staticmethod
    def resident_mb() -> float:
        """Resident now; where /proc is absent the peak, which only errs towards retiring."""
        from mlpsuite.results import resident_mb

        return resident_mb()

    def grown(self) -> bool:
        if self.baseline_mb is None:
            self.baseline_mb = self.resident_mb()
            return False
        return self.resident_mb() > self.baseline_mb * (1 + self.max_growth)


def make_runner(threads: int):
    """(backend, its trial runner, the framework's version): a Keras backend from
    `KERAS_BACKEND`, or scikit-learn's MLP (`MLPSUITE_BACKEND=sklearn`, no Keras import)."""
    if os.environ.get("MLPSUITE_BACKEND") == "sklearn":
        import sklearn

        from mlpsuite.config.reference import NAME
        from mlpsuite.trial.sklearn_backend import SklearnRunner

        runner = SklearnRunner(threads)
        runner.start_rss_mb = _MemoryWatch.resident_mb()
        return NAME, runner, sklearn.__version__
    import keras  # noqa: F401  (the backend import is the cost paid once per worker)

    from mlpsuite.trial.backends import active_backend, configure, framework_version

    configure(threads)
    from mlpsuite.trial.training import TrialRunner

    runner = TrialRunner(threads, reuse=os.environ.get("MLPSUITE_REUSE", "1") != "0")
    runner.start_rss_mb = _MemoryWatch.resident_mb()
    return active_backend(), runner, framework_version()


def ready_event(backend: str, threads: int, framework: str, began: float) -> dict:
    """The `ready` event of a runner made since `began` (a perf_counter reading)."""
    return wire.ready(backend, threads, framework, time.perf_counter() - began)


def run_request(
    runner, backend: str, trial_dicts: list[dict], emit
) -> list[tuple[str, TrialResult]]:
    """One request: `started` for each trial, then the trials (one, or a cell's seeds or a
    program's population as one program: the executor decides). Returns (trial key,
    TrialResult) pairs; an exception is a failed result, and the worker goes on."""
    from mlpsuite.config import Trial
    from mlpsuite.results import ERROR, TrialResult

    trials = [Trial.model_validate(trial) for trial in trial_dicts]
    for trial in trials:
        emit(wire.started(trial.key))
    try:
        if len(trials) > 1:  # only on JAX: the executor vectorizes nothing else
            from mlpsuite.trial.vectorized import train_together

            results = train_together(runner, trials, emit)
        else:
            results = [runner.run(trials[0], emit)]
    except Exception as error:
        message = f"{type(error).__name__}: {error}".splitlines()[0][:500]
        traceback.print_exc()
        results = [
            TrialResult.failed(trial.key, backend, ERROR, message, traceback.format_exc())
            for trial in trials
        ]
    return [(trial.key, result) for trial, result in zip(trials, results, strict=True)]


def main() -> int:
    """The worker's loop: announce `ready`, run each request's trials and send their events and
    results, until `stop`, end of input, or its memory grew (`retiring`); the exit code (0)."""
    # Ctrl-C in a terminal reaches the whole process group: the coordinator decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    events = _protocol_stream()

    def emit(event: dict) -> None:
        events.write(json.dumps(event) + "\n")

    threads = int(os.environ.get("MLPSUITE_THREADS", "1"))
    began = time.perf_counter()
    backend, runner, framework = make_runner(threads)
    emit(ready_event(backend, threads, framework, began))
    memory = _MemoryWatch(float(os.environ.get("MLPSUITE_MAX_GROWTH", "0.1")))
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "stop":
            break
        results = run_request(runner, backend, request["trials"], emit)
        # Said before the results, so the executor sends this worker nothing more.
        retiring = memory.grown()  # TensorFlow leaks ~2 MB per model built, clear_session or not
        if retiring:
            emit(wire.retiring(memory.resident_mb(), memory.baseline_mb))
        for key, result in results:
            emit(wire.finished(key, result.to_dict()))
        if retiring:
            break
    events.flush()
    return 0


def _exit_now(code: int) -> None:
    """End without the interpreter's teardown: unloading TensorFlow, PyTorch or JAX takes 0.7 to
    1.5 s that the coordinator would wait for, and a worker has nothing left to finalize (its
    events are flushed, its trials' files closed). Coverage, when it measures the worker (`make
    coverage`), saves its data first: it would otherwise save it in the teardown skipped here."""
    coverage = sys.modules.get("coverage")
    measuring = coverage.Coverage.current() if coverage is not None else None
    if measuring is not None:
        measuring.stop()
        measuring.save()
    sys.stderr.flush()
    os._exit(code)


def start(root: str) -> None:
    """A worker's entry (`pool._BOOT`): its loop, if it imported the mlpsuite under `root`
    (its coordinator's); else one line on stderr naming both, and exit code 3."""
    import mlpsuite

    imported = os.path.dirname(os.path.dirname(os.path.abspath(mlpsuite.__file__ or "")))
    if os.path.realpath(imported) != os.path.realpath(root):
        print(
            f"this worker imported mlpsuite from {imported}, its coordinator runs the one in "
            f"{root}: a folder named mlpsuite on the path shadows it",
            file=sys.stderr,
        )
        _exit_now(WRONG_PACKAGE)
    _exit_now(main())
