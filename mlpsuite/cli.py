"""The `mlpsuite` command. Imports no deep-learning framework: Keras would load a backend.

Exit codes: 0 done, 1 a trial failed under --strict, 2 bad input (one line on stderr,
nothing written to MLflow), 130 interrupted (in-flight runs marked KILLED).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from mlpsuite import __version__
from mlpsuite.config import BACKENDS, expand, load_config
from mlpsuite.errors import ConfigError, UserError

EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlpsuite",
        description="Run grids of small Keras 3 MLPs on TensorFlow, PyTorch and JAX and record "
        "every trial in MLflow (default store: sqlite:///mlruns/mlflow.db).",
    )
    parser.add_argument("--version", action="version", version=f"mlpsuite {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = commands.add_parser("run", help="run a YAML grid (skips trials already FINISHED)",
                              description="Run every trial of a YAML grid on its backends and "
                              "record each as an MLflow child run of one parent run. Trials whose "
                              "key already has a FINISHED run in the experiment are reused.")
    run.add_argument("config", type=Path, help="the grid YAML, e.g. experiments/quickstart.yaml")
    run.add_argument("--backends", help=f"comma list overriding the config's ({','.join(BACKENDS)}; tf = tensorflow)")
    run.add_argument("--jobs", type=_positive_int, help="worker processes (default: one per core)")
    _add_tracking_uri(run)
    run.add_argument("--dry-run", action="store_true", help="print the trial table; write nothing")
    run.add_argument("--force", action="store_true", help="run trials again even if FINISHED before")
    run.add_argument("--strict", action="store_true", help="exit 1 if any trial failed")

    rerun = commands.add_parser("rerun", help="re-execute one trial from its run's trial.json",
                                description="Re-execute the trial logged in RUN_ID's trial.json "
                                "into a new run and print the largest relative difference in "
                                "final losses (0 expected on the same backend).")
    rerun.add_argument("run_id", help="the MLflow run id of a trial run")
    _add_tracking_uri(rerun)

    ui = commands.add_parser("ui", help="open the MLflow UI on this store (127.0.0.1)",
                             description="Start the MLflow UI on the tracking store, bound to 127.0.0.1.")
    ui.add_argument("--port", type=_positive_int, default=5000, help="port (default 5000)")
    _add_tracking_uri(ui)

    commands.add_parser("datasets", help="list the built-in datasets and their task")
    return parser


def _add_tracking_uri(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", help="MLflow store (default: $MLFLOW_TRACKING_URI, "
                        "else sqlite:///mlruns/mlflow.db); http:// servers work too")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _run(args: argparse.Namespace) -> int:
    spec = load_config(args.config, backends=args.backends)
    if args.dry_run:
        from rich.console import Console

        from mlpsuite.display import trial_table
        from mlpsuite.runner import unique_trials

        Console().print(trial_table(unique_trials(expand(spec, args.config))))
        return 0
    from mlpsuite.display import GridProgress, summary_table
    from mlpsuite.runner import run_grid
    from mlpsuite.tracking import Tracker, resolve_uri

    console = _console()
    tracker = Tracker(resolve_uri(args.tracking_uri))
    progress = GridProgress(console)

    def on_plan(to_run: int, reused: int) -> None:
        console.print(f"{spec.name}: {to_run} trials to run, {reused} reused from {tracker.uri}")
        progress.start(to_run, reused)

    try:
        outcome = run_grid(spec, args.config, tracker, jobs=args.jobs, force=args.force,
                           display=progress, on_plan=on_plan)
    finally:
        progress.stop()
    console.print(summary_table(outcome.results))
    if any(trial.model.dropout > 0 for trial, _ in outcome.results):
        console.print("note: dropout draws from each backend's own RNG, so backends are not "
                      "expected to agree on trials with dropout > 0")
    console.print(f"parent run {outcome.parent_run_id}: {len(outcome.results)} run, "
                  f"{outcome.failed} failed, {outcome.reused} reused. Browse: mlpsuite ui")
    if outcome.interrupted:
        console.print("interrupted: in-flight runs marked KILLED; run again to finish the grid")
        return EXIT_INTERRUPTED
    return EXIT_FAILED if args.strict and outcome.failed else 0


def _rerun(args: argparse.Namespace) -> int:
    from mlpsuite.runner import rerun
    from mlpsuite.tracking import Tracker, resolve_uri

    from mlflow.exceptions import MlflowException

    tracker = Tracker(resolve_uri(args.tracking_uri))
    try:
        trial, result, new_run_id, difference = rerun(tracker, args.run_id)
    except MlflowException as error:
        raise ConfigError(f"run {args.run_id!r} in {tracker.uri}: {error.message}") from None
    print(f"reran {trial.label()} (key {trial.key}) as run {new_run_id}: {result.status}"
          + (f" ({result.failure}: {result.message})" if result.failure else ""))
    print(f"largest relative difference in final losses: {difference:.3g}")
    return 0 if result.status == "FINISHED" else EXIT_FAILED


def _ui(args: argparse.Namespace) -> int:
    from mlpsuite.tracking import resolve_uri

    uri = resolve_uri(args.tracking_uri)
    print(f"MLflow UI for {uri} at http://127.0.0.1:{args.port} (Ctrl-C stops it)")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
               "--host", "127.0.0.1", "--port", str(args.port)]
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


def _list_datasets() -> int:
    from mlpsuite.data import BUNDLED, SYNTHETIC

    for name, (task, _) in {**BUNDLED, **SYNTHETIC}.items():
        origin = "bundled with scikit-learn" if name in BUNDLED else "synthetic"
        print(f"{name:<14} {task:<15} {origin}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handlers = {"run": _run, "rerun": _rerun, "ui": _ui, "datasets": lambda _: _list_datasets()}
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
