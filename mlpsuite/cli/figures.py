"""`mlpsuite figures` and `mlpsuite datasets`: the lecture's figures as PNG files (optionally
logged to MLflow), and the built-in datasets."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import cast

from mlpsuite.cli.arguments import add_tracking_uri, experiment_id, experiment_name, shown_uri
from mlpsuite.errors import ConfigError
from mlpsuite.registry import EXPERIMENT_FIGURES, FIGURE_NAMES, RUN_FIGURES


def add_figure_commands(commands) -> None:
    """The `datasets` and `figures` subparsers on `commands`."""
    commands.add_parser(
        "datasets",
        help="list the built-in datasets and their task",
        description="The built-in datasets (scikit-learn's bundled sets and the synthetic "
        "problems), each with its task and options.",
    ).set_defaults(handler=lambda _: list_datasets())

    figures = commands.add_parser(
        "figures",
        help="draw the lecture's figures as PNG files (optionally logged to MLflow)",
        description="Draw the named figures from real computations (activation layers, scalers on "
        "wine, Keras optimizers on Rosenbrock and Beale, initial gradient norms on digits) or from "
        "the diagnostics of a grid in MLflow (--experiment: gradients, dead_units) and write each "
        "as NAME.png into --out.",
    )
    figures.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        choices=(*FIGURE_NAMES, "all"),
        help=f"{', '.join(FIGURE_NAMES)}, or all ({', '.join(EXPERIMENT_FIGURES)} "
        f"only with --experiment, {', '.join(RUN_FIGURES)} only with --run)",
    )
    figures.add_argument(
        "--out",
        type=Path,
        default=Path("figures"),
        metavar="DIR",
        help="the folder for the PNG files (default: ./figures)",
    )
    figures.add_argument(
        "--experiment",
        metavar="NAME",
        type=experiment_name,
        help="draw gradients and dead_units from the newest grid of experiment NAME, "
        "run with diagnostics: true",
    )
    figures.add_argument(
        "--run",
        metavar="RUN_ID",
        help="draw landscape around this trial run's saved model (training.save_model: true)",
    )
    figures.add_argument(
        "--log",
        metavar="EXPERIMENT",
        type=experiment_name,
        help="also log the PNGs as a new run `figures` of EXPERIMENT (created if missing)",
    )
    add_tracking_uri(figures)
    figures.set_defaults(handler=run_figures)


def run_figures(args: argparse.Namespace) -> int:
    """`mlpsuite figures`: draw the named figures into `--out` (printing each path) and, with
    `--log EXPERIMENT`, log them as a run of it; the exit code (0)."""
    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out}: exists and is not a folder")
    if args.tracking_uri is not None and not (args.log or args.experiment or args.run):
        raise ConfigError(
            "--tracking-uri: applies only with --experiment NAME, --run RUN_ID or --log EXPERIMENT"
        )
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
        run_id = tracker.log_figures(cast(str, args.log), paths)  # tracker: made for --log
        print(
            f"logged {len(paths)} figures as run {run_id} of experiment {args.log} in "
            f"{shown_uri(tracker.uri)}",
            file=sys.stderr,
        )
    return 0


def _figure_names(args: argparse.Namespace) -> tuple[str, ...]:
    """The figures asked for; `all` leaves out those whose source (--experiment, --run) is
    missing."""
    needs = {
        **{
            name: (
                "--experiment NAME",
                args.experiment,
                "a grid's diagnostics in MLflow; its config needs diagnostics: true",
            )
            for name in EXPERIMENT_FIGURES
        },
        **{
            name: (
                "--run RUN_ID",
                args.run,
                "a run's saved model; its grid needs training.save_model: true",
            )
            for name in RUN_FIGURES
        },
    }
    names = tuple(dict.fromkeys(args.names))
    if "all" in names:
        skipped = [name for name in FIGURE_NAMES if name in needs and needs[name][1] is None]
        if skipped:
            print(
                f"skipping {', '.join(skipped)}: drawn from a grid or run you did not name "
                "(--experiment NAME, --run RUN_ID)",
                file=sys.stderr,
            )
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
        experiment_id(reader, args.experiment, f"--experiment {args.experiment}")
        options["experiment"] = args.experiment
    if args.run is not None:
        reader.trial_of_run(args.run)  # one line, before any drawing, for a wrong id
        options["run"] = args.run
    return options


def list_datasets() -> int:
    """`mlpsuite datasets`: print each built-in dataset's name, task and origin; the exit
    code (0)."""
    from mlpsuite.data import BUNDLED, SYNTHETIC

    for name, (task, _) in {**BUNDLED, **SYNTHETIC}.items():
        origin = "bundled with scikit-learn" if name in BUNDLED else "synthetic"
        print(f"{name:<14} {task:<15} {origin}")
    return 0
