"""Test controls (``--test-controls``): injected faults and server-side moves, driven as
other people's tests drive them (``cogsync.testing.Controls``: signed HTTP calls with a
developer key), with real clients meeting the results."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from cogsync.testing import ControlError, Controls
from tests.identity_helpers import (
    sync_client_for,
    unauthenticated_credentials,
    unsigned_identity_client,
)
from tests.server import REGION, ServerProcess, new_identity_id
from tests.test_sync_semantics import Dataset, error_code, put, remove

NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture(scope="module")
def controlled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("controlled"), ["--test-controls"]).start()
    yield proc
    proc.stop()


@pytest.fixture
def controls(controlled: ServerProcess) -> Iterator[Controls]:
    assert controlled.credentials is not None
    found = Controls(controlled.endpoint, REGION, controlled.credentials.access_key_id,
                     controlled.credentials.secret_access_key)
    yield found
    found.clear()


def _client(server: ServerProcess, service: str = "cognito-sync") -> Any:
    """A developer client that never retries: each call takes one use of a fault."""
    assert server.credentials is not None
    return boto3.client(service, endpoint_url=server.endpoint, region_name=REGION,
                        aws_access_key_id=server.credentials.access_key_id,
                        aws_secret_access_key=server.credentials.secret_access_key,
                        config=NO_RETRIES)


@pytest.mark.parametrize(("error", "status", "code"), [
    ("ResourceConflictException", None, ("ResourceConflictException", 409)),
    ("TooManyRequests", None, ("TooManyRequestsException", 429)),
    ("LambdaThrottledException", None, ("LambdaThrottledException", 429)),
    ("InternalErrorException", None, ("InternalErrorException", 500)),
    ("LimitExceededException", None, ("LimitExceededException", 400)),
    ("ServiceUnavailable", 503, ("ServiceUnavailableException", 503)),
])
def test_the_next_calls_answer_the_error_then_all_is_as_before(
    controlled: ServerProcess, controls: Controls, error: str, status: int | None,
    code: tuple[str, int],
) -> None:
    ds = Dataset(_client(controlled), controlled.pool_id, new_identity_id())
    token = ds.list()["SyncSessionToken"]
    fault = controls.fail("UpdateRecords", error, count=2, status=status)
    assert (fault["Error"], fault["Status"], fault["Remaining"]) == (*code, 2)
    for _ in range(2):
        with pytest.raises(ClientError) as excinfo:
            ds.update([put("k", "v")], token)
        assert error_code(excinfo) == code
    assert ds.update([put("k", "v")], token)[0]["SyncCount"] == 1  # nothing was applied
    [listed] = controls.faults()
    assert (listed["Hits"], listed["Remaining"]) == (2, 0)


def test_a_fault_hits_only_the_identity_and_dataset_it_names(
    controlled: ServerProcess, controls: Controls
) -> None:
    sync = _client(controlled)
    me, other = new_identity_id(), new_identity_id()
    controls.fail("ListRecords", "TooManyRequestsException", count=5, identity_id=me,
                  dataset="settings")
    Dataset(sync, controlled.pool_id, other, "settings").list()
    Dataset(sync, controlled.pool_id, me, "notes").list()
    with pytest.raises(ClientError) as excinfo:
        Dataset(sync, controlled.pool_id, me, "settings").list()
    assert error_code(excinfo) == ("TooManyRequestsException", 429)
    assert controls.faults()[0]["Hits"] == 1


def test_a_delay_holds_the_call_then_runs_it(
    controlled: ServerProcess, controls: Controls
) -> None:
    controls.delay("DescribeIdentityPoolUsage", 0.5)
    began = time.monotonic()
    usage = _client(controlled).describe_identity_pool_usage(IdentityPoolId=controlled.pool_id)
    assert time.monotonic() - began >= 0.5  # a lower bound: it cannot come sooner
    assert usage["IdentityPoolUsage"]["IdentityPoolId"] == controlled.pool_id
    assert controls.faults()[0]["Hits"] == 1


def test_cognito_identity_calls_take_faults_too(
    controlled: ServerProcess, controls: Controls
) -> None:
    public = boto3.client("cognito-identity", endpoint_url=controlled.endpoint,
                          region_name=REGION, config=NO_RETRIES.merge(
                              Config(signature_version=UNSIGNED)))
    controls.fail("GetId", "TooManyRequestsException")
    controls.fail("GetCredentialsForIdentity", "InternalError")
    with pytest.raises(ClientError) as excinfo:
        public.get_id(IdentityPoolId=controlled.pool_id)
    assert error_code(excinfo) == ("TooManyRequestsException", 400)  # as the model has it
    identity_id = public.get_id(IdentityPoolId=controlled.pool_id)["IdentityId"]
    with pytest.raises(ClientError) as excinfo:
        public.get_credentials_for_identity(IdentityId=identity_id)
    assert error_code(excinfo) == ("InternalErrorException", 500)
    assert public.get_credentials_for_identity(IdentityId=identity_id)["Credentials"]


@pytest.mark.parametrize("body", [
    {"Operation": "NoSuchOperation", "Error": "TooManyRequestsException"},
    {"Operation": "ListRecords"},
    {"Operation": "ListRecords", "Error": "MadeUpException"},
    {"Operation": "ListRecords", "Error": "TooManyRequestsException", "Count": 0},
    {"Operation": "ListRecords", "DelaySeconds": -1},
    {"Operation": "ListRecords", "DelaySeconds": "soon"},
    {"Operation": "ListRecords", "Error": "TooManyRequestsException", "Status": 200},
    {"Operation": "ListRecords", "Error": "TooManyRequestsException", "Surprise": 1},
    {"Operation": "ListRecords", "Error": "TooManyRequestsException", "IdentityId": 5},
])
def test_a_bad_fault_is_refused_and_changes_nothing(controls: Controls,
                                                    body: dict[str, Any]) -> None:
    with pytest.raises(ControlError) as excinfo:
        controls.call("POST", "faults", body)
    assert (excinfo.value.status, excinfo.value.code) == (400, "InvalidParameterException")
    assert controls.faults() == []


def _raw(server: ServerProcess, method: str, path: str,
         credentials: Credentials | None = None) -> tuple[int, str]:
    """A control request, signed with ``credentials`` (or not at all)."""
    url = server.endpoint + path
    request = AWSRequest(method=method, url=url, data=b"{}",
                         headers={"Content-Type": "application/json"})
    if credentials is not None:
        SigV4Auth(credentials, "cognito-sync", REGION).add_auth(request)
    prepared = urllib.request.Request(url, data=b"{}", method=method,
                                      headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(prepared, timeout=30) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["__type"]


def test_controls_take_a_developer_key_and_a_server_that_allows_them(
    controlled: ServerProcess, server: ServerProcess
) -> None:
    assert controlled.credentials is not None and server.credentials is not None
    key = controlled.credentials
    developer = Credentials(key.access_key_id, key.secret_access_key)
    assert _raw(controlled, "GET", "/_cogsync/test/faults", developer) == (200, "")
    assert _raw(controlled, "GET", "/_cogsync/test/faults") == (
        403, "MissingAuthenticationTokenException")
    assert _raw(controlled, "GET", "/_cogsync/test/faults",
                Credentials(key.access_key_id, "not-the-secret")) == (
        403, "InvalidSignatureException")
    _, creds = unauthenticated_credentials(controlled, controlled.pool_id)
    as_identity = Credentials(creds["AccessKeyId"], creds["SecretKey"], creds["SessionToken"])
    assert _raw(controlled, "GET", "/_cogsync/test/faults", as_identity) == (
        403, "NotAuthorizedException")
    assert _raw(controlled, "GET", "/_cogsync/test/nothing", developer) == (
        404, "UnknownOperationException")
    assert _raw(controlled, "PUT", "/_cogsync/test/faults", developer) == (
        405, "MethodNotAllowed")
    other = Credentials(server.credentials.access_key_id,
                        server.credentials.secret_access_key)
    assert _raw(server, "GET", "/_cogsync/test/faults", other) == (
        403, "TestControlsDisabledException")  # the shared server runs without the flag


def test_a_write_from_another_device_moves_the_sync_count(
    controlled: ServerProcess, controls: Controls
) -> None:
    ds = Dataset(_client(controlled), controlled.pool_id, new_identity_id(), "settings")
    ds.update([put("theme", "dark"), put("font", "serif")])
    token = ds.list()["SyncSessionToken"]  # this device's view: everything at count 1
    written = controls.write_records(controlled.pool_id, ds.where["IdentityId"], "settings",
                                     {"theme": "blue", "font": None}, device_id="tablet")
    assert written["DatasetSyncCount"] == 2
    with pytest.raises(ClientError) as excinfo:
        ds.update([put("theme", "light", 1)], token)  # what a second device meets
    assert error_code(excinfo) == ("ResourceConflictException", 409)
    changed = {r["Key"]: r for r in ds.list(last=1)["Records"]}
    assert changed["theme"]["Value"] == "blue" and "Value" not in changed["font"]
    assert {r["SyncCount"] for r in changed.values()} == {2}
    assert {r["LastModifiedBy"] for r in changed.values()} == {"tablet"}
    assert ds.describe()["LastModifiedBy"] == "tablet"
    with pytest.raises(ControlError) as refused:
        controls.write_records(controlled.pool_id, "not an identity", "settings", {"a": "b"})
    assert refused.value.code == "InvalidParameterException"


def test_a_dataset_deleted_on_the_server_tells_old_clients_to_wipe(
    controlled: ServerProcess, controls: Controls
) -> None:
    ds = Dataset(_client(controlled), controlled.pool_id, new_identity_id())
    ds.update([put("a", "1")])
    gone = controls.delete_dataset(controlled.pool_id, ds.where["IdentityId"], "data")
    assert gone["Dataset"]["NumRecords"] == 1
    assert ds.list(last=1)["DatasetDeletedAfterRequestedSyncCount"] is True
    with pytest.raises(ControlError) as excinfo:
        controls.delete_dataset(controlled.pool_id, ds.where["IdentityId"], "data")
    assert (excinfo.value.status, excinfo.value.code) == (404, "ResourceNotFoundException")


def test_merging_identities_moves_their_datasets(
    controlled: ServerProcess, controls: Controls
) -> None:
    public = unsigned_identity_client(controlled)
    source, target = (public.get_id(IdentityPoolId=controlled.pool_id)["IdentityId"]
                      for _ in range(2))
    sync = _client(controlled)
    Dataset(sync, controlled.pool_id, source, "settings").update([put("a", "from-source")])
    Dataset(sync, controlled.pool_id, target, "settings").update([put("b", "kept")])
    assert controls.merge_identities(controlled.pool_id, source, target) == target
    kept = Dataset(sync, controlled.pool_id, target, "settings").list()
    assert kept["MergedDatasetNames"] == [f"settings.{source}"]
    moved = Dataset(sync, controlled.pool_id, target, f"settings.{source}").values()
    assert moved == {"a": "from-source"}
    with pytest.raises(ClientError) as excinfo:
        _client(controlled, "cognito-identity").describe_identity(IdentityId=source)
    assert error_code(excinfo)[0] == "ResourceNotFoundException"
    for pair, code in (((target, target), "InvalidParameterException"),
                       ((new_identity_id(), target), "ResourceNotFoundException")):
        with pytest.raises(ControlError) as refused:
            controls.merge_identities(controlled.pool_id, *pair)
        assert refused.value.code == code


def test_expired_sessions_and_credentials_are_refused_until_renewed(
    controlled: ServerProcess, controls: Controls
) -> None:
    public = unsigned_identity_client(controlled)
    me, creds = unauthenticated_credentials(controlled, controlled.pool_id)
    bystander, their_creds = unauthenticated_credentials(controlled, controlled.pool_id)
    mine = Dataset(sync_client_for(controlled, creds), controlled.pool_id, me)
    theirs = Dataset(sync_client_for(controlled, their_creds), controlled.pool_id, bystander)
    old_token = mine.list()["SyncSessionToken"]
    their_token = theirs.list()["SyncSessionToken"]

    controls.expire_sessions(me)
    with pytest.raises(ClientError) as excinfo:
        mine.list()
    assert error_code(excinfo) == ("ExpiredTokenException", 403)
    renewed = public.get_credentials_for_identity(IdentityId=me)["Credentials"]
    mine = Dataset(sync_client_for(controlled, renewed), controlled.pool_id, me)
    with pytest.raises(ClientError) as excinfo:
        mine.update([put("k", "v")], old_token)
    assert error_code(excinfo) == ("InvalidParameterException", 400)
    assert "expired" in str(excinfo.value)
    assert mine.update([put("k", "v")])[0]["SyncCount"] == 1  # a new session works
    assert theirs.update([put("k", "v")], their_token)  # another identity: untouched

    controls.expire_sessions(credentials=False)  # every identity's sessions, not credentials
    with pytest.raises(ClientError) as excinfo:
        theirs.update([remove("k", 1)], their_token)
    assert error_code(excinfo) == ("InvalidParameterException", 400)
    assert theirs.update([remove("k", 1)])[0]["SyncCount"] == 2
