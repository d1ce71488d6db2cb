"""Is this database an MLflow store this MLflow can use? Asked read-only, before MLflow opens it.

MLflow itself would create its tables inside any SQLite file it is pointed at (a database of
another program included), print a page of traceback for a file that is not a database, and
call a schema newer than its own "out-of-date". Each is one line here, and nothing is written.
"""

from __future__ import annotations

import logging
import os
import shlex
import sqlite3
import time
from pathlib import Path

from mlpsuite.errors import StoreError
from mlpsuite.tracking.calls import LOCKED_SIGNS, StoreCalls

MLFLOW_TABLES = {"alembic_version", "experiments", "runs"}
# A store written this recently may be half made: another MLflow client (`mlflow ui`, a
# notebook, a script polling it) creating its tables or running its migrations, which takes
# seconds and holds no lock mlpsuite can see. Its schema is judged once it has been still this
# long, or once it is this MLflow's; the wait is bounded (`MLPSUITE_STORE_SETTLE_S`).
SETTLED_S = 3.0
SETTLE_WAIT_S = 120.0
logger = logging.getLogger("mlpsuite")


def check_sqlite_store(uri: str, path: Path) -> None:
    """A StoreError naming `path` unless it is missing, empty, or an MLflow store of this
    MLflow's schema; waits (said on stderr) while another process holds it locked, and while
    another client is still creating or upgrading it (`settling`)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    calls, locked_since = StoreCalls(uri), None
    settle = Settling(uri, path)
    while True:
        try:
            tables, revision = _sqlite_contents(path)
        except sqlite3.DatabaseError as error:
            if not any(sign in str(error).lower() for sign in LOCKED_SIGNS):
                raise StoreError(
                    f"tracking URI {uri}: {path} is not a SQLite database ({error}); point "
                    "--tracking-uri at an MLflow store, or move the file away"
                ) from None
            locked_since = calls.wait_for_lock(locked_since)
            continue
        problem = schema_problem(tables, revision, uri)
        if problem is None:
            return
        if not settle.wait():
            raise StoreError(f"tracking URI {uri}: {path} {problem}")


class Settling:
    """Waits, bounded and said once on stderr, while a SQLite store is being written by another
    client as it is created or upgraded; `wait()` is False once it has been still for
    `SETTLED_S` (what is there then is what the store is)."""

    def __init__(self, uri: str, path: Path):
        self.uri, self.path = uri, path
        self.began: float | None = None

    def written_since(self) -> float:
        """Seconds since the database (or its journal) was last written."""
        stamps = [
            file.stat().st_mtime
            for file in (self.path, *(self.path.with_name(self.path.name + s) for s in _SIDE))
            if file.exists()
        ]
        return time.time() - max(stamps, default=0.0)

    def wait(self) -> bool:
        """Sleep a little and return True while the store is still being written (within the
        bound); False once it is still."""
        if self.written_since() >= SETTLED_S:
            return False
        now = time.monotonic()
        if self.began is None:
            self.began = now
            logger.warning(
                "store %s is being created or upgraded by another MLflow client; waiting for it "
                "(up to %g s, MLPSUITE_STORE_SETTLE_S)",
                self.uri,
                settle_wait_s(),
            )
        if now - self.began > settle_wait_s():
            raise StoreError(
                f"tracking URI {self.uri}: another program has been writing {self.path} for "
                f"{settle_wait_s():g} s (MLPSUITE_STORE_SETTLE_S) without leaving an MLflow store "
                "mlpsuite can use; stop it or pass --tracking-uri with a store of its own"
            )
        time.sleep(0.2)
        return True


_SIDE = ("-journal", "-wal")


def settle_wait_s() -> float:
    """The bound on waiting for another client's store creation: `$MLPSUITE_STORE_SETTLE_S`."""
    try:
        return float(os.environ.get("MLPSUITE_STORE_SETTLE_S", SETTLE_WAIT_S))
    except ValueError:
        return SETTLE_WAIT_S


def _sqlite_contents(path: Path) -> tuple[set[str], str | None]:
    """The tables of the database and its Alembic revision, read-only (a 1 s busy wait per try)."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=1.0)
    try:
        tables = {
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        revision = None
        if "alembic_version" in tables:
            row = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            revision = row[0] if row else None
        return tables, revision
    finally:
        connection.close()


def schema_problem(tables: set[str], revision: str | None, uri: str) -> str | None:
    """What is wrong with a database holding `tables` at Alembic `revision`, or None."""
    if not tables:
        return None  # a new, empty database: MLflow creates its tables
    if not tables >= MLFLOW_TABLES:
        shown = ", ".join(sorted(tables)[:6]) + (", ..." if len(tables) > 6 else "")
        return (
            f"is a database of another program (tables: {shown}), not an MLflow store; nothing was "
            "written to it; pass --tracking-uri with a store of its own"
        )
    from mlflow.store.db.utils import _get_latest_schema_revision

    head = _get_latest_schema_revision()
    if revision == head:
        return None
    import mlflow

    if revision not in _known_revisions():
        return (
            f"holds an MLflow schema ({revision}) newer than the installed MLflow "
            f"{mlflow.__version__} knows; upgrade MLflow (pip install -U mlflow) or use the MLflow "
            "that wrote it"
        )
    return (
        f"holds an older MLflow schema ({revision}; MLflow {mlflow.__version__} writes {head}); "
        f"back it up, then upgrade it: mlflow db upgrade {shlex.quote(uri)}"
    )


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    return {
        script.revision
        for script in ScriptDirectory.from_config(_get_alembic_config("")).walk_revisions()
    }
