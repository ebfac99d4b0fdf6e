"""``cogsync export`` and ``cogsync restore``: SQLite to PostgreSQL and back gives the same
file byte for byte; a restored database serves the same clients (developer keys, devices'
temporary credentials, delta syncs, deletions); an export taken under writes is one
snapshot; refusals are one line and change nothing."""

from __future__ import annotations

import gzip
import json
import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from benchmarks.generated_pool import write_generated_pool
from cogsync.transfer.export_format import KINDS
from tests.identity_helpers import DEVELOPER_PROVIDER
from tests.server import (
    Credentials,
    ServerProcess,
    independent_of_backend,
    postgres_database_for,
)
from tests.test_push import Household
from tests.test_sync_semantics import put, remove
from tests.transfer_helpers import (
    cogsync,
    cogsync_here,
    one_error_line,
    read_lines,
    target_args,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "migration.md"


def sqlite_at(folder: Path, key: str) -> ServerProcess:
    return ServerProcess(folder, env={"COGSYNC_SECRET_KEY": key},
                         database=f"sqlite:///{(folder / 'cogsync.db').resolve()}")


def postgres_at(folder: Path, key: str) -> ServerProcess:
    return ServerProcess(folder, env={"COGSYNC_SECRET_KEY": key},
                         database=postgres_database_for(folder))


def run(server: ServerProcess, *args: str) -> str:
    result = cogsync_here(*args, *target_args(server), env=server.env)
    assert result.returncode == 0, result.stderr
    return result.stderr


class Fixture:
    """Everything a database holds, written through the API of a running server."""

    def __init__(self, server: ServerProcess):
        self.home = Household(server)  # a pool with push, a device pair subscribed
        pool = self.pool = self.home.pool
        self.home.write_from_phone("score", "10")
        identity = server.client("cognito-identity")
        self.users = {}
        for user in ("ann", "bob", "dan\x00\x01\U0001f600"):  # every character travels
            self.users[user] = identity.get_open_id_token_for_developer_identity(
                IdentityPoolId=pool, Logins={DEVELOPER_PROVIDER: user})["IdentityId"]
        sync = server.client()
        for user, identity_id in self.users.items():
            where = dict(IdentityPoolId=pool, IdentityId=identity_id, DatasetName="settings")
            token = sync.list_records(**where)["SyncSessionToken"]
            sync.update_records(**where, SyncSessionToken=token, RecordPatches=[
                put("color", user, DeviceLastModifiedDate=1_700_000_000), put("size", "9"),
                put("\x00\x01\U0001f600", "\x00")])
            token = sync.list_records(**where)["SyncSessionToken"]
            sync.update_records(**where, SyncSessionToken=token, RecordPatches=[
                remove("size", 1)])
        ann = dict(IdentityPoolId=pool, IdentityId=self.users["ann"])
        token = sync.list_records(**ann, DatasetName="old")["SyncSessionToken"]
        sync.update_records(**ann, DatasetName="old", SyncSessionToken=token,
                            RecordPatches=[put("a", "1")])
        sync.delete_dataset(**ann, DatasetName="old")
        identity.merge_developer_identities(
            SourceUserIdentifier="bob", DestinationUserIdentifier="ann",
            DeveloperProviderName=DEVELOPER_PROVIDER, IdentityPoolId=pool)
        identity.update_identity_pool(
            IdentityPoolId=pool, IdentityPoolName="household", AllowUnauthenticatedIdentities=True,
            DeveloperProviderName=DEVELOPER_PROVIDER,
            SupportedLoginProviders={"accounts.example.com": "client-1"})
        identity.set_identity_pool_roles(IdentityPoolId=pool, Roles={
            "authenticated": "arn:aws:iam::123456789012:role/Auth",
            "unauthenticated": "arn:aws:iam::123456789012:role/Unauth"})
        identity.set_principal_tag_attribute_map(
            IdentityPoolId=pool, IdentityProviderName="accounts.example.com", UseDefaults=True)
        closed = identity.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool, Logins={DEVELOPER_PROVIDER: "carl"})["IdentityId"]
        identity.unlink_developer_identity(  # its last login: no one may act as it now
            IdentityId=closed, IdentityPoolId=pool, DeveloperProviderName=DEVELOPER_PROVIDER,
            DeveloperUserIdentifier="carl")
        developer = server.client()
        developer.set_identity_pool_configuration(IdentityPoolId=pool, CognitoStreams={
            "StreamName": "changes", "RoleArn": "arn:aws:iam::123456789012:role/s",
            "StreamingStatus": "DISABLED"})
        # Last: with a Sync Trigger set, identities' writes would call the function.
        developer.set_cognito_events(IdentityPoolId=pool, Events={
            "SyncTrigger": "arn:aws:lambda:us-east-1:123456789012:function:check"})


@independent_of_backend
def test_sqlite_to_postgresql_and_back_gives_the_same_file(tmp_path: Path) -> None:
    key = secrets.token_hex(32)
    source = sqlite_at(tmp_path / "sqlite", key).start()
    try:
        data = Fixture(source)
        run(source, "export", str(tmp_path / "a.jsonl"))  # while the server runs
    finally:
        source.stop()
    lines = read_lines(tmp_path / "a.jsonl")
    kinds = {line.get("type") for line in lines}
    assert set(KINDS) <= kinds, set(KINDS) - kinds  # every kind of row is in the file

    on_postgres = postgres_at(tmp_path / "pg", key)
    run(on_postgres, "restore", str(tmp_path / "a.jsonl"))
    run(on_postgres, "export", str(tmp_path / "b.jsonl.gz"))
    assert (tmp_path / "b.jsonl.gz").read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress((tmp_path / "b.jsonl.gz").read_bytes()) == (
        tmp_path / "a.jsonl").read_bytes()

    back = sqlite_at(tmp_path / "sqlite-again", key)
    run(back, "restore", str(tmp_path / "b.jsonl.gz"))
    run(back, "export", str(tmp_path / "c.jsonl"), "--gzip")
    assert gzip.decompress((tmp_path / "c.jsonl").read_bytes()) == (
        tmp_path / "a.jsonl").read_bytes()

    # The restored database serves the same clients.
    on_postgres.start()
    try:
        assert on_postgres.credentials is None  # not a new database: nothing bootstrapped
        on_postgres.credentials = source.credentials
        sync = on_postgres.client()
        ann = dict(IdentityPoolId=data.pool, IdentityId=data.users["ann"])
        settings = sync.list_records(**ann, DatasetName="settings", LastSyncCount=1)
        assert [(r["Key"], "Value" in r) for r in settings["Records"]] == [("size", False)]
        assert settings["MergedDatasetNames"] == [f"settings.{data.users['bob']}"]
        old = sync.list_records(**ann, DatasetName="old", LastSyncCount=1)
        assert old["DatasetDeletedAfterRequestedSyncCount"] is True
        # A device's temporary credentials, issued by the old server, still work.
        from tests.identity_helpers import sync_client_for

        device = sync_client_for(on_postgres, data.home.creds)
        notes = device.list_records(**data.home.ds.where, LastSyncCount=1)
        assert [r["Key"] for r in notes["Records"]] == ["score"]
    finally:
        on_postgres.stop()


@independent_of_backend
def test_postgresql_to_sqlite_gives_the_same_file(tmp_path: Path) -> None:
    key = secrets.token_hex(32)
    source = postgres_at(tmp_path / "pg", key).start()
    try:
        Fixture(source)
        run(source, "export", str(tmp_path / "a.jsonl.gz"))
    finally:
        source.stop()
    on_sqlite = sqlite_at(tmp_path / "sqlite", key)
    run(on_sqlite, "restore", str(tmp_path / "a.jsonl.gz"))
    # Streamed: to standard output, and back in from standard input.
    piped = subprocess.run([sys.executable, "-m", "cogsync", "export", "--gzip",
                            *target_args(on_sqlite)], capture_output=True,
                           env={**os.environ, **on_sqlite.env}, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == (tmp_path / "a.jsonl.gz").read_bytes()
    again = postgres_at(tmp_path / "pg-again", key)
    loaded = subprocess.run([sys.executable, "-m", "cogsync", "restore", "-",
                             *target_args(again)], input=piped.stdout, capture_output=True,
                            env={**os.environ, **again.env}, timeout=120)
    assert loaded.returncode == 0, loaded.stderr
    run(again, "export", str(tmp_path / "c.jsonl.gz"))
    assert (tmp_path / "c.jsonl.gz").read_bytes() == (tmp_path / "a.jsonl.gz").read_bytes()


def test_an_export_under_writes_is_one_snapshot(make_server: Any, tmp_path: Path) -> None:
    """Each write changes two records together and raises the dataset's sync count: in
    every export they agree, and the dataset's counts match its records."""
    server = make_server()
    sync = server.client()
    pool = server.pool_id
    identities = [f"us-east-1:00000000-0000-4000-8000-{i:012d}" for i in range(4)]
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        while not stop.is_set():
            for identity_id in identities:
                where = dict(IdentityPoolId=pool, IdentityId=identity_id, DatasetName="pair")
                listing = sync.list_records(**where)
                counts = {r["Key"]: r["SyncCount"] for r in listing["Records"]}
                value = str(written[0])
                sync.update_records(**where, SyncSessionToken=listing["SyncSessionToken"],
                                    RecordPatches=[put("a", value, counts.get("a", 0)),
                                                   put("b", value * 2, counts.get("b", 0))])
                written[0] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        exports = []
        for n in range(3):
            run(server, "export", str(tmp_path / f"{n}.jsonl"), "--pool", pool)
            exports.append(read_lines(tmp_path / f"{n}.jsonl"))
    finally:
        stop.set()
        thread.join(30)
    assert written[0] > 0
    checked = 0
    for lines in exports:
        dataset: dict[str, Any] | None = None
        records: dict[str, dict[str, Any]] = {}
        for line in [*lines[1:], {"type": "end"}]:
            if line["type"] in ("dataset", "end") and dataset is not None:
                if dataset["name"] == "pair":
                    assert records["a"]["sync_count"] == records["b"]["sync_count"]
                    assert records["a"]["value"] * 2 == records["b"]["value"]
                    assert dataset["sync_count"] == records["a"]["sync_count"]
                    assert dataset["data_storage"] == 2 + len(records["a"]["value"]) * 3
                    checked += 1
                dataset, records = None, {}
            if line["type"] == "dataset":
                dataset = line
            elif line["type"] == "record":
                records[line["key"]] = line
    assert checked > 0


def test_restore_refusals_are_one_line_and_change_nothing(make_server: Any,
                                                          tmp_path: Path) -> None:
    server = make_server()
    where = dict(IdentityPoolId=server.pool_id, DatasetName="d",
                 IdentityId="us-east-1:00000000-0000-4000-8000-000000000001")
    sync = server.client()
    sync.update_records(**where, SyncSessionToken=sync.list_records(**where)["SyncSessionToken"],
                        RecordPatches=[put("k", "v")])
    good = tmp_path / "good.jsonl"
    run(server, "export", str(good), "--pool", server.pool_id)
    lines = good.read_text().splitlines()
    key = (server.data_dir / "master.key").read_text().strip()
    fresh = ServerProcess(tmp_path / "fresh", env={"COGSYNC_SECRET_KEY": key})

    here = cogsync_here

    def refused(name: str, text: str, *extra: str, into: ServerProcess = fresh) -> str:
        path = tmp_path / name
        path.write_text(text)
        return one_error_line(here("restore", str(path), *extra, *target_args(into),
                                   env=into.env))

    header = json.loads(lines[0])
    assert "version 2" in refused("v2.jsonl", json.dumps({**header, "version": 2}) + "\n")
    assert "not a cogsync export" in refused("other.jsonl", '{"hello": 1}\n')
    assert "cut off" in refused("cut.jsonl", "\n".join(lines[:-1]) + "\n")
    broken = [lines[0], lines[1].replace('"created_at":', '"created_at":"x","was":')]
    assert "line 2" in refused("typed.jsonl", "\n".join(broken + lines[2:]) + "\n")
    assert "counts" in refused("miscounted.jsonl", "\n".join(lines[:2] + lines[3:]) + "\n")
    (tmp_path / "damaged.gz").write_bytes(gzip.compress(good.read_bytes())[:-12])
    assert "damaged" in one_error_line(here("restore", str(tmp_path / "damaged.gz"),
                                            *target_args(fresh), env=fresh.env))
    assert "cannot read" in one_error_line(here("restore", str(tmp_path / "missing"),
                                                *target_args(fresh), env=fresh.env))
    other_key = ServerProcess(tmp_path / "other-key")
    assert "another master key" in refused("again.jsonl", good.read_text(), into=other_key)
    assert "not empty" in refused(
        "whole.jsonl", good.read_text().replace('"scope":"pool"', '"scope":"database"'),
        into=server)

    # Nothing of the refused files stayed: the good one restores cleanly, once.
    restored = here("restore", str(good), "--json", *target_args(fresh), env=fresh.env)
    assert restored.returncode == 0, restored.stderr
    counts = json.loads(restored.stdout)["counts"]
    assert counts["pool"] == 1 and counts["dataset"] == 1 and counts["record"] == 1
    assert counts["access_key"] >= 1
    assert "already in this database" in refused("twice.jsonl", good.read_text())
    # Another database with another master key takes the pool without its keys.
    bare = here("restore", str(good), "--without-keys", *target_args(other_key))
    assert bare.returncode == 0, bare.stderr


def test_a_stored_document_travels_as_it_is(make_server: Any, tmp_path: Path) -> None:
    """A record whose stored document is not what its fields render (written by another
    rendering) keeps that document through restore, ListRecords and export."""
    server = make_server()
    created = json.loads(server.cli("accounts", "create", "--json"))
    generated = write_generated_pool(tmp_path / "pool.jsonl", created["AccountId"], 1)
    lines = (tmp_path / "pool.jsonl").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if '"key": "level"' in line)
    record = json.loads(lines[at])
    document = {"Key": "level", "Value": record["value"], "SyncCount": 1,
                "LastModifiedDate": int(record["last_modified_date"]),
                "LastModifiedBy": record["last_modified_by"]}
    lines[at] = json.dumps({**record, "document": json.dumps(document)})
    (tmp_path / "pool.jsonl").write_text("\n".join(lines) + "\n")
    run(server, "restore", str(tmp_path / "pool.jsonl"))

    server.credentials = Credentials(created["AccessKeyId"], created["SecretAccessKey"])
    listed = server.client().list_records(IdentityPoolId=generated.pool_id,
                                          IdentityId=generated.identities[0],
                                          DatasetName="profile")["Records"]
    level = next(r for r in listed if r["Key"] == "level")
    assert "DeviceLastModifiedDate" not in level  # the stored document, not the fields
    run(server, "export", str(tmp_path / "out.jsonl"), "--pool", generated.pool_id)
    exported = [line for line in read_lines(tmp_path / "out.jsonl")
                if line.get("key") == "level"]
    assert json.loads(exported[0]["document"]) == document


@independent_of_backend
def test_every_column_is_exported() -> None:
    """A column added to the schema must be added to the format (or left out here, with
    the reason): else exports would drop it without a word."""
    from cogsync.store.schema import metadata

    left_out = {"datasets.dataset_id": "records follow their dataset line instead",
                "records.dataset_id": "the same", "records.document": "rendered, or a field"}
    operational = {"outbox", "bulk_publish_jobs", "leases", "alembic_version"}
    by_table = {kind.table: {f.name for f in kind.fields} for kind in KINDS.values()}
    for table in metadata.sorted_tables:
        if table.name in operational:
            continue
        assert table.name in by_table, f"table {table.name} is not exported"
        for column in table.columns:
            name = f"{table.name}.{column.name}"
            assert column.name in by_table[table.name] or name in left_out, name


@independent_of_backend
def test_every_kind_and_field_is_documented() -> None:
    text = DOCS.read_text()
    for kind in KINDS.values():
        section = text.split(f"\n#### `{kind.name}`\n", 1)
        assert len(section) == 2, f"docs/migration.md does not describe {kind.name}"
        described = section[1].split("\n#", 1)[0]
        for field in kind.fields:
            assert f"`{field.name}`" in described, (kind.name, field.name)


def test_export_of_an_unknown_pool_is_refused(server: ServerProcess, tmp_path: Path) -> None:
    line = one_error_line(cogsync("export", str(tmp_path / "x.jsonl"), "--pool",
                                  "us-east-1:0000", *target_args(server)))
    assert "no identity pool" in line
    assert not list(tmp_path.iterdir())  # no file, not even a partial one
