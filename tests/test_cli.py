"""Bad flags: each is one line on stderr naming itself, exit 2, and no store created. And the
commands the CLI prints to paste run as printed, whether or not the venv is on PATH."""

import argparse
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

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
    "unknown flag": (["run", "q.yaml", "--fast"], "unrecognized arguments: --fast (see"),
    # No flag is taken by an abbreviation: `--backend jax` is not `--backends jax`.
    "an abbreviated flag": (
        ["run", "q.yaml", "--backend", "jax", "--dry-run"],
        "unrecognized arguments: --backend jax; did you mean '--backends'?",
    ),
    "a misspelt flag": (
        ["compare", "q", "--metrc", "val_loss"],
        "unrecognized arguments: --metrc val_loss; did you mean '--metric'?",
    ),
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


# PATH as `make run` leaves it: `.venv/bin/mlpsuite` ran, the venv's bin is not on PATH.
BARE_PATH = os.pathsep.join(["/usr/local/bin", "/usr/bin", "/bin"])


def _runs_version(command: list[str], cwd: Path) -> None:
    done = subprocess.run(
        [*command, "--version"], cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.startswith("mlpsuite "), (command, done.stderr)


def test_command_name_is_mlpsuite_on_path_else_one_that_runs_from_here(tmp_path, monkeypatch):
    from mlpsuite.cli.arguments import command_name

    python, bin_dir = sys.executable, Path(sys.executable).parent
    script = bin_dir / "mlpsuite"
    assert script.is_file(), "the console script `pip install -e .` puts beside the venv's python"
    monkeypatch.setenv("PATH", os.pathsep.join([str(bin_dir), BARE_PATH]))
    assert command_name() == "mlpsuite"
    monkeypatch.setenv("PATH", BARE_PATH)
    monkeypatch.chdir(tmp_path)  # not under the venv's folder: the script's whole path
    assert command_name() == shlex.quote(str(script))
    _runs_version(shlex.split(command_name()), tmp_path)
    project = bin_dir.parent.parent  # as `make run` in the project: `.venv/bin/mlpsuite`
    monkeypatch.chdir(project)
    assert command_name() == str(script.relative_to(project)) and "/" in command_name()
    _runs_version(shlex.split(command_name()), project)
    monkeypatch.chdir(bin_dir)  # a bare name would be looked up on PATH
    assert command_name() == "./mlpsuite"
    bare = tmp_path / "no scripts here" / "python"  # an interpreter without the console script
    monkeypatch.setattr(sys, "executable", str(bare))
    assert command_name() == f"{shlex.quote(str(bare))} -m mlpsuite.cli"
    _runs_version([python, "-m", "mlpsuite.cli"], tmp_path)  # that form, with this interpreter


def test_the_closing_line_of_a_run_names_commands_that_run_from_here(tmp_path, monkeypatch):
    """`Browse: mlpsuite ui ..., then URL; again: mlpsuite compare NAME` after `make run` was
    "mlpsuite: command not found": the venv's bin is not on PATH there."""
    from mlpsuite.cli.arguments import command_name
    from mlpsuite.cli.run import _show_outcome

    monkeypatch.setenv("PATH", BARE_PATH)
    monkeypatch.chdir(tmp_path)
    name, uri = "drift – Übung 1", f"sqlite:///{tmp_path}/store/mlflow.db"
    result = SimpleNamespace(
        orphans_killed=0,
        comparison=None,
        kept_logs=None,
        interrupted=False,
        experiment=name,
        tracking_uri=uri,
        url="http://127.0.0.1:5000/#/experiments/1/runs/abc",
        report_error=None,
        n_failed=0,
        none_finished=False,
        counts=lambda: "parent run abc (invocation 1): 2 run, 0 failed, 0 reused",
    )
    printed = []
    console = SimpleNamespace(print=lambda text, **_: printed.append(text))
    args = argparse.Namespace(tracking_uri=uri, strict=False)
    assert _show_outcome(result, args, console, console) == 0
    (line,) = printed
    browse = shlex.split(line.split("Browse: ", 1)[1].split(", then ", 1)[0])
    again = shlex.split(line.split("again: ", 1)[1])
    program = browse[: browse.index("ui")]
    assert program == again[: again.index("compare")] == shlex.split(command_name())
    assert browse[len(program) :] == ["ui", "--tracking-uri", uri]
    assert again[len(program) :] == ["compare", name, "--tracking-uri", uri]
    _runs_version(program, tmp_path)
