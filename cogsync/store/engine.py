"""Engines for SQLite (embedded default) and PostgreSQL, and schema migrations."""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

MIGRATIONS = Path(__file__).parent / "migrations"


_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def is_storage_full(exc: BaseException) -> bool:
    """Whether a store operation failed for want of disk space: SQLite's SQLITE_FULL,
    PostgreSQL's SQLSTATE 53100 (disk_full), or an OSError of ENOSPC, EDQUOT or EFBIG,
    anywhere in the exception's chain."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, sqlite3.Error):
            code = getattr(current, "sqlite_errorcode", None)
            if (code is not None and code & 0xFF == sqlite3.SQLITE_FULL) or (
                    "disk is full" in str(current)):
                return True
        if getattr(current, "sqlstate", None) == "53100":
            return True
        if isinstance(current, OSError) and current.errno in _NO_SPACE:
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def normalize_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here (the driver cogsync installs)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def _private_file(path: Path) -> None:
    """The database holds users' data: readable by its owner only (SQLite gives its
    -wal and -shm files the same mode)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _sqlite_engine(url: str, synchronous: str) -> Engine:
    engine = create_engine(
        url,
        pool_size=16,
        max_overflow=16,
        pool_pre_ping=False,
        connect_args={"check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (the driver's implicit BEGIN is DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a committed transaction survives a crash of the process;
        # FULL also survives the loss of power (an fsync per commit).
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # No checkpoint inside a commit: the server checkpoints on a thread of its own
        # (Store.checkpoint), so a request never waits for the database file's fsync.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        # After the log restarts, its file is cut back to this size (64 MiB).
        cursor.execute("PRAGMA journal_size_limit=67108864")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        cursor = conn.connection.cursor()  # the driver's own: no statement bookkeeping
        cursor.execute(f"BEGIN {mode}")
        cursor.close()

    return engine


def _pg_options(parsed: URL) -> str:
    """Keeps the URL's own ``options`` (a search_path, say) and bounds statement time."""
    given = parsed.query.get("options", "")
    given = given if isinstance(given, str) else " ".join(given)
    return f"{given} -c statement_timeout=30000".strip()


def make_engine(url: str, *, sqlite_synchronous: str = "NORMAL") -> Engine:
    url = normalize_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database))
        return _sqlite_engine(url, sqlite_synchronous)
    return create_engine(
        url,
        pool_size=16,
        max_overflow=16,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=10,
        # A database that does not answer is an error within seconds, never a hang.
        connect_args={"connect_timeout": 5, "options": _pg_options(parsed)},
    )


def migrate(engine: Engine) -> None:
    """Brings the schema to the newest revision (idempotent; safe on every start)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # Replicas starting together: one migrates, the others wait.
            connection.exec_driver_sql("SELECT pg_advisory_lock(727274)")
        try:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.commit()
        finally:
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql("SELECT pg_advisory_unlock(727274)")
                connection.commit()


def head_revision() -> str | None:
    """The newest migration this code knows."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()
