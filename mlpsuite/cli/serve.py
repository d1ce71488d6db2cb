"""`mlpsuite ui` and `mlpsuite server`: MLflow's UI or tracking server on the store, started as
this process (`os.execv`), after the checks MLflow would answer with a traceback."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mlpsuite.cli.arguments import add_tracking_uri, experiment_id, port, positive_int, shown_uri
from mlpsuite.errors import ConfigError


def add_serve_commands(commands) -> None:
    """The `ui` and `server` subparsers on `commands`."""
    ui = commands.add_parser(
        "ui",
        help="open the MLflow UI on this store (127.0.0.1)",
        description="Start the MLflow UI on the tracking store, bound to 127.0.0.1, and "
        "print the address of EXPERIMENT's runs in its Model training view.",
    )
    ui.add_argument(
        "experiment",
        nargs="?",
        default=None,
        help="the experiment to open (default: the one whose grid ran last)",
    )
    ui.add_argument("--port", type=port, default=5000, help="port (default 5000)")
    ui.add_argument("--open", action="store_true", help="also open that address in a web browser")
    add_tracking_uri(ui)

    server = commands.add_parser(
        "server",
        help="a shared MLflow tracking server for a team or a cluster",
        description="Start `mlflow server` with artifacts served through it (--serve-artifacts), "
        "so machines that run trials never need the store's disk. SQLite by default; a PostgreSQL "
        "URI (postgresql://user:password@host:5432/db) for many writers at once.",
    )
    server.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it "
        "unauthenticated to the network)",
    )
    server.add_argument("--port", type=port, default=5000, help="port (default 5000)")
    server.add_argument(
        "--backend-store-uri",
        default=None,
        metavar="URI",
        help="where runs are kept (default sqlite:///mlruns/mlflow.db)",
    )
    server.add_argument(
        "--artifacts-destination",
        type=Path,
        default=Path("mlruns/artifacts"),
        metavar="DIR",
        help="where the server keeps artifacts (default mlruns/artifacts)",
    )
    server.add_argument(
        "--allowed-hosts",
        default=None,
        metavar="HOSTS",
        help="Host headers the server accepts, comma-separated, * wildcards (MLflow's "
        "DNS-rebinding protection); default: localhost and private IPs, and when --host exposes "
        "it also this machine's hostname and addresses",
    )
    server.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="server processes (default 1: with more, uvicorn leaves Nagle's algorithm on and "
        "each request on a kept-alive connection waits ~44 ms on Linux; uvicorn issue 3149)",
    )
    ui.set_defaults(handler=run_ui)
    server.set_defaults(handler=run_server)


def run_ui(args: argparse.Namespace) -> int:
    from mlpsuite.tracking import Tracker, resolve_uri

    uri = resolve_uri(args.tracking_uri, create=False)
    tracker = Tracker(
        uri
    )  # an unreachable server or unusable store: one line here, not MLflow's traceback
    _check_port_free(args.port)
    address = f"http://127.0.0.1:{args.port}"
    link = f"{address}/{_experiment_page(tracker, args.experiment)}"
    print(f"MLflow UI for {shown_uri(uri)} at {address} (Ctrl-C stops it). Open {link}")
    if args.open:
        _open_when_up(link, args.port)
    _become(
        [
            sys.executable,
            "-m",
            "mlflow",
            "ui",
            "--backend-store-uri",
            uri,
            "--host",
            "127.0.0.1",
            "--port",
            str(args.port),
        ]
    )
    return 0


def _experiment_page(tracker, experiment: str | None) -> str:
    """`#/experiments/ID?workflowType=machine_learning` (MLflow 3 opens on its GenAI view
    otherwise): the experiment named, else the one whose grid ran last, else the list."""
    from mlpsuite.present.run_page import VIEW

    if experiment is not None:
        return f"#/experiments/{experiment_id(tracker, experiment, experiment)}?{VIEW}"
    newest = tracker.newest_grid_experiment()
    return f"#/experiments/{newest}?{VIEW}" if newest else f"#/experiments?{VIEW}"


def _open_when_up(link: str, port: int) -> None:
    """A browser once the UI answers; a separate process, since this one becomes the UI."""
    import subprocess

    waiter = (
        "import socket, sys, time, webbrowser\n"
        "for _ in range(600):\n"
        "    try:\n"
        f"        socket.create_connection(('127.0.0.1', {port}), 0.5).close(); break\n"
        "    except OSError: time.sleep(0.1)\n"
        f"webbrowser.open({link!r})\n"
    )
    subprocess.Popen([sys.executable, "-c", waiter], start_new_session=True)


def run_server(args: argparse.Namespace) -> int:
    from mlpsuite.tracking import Tracker, resolve_uri

    uri = resolve_uri(args.backend_store_uri)
    if uri.startswith(("http://", "https://")):
        raise ConfigError(
            f"--backend-store-uri {uri}: a server cannot store into another server; "
            "allowed: sqlite:///PATH, postgresql://..."
        )
    Tracker(uri)  # creates or migrates the store once, here, not in each server worker at once
    _check_port_free(args.port, args.host)
    args.artifacts_destination.mkdir(parents=True, exist_ok=True)
    from mlpsuite.cli.hosts import allowed_hosts, client_address

    address = f"http://{client_address(args.host)}:{args.port}"
    print(
        f"MLflow tracking server for {shown_uri(uri)} at {address}; artifacts in "
        f"{args.artifacts_destination.resolve()} (Ctrl-C stops it). Point runs at it with "
        f"--tracking-uri {address}."
    )
    hosts = allowed_hosts(args.host, args.allowed_hosts)
    if args.workers > 1:
        print(
            f"--workers {args.workers}: uvicorn's worker processes leave Nagle's algorithm on "
            "(uvicorn issue 3149), so each request of a client that keeps its connection (MLflow's "
            "does) waits ~44 ms on Linux; one worker answers in about 1 ms "
            "(benchmarks/server_writes.py)",
            file=sys.stderr,
        )
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"Listening on {args.host}: anyone who reaches this port can read and write every run; "
            "MLflow's server has no authentication of its own. Keep it behind a firewall or VPN. "
            "Host headers accepted: localhost, private IPs and this machine's names "
            "(--allowed-hosts for others).",
            file=sys.stderr,
        )
    _become(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            uri,
            "--serve-artifacts",
            "--artifacts-destination",
            str(args.artifacts_destination.resolve()),
            "--host",
            args.host,
            "--port",
            str(args.port),
            "--workers",
            str(args.workers),
        ]
        + (["--allowed-hosts", hosts] if hosts is not None else [])
    )
    return 0


def _become(command: list[str]) -> None:
    """Replace this process with `command`: a SIGTERM or Ctrl-C meant for the server reaches
    it, instead of stopping only a parent that would leave it running."""
    # MLflow's job execution serves its GenAI features (online scoring, trace archival), none
    # of which a grid uses: three more processes of ~250 MB each, and 5 s more to start.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)


def _check_port_free(port: int, host: str = "127.0.0.1") -> None:
    """MLflow's server would print a traceback and exit 0 on a busy port; say it in one line."""
    import socket

    with socket.socket() as probe:
        # As the server binds: a port in TIME_WAIT is free, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise ConfigError(
                f"--port {port}: {host}:{port} is in use; pick a free port with --port"
            ) from None
