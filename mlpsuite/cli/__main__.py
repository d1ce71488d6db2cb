"""`python -m mlpsuite.cli`: the `mlpsuite` command."""

from mlpsuite.cli import entry

entry()
