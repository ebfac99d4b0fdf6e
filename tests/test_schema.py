"""The migrations build exactly the schema the code declares, on SQLite and PostgreSQL;
and a new database, which gets the declared tables directly, ends up the same."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, inspect, text

from cogsync.store.engine import MIGRATIONS, head_revision, make_engine, migrate
from cogsync.store.schema import metadata
from tests.server import independent_of_backend

POSTGRES_URL = os.environ.get("COGSYNC_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _assert_matches(engine_url: str) -> None:
    engine = make_engine(engine_url)
    migrate(engine, create_directly=False)  # the migrations, one after the other
    migrate(engine)  # idempotent: a second start changes nothing
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []


def _structure(engine: Engine) -> dict[str, object]:
    """Every table as the database describes it: columns, keys, indexes, the revision."""
    with engine.connect() as conn:
        found = inspect(conn)
        tables = {}
        for table in sorted(found.get_table_names()):
            tables[table] = (
                [(c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                 for c in found.get_columns(table)],
                found.get_pk_constraint(table)["constrained_columns"],
                sorted((fk["constrained_columns"], fk["referred_table"],
                        fk["referred_columns"], fk.get("options", {}).get("ondelete"))
                       for fk in found.get_foreign_keys(table)),
                sorted((i["name"], i["column_names"], bool(i["unique"]))
                       for i in found.get_indexes(table)),
                sorted(sorted(u["column_names"]) for u in found.get_unique_constraints(table)),
            )
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return {"tables": tables, "revision": revision}


def _assert_direct_creation_matches(url_of: dict[str, str]) -> None:
    structures = {}
    for way, url in url_of.items():
        engine = make_engine(url)
        migrate(engine, create_directly=way == "direct")
        structures[way] = _structure(engine)
        engine.dispose()
    assert structures["direct"]["revision"] == head_revision()
    assert structures["direct"] == structures["migrated"]


def test_sqlite_migrations_match_the_schema(tmp_path: Path) -> None:
    _assert_matches(f"sqlite:///{tmp_path / 'schema.db'}")


def test_sqlite_new_database_matches_the_migrated_one(tmp_path: Path) -> None:
    _assert_direct_creation_matches({way: f"sqlite:///{tmp_path / way}.db"
                                     for way in ("direct", "migrated")})


@independent_of_backend
def test_head_revision_is_alembics() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(config).get_current_head()


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


@independent_of_backend  # it makes its own PostgreSQL schemas
def test_postgres_new_database_matches_the_migrated_one() -> None:
    schemas = {way: f"cogsync_schema_{way}_{uuid.uuid4().hex[:8]}"
               for way in ("direct", "migrated")}
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        for schema in schemas.values():
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        _assert_direct_creation_matches({
            way: f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
            for way, schema in schemas.items()})
    finally:
        with admin.begin() as conn:
            for schema in schemas.values():
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
