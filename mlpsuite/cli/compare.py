"""`mlpsuite compare`: its flags and what it prints. Imports pandas, scipy and MLflow only
when it runs, so `mlpsuite --help` stays instant."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from mlpsuite.api import NO_NUISANCE
from mlpsuite.errors import ConfigError


def add_compare_command(commands, add_tracking_uri) -> None:
    """The `compare` subparser on `commands` (argparse's subparsers action)."""
    compare = commands.add_parser(
        "compare",
        help="the comparison of a grid: ranking, paired effects, backend parity and speed",
        description="Compute the comparison of one grid of EXPERIMENT (default: its most recently "
        "run grid) from the runs in the store: cells ranked by a metric with 95% intervals over "
        "seeds (t and BCa bootstrap, interquartile mean), paired effects of each grid key (t-test, "
        "Wilcoxon, Holm, probability of improvement), backend parity and speed. With nuisance "
        "keys, each cell is taken at its best nuisance setting, selected on validation and "
        "reported on test. The grid's own compare: section is the default; the flags override it.",
    )
    compare.add_argument("experiment", help="the MLflow experiment (the config's `name`)")
    compare.add_argument(
        "--parent", metavar="RUN_ID", help="the grid's parent run (default: the newest)"
    )
    compare.add_argument(
        "--by", metavar="KEY", help="one grid key for the paired effects (default: each)"
    )
    compare.add_argument(
        "--metric",
        help="the reported and ranking metric (default: val_loss, else loss; with "
        "nuisance keys the test counterpart of --select-on)",
    )
    compare.add_argument(
        "--nuisance",
        action="append",
        metavar="KEY",
        default=None,
        help="a grid key tuned per cell rather than compared, e.g. optimizer.learning_rate "
        f"(repeatable; '{NO_NUISANCE}': every key scientific, whatever the config declares)",
    )
    compare.add_argument(
        "--select-on",
        metavar="METRIC",
        default=None,
        help="what the nuisance setting is selected on, lowest or highest mean over seeds "
        "(default: val_loss)",
    )
    compare.add_argument(
        "--interval",
        choices=("t", "bootstrap"),
        default=None,
        help="the interval the ranking's overlap marks use (default t; both are in CSV and JSON)",
    )
    compare.add_argument(
        "--target",
        type=_target,
        metavar="METRIC=VALUE",
        default=None,
        help="epochs and training time to the first epoch at this value, e.g. val_loss=0.3",
    )
    compare.add_argument(
        "--format",
        choices=("table", "markdown", "csv", "json"),
        default="table",
        help="table (default), markdown, csv (the ranking) or json (everything)",
    )
    compare.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="also write the CSVs, report.md and the figures into DIR",
    )
    compare.add_argument(
        "--log", action="store_true", help="(re)write the comparison onto the parent run"
    )
    compare.add_argument(
        "--where",
        action="append",
        type=key_value,
        metavar="KEY=VALUE",
        default=[],
        help="only the trials with this grid value, e.g. dataset.name=wine (repeatable)",
    )
    add_tracking_uri(compare)
    compare.set_defaults(handler=run_compare)


def key_value(text: str) -> tuple[str, str]:
    """An argparse type for `--where`: `KEY=VALUE` as `(key, value)`, both stripped and
    non-empty."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE such as dataset.name=wine, got {text!r}"
        )
    return key.strip(), value.strip()


def _target(text: str) -> dict[str, float]:
    metric, _, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not metric.strip() or not math.isfinite(number):
        raise argparse.ArgumentTypeError(
            f"expected METRIC=NUMBER such as val_loss=0.3, got {text!r}"
        )
    return {metric.strip(): number}


def run_compare(args: argparse.Namespace) -> int:
    """`mlpsuite compare`: print a grid's comparison in `--format`, write its report to `--out`
    and, with `--log`, onto its parent run; the exit code (0)."""
    from mlpsuite.api import compare

    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"--out {args.out}: exists and is not a folder")
    comparison = compare(
        args.experiment,
        tracking_uri=args.tracking_uri,
        parent=args.parent,
        by=args.by,
        metric=args.metric,
        where=dict(args.where),
        nuisance=args.nuisance,
        select_on=args.select_on,
        interval=args.interval,
        target=args.target,
        log=args.log,
    )
    print_comparison(comparison, args.format)
    if args.out is not None:
        from mlpsuite.present.report import write_report

        written = write_report(comparison, args.out)
        print(f"wrote {len(written)} files to {args.out}", file=sys.stderr)
    if args.log:
        print(f"logged the comparison on parent run {comparison.parent_run_id}", file=sys.stderr)
    return 0


def print_comparison(comparison, output_format: str) -> None:
    """Print a comparison to stdout as `output_format`: "json", "csv" (the cells),
    "markdown", or else the terminal's tables."""
    from mlpsuite.present import report

    if output_format == "json":
        print(report.as_json(comparison))
    elif output_format == "csv":
        print(comparison.cells.to_csv(index=False), end="")
    elif output_format == "markdown":
        print(report.markdown(comparison), end="")
    else:
        from rich.console import Console

        from mlpsuite.present.terminal import COMPARE_ROWS, comparison_view

        console = Console() if Console().is_terminal else Console(width=100)
        for shown in comparison_view(comparison, max_rows=COMPARE_ROWS, effects=True):
            console.print(shown)
