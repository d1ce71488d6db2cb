"""The `mlpsuite` command. Imports no deep-learning framework: Keras would load a backend."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mlpsuite import __version__


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mlpsuite",
        description="Small feed-forward networks in Keras 3 on TensorFlow, PyTorch and JAX. "
        "The experiment engine (mlpsuite run/compare/rerun/ui) is not built yet; "
        "`mlpsuite datasets` lists the built-in datasets.",
    )
    parser.add_argument("--version", action="version", version=f"mlpsuite {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("datasets", help="list the built-in datasets and their task")
    return parser


def _list_datasets() -> int:
    from mlpsuite.data import BUNDLED, SYNTHETIC

    for name, (task, _) in {**BUNDLED, **SYNTHETIC}.items():
        origin = "bundled with scikit-learn" if name in BUNDLED else "synthetic"
        print(f"{name:<14} {task:<15} {origin}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "datasets":
        return _list_datasets()
    _parser().print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
