"""The `mlpsuite` command. Imports no deep-learning framework: Keras would load a backend.

Exit codes: 0 done, 1 a trial failed under --strict, 2 bad input or a store that cannot be
used (not an MLflow store, locked past MLPSUITE_STORE_LOCK_S, a full disk, a server away past
MLPSUITE_SERVER_OUTAGE_S; one line on stderr), 130 / 143 / 129 interrupted by Ctrl-C / SIGTERM
/ SIGHUP (in-flight runs marked KILLED).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from mlpsuite import __version__
from mlpsuite.cli_compare import add_compare_command, run_compare
from mlpsuite.errors import ConfigError, UserError
from mlpsuite.registry import (ALLOWED_BACKENDS, BACKEND_ALIASES, BACKENDS, EXPERIMENT_FIGURES, FIGURE_NAMES,
                               RUN_FIGURES)

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line on stderr (exit 2), like every other user error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlpsuite",
        description="Run grids of small Keras 3 MLPs on TensorFlow, PyTorch and JAX and record "
        "every trial in MLflow (default store: sqlite:///mlruns/mlflow.db).",
    )
    parser.add_argument("--version", action="version", version=f"mlpsuite {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser("run", help="run a YAML grid (skips trials already FINISHED)",
                              description="Run every trial of a YAML grid on its backends and "
                              "record each as an MLflow child run of one parent run. Trials whose "
                              "key already has a FINISHED run in the experiment are reused.")
    run.add_argument("config", type=Path, help="the grid YAML, e.g. experiments/quickstart.yaml")
    run.add_argument("--backends", type=_backends, help=f"comma list overriding the config's ({','.join(BACKENDS)}, sklearn; tf = tensorflow)")
    run.add_argument("--jobs", type=_positive_int, help="worker processes (default: one per core)")
    _add_tracking_uri(run)
    run.add_argument("--dry-run", action="store_true", help="print the trial table; write nothing")
    run.add_argument("--force", action="store_true", help="run trials again even if FINISHED before")
    run.add_argument("--no-reuse", action="store_true",
                     help="build and compile a fresh model for every trial (results are bit-identical)")
    run.add_argument("--strict", action="store_true", help="exit 1 if any trial failed")
    run.add_argument("--reuse", choices=("any", "same-versions"), default=None, dest="reuse_runs",
                     help="FINISHED trials to reuse: any (the config's default) or only those recorded with the "
                     "installed library versions")
    run.add_argument("--executor", choices=("local", "ray"), default="local",
                     help="local worker processes (default) or Ray actors (pip install -e '.[ray]')")
    run.add_argument("--address", metavar="ADDRESS",
                     help="with --executor ray: an existing cluster (auto, ray://HOST:10001); default: a local Ray")
    run.add_argument("--max-retries", type=_non_negative_int, default=1, metavar="N",
                     help="with --executor ray: runs of a trial whose actor died before it is FAILED (default 1)")

    add_compare_command(commands, _add_tracking_uri)

    rerun = commands.add_parser("rerun", help="re-execute one trial from its run's trial.json",
                                description="Re-execute the trial logged in RUN_ID's trial.json "
                                "into a new run and print the largest relative difference in "
                                "final losses (0 expected on the same backend).")
    rerun.add_argument("run_id", help="the MLflow run id of a trial run")
    rerun.add_argument("--allow-changed-data", action="store_true",
                       help="rerun even if the trial's data file changed since the run")
    rerun.add_argument("--tolerance", type=_non_negative_float, metavar="X",
                       help="exit 1 if the largest relative difference exceeds X")
    _add_tracking_uri(rerun)

    ui = commands.add_parser("ui", help="open the MLflow UI on this store (127.0.0.1)",
                             description="Start the MLflow UI on the tracking store, bound to 127.0.0.1, and "
                             "print the address of EXPERIMENT's runs in its Model training view.")
    ui.add_argument("experiment", nargs="?", default=None,
                    help="the experiment to open (default: the one whose grid ran last)")
    ui.add_argument("--port", type=_port, default=5000, help="port (default 5000)")
    ui.add_argument("--open", action="store_true", help="also open that address in a web browser")
    _add_tracking_uri(ui)

    server = commands.add_parser(
        "server", help="a shared MLflow tracking server for a team or a cluster",
        description="Start `mlflow server` with artifacts served through it (--serve-artifacts), so "
        "machines that run trials never need the store's disk. SQLite by default; a PostgreSQL URI "
        "(postgresql://user:password@host:5432/db) for many writers at once.")
    server.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it "
                        "unauthenticated to the network)")
    server.add_argument("--port", type=_port, default=5000, help="port (default 5000)")
    server.add_argument("--backend-store-uri", default=None, metavar="URI",
                        help="where runs are kept (default sqlite:///mlruns/mlflow.db)")
    server.add_argument("--artifacts-destination", type=Path, default=Path("mlruns/artifacts"), metavar="DIR",
                        help="where the server keeps artifacts (default mlruns/artifacts)")
    server.add_argument("--allowed-hosts", default=None, metavar="HOSTS",
                        help="Host headers the server accepts, comma-separated, * wildcards (MLflow's DNS-rebinding "
                        "protection); default: localhost and private IPs, and when --host exposes it also this "
                        "machine's hostname and addresses")
    server.add_argument("--workers", type=_positive_int, default=1,
                        help="server processes (default 1: with more, uvicorn leaves Nagle's algorithm on and "
                        "each request on a kept-alive connection waits ~44 ms on Linux; uvicorn issue 3149)")

    commands.add_parser("datasets", help="list the built-in datasets and their task")

    figures = commands.add_parser(
        "figures", help="draw the lecture's figures as PNG files (optionally logged to MLflow)",
        description="Draw the named figures from real computations (activation layers, scalers on "
        "wine, Keras optimizers on Rosenbrock and Beale, initial gradient norms on digits) or from "
        "the diagnostics of a grid in MLflow (--experiment: gradients, dead_units) and write each "
        "as NAME.png into --out.")
    figures.add_argument("names", nargs="+", metavar="NAME", choices=(*FIGURE_NAMES, "all"),
                         help=f"{', '.join(FIGURE_NAMES)}, or all ({', '.join(EXPERIMENT_FIGURES)} "
                         f"only with --experiment, {', '.join(RUN_FIGURES)} only with --run)")
    figures.add_argument("--out", type=Path, default=Path("figures"), metavar="DIR",
                         help="the folder for the PNG files (default: ./figures)")
    figures.add_argument("--experiment", metavar="NAME", type=_experiment_name,
                         help="draw gradients and dead_units from the newest grid of experiment NAME, "
                         "run with diagnostics: true")
    figures.add_argument("--run", metavar="RUN_ID",
                         help="draw landscape around this trial run's saved model (training.save_model: true)")
    figures.add_argument("--log", metavar="EXPERIMENT", type=_experiment_name,
                         help="also log the PNGs as a new run `figures` of EXPERIMENT (created if missing)")
    _add_tracking_uri(figures)
    return parser


def _add_tracking_uri(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, "
                        "else sqlite:///mlruns/mlflow.db); http:// servers work too")


def _experiment_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected an experiment name, got an empty one")
    return text


def _backends(text: str) -> str:
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name.lower() not in BACKEND_ALIASES]
    if unknown or not text.strip():
        raise argparse.ArgumentTypeError(f"unknown backend {(unknown or [text])[0]!r}; allowed: "
                                         f"{ALLOWED_BACKENDS}, comma-separated")
    return text


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return int(text)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 1 to 65535, got {text!r}")
    return value


def _run(args: argparse.Namespace) -> int:
    from mlpsuite import api

    if args.dry_run:
        from rich.console import Console

        from mlpsuite.display import trial_table

        Console().print(trial_table(api.plan(args.config, backends=args.backends)))
        return 0
    result = api.run(args.config, tracking_uri=args.tracking_uri, backends=args.backends, jobs=args.jobs,
                     force=args.force, executor=args.executor, reuse=not args.no_reuse, address=args.address,
                     max_retries=args.max_retries, reuse_runs=args.reuse_runs)
    from mlpsuite.display import make_console

    return _show_outcome(result, args, make_console(), make_console(stderr=False))


def _show_outcome(result, args: argparse.Namespace, console, results) -> int:
    """The comparison and the closing line on stdout, notes on stderr; returns the exit code."""
    from mlpsuite.display import comparison_view

    if result.orphans_killed:
        console.print(f"marked {result.orphans_killed} runs KILLED that an mlpsuite run which no longer "
                      "exists had left RUNNING (tag mlpsuite.failure = coordinator died)")
    if result.comparison is not None:
        for shown in comparison_view(result.comparison):
            results.print(shown)
    if result.kept_logs:
        console.print(f"a worker died: its log is kept in {result.kept_logs}")
    if result.interrupted:
        console.print(f"{result.counts()}. Interrupted: in-flight runs marked KILLED, no comparison written; "
                      "run the same command again to finish the grid")
        return 128 + (result.signal or 2)  # 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP
    store = f" --tracking-uri {shlex.quote(args.tracking_uri)}" if args.tracking_uri else ""
    again = f"mlpsuite compare {shlex.quote(result.experiment)}{store}"
    results.print(f"{result.counts()}; the comparison is on the parent run. {_browse_hint(result, args.tracking_uri)}"
                  f"; again: {again}", soft_wrap=True)
    if result.report_error:
        console.print(f"the comparison failed ({result.report_error}); every trial is recorded: "
                      f"{again} --log tries again")
        return EXIT_FAILED
    return EXIT_FAILED if args.strict and result.n_failed else 0


def _browse_hint(result, cli_uri: str | None) -> str:
    """Where to look, naming the store used: a server's own page, or `mlpsuite ui` on it."""
    if result.tracking_uri.startswith(("http://", "https://")):
        return f"Browse: {result.url}"
    return f"Browse: mlpsuite ui{f' --tracking-uri {shlex.quote(cli_uri)}' if cli_uri else ''}, then {result.url}"


def _rerun(args: argparse.Namespace) -> int:
    from mlpsuite.runner import rerun
    from mlpsuite.tracking import Tracker, resolve_uri

    from mlflow.exceptions import MlflowException

    tracker = Tracker(resolve_uri(args.tracking_uri, create=False))
    try:
        trial, result, new_run_id, difference = rerun(tracker, args.run_id,
                                                      allow_changed_data=args.allow_changed_data)
    except MlflowException as error:
        raise ConfigError(f"run {args.run_id!r} in {_shown_uri(tracker.uri)}: {error.message}") from None
    print(f"reran {trial.label()} (key {trial.key}) as run {new_run_id}: {result.status}"
          + (f" ({result.failure}: {result.message})" if result.failure else ""))
    print(f"largest relative difference in final losses: {difference:.3g}")
    if args.tolerance is not None and not difference <= args.tolerance:
        print(f"over --tolerance {args.tolerance:g}", file=sys.stderr)
        return EXIT_FAILED
    return 0 if result.status == "FINISHED" else EXIT_FAILED


def _ui(args: argparse.Namespace) -> int:
    from mlpsuite.tracking import Tracker, resolve_uri

    uri = resolve_uri(args.tracking_uri, create=False)
    tracker = Tracker(uri)  # an unreachable server or unusable store: one line here, not MLflow's traceback
    _check_port_free(args.port)
    address = f"http://127.0.0.1:{args.port}"
    link = f"{address}/{_experiment_page(tracker, args.experiment)}"
    print(f"MLflow UI for {_shown_uri(uri)} at {address} (Ctrl-C stops it). Open {link}")
    if args.open:
        _open_when_up(link, args.port)
    _become([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
             "--host", "127.0.0.1", "--port", str(args.port)])
    return 0


def _experiment_page(tracker, experiment: str | None) -> str:
    """`#/experiments/ID?workflowType=machine_learning` (MLflow 3 opens on its GenAI view
    otherwise): the experiment named, else the one whose grid ran last, else the list."""
    from mlpsuite.dashboard import VIEW

    if experiment is not None:
        return f"#/experiments/{_experiment_id(tracker, experiment, experiment)}?{VIEW}"
    newest = tracker.newest_grid_experiment()
    return f"#/experiments/{newest}?{VIEW}" if newest else f"#/experiments?{VIEW}"


def _experiment_id(tracker, name: str, said: str) -> str:
    """The id of experiment `name`; a ConfigError starting with `said` listing the store's own."""
    found = tracker.find_experiment(name)
    if found is None:
        known = ", ".join(tracker.experiment_names()) or "(none)"
        raise ConfigError(f"{said}: no such experiment in {_shown_uri(tracker.uri)}; experiments: {known}")
    return found


def _open_when_up(link: str, port: int) -> None:
    """A browser once the UI answers; a separate process, since this one becomes the UI."""
    import subprocess

    waiter = ("import socket, sys, time, webbrowser\n"
              "for _ in range(600):\n"
              "    try:\n"
              f"        socket.create_connection(('127.0.0.1', {port}), 0.5).close(); break\n"
              "    except OSError: time.sleep(0.1)\n"
              f"webbrowser.open({link!r})\n")
    subprocess.Popen([sys.executable, "-c", waiter], start_new_session=True)


def _server(args: argparse.Namespace) -> int:
    from mlpsuite.tracking import Tracker, resolve_uri

    uri = resolve_uri(args.backend_store_uri)
    if uri.startswith(("http://", "https://")):
        raise ConfigError(f"--backend-store-uri {uri}: a server cannot store into another server; "
                          "allowed: sqlite:///PATH, postgresql://...")
    Tracker(uri)  # creates or migrates the store once, here, not in each server worker at once
    _check_port_free(args.port, args.host)
    args.artifacts_destination.mkdir(parents=True, exist_ok=True)
    from mlpsuite.server_hosts import allowed_hosts, client_address

    address = f"http://{client_address(args.host)}:{args.port}"
    print(f"MLflow tracking server for {_shown_uri(uri)} at {address}; artifacts in "
          f"{args.artifacts_destination.resolve()} (Ctrl-C stops it). Point runs at it with --tracking-uri {address}.")
    hosts = allowed_hosts(args.host, args.allowed_hosts)
    if args.workers > 1:
        print(f"--workers {args.workers}: uvicorn's worker processes leave Nagle's algorithm on (uvicorn issue "
              "3149), so each request of a client that keeps its connection (MLflow's does) waits ~44 ms on "
              "Linux; one worker answers in about 1 ms (benchmarks/server_writes.py)", file=sys.stderr)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"Listening on {args.host}: anyone who reaches this port can read and write every run; "
              "MLflow's server has no authentication of its own. Keep it behind a firewall or VPN. Host "
              "headers accepted: localhost, private IPs and this machine's names (--allowed-hosts for others).",
              file=sys.stderr)
    _become([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", uri, "--serve-artifacts",
             "--artifacts-destination", str(args.artifacts_destination.resolve()),
             "--host", args.host, "--port", str(args.port), "--workers", str(args.workers)]
            + (["--allowed-hosts", hosts] if hosts is not None else []))
    return 0


def _shown_uri(uri: str) -> str:
    from mlpsuite.tracking import shown_uri

    return shown_uri(uri)


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
            raise ConfigError(f"--port {port}: {host}:{port} is in use; pick a free port with --port") from None


def _figures(args: argparse.Namespace) -> int:
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out}: exists and is not a folder")
    if args.tracking_uri is not None and not (args.log or args.experiment or args.run):
        raise ConfigError("--tracking-uri: applies only with --experiment NAME, --run RUN_ID or --log EXPERIMENT")
    names = _figure_names(args)
    options = _figure_options(args)
    tracker = None
    if args.log is not None:
        from mlpsuite.tracking import Tracker, resolve_uri

        tracker = Tracker(resolve_uri(args.tracking_uri))  # a bad store fails before the drawing
    os.environ.setdefault("KERAS_BACKEND", "jax")
    from mlpsuite.figures import write_figures

    paths = write_figures(names, args.out, **options)
    for path in paths:
        print(path)
    if tracker is not None:
        run_id = tracker.log_figures(args.log, paths)
        print(f"logged {len(paths)} figures as run {run_id} of experiment {args.log} in {_shown_uri(tracker.uri)}",
              file=sys.stderr)
    return 0


def _figure_names(args: argparse.Namespace) -> tuple[str, ...]:
    """The figures asked for; `all` leaves out those whose source (--experiment, --run) is missing."""
    needs = {**{name: ("--experiment NAME", args.experiment, "a grid's diagnostics in MLflow; its config "
                       "needs diagnostics: true") for name in EXPERIMENT_FIGURES},
             **{name: ("--run RUN_ID", args.run, "a run's saved model; its grid needs training.save_model: "
                       "true") for name in RUN_FIGURES}}
    names = tuple(dict.fromkeys(args.names))
    if "all" in names:
        skipped = [name for name in FIGURE_NAMES if name in needs and needs[name][1] is None]
        if skipped:
            print(f"skipping {', '.join(skipped)}: drawn from a grid or run you did not name "
                  "(--experiment NAME, --run RUN_ID)", file=sys.stderr)
        return tuple(name for name in FIGURE_NAMES if name not in skipped)
    for name in names:
        if name in needs and needs[name][1] is None:
            flag, _, source = needs[name]
            raise ConfigError(f"{name}: drawn from {source}; name it with {flag}")
    return names


def _figure_options(args: argparse.Namespace) -> dict[str, str]:
    """The figures' sources, checked before any drawing: a missing experiment is one line."""
    if args.experiment is None and args.run is None:
        return {}
    from mlpsuite.tracking import Tracker, resolve_uri

    uri = resolve_uri(args.tracking_uri, create=False)
    reader = Tracker(uri)
    options = {"tracking_uri": uri}
    if args.experiment is not None:
        _experiment_id(reader, args.experiment, f"--experiment {args.experiment}")
        options["experiment"] = args.experiment
    if args.run is not None:
        reader.trial_of_run(args.run)  # one line, before any drawing, for a wrong id
        options["run"] = args.run
    return options


def _list_datasets() -> int:
    from mlpsuite.data import BUNDLED, SYNTHETIC

    for name, (task, _) in {**BUNDLED, **SYNTHETIC}.items():
        origin = "bundled with scikit-learn" if name in BUNDLED else "synthetic"
        print(f"{name:<14} {task:<15} {origin}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handlers = {"run": _run, "compare": run_compare, "rerun": _rerun, "ui": _ui, "server": _server,
                "datasets": lambda _: _list_datasets(),
                "figures": _figures}
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return handlers[args.command](args)
    except UserError as error:
        print(f"mlpsuite: error: {error}".splitlines()[0], file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
