"""Replicas through PgBouncer in transaction pooling mode (Debian's ``pgbouncer``).

A private PgBouncer on a free port, in front of the test database, with fewer server
connections than the replicas open, so transactions of different clients share server
connections. Two replicas run with ``--database-pooler transaction`` (no prepared
statements, no startup options) and ``--live-database`` straight to PostgreSQL for the
live channel's LISTEN, which a transaction pooler cannot carry. Real boto3 traffic.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest
from botocore.exceptions import ClientError

from tests.identity_helpers import make_pool, sync_client_for, unauthenticated_credentials
from tests.server import (
    POSTGRES_URL,
    ServerProcess,
    backend,
    new_identity_id,
    postgres_database_for,
)
from tests.test_push import open_stream, presigned_live_url, read_events_in_background
from tests.test_sync_semantics import Dataset, error_code, put

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
SERVER_CONNECTIONS = 3  # PgBouncer's pool: fewer than either replica's connections

pytestmark = [
    pytest.mark.skipif(backend() != "postgresql", reason="PostgreSQL only"),
    pytest.mark.skipif(not os.path.exists(PGBOUNCER),
                       reason="pgbouncer is not installed (scripts/services installs it)"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_pgbouncer(folder: Path, schema: str) -> tuple[subprocess.Popen[bytes], int]:
    """``folder``: readable by the postgres user (PgBouncer refuses to run as root: it
    runs as postgres then)."""
    target = urlparse(POSTGRES_URL)
    port = _free_port()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    (folder / "users.txt").write_text(f'"{target.username or "postgres"}" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"cogsync = host={target.hostname} port={target.port or 5432} "
        f"dbname={target.path.lstrip('/')} user={target.username or 'postgres'} "
        f"connect_query='SET search_path = {schema}'\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        "admin_users = postgres\n"
        f"pool_mode = transaction\ndefault_pool_size = {SERVER_CONNECTIONS}\n"
        "max_client_conn = 200\nreserve_pool_size = 0\n"
        f"logfile = {folder / 'pgbouncer.log'}\n"
    )
    command = [PGBOUNCER, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    log = folder / "pgbouncer.log"
    raise RuntimeError("pgbouncer did not start: " + (log.read_text() if log.exists() else ""))


def _pools(port: int) -> dict[str, int]:
    """PgBouncer's SHOW POOLS for the cogsync database: client and server connections."""
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/pgbouncer",
                         autocommit=True, prepare_threshold=None) as admin:
        cursor = admin.cursor()
        cursor.execute("SHOW POOLS")
        names = [column.name for column in cursor.description or ()]
        for row in cursor.fetchall():
            found = dict(zip(names, row, strict=True))
            if found["database"] == "cogsync":
                return {k: int(v) for k, v in found.items()
                        if k.startswith(("cl_", "sv_"))}
    return {}


@pytest.fixture
def pooled(tmp_path: Path) -> Iterator[tuple[list[ServerProcess], int]]:
    direct = postgres_database_for(tmp_path / "database")  # the schema, and its direct URL
    schema = direct.rsplit("%3D", 1)[1]
    folder = Path(tempfile.mkdtemp(prefix="cogsync-pgbouncer-"))
    bouncer, port = _start_pgbouncer(folder, schema)
    through = f"postgresql://postgres@127.0.0.1:{port}/cogsync"
    env = {"COGSYNC_SECRET_KEY": "6b" * 32, "COGSYNC_LEASE_SECONDS": "1"}
    started: list[ServerProcess] = []
    try:
        for i in range(2):
            replica = ServerProcess(
                tmp_path / f"replica{i}",
                ["--database-pooler", "transaction", "--live-database", direct],
                env=env, database=through).start()
            if started:
                replica.credentials, replica.pool_id = started[0].credentials, started[0].pool_id
            started.append(replica)
        yield started, port
    finally:
        for replica in started:
            replica.kill()
        bouncer.terminate()
        bouncer.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


def test_replicas_sync_through_transaction_pooling(
    pooled: tuple[list[ServerProcess], int],
) -> None:
    replicas, port = pooled
    clients = [r.client() for r in replicas]
    pool = replicas[0].pool_id
    identity = new_identity_id()
    where = dict(IdentityPoolId=pool, IdentityId=identity, DatasetName="pooled")
    count = 0
    # More than psycopg's five uses of each statement: a statement prepared on one server
    # connection and run on another would fail here.
    for i in range(12):
        client = clients[i % 2]
        token = client.list_records(**where)["SyncSessionToken"]
        written = clients[(i + 1) % 2].update_records(
            **where, SyncSessionToken=token,
            RecordPatches=[put(f"k{i}", "v"), put("counter", str(i), count)])
        count = written["Records"][-1]["SyncCount"]
        assert clients[i % 2].describe_dataset(**where)["Dataset"]["NumRecords"] == i + 2
    token = clients[0].list_records(**where)["SyncSessionToken"]
    with pytest.raises(ClientError) as conflict:  # a stale count: nothing applied
        clients[1].update_records(**where, SyncSessionToken=token,
                                  RecordPatches=[put("counter", "stale", 1)])
    assert error_code(conflict)[0] == "ResourceConflictException"
    page = clients[0].list_records(**where, MaxResults=5)
    rest = clients[1].list_records(**where, NextToken=page["NextToken"])
    assert len(page["Records"]) + len(rest["Records"]) == 13
    assert rest["DatasetSyncCount"] == 12
    names = clients[1].list_datasets(IdentityPoolId=pool, IdentityId=identity)["Datasets"]
    assert [d["DatasetName"] for d in names] == ["pooled"]
    shared = _pools(port)
    assert 0 < shared["sv_active"] + shared["sv_idle"] + shared.get("sv_used", 0) \
        <= SERVER_CONNECTIONS


def test_live_channel_across_pooled_replicas(
    pooled: tuple[list[ServerProcess], int],
) -> None:
    replicas, _ = pooled
    pool = make_pool(replicas[0])
    identity_id, creds = unauthenticated_credentials(replicas[0], pool)
    response = open_stream(presigned_live_url(replicas[0], pool, identity_id, creds))
    assert response.readline() == b": connected\n"  # LISTENing on the direct connection
    events: list[dict[str, Any]] = []
    reader = read_events_in_background(response, events)
    written = Dataset(sync_client_for(replicas[1], creds), pool, identity_id, "far").update(
        [put("k", "v")], DeviceId="the-other-replica")
    reader.join(10)
    assert [(e["datasetName"], e["syncCount"], e["deviceId"]) for e in events] == [
        ("far", written[0]["SyncCount"], "the-other-replica")]
