"""Every MLflow read and write: the only package that talks to MLflow.

`store` (URIs, checks that fail in one line, waiting on locks and outages), `reader` (resume,
the comparison's reads), `writer` (`Tracker`: parent and child runs, batched metrics,
artifacts, status), `claims` (which coordinator owns a trial), `tags` (the names runs are
found by).
"""

from typing import TYPE_CHECKING, Any

from mlpsuite.tracking.calls import server_outage_s, store_lock_s
from mlpsuite.tracking.store import DEFAULT_URI, resolve_uri, run_url, shown_uri
from mlpsuite.tracking.tags import (
    GRID_MANIFEST,
    TAG_BACKEND,
    TAG_CELL,
    TAG_FAILURE,
    TAG_GRID_KEY,
    TAG_HOST,
    TAG_INVOCATIONS,
    TAG_KEY,
    TAG_KIND,
    TAG_MISSING,
    TAG_NOTE,
    TAG_PARENT,
    TAG_PID,
    TAG_SEED,
    TAG_SUPERSEDED,
    TAG_VERSION,
    TAG_WEIGHTS,
)

if TYPE_CHECKING:
    from mlpsuite.tracking.reader import MissingRecordError, StoreReader
    from mlpsuite.tracking.writer import Tracker

# MLflow loads with the reader and the writer, when first asked for: what only needs a URI
# (`mlpsuite run --dry-run` with no store yet) does not pay ~1.5 s for it.
_LAZY = {
    "MissingRecordError": "mlpsuite.tracking.reader",
    "StoreReader": "mlpsuite.tracking.reader",
    "Tracker": "mlpsuite.tracking.writer",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "MissingRecordError",
    "DEFAULT_URI",
    "GRID_MANIFEST",
    "StoreReader",
    "TAG_BACKEND",
    "TAG_CELL",
    "TAG_FAILURE",
    "TAG_GRID_KEY",
    "TAG_HOST",
    "TAG_INVOCATIONS",
    "TAG_KEY",
    "TAG_KIND",
    "TAG_MISSING",
    "TAG_NOTE",
    "TAG_PARENT",
    "TAG_PID",
    "TAG_SEED",
    "TAG_SUPERSEDED",
    "TAG_VERSION",
    "TAG_WEIGHTS",
    "Tracker",
    "resolve_uri",
    "run_url",
    "server_outage_s",
    "shown_uri",
    "store_lock_s",
]
