"""Run every `@pytest.mark.backend` test once per Keras backend, each backend in its own process.

Keras fixes its backend when it is first imported, so one pytest process cannot test three
backends. The main pytest process parametrizes each backend-marked test as
`test_x[tensorflow]`, `test_x[torch]`, `test_x[jax]` and replaces the three items with
proxies. The first proxy of a backend starts a worker (`python -m pytest` with
`KERAS_BACKEND` set) that runs exactly the selected tests of that backend and writes each
outcome to a JSON file; each proxy then reports its worker's outcome under its own node id,
so the summary names the failing backend and shows every backend's tests as passed.

In the main process Keras is imported with the light "numpy" backend only so that test
modules can import `keras` at the top; no backend-marked test body runs there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

BACKENDS = ("tensorflow", "torch", "jax")
_WORKER_ENV = "MLPSUITE_TEST_BACKEND"
_REPORT_ENV = "MLPSUITE_TEST_REPORT"
_SELECTION_ENV = "MLPSUITE_TEST_SELECTION"
_WORKER_BACKEND = os.environ.get(_WORKER_ENV)
# A hung test in a worker fails there, well before the main process gives up on it.
_WORKER_TEST_TIMEOUT_S = 300

# Must run before any test module imports keras.
os.environ["KERAS_BACKEND"] = _WORKER_BACKEND or "numpy"
# JAX's compiled programs go to a folder of this test session, not the user's cache.
os.environ.setdefault("MLPSUITE_CACHE_DIR", tempfile.mkdtemp(prefix="mlpsuite-test-cache-"))


def pytest_configure(config):
    config.addinivalue_line("markers", "backend(*names): run once per Keras backend (or per one named), "
                                       "in a subprocess each")


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
    items[:] = [
        BackendProxy.from_parent(item.parent, name=item.name, original=item, workers=workers)
        if _is_backend_item(item) else item
        for item in items
    ]
    if not config.option.collectonly:
        workers.select([item for item in items if isinstance(item, BackendProxy)])


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line per backend: how its tests ended, counted from the proxies' reports."""
    workers = config.stash.get(_WORKERS_KEY, None)
    if workers is None or not workers.processes:
        return
    counts: dict[str, dict[str, int]] = {b: {} for b in BACKENDS}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            backend = _backend_of(getattr(report, "nodeid", ""))
            if backend and (report.when == "call" or outcome != "passed"):
                counts[backend][outcome] = counts[backend].get(outcome, 0) + 1
    terminalreporter.section("tests per Keras backend")
    for backend, by_outcome in counts.items():
        summary = ", ".join(f"{n} {outcome}" for outcome, n in by_outcome.items()) or "none ran"
        terminalreporter.write_line(f"{backend}: {summary}")


def _backend_of(nodeid: str) -> str | None:
    params = nodeid.rpartition("[")[2].rstrip("]").split("-")
    return next((b for b in BACKENDS if b in params), None)


def pytest_unconfigure(config):
    workers = config.stash.get(_WORKERS_KEY, None)
    if workers is not None:
        workers.stop()


def _keep_worker_selection(config, items) -> None:
    selected = set(json.loads(Path(os.environ[_SELECTION_ENV]).read_text()))
    kept = [item for item in items if item.nodeid in selected]
    config.hook.pytest_deselected(items=[item for item in items if item.nodeid not in selected])
    items[:] = kept


def pytest_runtest_logreport(report):
    if not _WORKER_BACKEND or not (report.when == "call" or report.outcome != "passed"):
        return
    with open(os.environ[_REPORT_ENV], "a", encoding="utf-8") as out:
        out.write(json.dumps({
            "nodeid": report.nodeid,
            "when": report.when,
            "outcome": report.outcome,
            "longrepr": str(report.longrepr) if report.longrepr else "",
            "duration": report.duration,
        }) + "\n")


class _BackendWorkers:
    """Starts one pytest worker per backend on first use and reads back its outcomes."""

    def __init__(self, config):
        self.config = config
        self.tmpdir = Path(tempfile.mkdtemp(prefix="mlpsuite-backend-tests-"))
        self.selection: dict[str, list[str]] = {b: [] for b in BACKENDS}
        self.processes: dict[str, subprocess.Popen] = {}
        self.outcomes: dict[str, dict[str, dict]] = {}

    def select(self, proxies) -> None:
        for proxy in proxies:
            self.selection[proxy.backend].append(proxy.nodeid)
        # Start all workers at once: they overlap with each other and with the plain tests.
        for backend, nodeids in self.selection.items():
            if nodeids:
                self._start(backend)

    def _start(self, backend: str) -> None:
        selection = self.tmpdir / f"{backend}-selection.json"
        selection.write_text(json.dumps(self.selection[backend]))
        env = {**os.environ, _WORKER_ENV: backend, _REPORT_ENV: str(self.tmpdir / f"{backend}.jsonl"),
               _SELECTION_ENV: str(selection), "KERAS_BACKEND": backend}
        files = sorted({nodeid.split("::")[0] for nodeid in self.selection[backend]})
        log = open(self.tmpdir / f"{backend}.log", "w", encoding="utf-8")
        self.processes[backend] = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
             "-o", f"timeout={_WORKER_TEST_TIMEOUT_S}",
             f"--rootdir={self.config.rootpath}", *files],
            cwd=self.config.rootpath, env=env, stdout=log, stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        """Kill workers still running (an interrupted or -x session leaves them behind)."""
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    def outcome(self, backend: str, nodeid: str) -> dict | None:
        if backend not in self.outcomes:
            self.outcomes[backend] = self._wait(backend)
        return self.outcomes[backend].get(nodeid)

    def _wait(self, backend: str) -> dict[str, dict]:
        returncode = self.processes[backend].wait()
        report = self.tmpdir / f"{backend}.jsonl"
        outcomes: dict[str, dict] = {}
        if report.exists():
            for line in report.read_text(encoding="utf-8").splitlines():
                entry = json.loads(line)
                # The first non-passing phase wins (a failed setup, a failed call, ...).
                if entry["nodeid"] not in outcomes or outcomes[entry["nodeid"]]["outcome"] == "passed":
                    outcomes[entry["nodeid"]] = entry
        outcomes["__returncode__"] = {"outcome": str(returncode)}
        return outcomes

    def log_tail(self, backend: str, lines: int = 60) -> str:
        text = (self.tmpdir / f"{backend}.log").read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


_WORKERS_KEY = pytest.StashKey[_BackendWorkers]()


class BackendWorkerFailure(Exception):
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
        if result is None:
            code = self.workers.outcomes[self.backend]["__returncode__"]["outcome"]
            raise BackendWorkerFailure(
                f"[{self.backend}] worker exited {code} without running this test; its log:\n"
                + self.workers.log_tail(self.backend)
            )
        if result["outcome"] == "skipped":
            # Every backend test must run on every backend: a skip there is a gap, not a pass.
            raise BackendWorkerFailure(f"[{self.backend}] skipped in its worker: {result['longrepr']}")
        if result["outcome"] != "passed":
            raise BackendWorkerFailure(f"[{self.backend}] {result['when']} failed:\n{result['longrepr']}")

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, BackendWorkerFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, f"{self.name} (in the {self.backend} worker)"
