"""Property: whatever a validly signed request carries, the answer is a 200 or a 4xx in the
AWS error shape, never a 5xx (and never a signature complaint, since the signature is good).
"""

from __future__ import annotations

import json
import re
import string
import uuid
from urllib.parse import quote

import botocore.session
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.server import REGION, ServerProcess
from tests.test_wire_errors import SYNC_TARGET, Reply, SignedHttp

_MODEL = botocore.session.get_session().get_service_model("cognito-sync")
OPERATIONS = {name: _MODEL.operation_model(name) for name in _MODEL.operation_names}
TEMPLATES = [(op.http["method"], op.http["requestUri"].split("?")[0])
             for op in OPERATIONS.values()]
MEMBER_NAMES = sorted({m for op in OPERATIONS.values() if op.input_shape is not None
                       for m in op.input_shape.members}
                      | {"Op", "Key", "Value", "SyncCount", "DeviceLastModifiedDate"})
TARGET_CHARS = string.ascii_letters + string.digits + ".-_ "
QUERY_NAMES = ["lastSyncCount", "maxResults", "nextToken", "syncSessionToken"]
LITERALS = sorted({s for _, uri in TEMPLATES for s in uri.strip("/").split("/")
                   if not s.startswith("{")})
# Refused outright by a signature check would mean the fuzz tests nothing but the signer.
SIGNATURE_ERRORS = {"InvalidSignatureException", "IncompleteSignatureException",
                    "MissingAuthenticationTokenException"}


@pytest.fixture(scope="module")
def raw(server: ServerProcess) -> SignedHttp:
    return SignedHttp(server)


@pytest.fixture(scope="module")
def fuzz_pool(server: ServerProcess) -> str:
    """A pool of its own, so configuration calls the fuzz gets right touch no other test."""
    identity = server.client("cognito-identity")
    return str(identity.create_identity_pool(
        IdentityPoolName=f"fuzz-{uuid.uuid4().hex[:8]}",
        AllowUnauthenticatedIdentities=True)["IdentityPoolId"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


def _identity_like() -> st.SearchStrategy[str]:
    return st.from_regex(re.compile(r"[a-z0-9_-]{1,12}:[0-9a-f-]{1,40}"), fullmatch=True)


IDENTITY = f"{REGION}:{uuid.UUID(int=7)}"


@st.composite
def segments(draw: st.DrawFn, pool: str, param: str | None = None) -> str:
    """One path segment: mostly plausible for the parameter it fills, sometimes anything."""
    likely = {"IdentityPoolId": pool, "IdentityId": IDENTITY, "DatasetName": "data",
              "DeviceId": "device"}.get(param or "")
    choice = draw(st.integers(0, 5))
    if likely is not None and choice <= 1:
        return quote(likely, safe=":")
    if choice == 2:
        text = draw(st.sampled_from([pool, IDENTITY, "data", "records", "", ".", "..", "%",
                                     "a/b", "\u00e9", "d" * 129, *LITERALS]))
    elif choice == 3:
        text = draw(_identity_like())
    else:
        text = draw(st.text(max_size=30))
    return quote(text, safe=draw(st.sampled_from(["", ":", ":@!$'()*+,;="])))


@st.composite
def paths(draw: st.DrawFn, pool: str) -> tuple[str, str]:
    if draw(st.integers(0, 3)) > 0:
        method, template = draw(st.sampled_from(TEMPLATES))
        path = re.sub(r"\{(\w+)\+?\}", lambda m: draw(segments(pool, m.group(1))), template)
    else:
        method = "GET"
        path = "/" + "/".join(draw(st.lists(segments(pool), max_size=7)))
    if draw(st.integers(0, 4)) == 0:
        method = draw(st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD"]))
    return method, path


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return b""
    if kind == 1:
        return draw(st.binary(max_size=200))
    if kind == 2:
        return json.dumps(draw(json_values)).encode()
    patches = st.lists(st.dictionaries(st.sampled_from(MEMBER_NAMES), json_values, max_size=5),
                       max_size=3)
    members = st.dictionaries(st.sampled_from(MEMBER_NAMES) | st.text(max_size=8),
                              json_values | patches, max_size=6)
    return json.dumps(draw(members)).encode()


queries = st.lists(
    st.tuples(st.sampled_from(QUERY_NAMES) | st.text(max_size=10),
              st.text(max_size=30) | st.integers().map(str)),
    max_size=4,
)


def _check(reply: Reply) -> None:
    assert reply.status == 200 or 400 <= reply.status < 500, (reply.status, reply.body)
    if reply.status == 200:
        assert isinstance(reply.json(), dict)
        return
    code = reply.headers.get("x-amzn-errortype")
    assert code and code.endswith("Exception"), (reply.headers, reply.body)
    body = reply.json()
    assert body["__type"] == code
    assert isinstance(body["message"], str) and body["message"]
    assert code not in SIGNATURE_ERRORS, body


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_rest_requests_never_fail_with_5xx(raw: SignedHttp, fuzz_pool: str,
                                          data: st.DataObject) -> None:
    method, path = data.draw(paths(fuzz_pool), label="method, path")
    query = data.draw(queries, label="query")
    body = data.draw(bodies(), label="body")
    reply = raw.call(method, path, query=query, body=body)
    if method == "HEAD":
        assert reply.status < 500
        return
    _check(reply)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operation=st.one_of(st.sampled_from(sorted(OPERATIONS)),
                          st.sampled_from(sorted(OPERATIONS)),
                          st.text(TARGET_CHARS, max_size=20)),
       data=st.data())
def test_target_requests_never_fail_with_5xx(raw: SignedHttp, fuzz_pool: str, operation: str,
                                            data: st.DataObject) -> None:
    body = data.draw(bodies(), label="body")
    if data.draw(st.booleans(), label="plausible ids") and body.startswith(b"{"):
        members = json.loads(body)
        members.update(IdentityPoolId=fuzz_pool, IdentityId=IDENTITY)
        if data.draw(st.booleans(), label="dataset"):
            members["DatasetName"] = "data"
        body = json.dumps(members).encode()
    headers = {"X-Amz-Target": f"{SYNC_TARGET}.{operation}",
               "Content-Type": "application/x-amz-json-1.1"}
    reply = raw.call("POST", "/", headers=headers, body=body)
    _check(reply)


def test_server_is_healthy_after_the_fuzz(raw: SignedHttp, fuzz_pool: str) -> None:
    reply = raw.call("GET", f"/identitypools/{fuzz_pool}")
    assert reply.status == 200, reply.body
    assert reply.json()["IdentityPoolUsage"]["IdentityPoolId"] == fuzz_pool
