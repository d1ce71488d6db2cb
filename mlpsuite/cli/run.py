"""`mlpsuite run` and `mlpsuite rerun`: their flags, one call into `mlpsuite.api` or the runner,
and what they print (the comparison and the closing line on stdout, notes on stderr)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from mlpsuite.cli.arguments import (
    EXIT_FAILED,
    add_tracking_uri,
    backends_list,
    command_name,
    non_negative_float,
    non_negative_int,
    positive_int,
    shown_uri,
)
from mlpsuite.errors import ConfigError
from mlpsuite.registry import ALLOWED_BACKENDS


def add_run_command(commands) -> None:
    """The `run` subparser on `commands` (argparse's subparsers action)."""
    run = commands.add_parser(
        "run",
        help="run a YAML grid (skips trials already FINISHED)",
        description="Run every trial of a YAML grid on its backends and "
        "record each as an MLflow child run of one parent run. Trials whose "
        "key already has a FINISHED run in the experiment are reused.",
    )
    run.add_argument("config", type=Path, help="the grid YAML, e.g. experiments/quickstart.yaml")
    run.add_argument(
        "--backends",
        type=backends_list,
        help=f"comma list overriding the config's; allowed: {ALLOWED_BACKENDS}",
    )
    run.add_argument("--jobs", type=positive_int, help="worker processes (default: one per core)")
    add_tracking_uri(run)
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the plan and write nothing: every trial of a small grid, a summary of a "
        "large one; with a store, what it would reuse",
    )
    run.add_argument(
        "--format",
        choices=("table", "csv"),
        default="table",
        help="with --dry-run: csv lists every trial (backend, seed, grid values, program, key)",
    )
    run.add_argument(
        "--force", action="store_true", help="run trials again even if FINISHED before"
    )
    run.add_argument(
        "--no-reuse",
        action="store_true",
        help="build and compile a fresh model for every trial (results are bit-identical)",
    )
    run.add_argument("--strict", action="store_true", help="exit 1 if any trial failed")
    run.add_argument(
        "--reuse",
        choices=("any", "same-versions"),
        default=None,
        dest="reuse_runs",
        help="FINISHED trials to reuse: any (the config's default) or only those recorded with the "
        "installed library versions",
    )
    run.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="local worker processes (default) or Ray actors (pip install -e '.[ray]')",
    )
    run.add_argument(
        "--address",
        metavar="ADDRESS",
        help="with --executor ray: an existing cluster (auto, ray://HOST:10001); "
        "default: a local Ray",
    )
    run.add_argument(
        "--max-retries",
        type=non_negative_int,
        default=1,
        metavar="N",
        help="with --executor ray: runs of a trial whose actor died before it is FAILED "
        "(default 1)",
    )
    run.set_defaults(handler=run_grid)


def add_rerun_command(commands) -> None:
    """The `rerun` subparser on `commands`."""
    rerun = commands.add_parser(
        "rerun",
        help="re-execute one trial from its run's trial.json",
        description="Re-execute the trial logged in RUN_ID's trial.json "
        "into a new run and print the largest relative difference in "
        "final losses (0 expected on the same backend).",
    )
    rerun.add_argument("run_id", help="the MLflow run id of a trial run")
    rerun.add_argument(
        "--allow-changed-data",
        action="store_true",
        help="rerun even if the trial's data file changed since the run",
    )
    rerun.add_argument(
        "--tolerance",
        type=non_negative_float,
        metavar="X",
        help="exit 1 if the largest relative difference exceeds X",
    )
    add_tracking_uri(rerun)
    rerun.set_defaults(handler=rerun_trial)


def run_grid(args: argparse.Namespace) -> int:
    """`mlpsuite run`: the grid (or with `--dry-run` its plan), its comparison and closing line;
    the exit code (1 when the report failed, or a trial under `--strict`; 128 + the signal when
    interrupted)."""
    from mlpsuite import api

    if args.dry_run:
        return _dry_run(args)
    result = api.run(
        args.config,
        tracking_uri=args.tracking_uri,
        backends=args.backends,
        jobs=args.jobs,
        force=args.force,
        executor=args.executor,
        reuse_models=not args.no_reuse,
        address=args.address,
        max_retries=args.max_retries,
        reuse_runs=args.reuse_runs,
        # One process, one grid: its workers end with it, unless the environment asks for them
        # to be kept (a test session running the CLI's code in its own process).
        keep_workers=None if os.environ.get("MLPSUITE_KEEP_WORKERS") else 0,
    )
    from mlpsuite.present.terminal import make_console

    return _show_outcome(result, args, make_console(), make_console(stderr=False))


def _dry_run(args: argparse.Namespace) -> int:
    """The plan: every trial of a small grid (or `--format csv`: of any grid), else a summary;
    with a store that exists, what it would reuse. Nothing is written."""
    from mlpsuite import api

    planned = api.plan(args.config, backends=args.backends, tracking_uri=args.tracking_uri)
    from mlpsuite.present import plan

    if args.format == "csv":
        print(plan.trials_csv(planned, planned.reused), end="")
        return 0
    from rich.console import Console

    console = Console()
    if planned.search is not None:
        for shown in plan.search_summary(planned.search, planned):
            console.print(shown, soft_wrap=isinstance(shown, str))
    reuse = plan.reuse_line(planned, planned.reused, planned.store)
    if len(planned) <= plan.LISTED_TRIALS:
        console.print(plan.trial_table(planned))
        console.print(reuse, soft_wrap=True)
    else:
        for shown in plan.plan_summary(planned, reuse):
            console.print(shown, soft_wrap=isinstance(shown, str))
    console.print(plan.splits_line(planned.splits), soft_wrap=True)
    from mlpsuite.executors.units import populations_note

    populations = populations_note(planned)
    if populations:
        console.print(populations, soft_wrap=True)
    return 0


def _show_outcome(result, args: argparse.Namespace, console, results) -> int:
    """The comparison and the closing line on stdout, notes on stderr; returns the exit code."""
    from mlpsuite.present.terminal import comparison_view

    if result.orphans_killed:
        console.print(
            f"marked {result.orphans_killed} runs KILLED that an mlpsuite run which no longer "
            "exists had left RUNNING (tag mlpsuite.failure = coordinator died)"
        )
    if result.comparison is not None:
        for shown in comparison_view(result.comparison):
            results.print(shown)
    if result.kept_logs and not result.none_finished:
        console.print(f"a worker died: its log is kept in {result.kept_logs}")
    if result.interrupted:
        console.print(
            f"{result.counts()}. Interrupted: in-flight runs marked KILLED, no comparison written; "
            "run the same command again to finish the grid"
        )
        return 128 + (result.signal or 2)  # 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP
    if result.none_finished:  # nothing to compare: why, and not a word about a metric
        console.print(
            f"{result.counts()}: no trial finished, so there is no comparison.", soft_wrap=True
        )
        for line in result.failures:
            console.print(f"  {line}", soft_wrap=True, markup=False)
        if result.kept_logs:
            console.print(f"the workers' logs: {result.kept_logs}", soft_wrap=True)
        return EXIT_FAILED
    store = f" --tracking-uri {shlex.quote(args.tracking_uri)}" if args.tracking_uri else ""
    again = f"{command_name()} compare {shlex.quote(result.experiment)}{store}"
    results.print(
        f"{result.counts()}; the comparison is on the parent run. "
        f"{_browse_hint(result, args.tracking_uri)}; again: {again}",
        soft_wrap=True,
    )
    if result.report_error:
        console.print(
            f"the comparison failed ({result.report_error}); every trial is recorded: "
            f"{again} --log tries again"
        )
        return EXIT_FAILED
    return EXIT_FAILED if args.strict and result.n_failed else 0


def _browse_hint(result, cli_uri: str | None) -> str:
    """Where to look, naming the store used: a server's own page, or `mlpsuite ui` on it (as the
    command that runs from here: `command_name`)."""
    if result.tracking_uri.startswith(("http://", "https://")):
        return f"Browse: {result.url}"
    return (
        f"Browse: {command_name()} ui"
        f"{f' --tracking-uri {shlex.quote(cli_uri)}' if cli_uri else ''}, "
        f"then {result.url}"
    )


def rerun_trial(args: argparse.Namespace) -> int:
    """`mlpsuite rerun RUN_ID`: run one recorded trial again as a new run and print how far its
    final losses moved; the exit code (1 when it failed or moved more than `--tolerance`)."""
    from mlpsuite.runner import rerun
    from mlpsuite.tracking import MissingRecordError, Tracker, resolve_uri

    tracker = Tracker(resolve_uri(args.tracking_uri, create=False))
    try:
        trial, result, new_run_id, difference = rerun(
            tracker, args.run_id, allow_changed_data=args.allow_changed_data
        )
    except MissingRecordError as error:
        raise ConfigError(
            f"run {args.run_id!r} in {shown_uri(tracker.uri)}: {error.message}"
        ) from None
    print(
        f"reran {trial.label()} (key {trial.key}) as run {new_run_id}: {result.status}"
        + (f" ({result.failure}: {result.message})" if result.failure else "")
    )
    print(f"largest relative difference in final losses: {difference:.3g}")
    if args.tolerance is not None and not difference <= args.tolerance:
        print(f"over --tolerance {args.tolerance:g}", file=sys.stderr)
        return EXIT_FAILED
    return 0 if result.status == "FINISHED" else EXIT_FAILED
