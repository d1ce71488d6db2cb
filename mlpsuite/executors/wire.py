"""What crosses between the coordinator and a worker: the environment a worker starts with and
the JSON messages both sides exchange.

The one module both sides import (a leaf: it imports nothing of mlpsuite but the registry), so
the executors never import the worker side and every producer of a message builds it the same
way. Requests go to a worker (`run_request`, `stop_request`); events come back (`ready`,
`started`, `epoch`, `finished`, `retiring`), one JSON object per line for a local worker, one
streamed item per event for a Ray actor. `exit` is the executor's own event for a process that
ended.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mlpsuite.registry import REFERENCE_BACKEND

MODEL_DIR_ENV = "MLPSUITE_MODEL_DIR"  # where the executor lets its workers save models


def thread_environment(threads: int) -> dict[str, str]:
    """Environment for a worker process limited to `threads` intra-op threads.

    Set before the framework is imported: OpenMP/MKL read it at load, and XLA's CPU client
    only offers "one thread" or "all cores", so JAX gets one thread when threads == 1.
    """
    env = {
        name: str(threads)
        for name in (
            "OMP_NUM_THREADS",
            "MKL_NUM_THREADS",
            "OPENBLAS_NUM_THREADS",
            "TF_NUM_INTRAOP_THREADS",
            "TF_NUM_INTEROP_THREADS",
        )
    }
    if threads == 1:
        env["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    cache = compilation_cache_dir()
    if cache is not None and "TORCHINDUCTOR_CACHE_DIR" not in os.environ:  # read when torch loads
        env["TORCHINDUCTOR_CACHE_DIR"] = str(cache / "torch")  # torch.compile's, kept as JAX's
    return env


def compilation_cache_dir() -> Path | None:
    """Where JAX keeps compiled programs between processes: `$MLPSUITE_CACHE_DIR` (`none`
    turns the cache off), else the user's cache folder. Machine-local on purpose: an
    executable fits this CPU and jaxlib, not the results store (which may be shared)."""
    chosen = os.environ.get("MLPSUITE_CACHE_DIR")
    if chosen and chosen.lower() == "none":
        return None
    if chosen:
        return Path(chosen).absolute()  # a worker runs in a folder of its own
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlpsuite"


def worker_environment(backend: str, threads: int, reuse: bool, model_dir: Path) -> dict[str, str]:
    """What a worker's process needs in its environment before it imports a framework: its
    backend, its thread budget, whether to reuse compiled models, where to save models."""
    cache = compilation_cache_dir()
    env = {
        **thread_environment(threads),
        # As the coordinator resolved it: a worker runs in a folder of its own.
        "MLPSUITE_CACHE_DIR": str(cache) if cache is not None else "none",
        "MLPSUITE_BACKEND": backend,
        "MLPSUITE_THREADS": str(threads),
        "MLPSUITE_REUSE": "1" if reuse else "0",
        MODEL_DIR_ENV: str(model_dir),
    }
    if backend != REFERENCE_BACKEND:
        env["KERAS_BACKEND"] = backend
    return env


# ------------------------------------------------------------ requests (coordinator -> worker)


def run_request(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Run these trials (one, or a cell's seeds as one program), given as `Trial` dicts."""
    return {"op": "run", "trials": trials}


def stop_request() -> dict[str, Any]:
    """Exit once idle."""
    return {"op": "stop"}


# ------------------------------------------------------------ events (worker -> coordinator)


def ready(backend: str, threads: int, framework: str, import_s: float) -> dict[str, Any]:
    """The framework is imported: the worker takes requests."""
    return {
        "event": "ready",
        "backend": backend,
        "threads": threads,
        "pid": os.getpid(),
        "import_s": import_s,
        "framework": framework,
    }


def started(key: str) -> dict[str, Any]:
    """The trial with this key began (every trial of a request, before the first trains)."""
    return {"event": "started", "key": key}


def epoch(key: str, number: int, metrics: dict[str, float]) -> dict[str, Any]:
    """One epoch's metrics (epoch 0: the diagnostics at initialisation)."""
    return {"event": "epoch", "key": key, "epoch": number, "metrics": metrics}


def finished(key: str, result: dict[str, Any]) -> dict[str, Any]:
    """The trial's `TrialResult` as a dict, last of its events."""
    return {"event": "finished", "key": key, "result": result}


def retiring(resident_mb: float, baseline_mb: float | None) -> dict[str, Any]:
    """The worker exits after this request (its memory grew): send it nothing more."""
    return {"event": "retiring", "resident_mb": resident_mb, "baseline_mb": baseline_mb}


def exited(code: int) -> dict[str, Any]:
    """The worker's process ended with this exit code (the local executor's reader says it)."""
    return {"event": "exit", "code": code}
