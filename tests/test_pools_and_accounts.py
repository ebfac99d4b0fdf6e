"""Accounts own pools; events and pool configuration; limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.server import Credentials, ServerProcess, new_identity_id
from tests.test_sync_semantics import Dataset, error_code, put

LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:on-sync"
APP_ARN = "arn:aws:sns:us-east-1:123456789012:app/GCM/my-app"
ROLE = "arn:aws:iam::123456789012:role/cognito-push"


@pytest.fixture(scope="module")
def other_account(server: ServerProcess) -> tuple[Any, str]:
    """A second account: its client and its own pool."""
    account = json.loads(server.cli("accounts", "create", "--json"))
    pool = json.loads(server.cli("pools", "create", "--name", "theirs", "--account",
                                 account["AccountId"], "--json"))["IdentityPoolId"]
    client = server.client(credentials=Credentials(account["AccessKeyId"],
                                                   account["SecretAccessKey"]))
    return client, pool


POOL_CALLS = {
    "describe_identity_pool_usage": {},
    "get_cognito_events": {},
    "set_cognito_events": {"Events": {"SyncTrigger": LAMBDA}},
    "get_identity_pool_configuration": {},
    "set_identity_pool_configuration": {"CognitoStreams": {"StreamingStatus": "DISABLED"}},
    "list_datasets": {"IdentityId": "us-east-1:0000-1111"},
    "describe_identity_usage": {"IdentityId": "us-east-1:0000-1111"},
    "describe_dataset": {"IdentityId": "us-east-1:0000-1111", "DatasetName": "d"},
    "delete_dataset": {"IdentityId": "us-east-1:0000-1111", "DatasetName": "d"},
    "list_records": {"IdentityId": "us-east-1:0000-1111", "DatasetName": "d"},
}


@pytest.mark.parametrize("operation", sorted(POOL_CALLS))
def test_another_accounts_pool_is_not_found(sync: Any, other_account: tuple[Any, str],
                                            operation: str) -> None:
    _, their_pool = other_account
    with pytest.raises(ClientError) as excinfo:
        getattr(sync, operation)(IdentityPoolId=their_pool, **POOL_CALLS[operation])
    assert error_code(excinfo) == ("ResourceNotFoundException", 404)


def test_accounts_keep_apart(sync: Any, pool_id: str, other_account: tuple[Any, str]) -> None:
    client, their_pool = other_account
    identity = new_identity_id()
    Dataset(client, their_pool, identity).update([put("k", "theirs")])
    mine = {u["IdentityPoolId"] for u in sync.list_identity_pool_usage()["IdentityPoolUsages"]}
    theirs = {u["IdentityPoolId"] for u in
              client.list_identity_pool_usage()["IdentityPoolUsages"]}
    assert their_pool in theirs and their_pool not in mine
    assert pool_id in mine and pool_id not in theirs
    token = Dataset(client, their_pool, identity).list()["SyncSessionToken"]
    with pytest.raises(ClientError) as excinfo:
        sync.update_records(IdentityPoolId=their_pool, IdentityId=identity, DatasetName="data",
                            SyncSessionToken=token,
                            RecordPatches=[put("k", "mine", 1)])
    assert error_code(excinfo) == ("ResourceNotFoundException", 404)
    assert Dataset(client, their_pool, identity).values() == {"k": "theirs"}


def test_unknown_pool_is_not_found(sync: Any) -> None:
    with pytest.raises(ClientError) as excinfo:
        sync.describe_identity_pool_usage(IdentityPoolId="us-east-1:00000000-dead-beef")
    assert error_code(excinfo) == ("ResourceNotFoundException", 404)


def test_cognito_events_update_only_given_keys(server: ServerProcess) -> None:
    pool = json.loads(server.cli("pools", "create", "--name", "ev", "--json"))["IdentityPoolId"]
    client = server.client()
    assert client.get_cognito_events(IdentityPoolId=pool).get("Events", {}) == {}
    client.set_cognito_events(IdentityPoolId=pool, Events={"SyncTrigger": LAMBDA})
    assert client.get_cognito_events(IdentityPoolId=pool)["Events"] == {"SyncTrigger": LAMBDA}
    client.set_cognito_events(IdentityPoolId=pool, Events={})  # nothing given: unchanged
    assert client.get_cognito_events(IdentityPoolId=pool)["Events"] == {"SyncTrigger": LAMBDA}
    client.set_cognito_events(IdentityPoolId=pool, Events={"SyncTrigger": ""})  # removes it
    assert client.get_cognito_events(IdentityPoolId=pool).get("Events", {}) == {}


@pytest.mark.parametrize("events", [
    {"NoSuchEvent": LAMBDA},
    {"SyncTrigger": "not-an-arn"},
    {"SyncTrigger": "arn:aws:sns:us-east-1:123456789012:topic"},
    {"SyncTrigger": LAMBDA, "Other": LAMBDA},  # the model allows one entry at most
])
def test_cognito_events_validation(server: ServerProcess, pool_id: str,
                                   events: dict[str, str]) -> None:
    sync = server.client(parameter_validation=False)
    before = sync.get_cognito_events(IdentityPoolId=pool_id).get("Events", {})
    with pytest.raises(ClientError) as excinfo:
        sync.set_cognito_events(IdentityPoolId=pool_id, Events=events)
    assert error_code(excinfo) == ("InvalidParameterException", 400)
    assert sync.get_cognito_events(IdentityPoolId=pool_id).get("Events", {}) == before


def test_pool_configuration_round_trip(server: ServerProcess) -> None:
    pool = json.loads(server.cli("pools", "create", "--name", "cfg", "--json"))["IdentityPoolId"]
    client = server.client()
    empty = client.get_identity_pool_configuration(IdentityPoolId=pool)
    assert empty["IdentityPoolId"] == pool
    assert "PushSync" not in empty and "CognitoStreams" not in empty
    push = {"ApplicationArns": [APP_ARN], "RoleArn": ROLE}
    streams = {"StreamName": "sync-events", "RoleArn": ROLE, "StreamingStatus": "ENABLED"}
    out = client.set_identity_pool_configuration(IdentityPoolId=pool, PushSync=push,
                                                 CognitoStreams=streams)
    assert out["PushSync"] == push and out["CognitoStreams"] == streams
    # A later call that names one part leaves the other as it was.
    client.set_identity_pool_configuration(
        IdentityPoolId=pool, CognitoStreams={"StreamName": "sync-events",
                                             "StreamingStatus": "DISABLED"})
    got = client.get_identity_pool_configuration(IdentityPoolId=pool)
    assert got["PushSync"] == push
    assert got["CognitoStreams"] == {"StreamName": "sync-events", "StreamingStatus": "DISABLED"}


@pytest.mark.parametrize("config", [
    {"PushSync": {"ApplicationArns": ["arn:aws:sns:us-east-1:1:not-an-app"]}},
    {"PushSync": {"RoleArn": "short"}},
    {"PushSync": {"RoleArn": "arn:aws:iam::123456789012:user/not-a-role"}},
    {"CognitoStreams": {"StreamingStatus": "MAYBE", "StreamName": "s"}},
    {"CognitoStreams": {"StreamingStatus": "ENABLED"}},
    {"CognitoStreams": {"StreamName": "x" * 129}},
])
def test_pool_configuration_validation(server: ServerProcess, pool_id: str,
                                       config: dict[str, Any]) -> None:
    sync = server.client(parameter_validation=False)  # let the server do the judging
    before = sync.get_identity_pool_configuration(IdentityPoolId=pool_id)
    before.pop("ResponseMetadata")
    with pytest.raises(ClientError) as excinfo:
        sync.set_identity_pool_configuration(IdentityPoolId=pool_id, **config)
    assert error_code(excinfo) == ("InvalidParameterException", 400)
    after = sync.get_identity_pool_configuration(IdentityPoolId=pool_id)
    after.pop("ResponseMetadata")
    assert after == before


@pytest.fixture(scope="module")
def small_limits(tmp_path_factory: pytest.TempPathFactory) -> Any:
    proc = ServerProcess(tmp_path_factory.mktemp("limits"), env={
        "COGSYNC_MAX_DATASETS": "3", "COGSYNC_MAX_DATASET_BYTES": "100"}).start()
    yield proc
    proc.kill()


def test_dataset_count_limit(small_limits: ServerProcess) -> None:
    client = small_limits.client()
    identity = new_identity_id()
    for name in ("a", "b", "c"):
        Dataset(client, small_limits.pool_id, identity, name).update([put("k", "v")])
    extra = Dataset(client, small_limits.pool_id, identity, "d")
    with pytest.raises(ClientError) as excinfo:
        extra.update([put("k", "v")])
    assert error_code(excinfo) == ("LimitExceededException", 400)
    assert extra.list()["DatasetExists"] is False
    # Writing to an existing dataset still works; deleting one frees a place.
    Dataset(client, small_limits.pool_id, identity, "a").update([put("k2", "v")])
    client.delete_dataset(IdentityPoolId=small_limits.pool_id, IdentityId=identity,
                          DatasetName="b")
    assert extra.update([put("k", "v")])[0]["SyncCount"] == 1


def test_dataset_size_limit(small_limits: ServerProcess) -> None:
    client = small_limits.client()
    ds = Dataset(client, small_limits.pool_id, new_identity_id())
    ds.update([put("k", "v" * 90)])  # 91 bytes
    with pytest.raises(ClientError) as excinfo:
        ds.update([put("k2", "v" * 9)])  # would be 102 bytes
    assert error_code(excinfo) == ("LimitExceededException", 400)
    assert ds.values() == {"k": "v" * 90}
    # Replacing within the limit, or removing to make room, is fine.
    ds.update([put("k", "w" * 99, 1)])
    ds.update([{"Op": "remove", "Key": "k", "SyncCount": 2}, put("k2", "v" * 9)])
    assert ds.describe()["DataStorage"] == 11
