"""The `mlpsuite` command: argument parsing and printing over `mlpsuite.api`, one module per group
of commands (`run`, `compare`, `serve`, `figures`). Imports no deep-learning framework: Keras
would load a backend.

Exit codes: 0 done, 1 a trial failed under --strict, 2 bad input or a store that cannot be
used (not an MLflow store, locked past MLPSUITE_STORE_LOCK_S, a full disk, a server away past
MLPSUITE_SERVER_OUTAGE_S; one line on stderr, a config file's problems one line each), 130 / 143
/ 129 interrupted by Ctrl-C / SIGTERM / SIGHUP (in-flight runs marked KILLED).
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import threading
from collections.abc import Sequence

from mlpsuite import __version__
from mlpsuite.cli.arguments import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    Parser,
    add_tracking_uri,
    in_flag_words,
)
from mlpsuite.cli.compare import add_compare_command
from mlpsuite.cli.figures import add_figure_commands
from mlpsuite.cli.run import add_rerun_command, add_run_command
from mlpsuite.cli.serve import add_serve_commands
from mlpsuite.errors import ConfigError, UserError


def parser() -> argparse.ArgumentParser:
    """`mlpsuite`'s parser; each subcommand's parsed arguments carry its `handler`."""
    top = Parser(
        prog="mlpsuite",
        description="Run grids of small Keras 3 MLPs on TensorFlow, PyTorch and JAX and record "
        "every trial in MLflow (default store: sqlite:///mlruns/mlflow.db).",
    )
    top.add_argument("--version", action="version", version=f"mlpsuite {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    add_run_command(commands)
    add_compare_command(commands, add_tracking_uri)
    add_rerun_command(commands)
    add_serve_commands(commands)
    add_figure_commands(commands)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """`mlpsuite ARGV` without exiting: the exit code. A user mistake (`UserError`) is one line
    on stderr (a config's several problems one line each) and exit 2; Ctrl-C is 130."""
    top = parser()
    args = top.parse_args(argv)
    if args.command is None:
        top.print_help()
        return 0
    try:
        return args.handler(args)
    except UserError as error:
        # One line; a config's several problems one line each (at most ConfigError's own).
        lines = in_flag_words(error).splitlines() or [""]
        several = isinstance(error, ConfigError) and len(error.problems) > 1
        for line in lines if several else lines[:1]:
            print(f"mlpsuite: error: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def entry() -> None:
    """The console script (and `python -m mlpsuite.cli`): `main`, then `exit_now`."""
    exit_now(main())


def exit_now(code: int) -> None:
    """Exit with `code` without the interpreter's teardown: unloading MLflow, SQLAlchemy,
    pandas, scipy and matplotlib takes 0.7 s of CPU after the command's work is done, on every
    `mlpsuite` call. What a normal exit does that matters runs first: the `atexit` functions
    (coverage's save, Ray's shutdown of a cluster it started, logging's flush) and the flush of
    stdout and stderr. A non-daemon thread still running gets the normal exit, which waits for
    it, and so does a process under a profiler or a tracer (they write their results last)."""
    others = [t for t in threading.enumerate() if t is not threading.main_thread()]
    run_exit_functions = getattr(atexit, "_run_exitfuncs", None)  # CPython's, since 2.x
    watched = sys.getprofile() is not None or sys.gettrace() is not None
    if run_exit_functions is None or watched or any(not t.daemon for t in others):
        sys.exit(code)
    run_exit_functions()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
