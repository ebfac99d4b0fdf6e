"""Every row of the authorization matrix, identity isolation, and bad credentials."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from botocore.exceptions import ClientError

from tests.identity_helpers import (
    make_pool,
    sync_client_for,
    unauthenticated_credentials,
)
from tests.server import Credentials, ServerProcess
from tests.test_sync_semantics import Dataset, error_code, put

DEVELOPER_ONLY = {
    "list_identity_pool_usage", "describe_identity_pool_usage", "bulk_publish",
    "get_bulk_publish_details", "get_cognito_events", "set_cognito_events",
    "get_identity_pool_configuration", "set_identity_pool_configuration",
}
IDENTITY_ONLY = {"register_device", "subscribe_to_dataset", "unsubscribe_from_dataset"}
BOTH = {"list_records", "update_records", "describe_dataset", "list_datasets",
        "delete_dataset", "describe_identity_usage"}


class World:
    """A pool with push configured, two identities with data, a device for the first."""

    def __init__(self, server: ServerProcess):
        self.pool = make_pool(server)
        self.developer = server.client()
        self.alice, alice_creds = unauthenticated_credentials(server, self.pool)
        self.alice_creds = alice_creds
        self.bob, bob_creds = unauthenticated_credentials(server, self.pool)
        self.as_alice = sync_client_for(server, alice_creds)
        self.as_bob = sync_client_for(server, bob_creds)
        Dataset(self.as_alice, self.pool, self.alice, "d").update([put("k", "alice")])
        Dataset(self.as_bob, self.pool, self.bob, "d").update([put("k", "bob")])
        self.alice_device = self.as_alice.register_device(
            IdentityPoolId=self.pool, IdentityId=self.alice, Platform="GCM",
            Token="alice-token")["DeviceId"]
        self.bob_device = self.as_bob.register_device(
            IdentityPoolId=self.pool, IdentityId=self.bob, Platform="GCM",
            Token="bob-token")["DeviceId"]

    def args(self, operation: str, identity_id: str, device: str) -> dict[str, Any]:
        """Valid arguments of each operation, aimed at ``identity_id``."""
        pool = {"IdentityPoolId": self.pool}
        who = {**pool, "IdentityId": identity_id}
        dataset = {**who, "DatasetName": "d"}
        token = self.developer.list_records(**dataset)["SyncSessionToken"]
        return {
            "list_identity_pool_usage": {},
            "describe_identity_pool_usage": pool,
            "bulk_publish": pool,
            "get_bulk_publish_details": pool,
            "get_cognito_events": pool,
            "set_cognito_events": {**pool, "Events": {}},
            "get_identity_pool_configuration": pool,
            "set_identity_pool_configuration": pool,
            "register_device": {**who, "Platform": "GCM", "Token": "t-" + identity_id},
            "subscribe_to_dataset": {**dataset, "DeviceId": device},
            "unsubscribe_from_dataset": {**dataset, "DeviceId": device},
            "list_records": dataset,
            "update_records": {**dataset, "SyncSessionToken": token, "RecordPatches": []},
            "describe_dataset": dataset,
            "list_datasets": who,
            "describe_identity_usage": who,
            "delete_dataset": {**who, "DatasetName": "nonexistent"},
        }[operation]


@pytest.fixture(scope="module")
def world(server: ServerProcess) -> World:
    return World(server)


def _outcome(call: Callable[..., Any], args: dict[str, Any]) -> str:
    try:
        call(**args)
    except ClientError as exc:
        return exc.response["Error"]["Code"]
    return "ok"


def test_the_matrix_names_all_seventeen_operations(server: ServerProcess) -> None:
    names = set(server.client().meta.service_model.operation_names)
    snake = {"".join("_" + c.lower() if c.isupper() else c for c in n).lstrip("_")
             for n in names}
    assert snake == DEVELOPER_ONLY | IDENTITY_ONLY | BOTH


@pytest.mark.parametrize("operation", sorted(DEVELOPER_ONLY))
def test_developer_only_operations(world: World, operation: str) -> None:
    args = world.args(operation, world.alice, world.alice_device)
    assert _outcome(getattr(world.as_alice, operation), args) == "NotAuthorizedException"
    # BulkPublish needs Cognito Streams enabled, which this pool has not.
    expected = "InvalidParameterException" if operation == "bulk_publish" else "ok"
    assert _outcome(getattr(world.developer, operation), args) == expected


@pytest.mark.parametrize("operation", sorted(IDENTITY_ONLY))
def test_identity_only_operations(world: World, operation: str) -> None:
    args = world.args(operation, world.alice, world.alice_device)
    assert _outcome(getattr(world.developer, operation), args) == "NotAuthorizedException"
    assert _outcome(getattr(world.as_alice, operation), args) == "ok"


@pytest.mark.parametrize("operation", sorted(BOTH - {"delete_dataset"}))
def test_operations_for_both(world: World, operation: str) -> None:
    args = world.args(operation, world.alice, world.alice_device)
    assert _outcome(getattr(world.developer, operation), args) == "ok"
    assert _outcome(getattr(world.as_alice, operation), args) == "ok"


def test_delete_dataset_for_both(world: World) -> None:
    for client in (world.developer, world.as_alice):
        where = dict(IdentityPoolId=world.pool, IdentityId=world.alice, DatasetName="tmp")
        Dataset(client, world.pool, world.alice, "tmp").update([put("x", "y")])
        assert client.delete_dataset(**where)["Dataset"]["DatasetName"] == "tmp"


@pytest.mark.parametrize("operation", sorted((BOTH | IDENTITY_ONLY) - {"register_device"}))
def test_an_identity_never_touches_another(world: World, operation: str) -> None:
    args = world.args(operation, world.bob, world.bob_device)
    if operation == "delete_dataset":
        args["DatasetName"] = "d"
    assert _outcome(getattr(world.as_alice, operation), args) == "NotAuthorizedException"
    assert Dataset(world.developer, world.pool, world.bob, "d").values() == {"k": "bob"}


def test_an_identity_cannot_register_a_device_for_another(world: World) -> None:
    args = world.args("register_device", world.bob, world.bob_device)
    assert _outcome(world.as_alice.register_device, args) == "NotAuthorizedException"


def test_an_identity_stays_in_its_pool(server: ServerProcess, world: World) -> None:
    other_pool = make_pool(server)
    args = {"IdentityPoolId": other_pool, "IdentityId": world.alice, "DatasetName": "d"}
    assert _outcome(world.as_alice.list_records, args) == "NotAuthorizedException"


def test_device_and_dataset_must_exist(world: World) -> None:
    where = dict(IdentityPoolId=world.pool, IdentityId=world.alice)
    missing_device = {**where, "DatasetName": "d", "DeviceId": "no-such-device"}
    assert _outcome(world.as_alice.subscribe_to_dataset, missing_device) == (
        "ResourceNotFoundException")
    missing_dataset = {**where, "DatasetName": "nope", "DeviceId": world.alice_device}
    assert _outcome(world.as_alice.subscribe_to_dataset, missing_dataset) == (
        "ResourceNotFoundException")
    # Bob's device is not Alice's to use.
    foreign = {**where, "DatasetName": "d", "DeviceId": world.bob_device}
    assert _outcome(world.as_alice.subscribe_to_dataset, foreign) == "ResourceNotFoundException"


def test_register_device_is_stable_and_needs_push_config(server: ServerProcess,
                                                         world: World) -> None:
    args = {"IdentityPoolId": world.pool, "IdentityId": world.alice, "Platform": "GCM",
            "Token": "alice-token"}
    assert world.as_alice.register_device(**args)["DeviceId"] == world.alice_device
    assert _outcome(world.as_alice.register_device, {**args, "Platform": "APNS"}) == (
        "InvalidConfigurationException")
    bare_pool = make_pool(server, push=False)
    identity_id, creds = unauthenticated_credentials(server, bare_pool)
    client = sync_client_for(server, creds)
    assert _outcome(client.register_device, {**args, "IdentityPoolId": bare_pool,
                                             "IdentityId": identity_id}) == (
        "InvalidConfigurationException")


def test_expired_identity_credentials(make_server: Any) -> None:
    # 3 s (expiries are cut to the second): long enough for the first call on a busy machine
    srv = make_server(env={"COGSYNC_CREDENTIALS_LIFETIME": "3"})
    pool = make_pool(srv, push=False)
    identity_id, creds = unauthenticated_credentials(srv, pool)
    client = sync_client_for(srv, creds)
    client.list_datasets(IdentityPoolId=pool, IdentityId=identity_id)
    time.sleep(3.2)
    with pytest.raises(ClientError) as excinfo:
        client.list_datasets(IdentityPoolId=pool, IdentityId=identity_id)
    assert error_code(excinfo) == ("ExpiredTokenException", 403)


def test_forged_identity_credentials(server: ServerProcess, world: World) -> None:
    _, creds = unauthenticated_credentials(server, world.pool)
    token = creds["SessionToken"]
    forgeries = [
        {**creds, "SessionToken": token[:-5] + ("AAAAA" if not token.endswith("AAAAA")
                                                else "BBBBB")},
        {**creds, "SecretKey": "x" * 40},
        {**creds, "AccessKeyId": "ASIAAAAAAAAAAAAAAAAA"},
        {**creds, "SessionToken": "not-a-token"},
    ]
    expected = ["UnrecognizedClientException", "InvalidSignatureException",
                "UnrecognizedClientException", "UnrecognizedClientException"]
    for forged, code in zip(forgeries, expected, strict=True):
        client = sync_client_for(server, forged)
        with pytest.raises(ClientError) as excinfo:
            client.list_datasets(IdentityPoolId=world.pool, IdentityId=world.alice)
        assert error_code(excinfo) == (code, 403)


def test_credentials_of_another_server_are_refused(make_server: Any) -> None:
    one = make_server(env={"COGSYNC_SECRET_KEY": "33" * 32})
    two = make_server(env={"COGSYNC_SECRET_KEY": "44" * 32})
    pool = make_pool(one, push=False)
    identity_id, creds = unauthenticated_credentials(one, pool)
    client = sync_client_for(two, creds)
    with pytest.raises(ClientError) as excinfo:
        client.list_datasets(IdentityPoolId=pool, IdentityId=identity_id)
    assert error_code(excinfo) == ("UnrecognizedClientException", 403)


def _json_form_outcome(server: ServerProcess, credentials: Any, operation: str,
                       args: dict[str, Any]) -> str:
    """The same call in the JSON form of the API reference: POST / with X-Amz-Target."""
    body = json.dumps(args).encode()
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"com.amazonaws.cognito.sync.model.AWSCognitoSyncService.{operation}",
    })
    SigV4Auth(credentials, "cognito-sync", "us-east-1").add_auth(request)
    sent = urllib.request.Request(server.endpoint + "/", data=body, method="POST",
                                  headers=dict(request.headers))
    try:
        with urllib.request.urlopen(sent, timeout=10) as response:
            json.loads(response.read())
            return "ok"
    except urllib.error.HTTPError as exc:
        return str(exc.headers["x-amzn-errortype"])


@pytest.mark.parametrize("operation", sorted(DEVELOPER_ONLY | IDENTITY_ONLY | BOTH))
def test_every_operation_in_the_json_form(server: ServerProcess, world: World,
                                          operation: str) -> None:
    developer_creds = BotoCredentials(server.credentials.access_key_id,
                                      server.credentials.secret_access_key)
    alice = BotoCredentials(world.alice_creds["AccessKeyId"], world.alice_creds["SecretKey"],
                            world.alice_creds["SessionToken"])
    client, creds = ((world.as_alice, alice) if operation in IDENTITY_ONLY
                     else (world.developer, developer_creds))
    args = world.args(operation, world.alice, world.alice_device)
    name = client.meta.method_to_api_mapping[operation]
    assert _json_form_outcome(server, creds, name, args) == _outcome(
        getattr(client, operation), args)


def test_another_accounts_developer_finds_no_pool_whatever_else_is_wrong(
        server: ServerProcess, world: World) -> None:
    account = json.loads(server.cli("accounts", "create", "--json"))
    stranger = server.client(credentials=Credentials(account["AccessKeyId"],
                                                     account["SecretAccessKey"]))
    where = dict(IdentityPoolId=world.pool, IdentityId=world.alice, DatasetName="d")
    token = world.developer.list_records(**where)["SyncSessionToken"]  # the owner's, valid
    for patches in ([put("k", "x")], [put("k", "x"), put("k", "y")],  # a duplicate key
                    [put("k", "x", -1)], [{"Op": "replace", "Key": "k", "SyncCount": 1}]):
        for session in (token, "not-a-token"):
            outcome = _outcome(stranger.update_records, {
                **where, "SyncSessionToken": session, "RecordPatches": patches})
            assert outcome == "ResourceNotFoundException", (patches, session)
    assert Dataset(world.developer, world.pool, world.alice, "d").values() == {"k": "alice"}
