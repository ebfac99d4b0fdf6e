"""Upgrading a database written by an older cogsync: what it stored reads back the same.

A real server writes records; the database is taken back to revision 0003 (before records
kept their JSON document); the server starts again, migrates, and answers ListRecords
exactly as before, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from cogsync.store.engine import MIGRATIONS, make_engine, normalize_url
from tests.identity_helpers import DEVELOPER_PROVIDER, make_pool
from tests.server import ServerProcess, new_identity_id
from tests.test_sync_semantics import Dataset, put, remove


def _downgrade(database_url: str, revision: str) -> None:
    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
        connection.commit()
    engine.dispose()


def _listing(ds: Dataset, **extra: Any) -> list[dict[str, Any]]:
    return ds.list(**extra)["Records"]


def test_records_written_before_0004_read_back_the_same(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "old").start()
    try:
        client = server.client()
        ds = Dataset(client, server.pool_id, new_identity_id())
        ds.update([put("a", "1"), put("b", "two"), put("gone", "x")])
        ds.update([put("a", "10", 1, DeviceLastModifiedDate=1700000000.5), remove("gone", 1)],
                  DeviceId="phone")
        before = (_listing(ds), _listing(ds, last=1), _listing(ds, MaxResults=1))
        assert len(before[0]) == 3 and any("Value" not in r for r in before[0])
    finally:
        server.stop()
    database = server.database or f"sqlite:///{(tmp_path / 'old' / 'cogsync.db').resolve()}"
    _downgrade(database, "0003")

    server.start()
    try:
        ds = Dataset(server.client(), server.pool_id, ds.where["IdentityId"])
        after = (_listing(ds), _listing(ds, last=1), _listing(ds, MaxResults=1))
        assert after == before
        ds.update([put("b", "three", 1)])
        assert {r["Key"]: r.get("Value") for r in _listing(ds)} == {
            "a": "10", "gone": None, "b": "three"}
    finally:
        server.stop()


def test_u0001_stored_before_0007_reads_back_the_same(tmp_path: Path) -> None:
    # Before 0007, PostgreSQL stored U+0001 as it is; since, as U+0001 U+0002 (text_codec).
    server = ServerProcess(tmp_path / "old").start()
    try:
        identity = server.client("cognito-identity")
        pool = make_pool(server, push=False)
        identity_id = identity.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool, Logins={DEVELOPER_PROVIDER: "user"})["IdentityId"]
    finally:
        server.stop()
    database = server.database or f"sqlite:///{(tmp_path / 'old' / 'cogsync.db').resolve()}"
    _downgrade(database, "0006")
    raw = create_engine(normalize_url(database))  # no codec: text as the old code wrote it
    with raw.begin() as connection:
        connection.execute(text("UPDATE identity_logins SET subject = :subject"),
                           {"subject": "user\x01\x01\x02"})
    raw.dispose()

    server.start()
    try:
        identity = server.client("cognito-identity")
        found = identity.lookup_developer_identity(IdentityPoolId=pool, IdentityId=identity_id)
        assert found["DeveloperUserIdentifierList"] == ["user\x01\x01\x02"]
        assert identity.lookup_developer_identity(
            IdentityPoolId=pool, DeveloperUserIdentifier="user\x01\x01\x02")["IdentityId"] == (
            identity_id)
    finally:
        server.stop()
