"""A grid logged to a real `mlflow server` on 127.0.0.1, `mlpsuite server` (outages, many
writers, exposed on the network) and what `mlpsuite ui` prints while it starts. `mlpsuite ui` is
opened in a browser in test_dashboard.py, a grid on Ray through `mlpsuite server` is in
test_ray_executor.py. scikit-learn's MLP keeps the grids short: the subject is the store."""

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.faults import alive, children, wait_for
from tests.grids import (
    clean_env,
    cli_in_process,
    mlpsuite_command,
    ready_store,
    run_in_process,
    sqlite_uri,
    write_grid,
)
from tests.servers import (
    Watched,
    free_port,
    start_suite_server,
    stop,
    two_grids_at_once,
    wait_for_http,
)


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    log = tmp_path / "mlflow-server.log"
    with open(
        log, "w", encoding="utf-8"
    ) as output:  # not a pipe: nobody reads it, and a full one blocks
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backend-store-uri",
                ready_store(tmp_path),
                "--artifacts-destination",
                str(tmp_path / "artifacts"),
                "--workers",
                "1",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", process, log=log)
        yield url
    finally:
        stop(process)


def test_grid_logs_to_an_http_tracking_server(tmp_path, mlflow_server):
    path = write_grid(
        tmp_path, "served", backends=["sklearn"], grid={"model.activation": ["relu", "tanh"]}
    )
    done = run_in_process("run", str(path), "--tracking-uri", mlflow_server, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not (tmp_path / "mlruns").exists()  # nothing went to the default local store
    assert "View run" not in done.stdout  # MLflow's own link per run stays out of our output
    assert f"Browse: {mlflow_server}/#/experiments/" in done.stdout
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("served")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'trial'")
    assert sorted(r.data.params["model.activation"] for r in runs) == ["relu", "tanh"]
    assert {r.info.status for r in runs} == {"FINISHED"}
    downloaded = client.download_artifacts(runs[0].info.run_id, "trial.json", str(tmp_path))
    with open(downloaded, encoding="utf-8") as logged:
        assert json.load(logged)["backend"] == "sklearn"
    # The comparison on the parent run, read back through the server.
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'grid'")
    assert parent.info.status == "FINISHED"
    assert "Best cell: activation=" in parent.data.tags["mlflow.note.content"]
    assert (
        parent.data.metrics["trials_counted"] == 2 and "step_time_ms_sklearn" in parent.data.metrics
    )
    listed = {a.path for a in client.list_artifacts(parent.info.run_id, "comparison")}
    assert {"comparison/cells.csv", "comparison/report.md", "comparison/curves.png"} <= listed
    report = client.download_artifacts(parent.info.run_id, "comparison/report.md", str(tmp_path))
    with open(report, encoding="utf-8") as text:
        assert "#### Ranking by final val_loss" in text.read()
    compared = run_in_process(
        "compare", "served", "--format", "json", "--tracking-uri", mlflow_server, cwd=tmp_path
    )
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert json.loads(compared.stdout)["parent_run_id"] == parent.info.run_id


@pytest.mark.check
@pytest.mark.parametrize(
    "command", [["ui", "--port", "5999"], ["rerun", "0123456789abcdef"]], ids=["ui", "rerun"]
)
def test_ui_and_rerun_never_create_a_store(tmp_path, monkeypatch, capsys, command):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, _, err = cli_in_process(capsys, *command)
    assert code == 2 and err.count("\n") == 1 and "no store at" in err, err
    assert not (tmp_path / "mlruns").exists()
    code, _, err = cli_in_process(
        capsys, *command, "--tracking-uri", f"sqlite:///{tmp_path}/mlrun/mlflow.db"
    )
    assert code == 2 and not (tmp_path / "mlrun").exists()


@pytest.mark.check
def test_mlpsuite_server_refuses_a_server_as_its_store_in_one_line(capsys):
    code, _, err = cli_in_process(capsys, "server", "--backend-store-uri", "http://127.0.0.1:5000")
    assert code == 2 and err.count("\n") == 1
    assert "a server cannot store into another server" in err


def test_ui_says_open_only_once_it_answers_on_one_server_with_mlflows_noise_in_a_log(tmp_path):
    """`mlpsuite ui` says at once that it is starting, and "Open LINK" only once the address
    answers; MLflow's warnings and uvicorn's INFO lines go to a log file, not to the user; one
    uvicorn process serves (MLflow's default is 4); a SIGINT stops it all."""
    uri, port = ready_store(tmp_path), free_port()
    address = f"http://127.0.0.1:{port}"
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            mlpsuite_command("ui", "--port", str(port), "--tracking-uri", uri),
            cwd=tmp_path,
            env={**clean_env(), "TMPDIR": str(tmp_path)},  # where its log goes
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout or ()], daemon=True
    )
    reader.start()
    try:
        first = _next_line(lines, 60, stderr_path)
        assert first.startswith(f"starting the MLflow UI for {uri} on {address} "), first
        said = re.search(r"its log: (\S+);", first)
        assert said, first
        opened = _next_line(lines, 180, stderr_path)
        assert opened.startswith(f"Open {address}/#/experiments"), opened
        # The moment "Open" is read, the address answers: one GET, no retry.
        with urllib.request.urlopen(f"{address}/", timeout=10) as response:
            assert response.status == 200
        # One uvicorn process beside MLflow's (once the waiter that printed "Open" has ended).
        one = wait_for(lambda: len(_running_children(process.pid)) == 1, timeout=30)
        servers = _running_children(process.pid)
        assert one and "uvicorn" in _command_line(servers[0]), [_command_line(p) for p in servers]
        assert not _running_children(servers[0])
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        reader.join(timeout=30)
        assert not reader.is_alive(), "something still holds the UI's stdout"
    finally:
        stop(process)
    shown = [first, opened, *_drained(lines), stderr_path.read_text(encoding="utf-8")]
    for noise in ("StarletteDeprecationWarning", "INFO:", "Registry store URI"):
        assert not any(noise in text for text in shown), (noise, shown)
    log = Path(said.group(1))
    assert log.parent == tmp_path, log
    text = log.read_text(encoding="utf-8")
    assert "Uvicorn running on" in text and text.count("Started server process") == 1, text


def _running_children(pid: int) -> list[int]:
    return [child for child in children(pid) if alive(child)]


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return f"(process {pid} has ended)"


def _next_line(lines: queue.Queue, timeout: float, stderr: Path) -> str:
    """The next line the reader thread put in `lines`; fails after `timeout` s."""
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(
            f"no line within {timeout} s; stderr: {stderr.read_text(encoding='utf-8')[-2000:]}"
        ) from None


def _drained(lines: queue.Queue) -> list[str]:
    found = []
    while not lines.empty():
        found.append(lines.get_nowait())
    return found


@pytest.mark.check
def test_the_ui_waiter_gives_up_when_the_ui_is_gone_or_silent_past_its_bound(capsys):
    """The process beside `mlpsuite ui` that waits for it to answer: it ends, with a line naming
    the log, once the UI's process is gone (it is no longer its parent), or after its bound."""
    from mlpsuite.cli.serve import announce_when_up

    address = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    announce_when_up(address, f"{address}/#/x", "/tmp/ui.log", "", str(os.getppid()), bound=0.3)
    out, err = capsys.readouterr()
    assert not out and err == (
        f"the MLflow UI has not answered on {address} within 0.3 s; giving up waiting for it "
        "(its log: /tmp/ui.log); it may still start\n"
    )
    announce_when_up(address, f"{address}/#/x", "", "", "-1")  # -1: never a parent's pid
    out, err = capsys.readouterr()
    assert not out and err == (
        f"the MLflow UI exited before it answered on {address}; see its output above\n"
    )


def _start_outage_server(tmp_path, port: int) -> subprocess.Popen:
    return start_suite_server(
        tmp_path, port, sqlite_uri(tmp_path / "outage"), tmp_path / "outage" / "artifacts"
    )


# A trial of the outage grid runs some seconds: the server stops while one is in flight.
OUTAGE_EPOCHS = 250


def _grid_stopping_its_server_mid_trial(
    tmp_path, outage_s: int
) -> tuple[Watched, subprocess.Popen, int]:
    """A 3-trial grid through `mlpsuite server`, and the server stopped once a trial has logged
    an epoch (a trial runs some seconds); returns the grid, the stopped server and its port."""
    (tmp_path / "outage").mkdir()
    port = free_port()
    server = _start_outage_server(tmp_path, port)
    url = f"http://127.0.0.1:{port}"
    path = write_grid(
        tmp_path,
        "outage",
        backends=["sklearn"],
        training={"epochs": OUTAGE_EPOCHS, "batch_size": 8},
        grid={"model.activation": ["relu", "tanh", "identity"]},
    )
    grid = Watched(
        mlpsuite_command("run", str(path), "--tracking-uri", url, "--jobs", "1"),
        tmp_path,
        {**clean_env(), "MLPSUITE_SERVER_OUTAGE_S": str(outage_s)},
    )
    client = MlflowClient(url)

    def an_epoch_logged() -> bool:
        experiment = client.get_experiment_by_name("outage")
        runs = (
            client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'trial'")
            if experiment
            else []
        )
        return any(r.data.metrics.get("loss") is not None for r in runs)

    assert wait_for(an_epoch_logged, timeout=180, every=0.2), grid.stderr()[-2000:]
    assert grid.process.poll() is None, "the grid ended before the server could be stopped"
    stop(server)
    return grid, server, port


def _trial_runs(url: str) -> list:
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("outage")
    assert experiment is not None
    return client.search_runs([experiment.experiment_id], "tags.`mlpsuite.kind` = 'trial'")


def test_a_grid_outlives_its_server_going_away_briefly_and_loses_no_epoch(tmp_path):
    grid, server, port = _grid_stopping_its_server_mid_trial(tmp_path, outage_s=90)
    try:
        grid.wait_for_stderr("MLflow server not answering")  # gone, and the grid noticed
        server = _start_outage_server(tmp_path, port)
        assert grid.wait(timeout=300) == 0, grid.stderr()[-2000:]
        assert "answers again" in grid.stderr()
        url = f"http://127.0.0.1:{port}"
        runs = _trial_runs(url)
        assert len(runs) == 3 and {r.info.status for r in runs} == {"FINISHED"}
        for run in runs:  # every epoch exactly once
            steps = [m.step for m in MlflowClient(url).get_metric_history(run.info.run_id, "loss")]
            assert sorted(steps) == list(range(1, OUTAGE_EPOCHS + 1)), run.data.params[
                "model.activation"
            ]
    finally:
        grid.kill()
        stop(server)


def test_a_server_gone_past_the_bound_ends_the_grid_and_a_rerun_resumes_it(tmp_path):
    grid, server, port = _grid_stopping_its_server_mid_trial(tmp_path, outage_s=4)
    try:
        # The bound, MLflow's own 2 retries, the clean-up tried once.
        assert grid.wait(timeout=120) == 2, grid.stderr()[-2000:]
        stderr = grid.stderr()
        assert stderr.strip().splitlines()[-1] == (
            "mlpsuite: error: the MLflow server has not answered for 4 s "
            "(MLPSUITE_SERVER_OUTAGE_S); run the grid again when it is back: that marks this "
            "grid's unfinished runs KILLED and resumes it"
        )
        assert "Traceback" not in stderr
        server = _start_outage_server(tmp_path, port)
        url = f"http://127.0.0.1:{port}"
        assert "RUNNING" in {
            r.info.status for r in _trial_runs(url)
        }  # the one in flight, left as it was
        again = run_in_process(
            "run", str(tmp_path / "outage.yaml"), "--tracking-uri", url, cwd=tmp_path
        )
        assert again.returncode == 0, again.stderr[-2000:]
        runs = _trial_runs(url)
        killed = [r for r in runs if r.info.status == "KILLED"]
        finished = [r.data.tags["mlpsuite.trial_key"] for r in runs if r.info.status == "FINISHED"]
        assert len(killed) == 1 and killed[0].data.tags["mlpsuite.failure"] == "coordinator died"
        assert len(finished) == len(set(finished)) == 3 and len(runs) == 4
    finally:
        grid.kill()
        stop(server)


def test_two_grids_at_once_through_one_server(tmp_path, suite_server):
    url, _ = suite_server
    two_grids_at_once(tmp_path, url)


def _status(url: str, host: str) -> int:
    """The server's answer to an API call whose Host header is `host`."""
    request = urllib.request.Request(
        f"{url}/api/2.0/mlflow/experiments/search",
        data=b'{"max_results": 1}',
        headers={"Content-Type": "application/json", "Host": host},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_an_exposed_server_answers_workers_that_name_it_by_hostname(tmp_path):
    """MLflow's server accepts only Host headers it knows (localhost and private IPs): exposed,
    `mlpsuite server` adds this machine's names, so `--tracking-uri http://HOSTNAME:PORT` works,
    and still refuses a name it was not given (DNS rebinding)."""
    port = free_port()
    log = tmp_path / "exposed.log"
    with open(log, "w", encoding="utf-8") as output:
        process = subprocess.Popen(
            mlpsuite_command(
                "server",
                "--host",
                "0.0.0.0",
                "--port",
                str(port),
                "--backend-store-uri",
                ready_store(tmp_path),
                "--artifacts-destination",
                str(tmp_path / "artifacts"),
            ),
            cwd=tmp_path,
            env=clean_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{url}/health", process, log=log)
        assert _status(url, f"{socket.gethostname()}:{port}") == 200
        assert _status(url, f"localhost:{port}") == 200
        assert _status(url, f"mlflow.attacker.example:{port}") == 403
        said = log.read_text()
        assert f"--tracking-uri http://{socket.gethostname()}:{port}" in said and "firewall" in said
    finally:
        stop(process)
