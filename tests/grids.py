"""Small grid configs for engine tests, written as YAML files into a test's tmp dir."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import mlflow
import yaml
from mlflow import MlflowClient

from mlpsuite.tracking.store import _sqlite_path, _store_creation_lock

ROOT = Path(__file__).resolve().parents[1]


def write_grid(directory: Path, name: str, **overrides) -> Path:
    """A tiny iris grid (fast on every backend) with `overrides` merged per section."""
    config = {
        "name": name,
        "dataset": {"name": "iris", "test_size": 0.2, "val_size": 0.2},
        "model": {"hidden": [8], "activation": "relu", "scaler": "standard"},
        "optimizer": {"name": "adam", "learning_rate": 0.05},
        "training": {"epochs": 5, "batch_size": 16, "max_seconds": 120},
        "backends": ["tensorflow", "torch", "jax"],
        "seeds": [0],
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def sqlite_uri(directory: Path) -> str:
    return f"sqlite:///{directory / 'store' / 'mlflow.db'}"


def ready_store(directory: Path) -> str:
    """`sqlite_uri(directory)` with MLflow's tables already made: a copy of one empty store that
    mlpsuite made once in this test process. MLflow's migrations cost seconds per new store, so
    tests whose subject is not a new store (its creation, nothing written) start from this."""
    uri = sqlite_uri(directory)
    target = _sqlite_path(uri)
    assert target is not None
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_empty_store(), target)
    return uri


@functools.cache
def _empty_store() -> Path:
    from mlpsuite.tracking import StoreReader

    made = Path(tempfile.mkdtemp(prefix="mlpsuite-empty-store-")) / "mlflow.db"
    StoreReader(f"sqlite:///{made}")
    return made


def made_once(name: str, make: Callable[[Path], dict], timeout: float = 900) -> dict:
    """What `make(folder)` returned (JSON), made once per test session in a folder every process
    of the session shares (`MLPSUITE_TEST_SHARED`: the streams and the backend workers), by the
    first to ask; the others wait for it under a lock, for at most `timeout` s. A ready grid
    that tests on several backends read; a test that writes to it copies it first."""
    shared = Path(os.environ["MLPSUITE_TEST_SHARED"]) / "made" / name
    shared.mkdir(parents=True, exist_ok=True)
    done = shared / "made.json"
    with open(shared.with_suffix(".lock"), "w") as lock:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:  # another process is making it
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{name}: not made by another test process within {timeout} s"
                    ) from None
                time.sleep(0.2)
        if not done.exists():
            done.write_text(json.dumps(make(shared / "folder")), encoding="utf-8")
        return json.loads(done.read_text(encoding="utf-8"))


def clean_env() -> dict[str, str]:
    """This environment without a backend, store or warm workers of the test run's own."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("KERAS_BACKEND", "MLFLOW_TRACKING_URI", "RAY_ADDRESS", "MLPSUITE_KEEP_WORKERS")
    }


def mlpsuite_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "mlpsuite.cli", *args]


def run_mlpsuite(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        mlpsuite_command(*args),
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_in_process(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`mlpsuite ARGS` from `cwd`, as `run_mlpsuite` but in this process: `cli.main`, the console
    script's code, without a new interpreter's seconds of imports (MLflow, pandas, matplotlib).
    Its workers are processes of their own all the same. For tests whose subject is what reaches
    the store; a user's terminal (one-line errors, library noise) is `run_mlpsuite`'s to check."""
    from mlpsuite import cli

    out, err = io.StringIO(), io.StringIO()
    # The console script's warnings reach stderr through logging.lastResort: WARNING, the message.
    handler = logging.StreamHandler(err)
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("mlpsuite")
    propagate, logger.propagate = logger.propagate, False
    logger.addHandler(handler)
    uri = os.environ.pop("MLFLOW_TRACKING_URI", None)
    here = os.getcwd()
    try:
        os.chdir(cwd)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main(list(args))
            except SystemExit as stop:  # argparse's own exit, with a number
                assert isinstance(stop.code, int), stop.code
                code = stop.code
    finally:
        os.chdir(here)
        logger.removeHandler(handler)
        logger.propagate = propagate
        if uri is not None:
            os.environ["MLFLOW_TRACKING_URI"] = uri
    return subprocess.CompletedProcess(["mlpsuite", *args], code, out.getvalue(), err.getvalue())


def cli_in_process(capsys, *argv: str) -> tuple[int, str, str]:
    """`mlpsuite ARGV` in this process, the console script's code path without the start-up of a
    new interpreter: its exit code, stdout and stderr."""
    from mlpsuite import cli

    capsys.readouterr()
    try:
        code = cli.main(list(argv))
    except SystemExit as stop:  # argparse's own exit, with a number
        assert isinstance(stop.code, int), stop.code
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def trial_runs(uri: str, experiment: str):
    """Every trial run of an experiment as a DataFrame (mlflow.search_runs)."""
    mlflow.set_tracking_uri(uri)
    return mlflow.search_runs(
        experiment_names=[experiment], filter_string="tags.`mlpsuite.kind` = 'trial'"
    )


def polled_statuses(uri: str, experiment: str) -> list[tuple[str, str, int]]:
    """(status, trial key, epochs logged) of every trial run; [] while the store is busy.

    Polling a store that mlpsuite is still creating would run MLflow's migrations twice at
    once ("table ... already exists" in mlpsuite): take the lock mlpsuite creates it under.
    """
    database = _sqlite_path(uri)
    assert database is not None, "polling reads a SQLite store"
    if not database.parent.is_dir():
        return []
    try:
        with _store_creation_lock(uri):
            client = MlflowClient(uri)
            found = client.get_experiment_by_name(experiment)
        runs = (
            client.search_runs([found.experiment_id], "tags.`mlpsuite.kind` = 'trial'")
            if found
            else []
        )
    except Exception:  # the store is being written: ask again
        return []
    return [
        (
            r.info.status,
            r.data.tags["mlpsuite.trial_key"],
            len(client.get_metric_history(r.info.run_id, "loss")),
        )
        for r in runs
    ]
