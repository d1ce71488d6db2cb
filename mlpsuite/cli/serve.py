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
        description="Start the MLflow UI on the tracking store, bound to 127.0.0.1, and, once "
        "it answers, print the address of EXPERIMENT's runs in its Model training view. MLflow's "
        "own output goes to a log file whose path it prints (--verbose: to this terminal).",
    )
    ui.add_argument(
        "experiment",
        nargs="?",
        default=None,
        help="the experiment to open (default: the one whose grid ran last)",
    )
    ui.add_argument("--port", type=port, default=5000, help="port (default 5000)")
    ui.add_argument(
        "--open",
        action="store_true",
        help="also open that address in a web browser once it answers",
    )
    ui.add_argument(
        "--verbose",
        action="store_true",
        help="show MLflow's own output (its log lines, its warnings) here, not in a log file",
    )
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
    """`mlpsuite ui`: the MLflow UI on the store, on 127.0.0.1, opened at the experiment's page;
    the process becomes MLflow's (its output to a log file unless `--verbose`)."""
    from mlpsuite.tracking import Tracker, resolve_uri

    uri = resolve_uri(args.tracking_uri, create=False)
    tracker = Tracker(
        uri
    )  # an unreachable server or unusable store: one line here, not MLflow's traceback
    _check_port_free(args.port)
    address = f"http://127.0.0.1:{args.port}"
    link = f"{address}/{_experiment_page(tracker, args.experiment)}"
    # MLflow's server writes what is not for the person who typed `mlpsuite ui`: Starlette's
    # deprecation warnings, uvicorn's INFO lines (one per request), "Registry store URI not
    # provided". Its stdout and stderr go to a log file, named here, unless --verbose.
    log, log_path = (None, None) if args.verbose else _new_log()
    where = f"its log: {log_path}; " if log_path else ""
    print(f"starting the MLflow UI for {shown_uri(uri)} on {address} ({where}Ctrl-C stops it) ...")
    _announce_when_up(address, link, log_path, args.open)
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
            # One process, as `mlpsuite server`: MLflow's default of 4 starts each with its
            # imports (~8 s more on 2 cores) and its memory, for one person's browser.
            "--workers",
            "1",
        ],
        output=log,
    )
    return 0


def _new_log() -> tuple[int, str]:
    """A new file for the UI's output in the temporary folder: its descriptor and path."""
    import tempfile

    return tempfile.mkstemp(prefix="mlpsuite-ui-", suffix=".log")


def _experiment_page(tracker, experiment: str | None) -> str:
    """`#/experiments/ID?workflowType=machine_learning` (MLflow 3 opens on its GenAI view
    otherwise): the experiment named, else the one whose grid ran last, else the list."""
    from mlpsuite.present.run_page import VIEW

    if experiment is not None:
        return f"#/experiments/{experiment_id(tracker, experiment, experiment)}?{VIEW}"
    newest = tracker.newest_grid_experiment()
    return f"#/experiments/{newest}?{VIEW}" if newest else f"#/experiments?{VIEW}"


# How long `mlpsuite ui` waits for the UI to answer before it says so: a first start imports
# MLflow's server (~10 s on 2 cores) and may migrate the store's tables.
UI_BOUND_S = 120.0


def _announce_when_up(address: str, link: str, log: str | None, open_browser: bool) -> None:
    """`announce_when_up` in a small process of its own, sharing this one's stdout and stderr:
    this process becomes the UI (`_become`), so it cannot wait for itself."""
    import subprocess

    # In the terminal's foreground group with the UI, so a Ctrl-C stops it too: quietly, not
    # with a KeyboardInterrupt traceback. It imports the `mlpsuite` this process runs.
    root = str(Path(__file__).resolve().parents[2])
    waiter = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        f"sys.path.insert(0, {root!r}); "
        "from mlpsuite.cli.serve import announce_when_up; announce_when_up(*sys.argv[1:])"
    )
    flags = [address, link, log or "", "open" if open_browser else "", str(os.getpid())]
    subprocess.Popen([sys.executable, "-c", waiter, *flags])


def announce_when_up(
    address: str, link: str, log: str, open_browser: str, parent: str, bound: float = UI_BOUND_S
) -> None:
    """`Open LINK` on stdout once an HTTP GET of `address` returns, then a browser on LINK if
    `open_browser`. Gives up with a line on stderr when the UI (process `parent`, this one's
    parent: it exits and this one is adopted) is gone, or has not answered within `bound` s."""
    import time
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    where = f"its log: {log}" if log else "see its output above"
    deadline = time.monotonic() + bound
    while True:
        try:
            opener.open(f"{address}/", timeout=2).close()
            break
        except urllib.error.HTTPError:
            break  # an HTTP answer, even an error, is a server that answers
        except OSError:
            pass
        if os.getppid() != int(parent):
            print(f"the MLflow UI exited before it answered on {address}; {where}", file=sys.stderr)
            return
        if time.monotonic() > deadline:
            print(
                f"the MLflow UI has not answered on {address} within {bound:g} s; giving up "
                f"waiting for it ({where}); it may still start",
                file=sys.stderr,
            )
            return
        time.sleep(0.2)
    print(f"Open {link}", flush=True)
    if open_browser:
        import contextlib
        import webbrowser

        # A session of its own for the browser, so a Ctrl-C on the UI leaves it open (OSError:
        # already a group's leader, so not in the UI's group).
        with contextlib.suppress(OSError):
            os.setsid()
        webbrowser.open(link)


def run_server(args: argparse.Namespace) -> int:
    """`mlpsuite server`: an MLflow tracking server for a SQLite or database store, serving
    artifacts from `--artifacts-destination`; the process becomes the server."""
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


def _become(command: list[str], output: int | None = None) -> None:
    """Replace this process with `command`: a SIGTERM or Ctrl-C meant for the server reaches
    it, instead of stopping only a parent that would leave it running. With `output` (an open
    file), the command's stdout and stderr go there instead of this one's."""
    # MLflow's job execution serves its GenAI features (online scoring, trace archival), none
    # of which a grid uses: three more processes of ~250 MB each, and 5 s more to start.
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    sys.stdout.flush()
    sys.stderr.flush()
    if output is not None:
        os.dup2(output, 1)
        os.dup2(output, 2)
        os.close(output)
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
