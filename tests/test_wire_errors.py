"""Malformed input of every kind gets a 4xx in the AWS error shape, never a 500.

boto3 validates its parameters before sending, so most requests here are built by hand:
signed with botocore's own SigV4 signer (the signature is valid, only the payload is bad)
and sent with ``http.client``. :class:`SignedHttp` is shared with the other wire tests.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from tests.server import REGION, ServerProcess, new_identity_id

SYNC_TARGET = "com.amazonaws.cognito.sync.model.AWSCognitoSyncService"
MAX_BODY = 4 * 1024 * 1024


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Prepared:
    """A signed request, ready to send (or to tamper with first)."""

    method: str
    target: str  # path and query, as sent
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class _SignerAt(SigV4Auth):
    """botocore's SigV4 signer, optionally at a chosen clock time."""

    def __init__(self, credentials: BotoCredentials, service: str, region: str,
                 when: datetime | None):
        super().__init__(credentials, service, region)
        self.when = when

    def add_auth(self, request: AWSRequest) -> None:
        if self.when is None:
            super().add_auth(request)
            return
        request.context["timestamp"] = self.when.strftime("%Y%m%dT%H%M%SZ")
        self._modify_request_before_signing(request)
        string_to_sign = self.string_to_sign(request, self.canonical_request(request))
        self._inject_signature_to_request(request, self.signature(string_to_sign, request))


class SignedHttp:
    """Raw HTTP to a cogsync server, signed like an SDK signs (or not at all)."""

    def __init__(self, server: ServerProcess):
        assert server.credentials is not None
        self.endpoint = server.endpoint
        self.key = server.credentials.access_key_id
        self.secret = server.credentials.secret_access_key
        url = urlsplit(server.endpoint)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80

    def sign(self, method: str, path: str, *, query: list[tuple[str, str]] | None = None,
             body: bytes | dict[str, Any] | list[Any] = b"",
             headers: dict[str, str] | None = None, when: datetime | None = None,
             key: str | None = None, secret: str | None = None, region: str = REGION,
             service: str = "cognito-sync", unsigned: bool = False) -> Prepared:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        request = AWSRequest(method=method, url=self.endpoint + path, data=data,
                             headers=dict(headers or {}), params=list(query or []))
        if not unsigned:
            creds = BotoCredentials(key or self.key, secret or self.secret)
            _SignerAt(creds, service, region, when).add_auth(request)
        prepared = request.prepare()
        url = urlsplit(prepared.url)
        target = url.path + (f"?{url.query}" if url.query else "")
        # http.client sets Content-Length from the body actually sent.
        sent_headers = {k: v for k, v in prepared.headers.items()
                        if k.lower() != "content-length"}
        return Prepared(method, target, sent_headers, data)

    def send(self, prepared: Prepared) -> Reply:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            # The server may answer (and close) before it has read a refused body.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.request(prepared.method, prepared.target, body=prepared.body,
                             headers=prepared.headers)
            response = conn.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                         response.read())
        finally:
            conn.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Reply:
        return self.send(self.sign(method, path, **kwargs))

    def target(self, operation: str, body: Any, **kwargs: Any) -> Reply:
        """The JSON 1.1 form: ``POST /`` with ``X-Amz-Target``."""
        headers = {"X-Amz-Target": f"{SYNC_TARGET}.{operation}",
                   "Content-Type": "application/x-amz-json-1.1"}
        return self.call("POST", "/", headers=headers, body=body, **kwargs)


def assert_aws_error(reply: Reply, status: int, code: str) -> str:
    """The AWS error shape; returns the message."""
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers.get("x-amzn-errortype") == code, (reply.headers, reply.body)
    body = reply.json()
    assert body["__type"] == code
    assert isinstance(body["message"], str) and body["message"]
    return body["message"]


def exchange(host: str, port: int, head: bytes, body_pieces: Any = ()) -> Reply:
    """Writes a hand-made HTTP/1.1 request on a socket and parses the one answer."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(head)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # refused early
            for piece in body_pieces:
                sock.sendall(piece)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        head_part, _, body = answer.partition(b"\r\n\r\n")
        lines = head_part.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return Reply(int(lines[0].split(" ")[1]), headers, body)


def validation_message(shown: str, where: str, constraint: str) -> str:
    return (f"1 validation error detected: Value '{shown}' at '{where}' failed to satisfy "
            f"constraint: {constraint}")


def dataset_path(pool: str, identity: str, name: str = "data") -> str:
    return f"/identitypools/{pool}/identities/{identity}/datasets/{name}"


def _untouched(sync: Any, where: dict[str, str]) -> None:
    listing = sync.list_records(**where)
    assert listing["DatasetExists"] is False and listing["Records"] == []


# --- bodies ----------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    b"{bad", b'{"SyncSessionToken": "x",', b"\xff\xfe\x00garbage", b"{'single': 1}",
    b"[" * 3000 + b"]" * 3000,  # deeper than any JSON parser limit
])
def test_body_that_is_not_json(raw: SignedHttp, pool_id: str, identity_id: str,
                               body: bytes) -> None:
    reply = raw.call("POST", dataset_path(pool_id, identity_id), body=body)
    message = assert_aws_error(reply, 400, "InvalidParameterException")
    assert "not valid JSON" in message


@pytest.mark.parametrize("body", [b"null", b"[]", b'"text"', b"17", b"true", b'[{"a": 1}]'])
def test_body_that_is_not_an_object(raw: SignedHttp, pool_id: str, identity_id: str,
                                    body: bytes) -> None:
    reply = raw.call("POST", dataset_path(pool_id, identity_id), body=body)
    assert assert_aws_error(reply, 400, "InvalidParameterException") == (
        "The request body must be a JSON object")


def _patch(**changes: Any) -> dict[str, Any]:
    patch: dict[str, Any] = {"Op": "replace", "Key": "k", "Value": "v", "SyncCount": 0}
    patch.update(changes)
    return {k: v for k, v in patch.items() if v is not _DROP}


_DROP = object()
P1 = "recordPatches.1.member"
DEEP = json.loads("[" * 50 + "]" * 50)

BAD_UPDATES: list[tuple[str, dict[str, Any], str, str, str]] = [
    # (case id, body members, shown value, where, constraint)
    ("synccount-string", {"RecordPatches": [_patch(SyncCount="1")]}, "1",
     f"{P1}.syncCount", "Member must be an integer"),
    ("synccount-bool", {"RecordPatches": [_patch(SyncCount=True)]}, "True",
     f"{P1}.syncCount", "Member must be an integer"),
    ("synccount-float", {"RecordPatches": [_patch(SyncCount=1.5)]}, "1.5",
     f"{P1}.syncCount", "Member must be an integer"),
    ("synccount-over-64-bit", {"RecordPatches": [_patch(SyncCount=2**63)]}, str(2**63),
     f"{P1}.syncCount", "Member must be a 64-bit integer"),
    ("synccount-missing", {"RecordPatches": [_patch(SyncCount=_DROP)]}, "None",
     f"{P1}.syncCount", "Member must not be null"),
    ("key-number", {"RecordPatches": [_patch(Key=5)]}, "5", f"{P1}.key",
     "Member must be a string"),
    ("key-empty", {"RecordPatches": [_patch(Key="")]}, "", f"{P1}.key",
     "Member must have length greater than or equal to 1"),
    ("key-1025", {"RecordPatches": [_patch(Key="k" * 1025)]}, "k" * 64 + "...", f"{P1}.key",
     "Member must have length less than or equal to 1024"),
    ("value-number", {"RecordPatches": [_patch(Value=12)]}, "12", f"{P1}.value",
     "Member must be a string"),
    ("op-not-in-enum", {"RecordPatches": [_patch(Op="upsert")]}, "upsert", f"{P1}.op",
     "Member must satisfy enum value set: [replace, remove]"),
    ("op-wrong-case", {"RecordPatches": [_patch(Op="REPLACE")]}, "REPLACE", f"{P1}.op",
     "Member must satisfy enum value set: [replace, remove]"),
    ("op-missing", {"RecordPatches": [_patch(Op=_DROP)]}, "None", f"{P1}.op",
     "Member must not be null"),
    ("date-text", {"RecordPatches": [_patch(DeviceLastModifiedDate="yesterday")]},
     "yesterday", f"{P1}.deviceLastModifiedDate", "Member must be a timestamp"),
    ("date-bool", {"RecordPatches": [_patch(DeviceLastModifiedDate=False)]}, "False",
     f"{P1}.deviceLastModifiedDate", "Member must be a timestamp"),
    ("date-negative", {"RecordPatches": [_patch(DeviceLastModifiedDate=-1)]}, "-1",
     f"{P1}.deviceLastModifiedDate", "Member must be a timestamp between 1970 and 9999"),
    ("date-iso-before-1970",
     {"RecordPatches": [_patch(DeviceLastModifiedDate="0001-01-01T00:00:00+14:00")]},
     "0001-01-01T00:00:00+14:00", f"{P1}.deviceLastModifiedDate",
     "Member must be a timestamp between 1970 and 9999"),
    ("patch-not-object", {"RecordPatches": ["replace k"]}, "replace k", P1,
     "Member must be an object"),
    ("patches-not-list", {"RecordPatches": {"Op": "replace"}}, "{'Op': 'replace'}",
     "recordPatches", "Member must be a list"),
    ("deviceid-list", {"DeviceId": ["phone"]}, "['phone']", "deviceId",
     "Member must be a string"),
    ("deviceid-empty", {"DeviceId": ""}, "", "deviceId",
     "Member must have length greater than or equal to 1"),
    ("deviceid-257", {"DeviceId": "d" * 257}, "d" * 64 + "...", "deviceId",
     "Member must have length less than or equal to 256"),
    ("deviceid-deeply-nested", {"DeviceId": DEEP}, "[[[[...]]]]", "deviceId",
     "Member must be a string"),
    ("token-number", {"SyncSessionToken": 7}, "7", "syncSessionToken",
     "Member must be a string"),
    ("token-object", {"SyncSessionToken": {"a": 1}}, "{'a': 1}", "syncSessionToken",
     "Member must be a string"),
    ("token-missing", {"SyncSessionToken": None}, "None", "syncSessionToken",
     "Member must not be null"),
]


@pytest.mark.parametrize(("members", "shown", "at", "constraint"),
                         [case[1:] for case in BAD_UPDATES], ids=[c[0] for c in BAD_UPDATES])
def test_update_records_member_of_wrong_type_or_size(
        raw: SignedHttp, sync: Any, where: dict[str, str], members: dict[str, Any], shown: str,
        at: str, constraint: str) -> None:
    body: dict[str, Any] = {"SyncSessionToken": "x", "RecordPatches": [_patch()]}
    body.update(members)
    path = dataset_path(where["IdentityPoolId"], where["IdentityId"])
    message = assert_aws_error(raw.call("POST", path, body=body), 400,
                               "InvalidParameterException")
    assert message == validation_message(shown, at, constraint)
    _untouched(sync, where)


def test_nesting_deeper_than_python_recursion(raw: SignedHttp, sync: Any,
                                             where: dict[str, str]) -> None:
    """The JSON parser allows 1024 levels; showing such a value once raised RecursionError."""
    path = dataset_path(where["IdentityPoolId"], where["IdentityId"])
    for depth in (999, 1020):
        deep = b"[" * depth + b"]" * depth
        body = b'{"SyncSessionToken": "x", "DeviceId": ' + deep + b"}"
        message = assert_aws_error(raw.call("POST", path, body=body), 400,
                                   "InvalidParameterException")
        assert message == validation_message("[[[[...]]]]", "deviceId", "Member must be a string")
    _untouched(sync, where)


def test_every_problem_is_reported_at_once(raw: SignedHttp, where: dict[str, str]) -> None:
    body = {"SyncSessionToken": 1, "DeviceId": "",
            "RecordPatches": [_patch(), _patch(Key=2, Op="swap")]}
    path = dataset_path(where["IdentityPoolId"], where["IdentityId"])
    message = assert_aws_error(raw.call("POST", path, body=body), 400,
                               "InvalidParameterException")
    assert message.startswith("4 validation errors detected: Value ")
    assert message.count("failed to satisfy constraint") == 4
    for at in ("deviceId", "syncSessionToken", "recordPatches.2.member.key",
               "recordPatches.2.member.op"):
        assert f"at '{at}'" in message


def test_replace_without_value_and_duplicate_keys_change_nothing(
        raw: SignedHttp, sync: Any, where: dict[str, str]) -> None:
    path = dataset_path(where["IdentityPoolId"], where["IdentityId"])
    token = sync.list_records(**where)["SyncSessionToken"]
    no_value = {"SyncSessionToken": token,
                "RecordPatches": [_patch(Key="a"), _patch(Key="b", Value=_DROP)]}
    message = assert_aws_error(raw.call("POST", path, body=no_value), 400,
                               "InvalidParameterException")
    assert "'b'" in message
    twice = {"SyncSessionToken": token, "RecordPatches": [_patch(Key="a"), _patch(Key="a")]}
    assert_aws_error(raw.call("POST", path, body=twice), 400, "InvalidParameterException")
    _untouched(sync, where)
    # The same token still works: the refused calls consumed nothing.
    ok = raw.call("POST", path, body={"SyncSessionToken": token, "RecordPatches": [_patch()]})
    assert ok.status == 200, ok.body
    assert [r["Key"] for r in ok.json()["Records"]] == ["k"]


def test_iso_timestamp_without_offset_is_utc(raw: SignedHttp, where: dict[str, str],
                                             sync: Any) -> None:
    path = dataset_path(where["IdentityPoolId"], where["IdentityId"])
    token = sync.list_records(**where)["SyncSessionToken"]
    body = {"SyncSessionToken": token,
            "RecordPatches": [_patch(DeviceLastModifiedDate="2020-01-01T00:00:00")]}
    reply = raw.call("POST", path, body=body)
    assert reply.status == 200, reply.body
    assert reply.json()["Records"][0]["DeviceLastModifiedDate"] == 1577836800


# --- paths -----------------------------------------------------------------------------

POOL_PATTERN = r"Member must satisfy regular expression pattern: [\w-]+:[0-9a-f-]+"
NAME_PATTERN = "Member must satisfy regular expression pattern: [a-zA-Z0-9_.:-]+"


@pytest.mark.parametrize(("segment", "shown", "constraint"), [
    ("a%2Fb", "a/b", NAME_PATTERN),
    ("a%2fb", "a/b", NAME_PATTERN),
    ("%C3%A9t%C3%A9", "\u00e9t\u00e9", NAME_PATTERN),
    ("%E2%98%83", "\u2603", NAME_PATTERN),
    ("a%20b", "a b", NAME_PATTERN),
    ("a%00b", "a\x00b", NAME_PATTERN),
    ("%FF", "\ufffd", NAME_PATTERN),
    ("a" * 129, "a" * 64 + "...", "Member must have length less than or equal to 128"),
])
def test_bad_dataset_name_in_path(raw: SignedHttp, pool_id: str, identity_id: str,
                                  segment: str, shown: str, constraint: str) -> None:
    for method, suffix in (("GET", ""), ("POST", ""), ("DELETE", ""), ("GET", "/records")):
        path = dataset_path(pool_id, identity_id, segment) + suffix
        body = {"SyncSessionToken": "x"} if method == "POST" else b""
        reply = raw.call(method, path, body=body)
        message = assert_aws_error(reply, 400, "InvalidParameterException")
        assert message == validation_message(shown, "datasetName", constraint)


@pytest.mark.parametrize(("pool", "identity", "shown", "at", "constraint"), [
    ("nocolon", None, "nocolon", "identityPoolId", POOL_PATTERN),
    ("us-east-1%3AABCDEF", None, "us-east-1:ABCDEF", "identityPoolId", POOL_PATTERN),
    ("us-east-1%2F0000", None, "us-east-1/0000", "identityPoolId", POOL_PATTERN),
    ("us-east-1:" + "0" * 46, None, "us-east-1:" + "0" * 46, "identityPoolId",
     "Member must have length less than or equal to 55"),
    (None, "us-east-1:%C3%A9", "us-east-1:\u00e9", "identityId", POOL_PATTERN),
    (None, "us-east-1:abc%2F..", "us-east-1:abc/..", "identityId", POOL_PATTERN),
    (None, "%3A", ":", "identityId", POOL_PATTERN),
])
def test_bad_pool_or_identity_id_in_path(raw: SignedHttp, pool_id: str, pool: str | None,
                                         identity: str | None, shown: str, at: str,
                                         constraint: str) -> None:
    path = dataset_path(pool or pool_id, identity or new_identity_id())
    for suffix in ("", "/records"):
        reply = raw.call("GET", path + suffix)
        message = assert_aws_error(reply, 400, "InvalidParameterException")
        assert message == validation_message(shown, at, constraint)


def test_raw_non_ascii_path_is_refused(raw: SignedHttp, pool_id: str) -> None:
    """Bytes outside ASCII are not a valid request target; nothing may answer 5xx."""
    path = dataset_path(pool_id, new_identity_id(), "\u00e9t\u00e9") + "/records"
    head = f"GET {path} HTTP/1.1\r\nHost: {raw.host}\r\nConnection: close\r\n\r\n"
    reply = exchange(raw.host, raw.port, head.encode())
    assert 400 <= reply.status < 500, reply


# --- query strings ---------------------------------------------------------------------

def _not_integer(value: str, at: str) -> str:
    return validation_message(value, at, "Member must be an integer")


BAD_QUERIES = [
    ("maxResults", "0", "MaxResults must be at least 1"),
    ("maxResults", "-1", "MaxResults must be at least 1"),
    ("maxResults", "abc", _not_integer("abc", "maxResults")),
    ("maxResults", "", _not_integer("", "maxResults")),
    ("maxResults", "1_0", _not_integer("1_0", "maxResults")),
    ("maxResults", "\u0663", _not_integer("\u0663", "maxResults")),
    ("maxResults", "9" * 30, validation_message("9" * 30, "maxResults",
                                               "Member must be a 64-bit integer")),
    ("lastSyncCount", "-1", "LastSyncCount must not be negative"),
    ("lastSyncCount", "x", _not_integer("x", "lastSyncCount")),
    ("lastSyncCount", " 5", _not_integer(" 5", "lastSyncCount")),
    ("lastSyncCount", "1.5", _not_integer("1.5", "lastSyncCount")),
]


@pytest.mark.parametrize(("name", "value", "expected"), BAD_QUERIES,
                         ids=[f"{n}={v[:10]!a}" for n, v, _ in BAD_QUERIES])
def test_bad_list_records_query(raw: SignedHttp, pool_id: str, identity_id: str, name: str,
                                value: str, expected: str) -> None:
    path = dataset_path(pool_id, identity_id) + "/records"
    reply = raw.call("GET", path, query=[(name, value)])
    assert assert_aws_error(reply, 400, "InvalidParameterException") == expected


@pytest.mark.parametrize("value", ["0", "-5", "abc", "1e3", "9" * 25])
def test_bad_max_results_on_the_list_operations(raw: SignedHttp, pool_id: str,
                                                identity_id: str, value: str) -> None:
    for path in (f"/identitypools/{pool_id}/identities/{identity_id}/datasets",
                 "/identitypools"):
        reply = raw.call("GET", path, query=[("maxResults", value)])
        assert_aws_error(reply, 400, "InvalidParameterException")


def test_huge_but_valid_max_results_is_capped(raw: SignedHttp, sync: Any,
                                              where: dict[str, str]) -> None:
    token = sync.list_records(**where)["SyncSessionToken"]
    sync.update_records(**where, SyncSessionToken=token, RecordPatches=[
        {"Op": "replace", "Key": f"k{i}", "Value": "v", "SyncCount": 0} for i in range(3)])
    path = dataset_path(where["IdentityPoolId"], where["IdentityId"]) + "/records"
    for value in (str(2**31 - 1), str(2**63 - 1), "+3"):
        reply = raw.call("GET", path, query=[("maxResults", value), ("lastSyncCount", "0")])
        assert reply.status == 200, reply.body
        assert reply.json()["Count"] == 3


# --- body size -------------------------------------------------------------------------

def _update_body(size: int) -> bytes:
    head, tail = b'{"SyncSessionToken":"', b'"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def test_body_over_the_limit(raw: SignedHttp, sync: Any, where: dict[str, str]) -> None:
    path = dataset_path(where["IdentityPoolId"], where["IdentityId"])
    reply = raw.call("POST", path, body=_update_body(MAX_BODY + 1))
    message = assert_aws_error(reply, 400, "InvalidParameterException")
    assert str(MAX_BODY) in message
    # Right at the limit the body is read and judged on its content.
    at_limit = raw.call("POST", path, body=_update_body(MAX_BODY))
    assert "larger than" not in assert_aws_error(at_limit, 400, "InvalidParameterException")
    _untouched(sync, where)


def _head(prepared: Prepared, raw: SignedHttp, extra: str) -> bytes:
    lines = [f"{prepared.method} {prepared.target} HTTP/1.1", f"Host: {raw.host}:{raw.port}"]
    lines += [f"{k}: {v}" for k, v in prepared.headers.items()]
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def test_lying_content_length(raw: SignedHttp, pool_id: str, identity_id: str) -> None:
    """A declared length over the limit is refused before any body is read."""
    prepared = raw.sign("POST", dataset_path(pool_id, identity_id), body=b"{}")
    head = _head(prepared, raw, f"Content-Length: {10 * MAX_BODY}\r\n")
    reply = exchange(raw.host, raw.port, head, [b"{}"])
    assert str(MAX_BODY) in assert_aws_error(reply, 400, "InvalidParameterException")


def test_chunked_body_over_the_limit(raw: SignedHttp, pool_id: str, identity_id: str) -> None:
    """No Content-Length at all: the limit holds while the body streams in."""
    prepared = raw.sign("POST", dataset_path(pool_id, identity_id), body=b"{}")
    piece = 256 * 1024
    chunks = [f"{piece:x}\r\n".encode() + b"a" * piece + b"\r\n"] * (MAX_BODY // piece)
    chunks += [b"1\r\na\r\n", b"0\r\n\r\n"]  # one byte over the limit
    reply = exchange(raw.host, raw.port, _head(prepared, raw, "Transfer-Encoding: chunked\r\n"),
                     chunks)
    assert str(MAX_BODY) in assert_aws_error(reply, 400, "InvalidParameterException")


# --- unknown routes and targets --------------------------------------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/nothing/here"),
    ("GET", "/"),
    ("POST", "/"),  # no X-Amz-Target
    ("PUT", "/identitypools/{pool}/identities/{identity}/datasets/data"),
    ("PATCH", "/identitypools/{pool}/identities/{identity}/datasets/data"),
    ("POST", "/identitypools/{pool}/identities/{identity}/datasets"),
    ("DELETE", "/identitypools/{pool}"),
    ("GET", "/identitypools/{pool}/bulkpublish"),
    ("GET", "/identitypools/{pool}/identities/{identity}/datasets/data/records/extra"),
    ("GET", "/identitypools/{pool}/identities/{identity}/datasets/data/nothing"),
    ("GET", "/IDENTITYPOOLS/{pool}"),
])
def test_unknown_path_or_method(raw: SignedHttp, pool_id: str, method: str,
                                path: str) -> None:
    target = path.format(pool=pool_id, identity=new_identity_id())
    reply = raw.call(method, target)
    assert_aws_error(reply, 404, "UnknownOperationException")


@pytest.mark.parametrize("target", [
    f"{SYNC_TARGET}.NoSuchOperation",
    f"{SYNC_TARGET}.listRecords",
    f"{SYNC_TARGET}.",
    "com.example.OtherService.ListRecords",
    "ListRecords",
    "",
    "AWSCognitoIdentityService.NoSuchOperation",
])
def test_unknown_target(raw: SignedHttp, target: str) -> None:
    reply = raw.call("POST", "/", headers={"X-Amz-Target": target}, body={})
    assert_aws_error(reply, 404, "UnknownOperationException")


# --- the X-Amz-Target (JSON 1.1) form --------------------------------------------------

def _without_token(listing: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in listing.items() if k != "SyncSessionToken"}


def test_target_form_matches_the_rest_form(raw: SignedHttp, where: dict[str, str]) -> None:
    pool, identity, name = where["IdentityPoolId"], where["IdentityId"], where["DatasetName"]
    rest_path = dataset_path(pool, identity, name)

    # ListRecords through the target form hands out a session token ...
    first = raw.target("ListRecords", {**where, "LastSyncCount": 0})
    assert first.status == 200, first.body
    assert first.json()["DatasetExists"] is False
    token = first.json()["SyncSessionToken"]

    # ... which UpdateRecords through the target form accepts.
    patches = [{"Op": "replace", "Key": k, "Value": v, "SyncCount": 0,
                "DeviceLastModifiedDate": 1700000000}
               for k, v in (("a", "1"), ("b", "2"), ("c", "3"))]
    update = raw.target("UpdateRecords", {**where, "SyncSessionToken": token,
                                          "DeviceId": "device-1", "RecordPatches": patches})
    assert update.status == 200, update.body
    assert sorted(r["Key"] for r in update.json()["Records"]) == ["a", "b", "c"]
    assert {r["SyncCount"] for r in update.json()["Records"]} == {1}

    # The REST form sees the change, and both forms answer alike.
    for last in (0, 1):
        by_target = raw.target("ListRecords", {**where, "LastSyncCount": last,
                                               "MaxResults": 2})
        by_rest = raw.call("GET", rest_path + "/records",
                           query=[("lastSyncCount", str(last)), ("maxResults", "2")])
        assert by_target.status == by_rest.status == 200
        target_page, rest_page = by_target.json(), by_rest.json()
        assert "NextToken" in rest_page or last == 1
        target_page.pop("NextToken", None)
        rest_page.pop("NextToken", None)
        assert _without_token(target_page) == _without_token(rest_page)
    assert [r["Key"] for r in raw.target("ListRecords", where).json()["Records"]] == [
        "a", "b", "c"]

    described = raw.target("DescribeDataset", where)
    assert described.status == 200
    assert described.json() == raw.call("GET", rest_path).json()
    assert described.json()["Dataset"]["NumRecords"] == 3
    assert described.json()["Dataset"]["LastModifiedBy"] == "device-1"

    datasets = raw.target("ListDatasets", {"IdentityPoolId": pool, "IdentityId": identity})
    assert datasets.status == 200
    rest_datasets = raw.call("GET", f"/identitypools/{pool}/identities/{identity}/datasets")
    assert datasets.json() == rest_datasets.json()
    assert [d["DatasetName"] for d in datasets.json()["Datasets"]] == [name]


def test_target_form_validates_like_the_rest_form(raw: SignedHttp,
                                                  where: dict[str, str]) -> None:
    missing = raw.target("ListRecords", {"IdentityPoolId": where["IdentityPoolId"],
                                         "DatasetName": "data"})
    assert assert_aws_error(missing, 400, "InvalidParameterException") == validation_message(
        "None", "identityId", "Member must not be null")
    bad_name = raw.target("DescribeDataset", {**where, "DatasetName": "a/b"})
    assert assert_aws_error(bad_name, 400, "InvalidParameterException") == validation_message(
        "a/b", "datasetName", NAME_PATTERN)
    wrong_type = raw.target("ListRecords", {**where, "LastSyncCount": "0"})
    assert assert_aws_error(wrong_type, 400, "InvalidParameterException") == (
        validation_message("0", "lastSyncCount", "Member must be an integer"))
    not_object = raw.call("POST", "/", headers={"X-Amz-Target": f"{SYNC_TARGET}.ListDatasets"},
                          body=b"[1]")
    assert_aws_error(not_object, 400, "InvalidParameterException")
    unknown_pool = raw.target("ListDatasets", {"IdentityPoolId": "us-east-1:" + "0" * 36,
                                               "IdentityId": where["IdentityId"]})
    assert_aws_error(unknown_pool, 404, "ResourceNotFoundException")

