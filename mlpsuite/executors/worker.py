"""A long-lived worker process: one Keras backend, many trials.

Started by the local executor as `python -m mlpsuite.executors.worker` with `KERAS_BACKEND`
and the thread limits already in its environment. Protocol: JSON lines. The coordinator
writes `{"op": "run", "trials": [{...}]}` to stdin (one trial, or a cell's seeds to train as
one program); the worker answers on its original stdout
with `ready`, `started`, `epoch`, `finished` events. Anything else the frameworks print is
sent to stderr so it cannot corrupt the protocol.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback


def _protocol_stream():
    """Keep the real stdout for events; point fd 1 at stderr for everything else."""
    events = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return events


def main() -> int:
    # Ctrl-C in a terminal reaches the whole process group: the coordinator decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    events = _protocol_stream()

    def emit(event: dict) -> None:
        events.write(json.dumps(event) + "\n")

    threads = int(os.environ.get("MLPSUITE_THREADS", "1"))
    began = time.perf_counter()
    import keras  # noqa: F401  (the backend import is the cost paid once per worker)

    from mlpsuite.backends import active_backend, configure, framework_version

    configure(threads)
    from mlpsuite.config import Trial
    from mlpsuite.results import ERROR, TrialResult
    from mlpsuite.training import TrialRunner

    runner = TrialRunner(threads, reuse=os.environ.get("MLPSUITE_REUSE", "1") != "0")
    emit({"event": "ready", "backend": active_backend(), "threads": threads, "pid": os.getpid(),
          "import_s": time.perf_counter() - began, "framework": framework_version()})
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "stop":
            break
        trials = [Trial.model_validate(trial) for trial in request["trials"]]
        for trial in trials:
            emit({"event": "started", "key": trial.key})
        try:  # one trial, or the seeds of a cell as one program (the executor decides)
            results = runner.run_seeds(trials, emit) if len(trials) > 1 else [runner.run(trials[0], emit)]
        except Exception as error:  # a failed trial is a result, and the worker goes on
            message = f"{type(error).__name__}: {error}".splitlines()[0][:500]
            traceback.print_exc()
            results = [TrialResult.failed(trial.key, active_backend(), ERROR, message, traceback.format_exc())
                       for trial in trials]
        for trial, result in zip(trials, results):
            emit({"event": "finished", "key": trial.key, "result": result.to_dict()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
