"""Run every `@pytest.mark.backend` test once per Keras backend, each backend in its own process.

Keras fixes its backend when it is first imported, so one pytest process cannot test three
backends. The main pytest process parametrizes each backend-marked test as
`test_x[tensorflow]`, `test_x[torch]`, `test_x[jax]` and replaces the three items with
proxies. As soon as the tests are collected, one worker per backend starts (`python -m
pytest` with `KERAS_BACKEND` set) and runs exactly the selected tests of its backend, writing
each test's outcome, phase by phase, to a JSON-lines file. Each proxy waits for its own test's
outcome there (not for the whole worker) and reports it under its own node id, so the summary
names the failing backend and shows every backend's tests as passed.

The proxies are moved to the end of the session: the backend workers run beside the plain
tests, and by the time a proxy runs its outcome is usually waiting. Under pytest-xdist (`make
test` runs two streams) every stream collects the same tests; the first to claim a backend
starts its worker, and a proxy reads the outcome from the folder the session's processes share
(`MLPSUITE_TEST_SHARED`), whichever stream started that worker.

In the main process Keras is imported with the light "numpy" backend only so that test
modules can import `keras` at the top; no backend-marked test body runs there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

BACKENDS = ("tensorflow", "torch", "jax")
_WORKER_ENV = "MLPSUITE_TEST_BACKEND"
_SELECTION_ENV = "MLPSUITE_TEST_SELECTION"
_SHARED_ENV = "MLPSUITE_TEST_SHARED"
_WORKER_BACKEND = os.environ.get(_WORKER_ENV)
# A hung test in a worker fails there, well before a proxy gives up waiting for it.
_WORKER_TEST_TIMEOUT_S = 900
# How long a proxy waits for its test's outcome: a whole backend worker's run, with room.
_PROXY_WAIT_S = 1500

# The folder every process of this test session shares (streams, backend workers, ready grids):
# made by the first process (plain pytest, or xdist's controller before it starts the streams),
# inherited through the environment by every process it starts.
_OWNS_SHARED = _SHARED_ENV not in os.environ
if _OWNS_SHARED:
    os.environ[_SHARED_ENV] = tempfile.mkdtemp(prefix="mlpsuite-tests-")
SHARED = Path(os.environ[_SHARED_ENV])

# Grids run in this process (the API's, and the CLI's code through `cli.main`) keep their
# workers warm for the next test's grid, as a notebook's cells do: a test pays for a framework
# start-up only where a new process is its subject. Commands started as processes of their own
# drop this (`tests.grids.clean_env`), as a user's terminal has none.
os.environ.setdefault("MLPSUITE_KEEP_WORKERS", "600")
# Must run before any test module imports keras.
os.environ["KERAS_BACKEND"] = _WORKER_BACKEND or "numpy"
# JAX's compiled programs go to a folder of this test session, not the user's cache.
os.environ.setdefault("MLPSUITE_CACHE_DIR", str(SHARED / "cache"))
# The backend workers' tests keep JAX's compiled programs there too, as a grid's workers do
# (`backends.configure`): a test that builds the same program again (a fresh model against a
# reused one) loads it (measured on test_reuse: 15.8 s without, 7.2 s with).
_JAX_CACHE = {
    "JAX_COMPILATION_CACHE_DIR": str(SHARED / "cache" / "jax"),
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
}


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "backend(*names): run once per Keras backend (or per one named), in a subprocess each",
    )
    config.addinivalue_line(
        "markers",
        "check: the edit loop's tier (`make check`): every module touched, in under two minutes",
    )


def pytest_unconfigure(config):
    workers = config.stash.get(_WORKERS_KEY, None)
    if workers is not None:
        workers.finish()
    if _OWNS_SHARED:
        shutil.rmtree(SHARED, ignore_errors=True)


@pytest.fixture
def backend(request) -> str:
    """The Keras backend this test instance runs on."""
    return request.param


def pytest_generate_tests(metafunc):
    if metafunc.definition.get_closest_marker("backend") is None:
        return
    if "backend" not in metafunc.fixturenames:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: a backend test must take `backend`")
    # `@pytest.mark.backend("jax")` limits a test to the backends named.
    allowed = metafunc.definition.get_closest_marker("backend").args or BACKENDS
    backends = [b for b in ([_WORKER_BACKEND] if _WORKER_BACKEND else BACKENDS) if b in allowed]
    metafunc.parametrize("backend", backends, indirect=True, ids=backends)


def _is_backend_item(item) -> bool:
    return item.get_closest_marker("backend") is not None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session, config, items):
    if _WORKER_BACKEND:
        _keep_worker_selection(config, items)
        return
    workers = _BackendWorkers(config)
    config.stash[_WORKERS_KEY] = workers
    plain = [item for item in items if not _is_backend_item(item)]
    proxies = [
        BackendProxy.from_parent(item.parent, name=item.name, original=item, workers=workers)
        for item in items
        if _is_backend_item(item)
    ]
    # Files with proxies last (xdist hands out whole files in this order), proxies last within
    # them: the backend workers run meanwhile, and a proxy seldom waits.
    proxied = {proxy.path for proxy in proxies}
    items[:] = (
        [item for item in plain if item.path not in proxied]
        + [item for item in plain if item.path in proxied]
        + proxies
    )
    if not config.option.collectonly:
        workers.start(proxies)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line per backend: how its tests ended, counted from the proxies' reports."""
    counts: dict[str, dict[str, int]] = {b: {} for b in BACKENDS}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            backend = _backend_of(getattr(report, "nodeid", ""))
            if backend and (report.when == "call" or outcome != "passed"):
                counts[backend][outcome] = counts[backend].get(outcome, 0) + 1
    if not any(counts.values()):
        return
    terminalreporter.section("tests per Keras backend")
    for backend, by_outcome in counts.items():
        summary = ", ".join(f"{n} {outcome}" for outcome, n in by_outcome.items()) or "none ran"
        terminalreporter.write_line(f"{backend}: {summary}")


def _backend_of(nodeid: str) -> str | None:
    params = nodeid.rpartition("[")[2].rstrip("]").split("-")
    return next((b for b in BACKENDS if b in params), None)


def _keep_worker_selection(config, items) -> None:
    selected = set(json.loads(Path(os.environ[_SELECTION_ENV]).read_text()))
    kept = [item for item in items if item.nodeid in selected]
    config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in selected])
    items[:] = kept


def pytest_runtest_logreport(report):
    """In a backend worker: every phase of every test, as it ends (a proxy waits for teardown)."""
    if not _WORKER_BACKEND:
        return
    with open(SHARED / f"{_WORKER_BACKEND}.jsonl", "a", encoding="utf-8") as out:
        out.write(
            json.dumps(
                {
                    "nodeid": report.nodeid,
                    "when": report.when,
                    "outcome": report.outcome,
                    "longrepr": str(report.longrepr) if report.longrepr else "",
                    "duration": report.duration,
                }
            )
            + "\n"
        )


class _BackendWorkers:
    """Starts each backend's worker once per session, and reads back its tests' outcomes."""

    def __init__(self, config):
        self.config = config
        self.processes: dict[str, subprocess.Popen] = {}
        self._read: dict[str, int] = {}  # bytes of each backend's outcome file parsed so far
        self.outcomes: dict[str, dict[str, dict]] = {b: {} for b in BACKENDS}

    def start(self, proxies) -> None:
        selection: dict[str, list[str]] = {b: [] for b in BACKENDS}
        for proxy in proxies:
            selection[proxy.backend].append(proxy.nodeid)
        for backend, nodeids in selection.items():
            if nodeids and self._claim(backend):
                self._start(backend, nodeids)

    @staticmethod
    def _claim(backend: str) -> bool:
        """Whether this process starts `backend`'s worker: the first stream of the session to
        ask."""
        try:
            os.close(os.open(SHARED / f"{backend}.claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        return True

    def _start(self, backend: str, nodeids: list[str]) -> None:
        selection = SHARED / f"{backend}-selection.json"
        selection.write_text(json.dumps(nodeids))
        from mlpsuite.executors.wire import thread_environment

        # One intra-op thread, as a grid's workers on two cores have: the workers of the three
        # backends and the test streams share the cores, where OpenMP's threads spin waiting
        # for each other.
        env = {
            **os.environ,
            **thread_environment(1),
            _WORKER_ENV: backend,
            _SELECTION_ENV: str(selection),
            "KERAS_BACKEND": backend,
            **_JAX_CACHE,
        }
        for name in [name for name in env if name.startswith("PYTEST_XDIST")]:
            del env[name]  # a worker of its own, not one of xdist's streams
        files = sorted({nodeid.split("::")[0] for nodeid in nodeids})
        # The worker keeps its own copy of the descriptor: this one closes at once.
        with open(SHARED / f"{backend}.log", "w", encoding="utf-8") as log:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "-p",
                    "no:xdist",
                    "-o",
                    "addopts=",
                    "-o",
                    f"timeout={_WORKER_TEST_TIMEOUT_S}",
                    *self._order_options(),
                    f"--rootdir={self.config.rootpath}",
                    *files,
                ],
                cwd=self.config.rootpath,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes[backend] = process

        def record_exit() -> None:
            (SHARED / f"{backend}.exit").write_text(str(process.wait()))

        threading.Thread(target=record_exit, daemon=True).start()

    def _order_options(self) -> list[str]:
        """The session's order for the worker's tests too: shuffled by pytest-randomly, with the
        session's seed, when the session is shuffled; as collected otherwise."""
        if self.config.pluginmanager.has_plugin("randomly"):
            return ["-p", "randomly", f"--randomly-seed={self.config.getoption('randomly_seed')}"]
        return ["-p", "no:randomly"]

    def finish(self) -> None:
        """Let the workers this process started finish (another stream's proxies may still wait
        for them); kill one only when it outlives every proxy's wait."""
        deadline = time.monotonic() + _PROXY_WAIT_S
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def outcome(self, backend: str, nodeid: str) -> dict:
        """The test's outcome once its teardown is reported: its first phase that did not pass."""
        deadline = time.monotonic() + _PROXY_WAIT_S
        while True:
            self._parse(backend)
            phases = self.outcomes[backend].get(nodeid)
            if phases and "teardown" in phases:
                return next(
                    (
                        phases[when]
                        for when in ("setup", "call", "teardown")
                        if when in phases and phases[when]["outcome"] != "passed"
                    ),
                    phases["teardown"],
                )
            exited = SHARED / f"{backend}.exit"
            if exited.exists():
                self._parse(backend)
                if (
                    nodeid not in self.outcomes[backend]
                    or "teardown" not in self.outcomes[backend][nodeid]
                ):
                    raise BackendWorkerError(
                        f"[{backend}] worker exited {exited.read_text()} without running "
                        f"this test; its log:\n{self.log_tail(backend)}"
                    )
                continue
            if time.monotonic() > deadline:
                raise BackendWorkerError(
                    f"[{backend}] no outcome after {_PROXY_WAIT_S} s; its log:\n"
                    + self.log_tail(backend)
                )
            time.sleep(0.1)

    def _parse(self, backend: str) -> None:
        path = SHARED / f"{backend}.jsonl"
        if not path.exists():
            return
        with open(path, "rb") as source:
            source.seek(self._read.get(backend, 0))
            data = source.read()
        complete = data[
            : data.rfind(b"\n") + 1
        ]  # a line still being written waits for the next look
        self._read[backend] = self._read.get(backend, 0) + len(complete)
        for line in complete.decode("utf-8").splitlines():
            entry = json.loads(line)
            self.outcomes[backend].setdefault(entry["nodeid"], {})[entry["when"]] = entry

    @staticmethod
    def log_tail(backend: str, lines: int = 60) -> str:
        path = SHARED / f"{backend}.log"
        text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else "(no log)"
        return "\n".join(text.splitlines()[-lines:])


_WORKERS_KEY = pytest.StashKey[_BackendWorkers]()


class BackendWorkerError(Exception):
    """A backend-marked test failed (or never ran) in its backend's worker process."""


class BackendProxy(pytest.Item):
    """Stands in the main process for one backend test instance run by a worker."""

    def __init__(self, *, original, workers, **kwargs):
        super().__init__(**kwargs)
        self.backend = original.callspec.params["backend"]
        self.workers = workers
        self.own_markers = list(original.own_markers)
        self.keywords.update(original.keywords)

    def runtest(self):
        result = self.workers.outcome(self.backend, self.nodeid)
        if result["outcome"] == "skipped":
            # Every backend test must run on every backend: a skip there is a gap, not a pass.
            raise BackendWorkerError(
                f"[{self.backend}] skipped in its worker: {result['longrepr']}"
            )
        if result["outcome"] != "passed":
            raise BackendWorkerError(
                f"[{self.backend}] {result['when']} failed:\n{result['longrepr']}"
            )

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, BackendWorkerError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.name} (in the {self.backend} worker)"


@pytest.fixture
def suite_server(tmp_path):
    """`mlpsuite server` on a free port, its store and artifacts in the test's folder: its URL
    and its artifact folder."""
    from tests.grids import ready_store  # here, not at the top: backend workers never need it
    from tests.servers import free_port, start_suite_server, stop

    (tmp_path / "served").mkdir()
    port = free_port()
    process = start_suite_server(
        tmp_path, port, ready_store(tmp_path / "served"), tmp_path / "served" / "artifacts"
    )
    try:
        yield f"http://127.0.0.1:{port}", tmp_path / "served" / "artifacts"
    finally:
        stop(process)
