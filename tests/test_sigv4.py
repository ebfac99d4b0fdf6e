"""SigV4 as AWS enforces it: header and presigned-URL forms, every common refusal code,
and a refused call never changes anything."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.server import REGION, ServerProcess, new_identity_id
from tests.test_wire_errors import Reply, SignedHttp, assert_aws_error, dataset_path

PATCH = {"Op": "replace", "Key": "k", "Value": "v", "SyncCount": 0}


def _datasets_path(where: dict[str, str]) -> str:
    return f"/identitypools/{where['IdentityPoolId']}/identities/{where['IdentityId']}/datasets"


def _client(server: ServerProcess, *, key: str | None = None, secret: str | None = None,
            region: str = REGION) -> Any:
    assert server.credentials is not None
    return boto3.client(
        "cognito-sync", endpoint_url=server.endpoint, region_name=region,
        aws_access_key_id=key or server.credentials.access_key_id,
        aws_secret_access_key=secret or server.credentials.secret_access_key,
        config=Config(retries={"total_max_attempts": 1}))


def _refused(call: Any, status: int, code: str) -> str:
    with pytest.raises(ClientError) as excinfo:
        call()
    response = excinfo.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status, response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-errortype"] == code
    return str(response["Error"]["Message"])


# --- the Authorization header ----------------------------------------------------------

def test_control_a_correctly_signed_raw_request_is_accepted(raw: SignedHttp,
                                                           where: dict[str, str]) -> None:
    reply = raw.call("GET", _datasets_path(where))
    assert reply.status == 200, reply.body
    assert reply.json() == {"Datasets": [], "Count": 0}


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("POST", "/data"),
                                                ("GET", "/data/records")])
def test_missing_authentication(raw: SignedHttp, where: dict[str, str], method: str,
                                suffix: str) -> None:
    reply = raw.call(method, _datasets_path(where) + suffix, unsigned=True,
                     body={"SyncSessionToken": "x"} if method == "POST" else b"")
    assert_aws_error(reply, 403, "MissingAuthenticationTokenException")


@pytest.mark.parametrize("authorization", [
    "AWS4-HMAC-SHA256 garbage",
    "Bearer abc.def.ghi",
    "AWS4-HMAC-SHA1 Credential=AKID/20240101/us-east-1/cognito-sync/aws4_request, "
    "SignedHeaders=host, Signature=00",
    "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1, SignedHeaders=host, Signature=00",
    "AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/cognito-sync/aws4_request",
    "AWS4-HMAC-SHA256 Credential=, SignedHeaders=, Signature=",
    "AWS4-HMAC-SHA256 ",
    "",
])
def test_malformed_authorization_header(raw: SignedHttp, where: dict[str, str],
                                        authorization: str) -> None:
    prepared = raw.sign("GET", _datasets_path(where))
    prepared.headers["Authorization"] = authorization
    assert_aws_error(raw.send(prepared), 400, "IncompleteSignatureException")


def test_missing_or_malformed_x_amz_date(raw: SignedHttp, where: dict[str, str]) -> None:
    prepared = raw.sign("GET", _datasets_path(where))
    del prepared.headers["X-Amz-Date"]
    assert_aws_error(raw.send(prepared), 400, "IncompleteSignatureException")
    prepared = raw.sign("GET", _datasets_path(where))
    prepared.headers["X-Amz-Date"] = "yesterday"
    assert_aws_error(raw.send(prepared), 400, "IncompleteSignatureException")


def test_unknown_access_key(server: ServerProcess, where: dict[str, str]) -> None:
    client = _client(server, key="AKIDNOTKNOWNTOCOGSYNC")
    _refused(lambda: client.list_datasets(IdentityPoolId=where["IdentityPoolId"],
                                          IdentityId=where["IdentityId"]),
             403, "UnrecognizedClientException")


def test_wrong_secret(server: ServerProcess, where: dict[str, str]) -> None:
    client = _client(server, secret="x" * 40)
    message = _refused(lambda: client.describe_dataset(**where), 403,
                       "InvalidSignatureException")
    assert "signature we calculated does not match" in message


def test_wrong_region_in_scope(server: ServerProcess, raw: SignedHttp,
                               where: dict[str, str]) -> None:
    client = _client(server, region="eu-west-1")
    message = _refused(lambda: client.list_records(**where), 403, "InvalidSignatureException")
    assert "eu-west-1" in message
    reply = raw.call("GET", _datasets_path(where), region="us-west-2")
    assert_aws_error(reply, 403, "InvalidSignatureException")


@pytest.mark.parametrize("service", ["cognito-identity", "s3", "cognito-sync2"])
def test_wrong_service_in_scope(raw: SignedHttp, where: dict[str, str], service: str) -> None:
    reply = raw.call("GET", _datasets_path(where), service=service)
    message = assert_aws_error(reply, 403, "InvalidSignatureException")
    assert "cognito-sync" in message


@pytest.mark.parametrize("minutes", [-16, 16, -60 * 24, 60 * 24 * 365])
def test_request_time_outside_the_15_minute_window(raw: SignedHttp, where: dict[str, str],
                                                   minutes: int) -> None:
    when = datetime.now(UTC) + timedelta(minutes=minutes)
    reply = raw.call("GET", _datasets_path(where), when=when)
    assert "15 minute" in assert_aws_error(reply, 403, "InvalidSignatureException")


@pytest.mark.parametrize("minutes", [-14, 14])
def test_request_time_inside_the_window(raw: SignedHttp, where: dict[str, str],
                                        minutes: int) -> None:
    when = datetime.now(UTC) + timedelta(minutes=minutes)
    assert raw.call("GET", _datasets_path(where), when=when).status == 200


def test_scope_date_must_match_x_amz_date(raw: SignedHttp, where: dict[str, str]) -> None:
    prepared = raw.sign("GET", _datasets_path(where))
    auth = prepared.headers["Authorization"]
    today = prepared.headers["X-Amz-Date"][:8]
    prepared.headers["Authorization"] = auth.replace(f"/{today}/", "/20200101/")
    assert_aws_error(raw.send(prepared), 403, "InvalidSignatureException")


def test_tampered_query_after_signing(raw: SignedHttp, where: dict[str, str]) -> None:
    path = dataset_path(where["IdentityPoolId"], where["IdentityId"]) + "/records"
    prepared = raw.sign("GET", path, query=[("lastSyncCount", "0")])
    assert raw.send(prepared).status == 200
    changed = raw.sign("GET", path, query=[("lastSyncCount", "0")])
    changed.target = changed.target.replace("lastSyncCount=0", "lastSyncCount=1")
    assert_aws_error(raw.send(changed), 403, "InvalidSignatureException")
    added = raw.sign("GET", path, query=[("lastSyncCount", "0")])
    added.target += "&maxResults=1"
    assert_aws_error(raw.send(added), 403, "InvalidSignatureException")


def test_tampered_path_or_method_after_signing(raw: SignedHttp, where: dict[str, str]) -> None:
    path = dataset_path(where["IdentityPoolId"], where["IdentityId"])
    other = raw.sign("GET", path)
    other.target = other.target.replace("/datasets/data", "/datasets/other")
    assert_aws_error(raw.send(other), 403, "InvalidSignatureException")
    method = raw.sign("GET", path)
    method.method = "DELETE"
    assert_aws_error(raw.send(method), 403, "InvalidSignatureException")


def test_tampered_signed_header(raw: SignedHttp, where: dict[str, str]) -> None:
    prepared = raw.sign("GET", _datasets_path(where), headers={"X-Custom": "one"})
    assert "x-custom" in prepared.headers["Authorization"]
    assert raw.send(prepared).status == 200
    prepared.headers["X-Custom"] = "two"
    assert_aws_error(raw.send(prepared), 403, "InvalidSignatureException")
    del prepared.headers["X-Custom"]
    assert_aws_error(raw.send(prepared), 403, "InvalidSignatureException")


@pytest.mark.parametrize("signature", ["\u00e9" * 64, "zz", "0" * 64, "\u00ff" + "0" * 63])
def test_signature_that_is_not_hex(raw: SignedHttp, where: dict[str, str],
                                   signature: str) -> None:
    """Any text in Signature= is just a wrong signature (non-ASCII once gave a 500)."""
    prepared = raw.sign("GET", _datasets_path(where))
    auth = prepared.headers["Authorization"]
    prepared.headers["Authorization"] = auth[: auth.index("Signature=") + 10] + signature
    prepared.headers = {k: v.encode().decode("latin-1") for k, v in prepared.headers.items()}
    assert_aws_error(raw.send(prepared), 403, "InvalidSignatureException")


def test_garbage_security_token(raw: SignedHttp, where: dict[str, str]) -> None:
    reply = raw.call("GET", _datasets_path(where), headers={"X-Amz-Security-Token": "garbage"})
    assert reply.status == 403
    assert reply.headers["x-amzn-errortype"] in ("UnrecognizedClientException",
                                                 "InvalidSignatureException",
                                                 "ExpiredTokenException")


# --- a refused call changes nothing ----------------------------------------------------

def test_badly_signed_updates_change_nothing(server: ServerProcess, sync: Any, raw: SignedHttp,
                                             where: dict[str, str]) -> None:
    token = sync.list_records(**where)["SyncSessionToken"]
    sync.update_records(**where, SyncSessionToken=token, RecordPatches=[PATCH])
    before = sync.list_records(**where)
    token = before["SyncSessionToken"]
    change = {"SyncSessionToken": token,
              "RecordPatches": [{"Op": "replace", "Key": "k", "Value": "evil", "SyncCount": 1},
                                {"Op": "replace", "Key": "new", "Value": "x", "SyncCount": 0}]}
    path = dataset_path(where["IdentityPoolId"], where["IdentityId"])

    replies: list[Reply] = []
    tampered = raw.sign("POST", path, body={**change, "RecordPatches": []})
    tampered.body = raw.sign("POST", path, body=change).body
    replies.append(raw.send(tampered))
    replies.append(raw.call("POST", path, body=change, secret="y" * 40))
    replies.append(raw.call("POST", path, body=change, when=datetime.now(UTC) - timedelta(
        minutes=20)))
    replies.append(raw.call("POST", path, body=change, service="cognito-identity"))
    replies.append(raw.call("POST", path, body=change, unsigned=True))
    wrong = _client(server, secret="z" * 40)
    with pytest.raises(ClientError):
        wrong.update_records(**where, SyncSessionToken=token, RecordPatches=change[
            "RecordPatches"])
    assert [r.status for r in replies] == [403] * 5
    assert all(r.headers["x-amzn-errortype"].endswith("Exception") for r in replies)

    after = sync.list_records(**where)
    assert after["DatasetSyncCount"] == before["DatasetSyncCount"] == 1
    assert after["Records"] == before["Records"]
    assert {r["Key"]: r["Value"] for r in after["Records"]} == {"k": "v"}
    # The session token was not used up by the refused calls.
    done = sync.update_records(**where, SyncSessionToken=token,
                               RecordPatches=change["RecordPatches"])
    assert {r["SyncCount"] for r in done["Records"]} == {2}


# --- presigned URLs --------------------------------------------------------------------

def _presign(sync: Any, where: dict[str, str], expires: int = 300) -> dict[str, str]:
    datasets = {"IdentityPoolId": where["IdentityPoolId"], "IdentityId": where["IdentityId"]}
    return {
        "ListDatasets": sync.generate_presigned_url("list_datasets", Params=datasets,
                                                    ExpiresIn=expires),
        "DescribeDataset": sync.generate_presigned_url("describe_dataset", Params=where,
                                                       ExpiresIn=expires),
        "ListRecords": sync.generate_presigned_url(
            "list_records", Params={**where, "LastSyncCount": 0, "MaxResults": 10},
            ExpiresIn=expires),
    }


def _get(url: str, method: str = "GET") -> Reply:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(response.status, {k.lower(): v for k, v in response.headers.items()},
                         response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, {k.lower(): v for k, v in error.headers.items()},
                     error.read())


def _with_query(url: str, change: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update(change)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_presigned_urls_work_when_fresh(sync: Any, where: dict[str, str]) -> None:
    token = sync.list_records(**where)["SyncSessionToken"]
    sync.update_records(**where, SyncSessionToken=token, RecordPatches=[PATCH])
    urls = _presign(sync, where)
    for url in urls.values():
        assert "X-Amz-Signature=" in url and "Authorization" not in url
    datasets = _get(urls["ListDatasets"])
    assert datasets.status == 200, datasets.body
    assert [d["DatasetName"] for d in datasets.json()["Datasets"]] == ["data"]
    described = _get(urls["DescribeDataset"])
    assert described.status == 200, described.body
    assert described.json()["Dataset"]["NumRecords"] == 1
    records = _get(urls["ListRecords"])
    assert records.status == 200, records.body
    assert [(r["Key"], r["Value"]) for r in records.json()["Records"]] == [("k", "v")]


def test_tampered_presigned_urls_are_refused(sync: Any, where: dict[str, str]) -> None:
    urls = _presign(sync, where)
    list_records = urls["ListRecords"]
    own_uuid, other_uuid = where["IdentityId"].split(":")[1], new_identity_id().split(":")[1]
    assert own_uuid in list_records
    tampered = [
        _with_query(list_records, {"lastSyncCount": "1"}),
        _with_query(list_records, {"maxResults": "1"}),
        _with_query(list_records, {"X-Amz-Expires": "600"}),
        _with_query(list_records, {"X-Amz-Date": "20200101T000000Z"}),
        _with_query(list_records, {"X-Amz-Signature": "0" * 64}),
        _with_query(list_records, {"X-Amz-Signature": "\u00e9" * 64}),
        _with_query(list_records, {"extra": "1"}),
        list_records.replace(own_uuid, other_uuid),
        urls["DescribeDataset"].replace("/datasets/data", "/datasets/other"),
    ]
    for url in tampered:
        reply = _get(url)
        assert reply.status == 403, (url, reply.body)
        assert reply.headers["x-amzn-errortype"] == "InvalidSignatureException"
        assert reply.json()["__type"] == "InvalidSignatureException"
    # The signature covers the method too.
    assert _get(urls["DescribeDataset"], method="DELETE").status == 403
    # An incomplete presigned query is a 400.
    incomplete = _with_query(list_records, {"X-Amz-Algorithm": "", "X-Amz-Expires": "abc"})
    reply = _get(incomplete)
    assert_aws_error(reply, 400, "IncompleteSignatureException")


def test_expired_presigned_urls_are_refused(sync: Any, where: dict[str, str]) -> None:
    urls = _presign(sync, where, expires=1)
    time.sleep(2.1)
    for operation, url in urls.items():
        reply = _get(url)
        message = assert_aws_error(reply, 403, "InvalidSignatureException")
        assert "expired" in message.lower(), operation
