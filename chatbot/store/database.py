"""Opening the database: its URL, its engine, and its schema brought up to date.

Example:
    >>> store = open_database("sqlite://")  # in memory
    >>> sorted(inspect(store).get_table_names())
    ['alembic_version', 'exchanges', 'feedback', 'sessions']
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from chatbot.errors import StoreError

MIGRATIONS = Path(__file__).parent / "migrations"
# Any fixed number: PostgreSQL's lock that keeps two processes from migrating at once.
_MIGRATION_LOCK = 7_211_300_001
CONNECT_TIMEOUT_S = 3
# Relative to the folder the service starts in, beside the models `make run` builds.
DEFAULT_URL = "sqlite:///artifacts/feedback.sqlite3"


def normalise_url(url: str) -> str:
    """The URL with the driver this project installs (``psycopg``, version 3) for PostgreSQL.

    Example:
        >>> normalise_url("postgresql://bot@db/feedback")
        'postgresql+psycopg://bot@db/feedback'
    """
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url.removeprefix(plain)
    return url


def create_database_engine(url: str) -> Engine:
    """An engine for ``url`` (nothing is connected yet); SQLite waits for a lock instead of
    failing, as several workers write to one file."""
    try:
        parsed = make_url(normalise_url(url))
    except ArgumentError as exc:
        raise StoreError(f"database URL {url!r} is not a URL: {exc}") from exc
    options: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        options["connect_args"] = {"timeout": 10, "check_same_thread": False}
        if parsed.database in (None, "", ":memory:"):
            options["poolclass"] = StaticPool  # one in-memory database, shared by threads
    elif parsed.get_backend_name() == "postgresql":
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
    try:
        engine = create_engine(parsed, **options)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"database URL {url!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL: readers do not block the writer; NORMAL: no fsync per commit (WAL keeps it safe).
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def upgrade(engine: Engine) -> None:
    """Applies every migration the database lacks; safe with several processes at once.

    Raises:
        StoreError: the database cannot be reached or migrated.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with _migration_lock(engine), engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                key = {"key": _MIGRATION_LOCK}
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), key)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except (SQLAlchemyError, OSError) as exc:
        raise StoreError(f"database {describe(engine)}: {first_line(exc)}") from exc


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        yield
        return
    Path(database).parent.mkdir(parents=True, exist_ok=True)  # the file's folder, made here
    with open(f"{database}.migrate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def open_database(url: str, must_exist: bool = False) -> Engine:
    """The engine of ``url`` with its schema up to date.

    Args:
        url: an SQLAlchemy URL.
        must_exist: an SQLite file that is not there is an error (commands that read it),
            not a new empty database.

    Raises:
        StoreError: the URL is wrong or the database cannot be reached.
    """
    engine = create_database_engine(url)
    database = engine.url.database
    in_a_file = engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
    if must_exist and in_a_file and not Path(str(database)).is_file():
        raise StoreError(f"no database at {database} (from {url})")
    try:
        upgrade(engine)
    except StoreError:
        engine.dispose()
        raise
    return engine


def describe(engine: Engine) -> str:
    """The URL without its password, for messages."""
    return engine.url.render_as_string(hide_password=True)


def first_line(exc: BaseException) -> str:
    """A driver's error in one line (they run to several, with SQL and links)."""
    message = str(getattr(exc, "orig", None) or exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


__all__ = ["create_database_engine", "describe", "inspect", "open_database", "upgrade"]
