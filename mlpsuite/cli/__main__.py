"""`python -m mlpsuite.cli`: the `mlpsuite` command."""

import sys

from mlpsuite.cli import main

sys.exit(main())
