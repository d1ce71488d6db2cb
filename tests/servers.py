"""Real servers for tests, on 127.0.0.1: `mlpsuite server`, and a throwaway PostgreSQL cluster."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from mlflow import MlflowClient

from tests.grids import clean_env, mlpsuite_command, write_grid


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_http(
    url: str, process: subprocess.Popen, timeout: float = 120, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            if log:
                said = log.read_text(errors="replace")
            else:
                assert process.stderr is not None, "no log: the server's stderr is piped"
                said = process.stderr.read()
            raise AssertionError(f"server exited {process.returncode}: {said[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL to the whole session: MLflow's server has job-consumer children."""
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def start_suite_server(
    cwd: Path, port: int, store_uri: str, artifacts: Path, workers: int = 1
) -> subprocess.Popen:
    """`mlpsuite server` on `port`, answering /health before this returns. Its output goes to a
    file: a pipe nobody reads fills with the access log and blocks the server mid-grid."""
    log = cwd / f"server-{port}.log"
    with open(log, "a", encoding="utf-8") as output:
        process = subprocess.Popen(
            mlpsuite_command(
                "server",
                "--port",
                str(port),
                "--backend-store-uri",
                store_uri,
                "--artifacts-destination",
                str(artifacts),
                "--workers",
                str(workers),
            ),
            cwd=cwd,
            env=clean_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    wait_for_http(f"http://127.0.0.1:{port}/health", process, log=log)
    return process


class Watched:
    """A process whose stderr goes to a file, read while it runs (a pipe nobody reads can fill
    and block it)."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str]):
        self.stderr_path = cwd / f"stderr-{time.monotonic_ns()}.log"
        with open(self.stderr_path, "w", encoding="utf-8") as stderr:
            self.process = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True
            )

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_stderr(self, text: str, timeout: float = 180) -> None:
        """Until `text` appears on its stderr; fails if it exits first or `timeout` s pass."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"exited {self.process.returncode} before saying {text!r}: "
                    f"{self.stderr()[-2000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"did not say {text!r} within {timeout} s: {self.stderr()[-2000:]}"
                )
            time.sleep(0.1)

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def two_grids_at_once(
    folder: Path, url: str, names: tuple[str, ...] = ("left", "right")
) -> MlflowClient:
    """Two `mlpsuite run` at once through the server at `url`, three trials of 5 epochs each:
    both finish, no "database is locked", each trial once with each epoch once. A name given
    twice is one grid with two drivers: they share its trials (claims), none runs twice.
    scikit-learn's MLP: the subject is the store, and its workers start in a second."""
    activations = ["relu", "tanh", "identity"]
    paths = [
        write_grid(folder, name, backends=["sklearn"], grid={"model.activation": activations})
        for name in names
    ]
    names = tuple(dict.fromkeys(names))
    grids = [
        subprocess.Popen(
            mlpsuite_command("run", str(path), "--tracking-uri", url, "--jobs", "1"),
            cwd=folder,
            env=clean_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in paths
    ]
    for grid in grids:
        _, stderr = grid.communicate(timeout=300)
        assert grid.returncode == 0, stderr[-2000:]
        assert "locked" not in stderr.lower()
    client = MlflowClient(url)
    for name in names:
        experiment = client.get_experiment_by_name(name)
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'trial'")
        keys = [run.data.tags["mlpsuite.trial_key"] for run in runs]
        assert len(keys) == len(set(keys)) == 3 and {run.info.status for run in runs} == {
            "FINISHED"
        }
        assert sorted(run.data.params["model.activation"] for run in runs) == sorted(activations)
        for run in runs:
            assert [m.step for m in client.get_metric_history(run.info.run_id, "loss")] == [
                1,
                2,
                3,
                4,
                5,
            ]
    return client


# ---------------------------------------------------------------- PostgreSQL


def postgres_bin() -> Path:
    """The folder of PostgreSQL's server programs (`.ci/run` installs Debian's package)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
    )
    if not versions:
        raise AssertionError(
            "PostgreSQL's initdb is not installed: apt-get install postgresql (.ci/run does)"
        )
    return Path(versions[-1]).parent


def _unprivileged_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as `postgres` (Debian's) or `nobody`."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise AssertionError("running as root, with no unprivileged user to run PostgreSQL as")


@contextlib.contextmanager
def postgres_cluster(database: str = "mlflow") -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port, trusting local connections;
    yields the URI of a new database in it. Its folder is outside pytest's (root-only) tree so
    an unprivileged server can write it; everything goes when the block ends."""
    bin_dir, user = postgres_bin(), _unprivileged_user()
    folder = Path(tempfile.mkdtemp(prefix="mlpsuite-postgres-"))
    if user:
        shutil.chown(folder, user)
    port = free_port()
    server = None
    try:
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(folder / "data"),
                "-U",
                "mlpsuite",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
            user=user,
        )
        server = subprocess.Popen(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(folder / "data"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                str(folder),
                "-F",
            ],  # -F: no fsync, a test's data need not survive a crash
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            user=user,
        )
        _create_database(bin_dir, port, database, server, folder)
        yield f"postgresql://mlpsuite@127.0.0.1:{port}/{database}"
    finally:
        if server is not None:
            stop(server)  # SIGTERM: PostgreSQL's smart shutdown, clients are gone by now
        shutil.rmtree(folder, ignore_errors=True)


def _create_database(
    bin_dir: Path, port: int, name: str, server: subprocess.Popen, folder: Path, timeout: float = 60
) -> None:
    """`createdb`, once the server accepts connections."""
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise AssertionError(
                f"PostgreSQL exited {server.returncode}; run {bin_dir / 'postgres'} -D "
                f"{folder / 'data'} by hand to see why"
            )
        done = subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlpsuite", name],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"createdb failed: {done.stderr}")
        time.sleep(0.3)
