"""Engines for SQLite (embedded default) and PostgreSQL, and schema migrations.

Alembic runs only when there is something to migrate: a database at the newest revision
is left alone, and a new, empty one gets the declared tables directly, stamped with the
newest revision (Alembic's own recipe for a database built from scratch; the tests hold
the two ways to the same schema). Importing Alembic, and the template engine it brings,
cost each start a quarter of a second.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    inspect,
    select,
)
from sqlalchemy.engine import URL, make_url

from cogsync.store import text_codec

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"


class UnknownRevision(Exception):
    """The database's schema is at a revision this code does not know (a newer one)."""


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
    engine = create_engine(
        url,
        pool_size=16,
        max_overflow=16,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=10,
        # A database that does not answer is an error within seconds, never a hang.
        connect_args={"connect_timeout": 5, "options": _pg_options(parsed)},
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # U+0000 and U+0001 in text, both ways (see text_codec.py).
        text_codec.install(dbapi_connection)

    return engine


def migrate(engine: Engine, *, create_directly: bool = True) -> None:
    """Brings the schema to the newest revision (idempotent; safe on every start). A new,
    empty database gets the declared tables at once unless ``create_directly`` is False
    (then the migrations build it, one after the other)."""
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # Replicas starting together: one migrates, the others wait.
            connection.exec_driver_sql("SELECT pg_advisory_lock(727274)")
        try:
            head = head_revision()
            tables = inspect(connection).get_table_names()
            current = _stamped(connection) if VERSION_TABLE in tables else None
            if current == head:
                connection.rollback()
            elif not tables and create_directly:
                _create(connection, head)
                connection.commit()
            else:
                _upgrade(connection)
                connection.commit()
        finally:
            if engine.dialect.name == "postgresql":
                connection.exec_driver_sql("SELECT pg_advisory_unlock(727274)")
                connection.commit()


def _version_table() -> Table:
    """Alembic's version table, as Alembic declares it."""
    return Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )


def _stamped(connection: Connection) -> str | None:
    return connection.execute(select(_version_table().c.version_num)).scalar()


def _create(connection: Connection, head: str) -> None:
    from cogsync.store.schema import metadata

    metadata.create_all(connection)
    version = _version_table()
    version.create(connection)
    connection.execute(version.insert().values(version_num=head))


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    try:
        command.upgrade(config, "head")
    except CommandError as exc:
        raise UnknownRevision(str(exc)) from None


def head_revision() -> str:
    """The newest migration this code knows: the number of the last file in
    migrations/versions (each migration's revision is its file's number, one after the
    other; a test holds this to what Alembic reads from the files)."""
    names = sorted(p.name for p in (MIGRATIONS / "versions").glob("[0-9]*.py"))
    return names[-1].split("_", 1)[0]
