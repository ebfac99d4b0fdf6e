"""A signature authorizes exactly one operation: the one its path names.

SigV4 signs a path with its "." and ".." segments resolved (botocore does so on the
client), so ``.../datasets/D/subscriptions/..`` carries a valid signature of
``.../datasets/D``. Paths that are not their own normal form are refused, and so are the
names "." and ".." for members that travel in the path. Also here: an unsigned
X-Amz-Target, the double-encoded path the Android SDK signs, numbers that only look
like numbers, and another account's UpdateRecords.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from botocore.exceptions import ClientError

from tests.identity_helpers import make_pool, new_unauthenticated
from tests.server import REGION, Credentials, ServerProcess, new_identity_id
from tests.test_wire_errors import (
    SYNC_TARGET,
    Reply,
    SignedHttp,
    assert_aws_error,
    dataset_path,
    exchange,
)

PATCH = {"Op": "replace", "Key": "k", "Value": "v", "SyncCount": 0}


@pytest.fixture(scope="module")
def phone(server: ServerProcess) -> dict[str, Any]:
    """An identity with a dataset D of one record and a registered device."""
    pool_id = make_pool(server)
    identity_id, client = new_unauthenticated(server, pool_id)
    where = {"IdentityPoolId": pool_id, "IdentityId": identity_id, "DatasetName": "D"}
    token = client.list_records(**where)["SyncSessionToken"]
    client.update_records(**where, SyncSessionToken=token, RecordPatches=[PATCH])
    device = client.register_device(IdentityPoolId=pool_id, IdentityId=identity_id,
                                    Platform="GCM", Token="device-token")["DeviceId"]
    client.subscribe_to_dataset(**where, DeviceId=device)
    return {"client": client, "where": where, "device": device}


def _state(client: Any, where: dict[str, str]) -> Any:
    listing = client.list_records(**where)
    return listing["DatasetSyncCount"], [(r["Key"], r["Value"]) for r in listing["Records"]]


def _refused(call: Any, code: str = "InvalidParameterException", status: int = 400) -> str:
    with pytest.raises(ClientError) as excinfo:
        call()
    response = excinfo.value.response
    assert response["Error"]["Code"] == code, response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    return str(response["Error"]["Message"])


# --- dot segments, with boto3 as an app would call it ------------------------------------

def test_unsubscribe_from_dot_dot_never_deletes_the_dataset(phone: dict[str, Any]) -> None:
    client, where = phone["client"], phone["where"]
    before = _state(client, where)
    for device in ("..", "."):
        _refused(lambda d=device: client.unsubscribe_from_dataset(**where, DeviceId=d))
    assert _state(client, where) == before == (1, [("k", "v")])


def test_subscribe_with_dot_dot_never_writes_the_dataset(phone: dict[str, Any]) -> None:
    client, where = phone["client"], phone["where"]
    before = _state(client, where)
    for device in ("..", "."):
        _refused(lambda d=device: client.subscribe_to_dataset(**where, DeviceId=d))
    assert _state(client, where) == before


@pytest.mark.parametrize("name", ["..", "."])
def test_dataset_named_dot_or_dot_dot_is_refused_by_every_operation(
        phone: dict[str, Any], name: str) -> None:
    """Not DescribeIdentityUsage (".."), not ListDatasets ("."): refused, and never made."""
    client = phone["client"]
    where = {**phone["where"], "DatasetName": name}
    assert "cannot be addressed" in _refused(lambda: client.describe_dataset(**where))
    _refused(lambda: client.list_records(**where))
    _refused(lambda: client.delete_dataset(**where))
    datasets = client.list_datasets(IdentityPoolId=where["IdentityPoolId"],
                                    IdentityId=where["IdentityId"])["Datasets"]
    assert [d["DatasetName"] for d in datasets] == ["D"]


@pytest.mark.parametrize("name", ["..", "."])
def test_target_form_refuses_the_same_names(raw: SignedHttp, pool_id: str, name: str) -> None:
    identity = new_identity_id()
    body = {"IdentityPoolId": pool_id, "IdentityId": identity, "DatasetName": name}
    for operation in ("DescribeDataset", "ListRecords", "DeleteDataset"):
        assert_aws_error(raw.target(operation, body), 400, "InvalidParameterException")
    listing = raw.target("ListDatasets", {"IdentityPoolId": pool_id, "IdentityId": identity})
    assert listing.json()["Datasets"] == []


# --- replays of a real signature on another path ---------------------------------------

def _replayed(raw: SignedHttp, method: str, signed_path: str, sent_path: str,
              body: Any = b"") -> Reply:
    prepared = raw.sign(method, signed_path, body=body)
    prepared.target = sent_path
    return raw.send(prepared)


def test_a_delete_signature_is_not_an_unsubscribe(raw: SignedHttp, sync: Any,
                                                  where: dict[str, str]) -> None:
    token = sync.list_records(**where)["SyncSessionToken"]
    sync.update_records(**where, SyncSessionToken=token, RecordPatches=[PATCH])
    path = dataset_path(where["IdentityPoolId"], where["IdentityId"])
    for sent in (f"{path}/subscriptions/..", f"{path}/subscriptions/%2e%2E", f"{path}/.",
                 f"{path}/./", f"{path}/x/..", path.replace("/datasets/", "/datasets//")):
        reply = _replayed(raw, "DELETE", path, sent)
        assert "'..' segment" in assert_aws_error(reply, 400, "InvalidParameterException"), sent
    assert sync.describe_dataset(**where)["Dataset"]["NumRecords"] == 1


def test_an_update_signature_is_not_a_subscribe(raw: SignedHttp, sync: Any,
                                                where: dict[str, str]) -> None:
    path = dataset_path(where["IdentityPoolId"], where["IdentityId"])
    token = sync.list_records(**where)["SyncSessionToken"]
    body = {"SyncSessionToken": token, "RecordPatches": [PATCH]}
    reply = _replayed(raw, "POST", path, f"{path}/subscriptions/..", body=body)
    assert_aws_error(reply, 400, "InvalidParameterException")
    assert sync.list_records(**where)["DatasetExists"] is False


def test_a_usage_signature_is_not_a_describe_dataset(raw: SignedHttp, pool_id: str) -> None:
    identity_path = f"/identitypools/{pool_id}/identities/{new_identity_id()}"
    assert_aws_error(raw.call("GET", identity_path), 404, "ResourceNotFoundException")
    for sent in (f"{identity_path}/datasets/..", f"{identity_path}/datasets/%2E%2E"):
        reply = _replayed(raw, "GET", identity_path, sent)
        assert_aws_error(reply, 400, "InvalidParameterException")
    datasets_path = identity_path + "/datasets"
    reply = _replayed(raw, "GET", datasets_path, datasets_path + "/.")
    assert_aws_error(reply, 400, "InvalidParameterException")


# --- X-Amz-Target must be signed -------------------------------------------------------

def test_unsigned_target_is_refused(raw: SignedHttp, pool_id: str) -> None:
    body = {"IdentityPoolId": pool_id, "IdentityId": new_identity_id(), "DatasetName": "data"}
    signed = raw.sign("POST", "/", body=body,
                      headers={"X-Amz-Target": f"{SYNC_TARGET}.DescribeDataset"})
    assert "x-amz-target" in signed.headers["Authorization"]
    assert_aws_error(raw.send(signed), 404, "ResourceNotFoundException")  # control
    unsigned = raw.sign("POST", "/", body=body)
    assert "x-amz-target" not in unsigned.headers["Authorization"]
    unsigned.headers["X-Amz-Target"] = f"{SYNC_TARGET}.DeleteDataset"
    message = assert_aws_error(raw.send(unsigned), 403, "InvalidSignatureException")
    assert "X-Amz-Target" in message


def test_unsigned_target_is_refused_by_cognito_identity(raw: SignedHttp) -> None:
    unsigned = raw.sign("POST", "/", body={"MaxResults": 5}, service="cognito-identity")
    unsigned.headers["X-Amz-Target"] = "AWSCognitoIdentityService.ListIdentityPools"
    unsigned.headers["Content-Type"] = "application/x-amz-json-1.1"
    assert_aws_error(raw.send(unsigned), 403, "InvalidSignatureException")


# --- the Android SDK's signature -------------------------------------------------------

def _android_encode(text: str) -> str:
    """The Android SDK's HttpUtils.urlEncode(text, path=True): java.net.URLEncoder, then
    "+" -> "%20", "*" -> "%2A", "%7E" -> "~", and "%2F" -> "/"."""
    encoded = quote(text, safe="-_.*~/")  # URLEncoder keeps only these (and "/" here)
    return encoded.replace("*", "%2A")


def _android_request(server: ServerProcess, method: str, resource: str,
                     params: dict[str, str], target: str, body: bytes) -> Reply:
    """A request built and signed the way the Android SDK's AWS4Signer does it: the wire
    path is encoded once, the canonical path twice (doubleUrlEncode), every x-amz-*
    header is signed, and the REST request still carries X-Amz-Target."""
    assert server.credentials is not None
    url = urlsplit(server.endpoint)
    host = f"{url.hostname}:{url.port}"
    now = datetime.now(UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {"Host": host, "X-Amz-Date": amz_date, "X-Amz-Target": target,
               "Content-Type": "application/x-amz-json-1.0"}
    signed = sorted((k for k in headers if k.lower() in ("host", "date")
                     or k.lower().startswith("x-amz")), key=str.lower)
    wire_path = _android_encode(resource)
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                               for k, v in sorted(params.items()))
    canonical = "\n".join([
        method, _android_encode(wire_path), canonical_query,
        "".join(f"{k.lower()}:{headers[k]}\n" for k in signed),
        ";".join(k.lower() for k in signed), hashlib.sha256(body).hexdigest()])
    assert "%253A" in canonical.split("\n")[1]  # the double-encoded path of the issue
    scope = f"{day}/{REGION}/cognito-sync/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + server.credentials.secret_access_key).encode()
    for part in (day, REGION, "cognito-sync", "aws4_request"):
        key = hmac.digest(key, part.encode(), "sha256")
    signature = hmac.digest(key, to_sign.encode(), "sha256").hex()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={server.credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(k.lower() for k in signed)}, Signature={signature}")
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params.items())
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request(method, wire_path + (f"?{query}" if query else ""), body=body,
                     headers=headers)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                     response.read())
    finally:
        conn.close()


def test_android_double_encoded_signature_verifies(server: ServerProcess,
                                                   where: dict[str, str]) -> None:
    resource = (f"/identitypools/{where['IdentityPoolId']}/identities/"
                f"{where['IdentityId']}/datasets/{where['DatasetName']}")
    listed = _android_request(server, "GET", resource + "/records",
                              {"lastSyncCount": "0", "maxResults": "1024"},
                              "AWSCognitoSyncService.ListRecords", b"")
    assert listed.status == 200, listed.body
    body = json.dumps({"SyncSessionToken": listed.json()["SyncSessionToken"],
                       "RecordPatches": [PATCH], "DeviceId": "android"}).encode()
    updated = _android_request(server, "POST", resource, {},
                               "AWSCognitoSyncService.UpdateRecords", body)
    assert updated.status == 200, updated.body
    assert [r["SyncCount"] for r in updated.json()["Records"]] == [1]


# --- numbers are ASCII -----------------------------------------------------------------

@pytest.mark.parametrize("expires", ["%C2%B2", "%D9%A1%D9%A2%D9%A0", "1_0", "+60", "%20%36",
                                     "9" * 40, "0"])
def test_presigned_expiry_that_is_not_an_ascii_number(raw: SignedHttp, sync: Any,
                                                      where: dict[str, str],
                                                      expires: str) -> None:
    url = sync.generate_presigned_url("describe_dataset", Params=where, ExpiresIn=60)
    parts = urlsplit(url)
    query = "&".join(p if not p.startswith("X-Amz-Expires=") else f"X-Amz-Expires={expires}"
                     for p in parts.query.split("&"))
    head = (f"GET {parts.path}?{query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Connection: close\r\n\r\n")
    reply = exchange(raw.host, raw.port, head.encode())
    assert_aws_error(reply, 400, "IncompleteSignatureException")


@pytest.mark.parametrize("length", ["\u00b2", "\u0661", "1_0", "-1", "0x10", "+2", "2, 2",
                                    "9" * 40])
def test_content_length_that_is_not_an_ascii_number(raw: SignedHttp, pool_id: str,
                                                    length: str) -> None:
    prepared = raw.sign("POST", dataset_path(pool_id, new_identity_id()), body=b"{}")
    lines = [f"POST {prepared.target} HTTP/1.1", f"Host: {raw.host}:{raw.port}",
             *(f"{k}: {v}" for k, v in prepared.headers.items()),
             f"Content-Length: {length}", "Connection: close"]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    reply = exchange(raw.host, raw.port, head, [b"{}"])
    assert reply.status == 400, reply


# --- another account's developer -------------------------------------------------------

def test_update_records_in_another_accounts_pool_is_not_found(server: ServerProcess,
                                                              sync: Any,
                                                              where: dict[str, str]) -> None:
    other = json.loads(server.cli("accounts", "create", "--json"))
    stranger = server.client(credentials=Credentials(other["AccessKeyId"],
                                                     other["SecretAccessKey"]))
    owner_token = sync.list_records(**where)["SyncSessionToken"]
    for token in ("not-a-token", owner_token):
        _refused(lambda t=token: stranger.update_records(
            **where, SyncSessionToken=t, RecordPatches=[PATCH]),
            "ResourceNotFoundException", 404)
    assert sync.list_records(**where)["DatasetExists"] is False
