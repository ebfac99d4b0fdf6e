"""Cognito Streams to each backend, BulkPublish, and delivery that survives kill -9."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
from botocore.exceptions import ClientError

from tests.peers import DUMMY_AWS, AwsApiServer, free_port
from tests.server import ServerProcess, new_identity_id, wait_until
from tests.test_sync_semantics import Dataset, error_code, put


def enable_streams(server: ServerProcess, stream: str, pool_id: str | None = None) -> str:
    pool = pool_id or server.pool_id
    server.client().set_identity_pool_configuration(
        IdentityPoolId=pool,
        CognitoStreams={"StreamName": stream, "StreamingStatus": "ENABLED"})
    return pool


def write_some(server: ServerProcess, pool: str, identity: str) -> None:
    ds = Dataset(server.client(), pool, identity, "game")
    ds.update([put("level", "1"), put("name", "ada")], DeviceId="phone")
    ds.update([put("level", "2", 1)])
    ds.update([{"Op": "remove", "Key": "name", "SyncCount": 1}])


def check_records(records: list[dict[str, Any]], pool: str, identity: str) -> None:
    mine = [r for r in records if r["identityId"] == identity]
    assert [r["syncCount"] for r in mine] == [1, 2, 3]  # in order, once each
    first = mine[0]
    assert first["identityPoolId"] == pool and first["dataSetName"] == "game"
    assert first["operation"] == "replace" and first["payloadType"] == "Inline"
    assert isinstance(first["lastModifiedDate"], int)  # milliseconds
    assert sorted((r["key"], r["value"], r["op"]) for r in first["kinesisSyncRecords"]) == [
        ("level", "1", "replace"), ("name", "ada", "replace")]
    assert mine[2]["kinesisSyncRecords"] == [{
        "key": "name", "value": None, "syncCount": 3,
        "lastModifiedDate": mine[2]["kinesisSyncRecords"][0]["lastModifiedDate"],
        "deviceLastModifiedDate": None, "op": "remove"}]


def read_file_stream(folder: Path, stream: str) -> list[dict[str, Any]]:
    path = folder / f"{stream}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_file_streams_are_the_default(make_server: Any, tmp_path: Path) -> None:
    srv = make_server(data_dir=tmp_path / "data")
    pool = enable_streams(srv, "events")
    identity = new_identity_id()
    write_some(srv, pool, identity)
    folder = tmp_path / "data" / "streams"
    records = wait_until(lambda: len(read_file_stream(folder, "events")) >= 3 and
                         read_file_stream(folder, "events"))
    check_records(records, pool, identity)


def test_redis_streams(make_server: Any) -> None:
    stream = f"cogsync-test-{uuid.uuid4().hex[:8]}"
    srv = make_server("--streams", "redis://127.0.0.1:6379/0")
    pool = enable_streams(srv, stream)
    identity = new_identity_id()
    write_some(srv, pool, identity)
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        entries = wait_until(lambda: len(client.xrange(stream)) >= 3 and client.xrange(stream))
        records = [json.loads(fields[b"data"]) for _, fields in entries]
        assert {fields[b"partitionKey"] for _, fields in entries} == {identity.encode()}
        check_records(records, pool, identity)
    finally:
        client.delete(stream)


async def _read_nats(subject: str, count: int) -> list[dict[str, Any]]:
    import nats

    connection = await nats.connect("nats://127.0.0.1:4222")
    try:
        js = connection.jetstream()
        deadline = time.monotonic() + 10
        while True:  # the first delivery creates the JetStream stream: wait for it
            try:
                subscription = await js.pull_subscribe(subject, durable=None)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        messages: list[Any] = []
        while len(messages) < count and time.monotonic() < deadline:
            try:
                messages += await subscription.fetch(count - len(messages), timeout=1)
            except Exception:  # nats raises its own TimeoutError when nothing is there yet
                continue
        for message in messages:
            await message.ack()
        return [json.loads(m.data) for m in messages]
    finally:
        await connection.close()


def test_nats_jetstream(make_server: Any) -> None:
    subject = f"cogsync.test.{uuid.uuid4().hex[:8]}"
    srv = make_server("--streams", "nats://127.0.0.1:4222")
    pool = enable_streams(srv, subject)
    identity = new_identity_id()
    write_some(srv, pool, identity)
    records = asyncio.run(_read_nats(subject, 3))
    check_records(records, pool, identity)


@pytest.fixture(scope="module")
def aws_api() -> Iterator[AwsApiServer]:
    server = AwsApiServer()
    yield server
    server.stop()


def read_kinesis(endpoint: str, stream: str) -> list[dict[str, Any]]:
    client = boto3.client("kinesis", endpoint_url=endpoint, **_aws_kwargs())
    records: list[dict[str, Any]] = []
    for shard in client.describe_stream(StreamName=stream)["StreamDescription"]["Shards"]:
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        got = client.get_records(ShardIterator=iterator)["Records"]
        records += [dict(json.loads(r["Data"]), _key=r["PartitionKey"]) for r in got]
    return records


def _aws_kwargs() -> dict[str, str]:
    return {"region_name": "us-east-1", "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing"}


def test_kinesis_api(make_server: Any, aws_api: AwsApiServer) -> None:
    stream = f"cogsync-{uuid.uuid4().hex[:8]}"
    kinesis = boto3.client("kinesis", endpoint_url=aws_api.endpoint, **_aws_kwargs())
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    srv = make_server("--streams", f"kinesis://127.0.0.1:{aws_api.port}", env=DUMMY_AWS)
    pool = enable_streams(srv, stream)
    identity = new_identity_id()
    write_some(srv, pool, identity)
    records = wait_until(lambda: len(read_kinesis(aws_api.endpoint, stream)) >= 3 and
                         read_kinesis(aws_api.endpoint, stream))
    assert {r.pop("_key") for r in records} == {identity}
    check_records(records, pool, identity)


def test_streams_off_publishes_nothing(make_server: Any, tmp_path: Path) -> None:
    srv = make_server(data_dir=tmp_path / "quiet")
    srv.client().set_identity_pool_configuration(
        IdentityPoolId=srv.pool_id,
        CognitoStreams={"StreamName": "off", "StreamingStatus": "DISABLED"})
    write_some(srv, srv.pool_id, new_identity_id())
    time.sleep(0.5)
    assert read_file_stream(tmp_path / "quiet" / "streams", "off") == []


def test_delivery_survives_kill_9_between_commit_and_delivery(make_server: Any) -> None:
    """Writes acknowledged while the stream is unreachable arrive after a crash."""
    stream = f"cogsync-crash-{uuid.uuid4().hex[:8]}"
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    srv = make_server("--streams", down, env={"COGSYNC_OUTBOX_BACKOFF": "0.05",
                                              "COGSYNC_LEASE_SECONDS": "1"})
    pool = enable_streams(srv, stream)
    identity = new_identity_id()
    write_some(srv, pool, identity)
    srv.restart(["--streams", "redis://127.0.0.1:6379/0"])
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        entries = wait_until(lambda: len(client.xrange(stream)) >= 3 and client.xrange(stream))
        check_records([json.loads(f[b"data"]) for _, f in entries], pool, identity)
    finally:
        client.delete(stream)


def test_bulk_publish(make_server: Any, tmp_path: Path) -> None:
    srv = make_server(data_dir=tmp_path / "bulk")
    client = srv.client()
    pool = srv.pool_id
    details = client.get_bulk_publish_details(IdentityPoolId=pool)
    assert details["BulkPublishStatus"] == "NOT_STARTED"
    with pytest.raises(ClientError) as excinfo:  # streaming is not enabled yet
        client.bulk_publish(IdentityPoolId=pool)
    assert error_code(excinfo) == ("InvalidParameterException", 400)
    identities = [new_identity_id() for _ in range(3)]
    for identity in identities:
        for name in ("a", "b"):
            Dataset(client, pool, identity, name).update([put("k", f"{identity}/{name}")])
    enable_streams(srv, "bulk")
    assert client.bulk_publish(IdentityPoolId=pool)["IdentityPoolId"] == pool
    done = wait_until(lambda: client.get_bulk_publish_details(IdentityPoolId=pool)[
        "BulkPublishStatus"] == "SUCCEEDED", timeout=20)
    assert done
    details = client.get_bulk_publish_details(IdentityPoolId=pool)
    assert details["BulkPublishStartTime"] <= details["BulkPublishCompleteTime"]
    records = read_file_stream(tmp_path / "bulk" / "streams", "bulk")
    published = {(r["identityId"], r["dataSetName"]): r for r in records}
    assert set(published) == {(i, n) for i in identities for n in ("a", "b")}
    one = published[(identities[0], "a")]["kinesisSyncRecords"]
    assert [(r["key"], r["value"]) for r in one] == [("k", f"{identities[0]}/a")]
    with pytest.raises(ClientError) as excinfo:
        client.bulk_publish(IdentityPoolId=pool)
    assert error_code(excinfo) == ("AlreadyStreamedException", 400)


def test_bulk_publish_duplicate_failure_and_resume(make_server: Any) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    env = {"COGSYNC_OUTBOX_BACKOFF": "0.05", "COGSYNC_OUTBOX_MAX_ATTEMPTS": "1000",
           "COGSYNC_JOB_STALE_SECONDS": "1", "COGSYNC_LEASE_SECONDS": "1"}
    srv = make_server("--streams", down, env=env)
    client = srv.client()
    stream = f"cogsync-bulk-{uuid.uuid4().hex[:8]}"
    Dataset(client, srv.pool_id, new_identity_id(), "d").update([put("k", "v")])
    enable_streams(srv, stream)
    client.bulk_publish(IdentityPoolId=srv.pool_id)
    time.sleep(0.5)
    assert client.get_bulk_publish_details(IdentityPoolId=srv.pool_id)[
        "BulkPublishStatus"] == "IN_PROGRESS"
    with pytest.raises(ClientError) as excinfo:
        client.bulk_publish(IdentityPoolId=srv.pool_id)
    assert error_code(excinfo) == ("DuplicateRequestException", 400)
    # A crash mid-job: the restarted server takes the job over and finishes it.
    srv.restart(["--streams", "redis://127.0.0.1:6379/0"])
    try:
        status = wait_until(lambda: srv.client().get_bulk_publish_details(
            IdentityPoolId=srv.pool_id)["BulkPublishStatus"] == "SUCCEEDED", timeout=20)
        assert status
        assert len(redis.Redis().xrange(stream)) >= 1
    finally:
        redis.Redis().delete(stream)


def test_bulk_publish_fails_when_delivery_dies(make_server: Any) -> None:
    down = f"redis://127.0.0.1:{free_port()}/0"
    srv = make_server("--streams", down, env={"COGSYNC_OUTBOX_BACKOFF": "0.05",
                                              "COGSYNC_OUTBOX_MAX_ATTEMPTS": "2"})
    client = srv.client()
    Dataset(client, srv.pool_id, new_identity_id(), "d").update([put("k", "v")])
    enable_streams(srv, "never")
    client.bulk_publish(IdentityPoolId=srv.pool_id)
    failed = wait_until(lambda: client.get_bulk_publish_details(IdentityPoolId=srv.pool_id)[
        "BulkPublishStatus"] == "FAILED", timeout=20)
    assert failed
    message = client.get_bulk_publish_details(IdentityPoolId=srv.pool_id)["FailureMessage"]
    assert "could not be delivered" in message
