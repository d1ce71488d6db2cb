"""The store itself: which URIs mlpsuite accepts, checks that fail in seconds with one line,
and the waiting every store call does (SQLite's one writer, a tracking server's outage)."""

from __future__ import annotations

import contextlib
import logging
import os
import urllib.request
from pathlib import Path

from mlpsuite.errors import StoreError

DEFAULT_URI = "sqlite:///mlruns/mlflow.db"
logger = logging.getLogger("mlpsuite")


def resolve_uri(cli_uri: str | None = None, create: bool = True) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else the SQLite store in ./mlruns.

    With `create=False` (commands that only read) a SQLite file that does not exist is an
    error, not a new empty store in whatever folder the command ran from.
    """
    uri = given_uri(cli_uri)
    local = _sqlite_path(uri)
    if local is not None and create:
        try:  # the store's own folder, but not a mistyped path's missing parents
            local.parent.mkdir(exist_ok=True)
        except OSError as error:
            raise StoreError(
                f"tracking URI {uri}: cannot create {local.parent} ({error.strerror})"
            ) from None
    elif local is not None and not local.is_file():
        raise StoreError(
            f"tracking URI {uri}: no store at {local.resolve()} (paths are relative to the "
            "current folder); run mlpsuite run there first, or pass --tracking-uri"
        )
    return uri


def given_uri(cli_uri: str | None = None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else the default; checked, nothing created."""
    if cli_uri is not None and not cli_uri.strip():
        raise StoreError(
            "--tracking-uri: empty; allowed: sqlite:///PATH, http(s)://HOST:PORT, postgresql://..."
        )
    uri = cli_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI
    _check_scheme(uri)
    return uri


def existing_store(uri: str) -> bool:
    """Whether the store at `uri` may hold runs already: a SQLite file that exists, or any
    server or database (asked only when opened)."""
    local = _sqlite_path(uri)
    return local is None or local.is_file()


URI_SCHEMES = ("sqlite", "http", "https", "postgresql", "mysql", "mssql")


def _check_scheme(uri: str) -> None:
    scheme = uri.split("://", 1)[0].split("+", 1)[0] if "://" in uri else ""
    if scheme in URI_SCHEMES:
        return
    hint = f"; for a SQLite file write sqlite:///{uri}" if not scheme else ""
    raise StoreError(
        f"tracking URI {uri}: not a store mlpsuite can use{hint}; allowed: sqlite:///PATH, "
        "http(s)://HOST:PORT (mlflow server), postgresql://, mysql://, mssql://"
    )


def _sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def creation_lock_path(database: Path) -> Path:
    """The lock file beside a SQLite store that its creators take turns on."""
    return database.with_name(database.name + ".lock")


@contextlib.contextmanager
def _store_creation_lock(uri: str):
    """Two grids starting on a new SQLite file would both create MLflow's tables and clash
    ("table ... already exists"); a file lock beside the database lets one go first."""
    local = _sqlite_path(uri)
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        fcntl = None
    if local is None or fcntl is None:
        yield
        return
    with open(creation_lock_path(local), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _check_server(uri: str, timeout_s: float = 5.0) -> None:
    """Fail in seconds on a dead server: MLflow's own client retries for minutes."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s):
            pass
    except (OSError, ValueError) as error:
        raise StoreError(f"tracking URI {uri}: no MLflow server answers ({error})") from None


DATABASE_SCHEMES = ("postgresql", "mysql", "mssql")


def shown_uri(uri: str) -> str:
    """The URI as messages print it: a database password is not for the terminal."""
    if not uri.startswith(DATABASE_SCHEMES):
        return uri
    from sqlalchemy.engine import make_url

    return make_url(uri).render_as_string(hide_password=True)


def _check_database(uri: str, timeout_s: int = 5) -> None:
    """Fail in seconds on a database that cannot be used: MLflow retries a refused connection
    for about 100 s. A missing Python driver (SQLAlchemy 2.1 drives postgresql:// with psycopg
    3) is one line naming what to install."""
    if not uri.startswith(DATABASE_SCHEMES):
        return
    import sqlalchemy
    import sqlalchemy.exc

    url = sqlalchemy.engine.make_url(uri)
    try:
        url.get_dialect().import_dbapi()
    except ImportError as error:
        extra = (
            "pip install -e '.[postgres]'"
            if url.get_backend_name() == "postgresql"
            else "pip install it"
        )
        raise StoreError(
            f"tracking URI {shown_uri(uri)}: the database driver is not installed "
            f"({error}); {extra}"
        ) from None
    timeout = (
        {"connect_timeout": timeout_s} if url.get_backend_name() in ("postgresql", "mysql") else {}
    )
    engine = sqlalchemy.create_engine(url, connect_args=timeout)
    try:
        with engine.connect() as connection:
            tables = set(sqlalchemy.inspect(connection).get_table_names())
            revision = (
                connection.execute(
                    sqlalchemy.text("SELECT version_num FROM alembic_version")
                ).scalar()
                if "alembic_version" in tables
                else None
            )
    except sqlalchemy.exc.SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise StoreError(f"tracking URI {shown_uri(uri)}: {reason}") from None
    finally:
        engine.dispose()
    from mlpsuite.tracking.schema import schema_problem

    problem = schema_problem(tables, revision, shown_uri(uri))
    if problem:
        raise StoreError(f"tracking URI {shown_uri(uri)}: the database {problem}")


def run_url(uri: str, experiment_id: str, run_id: str, ui_port: int = 5000) -> str:
    """Where the MLflow UI shows a run (the server itself, or `mlpsuite ui` for a SQLite store),
    in its "Model training" view: MLflow 3 opens in its GenAI view otherwise."""
    base = (
        uri.rstrip("/")
        if uri.startswith(("http://", "https://"))
        else f"http://127.0.0.1:{ui_port}"
    )
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"
