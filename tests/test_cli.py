"""Bad flags: each is one line on stderr naming itself, exit 2, and no store created."""

import socket

import pytest

from mlpsuite import cli
from tests.grids import cli_in_process

pytestmark = pytest.mark.check  # the edit loop's tier (`make check`)

BAD_FLAGS = {
    "jobs not a number": (
        ["run", "q.yaml", "--jobs", "abc"],
        "argument --jobs: expected a positive integer, got 'abc'",
    ),
    "jobs zero": (
        ["run", "q.yaml", "--jobs", "0"],
        "argument --jobs: expected a positive integer, got '0'",
    ),
    "unknown backend flag": (
        ["run", "q.yaml", "--backends", "foo"],
        "argument --backends: unknown backend 'foo'",
    ),
    "empty backend flag": (
        ["run", "q.yaml", "--backends", ""],
        "argument --backends: unknown backend ''",
    ),
    "port out of range": (
        ["ui", "--port", "70000"],
        "argument --port: expected a port from 1 to 65535",
    ),
    "port not a number": (
        ["ui", "--port", "http"],
        "argument --port: expected a positive integer, got 'http'",
    ),
    "unknown format": (
        ["compare", "q", "--format", "xml"],
        "argument --format: invalid choice: 'xml'",
    ),
    "negative tolerance": (
        ["rerun", "abc", "--tolerance", "-1"],
        "argument --tolerance: expected a finite number >= 0",
    ),
    "unknown command": (["train", "q.yaml"], "argument COMMAND: invalid choice: 'train'"),
    "unknown flag": (["run", "q.yaml", "--fast"], "unrecognized arguments: --fast"),
    "missing config file": (["run", "nothere.yaml"], "nothere.yaml: file not found"),
    "unknown store scheme": (
        ["run", "q.yaml", "--tracking-uri", "ftp://example/x"],
        "ftp://example/x",
    ),
    "no store for compare": (["compare", "q"], "no store at"),
    "config is a folder": (["run", "."], ".: is a folder; expected a grid YAML file"),
    "empty tracking URI": (["run", "q.yaml", "--tracking-uri", ""], "--tracking-uri: empty"),
    "plain path as tracking URI": (
        ["run", "q.yaml", "--tracking-uri", "mlruns/x.db"],
        "write sqlite:///mlruns/x.db",
    ),
    "unknown scheme for ui": (
        ["ui", "--tracking-uri", "ftp://x"],
        "tracking URI ftp://x: not a store mlpsuite can use",
    ),
    "compare out is a file": (
        ["compare", "q", "--out", "q.yaml"],
        "--out q.yaml: exists and is not a folder",
    ),
    "no store for rerun": (["rerun", "abc"], "no store at"),
    "no store for ui": (["ui"], "no store at"),
}


@pytest.mark.parametrize("case", sorted(BAD_FLAGS))
def test_bad_flag_is_one_line_exit_2_and_nothing_written(case, tmp_path, monkeypatch, capsys):
    argv, expected = BAD_FLAGS[case]
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "q.yaml").write_text(
        "name: q\ndataset: {name: iris}\nbackends: [torch]\n", encoding="utf-8"
    )
    code, _, err = cli_in_process(capsys, *argv)
    assert code == 2 and err.count("\n") == 1, err
    assert expected in err, err
    assert not (tmp_path / "mlruns").exists()


def test_ui_on_a_busy_port_is_one_line(tmp_path, monkeypatch, capsys):
    from mlpsuite.tracking import Tracker, resolve_uri

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    Tracker(resolve_uri())  # a store exists; the port does not
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code = cli.main(["ui", "--port", str(busy.getsockname()[1])])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "is in use" in err, err


def test_server_hosts_loopback_keeps_mlflows_default_and_exposed_adds_this_machine():
    """`mlpsuite server`'s Host-header list (tested end to end through a real server on 0.0.0.0 in
    test_server.py, where coverage cannot follow the exec into MLflow)."""
    from mlpsuite.cli.hosts import DEFAULT_PATTERNS, allowed_hosts, client_address, machine_names

    assert (
        allowed_hosts("127.0.0.1", None) is None
        and allowed_hosts("0.0.0.0", "a.example") == "a.example"
    )
    hosts = allowed_hosts("0.0.0.0", None)
    assert hosts is not None
    exposed = hosts.split(",")
    name = socket.gethostname()
    assert exposed[: len(DEFAULT_PATTERNS)] == DEFAULT_PATTERNS and {name, f"{name}:*"} <= set(
        exposed
    )
    assert "0.0.0.0" not in machine_names("0.0.0.0") and "10.9.8.7" in machine_names("10.9.8.7")
    assert client_address("0.0.0.0") == name and client_address("10.9.8.7") == "10.9.8.7"
