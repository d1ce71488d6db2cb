"""Is this database an MLflow store this MLflow can use? Asked read-only, before MLflow opens it.

MLflow itself would create its tables inside any SQLite file it is pointed at (a database of
another program included), print a page of traceback for a file that is not a database, and
call a schema newer than its own "out-of-date". Each is one line here, and nothing is written.
"""

from __future__ import annotations

import shlex
import sqlite3
from pathlib import Path

from mlpsuite.errors import StoreError
from mlpsuite.tracking.calls import LOCKED_SIGNS, StoreCalls

MLFLOW_TABLES = {"alembic_version", "experiments", "runs"}


def check_sqlite_store(uri: str, path: Path) -> None:
    """A StoreError naming `path` unless it is missing, empty, or an MLflow store of this
    MLflow's schema; waits (said on stderr) while another process holds it locked."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    calls, locked_since = StoreCalls(uri), None
    while True:
        try:
            tables, revision = _sqlite_contents(path)
            break
        except sqlite3.DatabaseError as error:
            if not any(sign in str(error).lower() for sign in LOCKED_SIGNS):
                raise StoreError(
                    f"tracking URI {uri}: {path} is not a SQLite database ({error}); point "
                    "--tracking-uri at an MLflow store, or move the file away"
                ) from None
            locked_since = calls.wait_for_lock(locked_since)
    problem = schema_problem(tables, revision, uri)
    if problem:
        raise StoreError(f"tracking URI {uri}: {path} {problem}")


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
