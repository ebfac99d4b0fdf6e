"""Several stateless replicas over one PostgreSQL, and request-rate limits."""

from __future__ import annotations

import http.client
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import psycopg
import pytest
from botocore.exceptions import ClientError

from tests import history
from tests.identity_helpers import make_pool, sync_client_for, unauthenticated_credentials
from tests.peers import HttpReceiver
from tests.server import ServerProcess, new_identity_id, postgres_database_for, wait_until
from tests.test_push import open_stream, presigned_live_url, read_events_in_background
from tests.test_sync_semantics import Dataset, error_code, put

SHARED_KEY = "5a" * 32


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Three replicas, one database, one master key, each with its own data folder."""
    database = postgres_database_for(tmp_path / "shared-database")
    hook = HttpReceiver().start()
    env = {"COGSYNC_SECRET_KEY": SHARED_KEY, "COGSYNC_OUTBOX_BACKOFF": "0.05",
           "COGSYNC_LEASE_SECONDS": "1"}
    started: list[ServerProcess] = []
    try:
        for i in range(3):
            proc = ServerProcess(tmp_path / f"replica{i}", ["--push", hook.url], env=env,
                                 database=database).start()
            if started:  # only the first start bootstraps; the others share its account
                proc.credentials, proc.pool_id = started[0].credentials, started[0].pool_id
            started.append(proc)
        started[0].hook = hook  # type: ignore[attr-defined]
        yield started
    finally:
        for proc in started:
            proc.kill()
        hook.stop()


def test_one_client_spread_over_replicas(replicas: list[ServerProcess]) -> None:
    clients = itertools.cycle([r.client() for r in replicas])
    pool = replicas[0].pool_id
    where = dict(IdentityPoolId=pool, IdentityId=new_identity_id(), DatasetName="d")
    count = 0
    for i in range(6):  # every call on the next replica: tokens cross replicas
        token = next(clients).list_records(**where)["SyncSessionToken"]
        written = next(clients).update_records(
            **where, SyncSessionToken=token,
            RecordPatches=[put(f"k{i}", "v"), put("counter", str(i), count)])
        count = written["Records"][0]["SyncCount"]
    page = next(clients).list_records(**where, MaxResults=3)
    rest = next(clients).list_records(**where, MaxResults=10, NextToken=page["NextToken"])
    keys = [r["Key"] for r in page["Records"] + rest["Records"]]
    assert sorted(keys) == sorted([f"k{i}" for i in range(6)] + ["counter"])
    assert rest["DatasetSyncCount"] == 6


def test_identity_credentials_work_on_every_replica(replicas: list[ServerProcess]) -> None:
    pool = make_pool(replicas[0])
    identity_id, creds = unauthenticated_credentials(replicas[1], pool)
    for replica in replicas:
        client = sync_client_for(replica, creds)
        Dataset(client, pool, identity_id, f"from-{replica.data_dir.name}").update(
            [put("k", "v")])
    listed = sync_client_for(replicas[2], creds).list_datasets(IdentityPoolId=pool,
                                                               IdentityId=identity_id)
    assert len(listed["Datasets"]) == 3


def test_pushes_are_delivered_once_in_order_by_one_replica(
    replicas: list[ServerProcess],
) -> None:
    hook: HttpReceiver = replicas[0].hook  # type: ignore[attr-defined]
    pool = make_pool(replicas[0])
    identity_id, creds = unauthenticated_credentials(replicas[0], pool)
    phones = [sync_client_for(r, creds) for r in replicas]
    device = phones[0].register_device(IdentityPoolId=pool, IdentityId=identity_id,
                                       Platform="GCM", Token="t")["DeviceId"]
    Dataset(phones[0], pool, identity_id, "n").update([put("k", "0")])
    phones[1].subscribe_to_dataset(IdentityPoolId=pool, IdentityId=identity_id,
                                   DatasetName="n", DeviceId=device)
    count = 1
    for i in range(1, 7):
        written = Dataset(phones[i % 3], pool, identity_id, "n").update([put("k", str(i),
                                                                              count)])
        count = written[0]["SyncCount"]
    assert wait_until(lambda: len(hook.received) >= 6)
    counts = [body["message"]["syncCount"] for _, body in hook.received]
    assert counts == sorted(counts) and counts[-1] == count


def test_rate_limit_per_identity(make_server: Any) -> None:
    # 0.01 requests per second: a burst of one, and no refill during the test.
    srv = make_server(env={"COGSYNC_RATE_LIMIT_IDENTITY": "0.01"})
    client = srv.client()
    busy = new_identity_id()
    client.list_datasets(IdentityPoolId=srv.pool_id, IdentityId=busy)
    with pytest.raises(ClientError) as excinfo:
        client.list_datasets(IdentityPoolId=srv.pool_id, IdentityId=busy)
    assert error_code(excinfo) == ("TooManyRequestsException", 429)
    # Another identity has a bucket of its own.
    client.list_datasets(IdentityPoolId=srv.pool_id, IdentityId=new_identity_id())


def test_rate_limit_per_pool(make_server: Any) -> None:
    srv = make_server(env={"COGSYNC_RATE_LIMIT_POOL": "0.01"})
    client = srv.client()
    client.list_datasets(IdentityPoolId=srv.pool_id, IdentityId=new_identity_id())
    with pytest.raises(ClientError) as excinfo:
        client.list_datasets(IdentityPoolId=srv.pool_id, IdentityId=new_identity_id())
    assert error_code(excinfo) == ("TooManyRequestsException", 429)
    # Another pool is not affected.
    other = make_pool(srv, push=False)
    client.list_datasets(IdentityPoolId=other, IdentityId=new_identity_id())


def test_live_channel_hears_changes_made_on_another_replica(
    replicas: list[ServerProcess],
) -> None:
    pool = make_pool(replicas[0])
    identity_id, creds = unauthenticated_credentials(replicas[0], pool)
    response = open_stream(presigned_live_url(replicas[0], pool, identity_id, creds))
    assert response.readline() == b": connected\n"
    events: list[dict[str, Any]] = []
    reader = read_events_in_background(response, events)
    time.sleep(0.3)  # the listener of replica 0 is LISTENing by now
    written = Dataset(sync_client_for(replicas[2], creds), pool, identity_id, "far").update(
        [put("k", "v")], DeviceId="other-replica")
    reader.join(10)
    assert [(e["datasetName"], e["syncCount"], e["deviceId"]) for e in events] == [
        ("far", written[0]["SyncCount"], "other-replica")]


def test_a_change_is_announced_only_while_someone_listens(
    replicas: list[ServerProcess],
) -> None:
    """The live channel of an identity is listed in live_listeners while a replica has a
    live client of it: a change of an identity not listed sends no NOTIFY."""
    from cogsync.store.hot_statements import live_channel

    pool = make_pool(replicas[0])
    identity_id, creds = unauthenticated_credentials(replicas[0], pool)
    channel = live_channel(pool, identity_id)
    database = replicas[0].database
    assert database is not None

    def listed() -> int:
        with psycopg.connect(database, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM live_listeners WHERE channel = %s",
                               (channel,)).fetchone()
        return int(row[0]) if row else 0

    assert listed() == 0
    url = urlparse(presigned_live_url(replicas[1], pool, identity_id, creds))
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.request("GET", f"{url.path}?{url.query}")
    response = connection.getresponse()
    assert response.readline() == b": connected\n"
    assert listed() == 1
    # (Unlisted when the stream ends; the server notices a client that closed it only
    # when a keep-alive write fails, up to two heartbeats later: not waited for here.)
    response.close()
    connection.close()


def test_concurrent_syncs_across_replicas_lose_nothing(replicas: list[ServerProcess]) -> None:
    history.run_and_check([r.client() for r in replicas], replicas[0].pool_id,
                          new_identity_id(), ["shared-a", "shared-b"], writers=8, cycles=12)


def test_killing_a_replica_mid_storm_loses_no_acknowledged_write(
    replicas: list[ServerProcess],
) -> None:
    pool = replicas[0].pool_id
    identity = new_identity_id()

    def kill_a_replica_three_times() -> None:
        for _ in range(3):
            time.sleep(0.8)
            replicas[1].restart()  # kill -9, then start again

    storm = history.write_storm(lambda n, i: replicas[(n + i) % 3].client(), pool, identity,
                                kill_a_replica_three_times)
    assert len(storm.acked) > 20
    history.check_storm(storm, replicas[0].client(), pool, identity)
