"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from cogsync.store.engine import make_engine, migrate
from cogsync.store.schema import metadata

POSTGRES_URL = os.environ.get("COGSYNC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _assert_matches(engine_url: str) -> None:
    engine = make_engine(engine_url)
    migrate(engine)
    migrate(engine)  # idempotent: a second start changes nothing
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def test_sqlite_migrations_match_the_schema(tmp_path: Path) -> None:
    _assert_matches(f"sqlite:///{tmp_path / 'schema.db'}")


def test_postgres_migrations_match_the_schema() -> None:
    schema = f"cogsync_schema_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # pragma: no cover - the machine's PostgreSQL is required
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_URL}: {exc}")
    try:
        _assert_matches(f"{POSTGRES_URL}?options=-csearch_path%3D{schema}")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
