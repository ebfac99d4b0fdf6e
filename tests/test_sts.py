"""STS on cogsync's port, through boto3's ``sts`` client: the classic (basic) Cognito flow
(GetId, GetOpenIdToken, AssumeRoleWithWebIdentity with the pool's role ARN), the
credentials it returns, GetCallerIdentity, and the query protocol's errors."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jwt
import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.identity_helpers import (
    DEVELOPER_PROVIDER,
    make_pool,
    sts_client,
    sts_credentials,
    sync_client_for,
    unauthenticated_credentials,
    unsigned_identity_client,
)
from tests.server import (
    Credentials,
    ServerProcess,
    independent_of_backend,
    new_identity_id,
    postgres_database_for,
)
from tests.test_sync_semantics import Dataset, error_code, put

ACCOUNT = "123456789012"
UNAUTH_ROLE = f"arn:aws:iam::{ACCOUNT}:role/App_Unauth"
AUTH_ROLE = f"arn:aws:iam::{ACCOUNT}:role/App_Auth"
ROLES = {"unauthenticated": UNAUTH_ROLE, "authenticated": AUTH_ROLE}
ISSUER = "https://cognito-identity.amazonaws.com"
NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


def classic_pool(server: ServerProcess, *, classic: bool = True, roles: bool = True) -> str:
    pool = make_pool(server, unauthenticated=True, push=False, AllowClassicFlow=classic)
    if roles:
        server.client("cognito-identity").set_identity_pool_roles(IdentityPoolId=pool,
                                                                  Roles=ROLES)
    return pool


@pytest.fixture(scope="module")
def pool(server: ServerProcess) -> str:
    return classic_pool(server)


def open_id_token(server: ServerProcess, pool_id: str) -> tuple[str, str]:
    """A new unauthenticated identity and its OpenID token (GetId, GetOpenIdToken)."""
    public = unsigned_identity_client(server)
    identity_id = public.get_id(IdentityPoolId=pool_id)["IdentityId"]
    return identity_id, public.get_open_id_token(IdentityId=identity_id)["Token"]


def assume(server: ServerProcess, token: str, role: str = UNAUTH_ROLE, **extra: Any) -> Any:
    return sts_client(server).assume_role_with_web_identity(
        RoleArn=role, RoleSessionName=extra.pop("RoleSessionName", "web-identity"),
        WebIdentityToken=token, **extra)


def test_classic_flow_credentials_act_as_the_identity(server: ServerProcess, pool: str) -> None:
    identity_id, token = open_id_token(server, pool)
    before = time.time()
    answer = assume(server, token)
    assert answer["SubjectFromWebIdentityToken"] == identity_id
    assert answer["Audience"] == pool
    assert answer["Provider"] == ISSUER
    user = answer["AssumedRoleUser"]
    assert user["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/App_Unauth/web-identity"
    assert user["AssumedRoleId"].startswith("AROA")
    assert user["AssumedRoleId"].endswith(":web-identity")
    creds = answer["Credentials"]
    lifetime = creds["Expiration"].timestamp() - before
    assert 3590 <= lifetime <= 3610  # the configured lifetime, as GetCredentialsForIdentity's

    sync = sync_client_for(server, sts_credentials(creds))
    Dataset(sync, pool, identity_id).update([put("theme", "dark")])
    assert Dataset(server.client(), pool, identity_id).values() == {"theme": "dark"}
    with pytest.raises(ClientError) as excinfo:  # another identity's data
        Dataset(sync, pool, new_identity_id()).list()
    assert error_code(excinfo) == ("NotAuthorizedException", 403)
    with pytest.raises(ClientError) as excinfo:  # a developer-only operation
        sync.describe_identity_pool_usage(IdentityPoolId=pool)
    assert error_code(excinfo) == ("NotAuthorizedException", 403)

    who = sts_client(server, creds).get_caller_identity()
    assert (who["Arn"], who["UserId"], who["Account"]) == (
        user["Arn"], user["AssumedRoleId"], ACCOUNT)


def test_authenticated_and_unauthenticated_roles(server: ServerProcess, pool: str) -> None:
    developer = server.client("cognito-identity")
    signed_in = developer.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool, Logins={DEVELOPER_PROVIDER: f"user-{time.time_ns()}"})
    answer = assume(server, signed_in["Token"], AUTH_ROLE, RoleSessionName="app")
    assert answer["SubjectFromWebIdentityToken"] == signed_in["IdentityId"]
    assert answer["AssumedRoleUser"]["Arn"].endswith(":assumed-role/App_Auth/app")
    _, guest = open_id_token(server, pool)
    other_pool_role = f"arn:aws:iam::{ACCOUNT}:role/Someone_Elses"
    for token, role in [(signed_in["Token"], UNAUTH_ROLE), (guest, AUTH_ROLE),
                        (guest, other_pool_role)]:
        with pytest.raises(ClientError) as excinfo:
            assume(server, token, role)
        assert error_code(excinfo) == ("AccessDenied", 403)
        assert "sts:AssumeRoleWithWebIdentity" in str(excinfo.value)


def test_refusals_carry_sts_error_codes(server: ServerProcess, pool: str) -> None:
    identity_id, token = open_id_token(server, pool)
    forged = jwt.encode(
        {"iss": ISSUER, "sub": identity_id, "aud": pool, "amr": ["unauthenticated"],
         "exp": int(time.time()) + 600},
        rsa.generate_private_key(public_exponent=65537, key_size=2048), algorithm="RS256")
    no_classic = classic_pool(server, classic=False)
    no_roles = classic_pool(server, roles=False)
    cases: list[tuple[str, dict[str, Any], tuple[str, int]]] = [
        ("not a JWT", {"WebIdentityToken": "not.a.jwt"}, ("InvalidIdentityToken", 400)),
        ("signed by another key", {"WebIdentityToken": forged}, ("InvalidIdentityToken", 400)),
        ("OAuth 2.0 provider", {"ProviderId": "graph.facebook.com"},
         ("InvalidIdentityToken", 400)),
        ("classic flow off", {"WebIdentityToken": open_id_token(server, no_classic)[1]},
         ("AccessDenied", 403)),
        ("pool without roles", {"WebIdentityToken": open_id_token(server, no_roles)[1]},
         ("AccessDenied", 403)),
        ("not a role ARN", {"RoleArn": "arn:aws:s3:::my-bucket/role"}, ("ValidationError", 400)),
        ("session name", {"RoleSessionName": "has space"}, ("ValidationError", 400)),
        ("longer than the role allows", {"DurationSeconds": 7200}, ("ValidationError", 400)),
        ("shorter than STS allows", {"DurationSeconds": 60}, ("ValidationError", 400)),
        ("policy", {"Policy": "{not json"}, ("MalformedPolicyDocument", 400)),
    ]
    client = sts_client(server, parameter_validation=False)  # the server's checks, not boto3's
    for what, change, expected in cases:
        params = {"RoleArn": UNAUTH_ROLE, "RoleSessionName": "app", "WebIdentityToken": token,
                  **change}
        with pytest.raises(ClientError) as excinfo:
            client.assume_role_with_web_identity(**params)
        assert error_code(excinfo) == expected, what
    # The same token, unchanged, is fine; a session shorter than the default too.
    short = assume(server, token, DurationSeconds=900)["Credentials"]["Expiration"]
    assert short.timestamp() - time.time() < 1000


def test_expired_deleted_and_gone(server: ServerProcess) -> None:
    pool_id = classic_pool(server)
    developer = server.client("cognito-identity")
    brief = developer.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool_id, Logins={DEVELOPER_PROVIDER: "brief"}, TokenDuration=1)
    deleted_id, deleted_token = open_id_token(server, pool_id)
    developer.delete_identities(IdentityIdsToDelete=[deleted_id])
    time.sleep(2.1)
    with pytest.raises(ClientError) as excinfo:
        assume(server, brief["Token"], AUTH_ROLE)
    assert error_code(excinfo) == ("ExpiredTokenException", 400)
    with pytest.raises(ClientError) as excinfo:
        assume(server, deleted_token)
    assert error_code(excinfo) == ("IDPRejectedClaim", 403)
    _, orphan = open_id_token(server, pool_id)
    developer.delete_identity_pool(IdentityPoolId=pool_id)
    with pytest.raises(ClientError) as excinfo:
        assume(server, orphan)
    assert error_code(excinfo) == ("InvalidIdentityToken", 400)


def test_get_caller_identity(server: ServerProcess, pool: str) -> None:
    developer = server.client("sts").get_caller_identity()
    account = developer["Account"]
    assert developer["UserId"] == account and account.isdigit() and len(account) == 12
    assert developer["Arn"] == f"arn:aws:iam::{account}:root"

    # GetCredentialsForIdentity (the enhanced flow) on a pool with roles: the role's name,
    # and the session name AWS gives those credentials.
    _, creds = unauthenticated_credentials(server, pool)
    who = sts_client(server, creds).get_caller_identity()
    assert who["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/App_Unauth/" \
                         "CognitoIdentityCredentials"
    # A pool without roles: the credentials name the identity.
    identity_id, creds = unauthenticated_credentials(server, make_pool(server, push=False))
    who = sts_client(server, creds).get_caller_identity()
    assert who["UserId"] == identity_id and who["Account"] == account

    assert server.credentials is not None
    for creds, expected in [
        (Credentials(server.credentials.access_key_id, "wrong-secret"),
         ("SignatureDoesNotMatch", 403)),
        (Credentials("AKCSNOSUCHKEY0000000", "secret"), ("InvalidClientTokenId", 403)),
    ]:
        with pytest.raises(ClientError) as excinfo:
            server.client("sts", credentials=creds).get_caller_identity()
        assert error_code(excinfo) == expected


def _post(server: ServerProcess, body: bytes, path: str = "/",
          content_type: str = "application/x-www-form-urlencoded; charset=utf-8",
          method: str = "POST") -> tuple[int, dict[str, str], ET.Element]:
    request = urllib.request.Request(server.endpoint + path, data=body or None, method=method,
                                     headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, headers, raw = error.code, dict(error.headers), error.read()
    return status, {k.lower(): v for k, v in headers.items()}, ET.fromstring(raw)


@pytest.mark.parametrize(("body", "method", "path", "expected"), [
    (b"Version=2011-06-15", "POST", "/", ("MissingAction", 400)),
    (b"Action=AssumeRole&Version=2011-06-15", "POST", "/", ("InvalidAction", 400)),
    (b"Action=GetCallerIdentity&Version=2010-01-01", "POST", "/", ("InvalidAction", 400)),
    (b"Action=GetCallerIdentity&Version=2011-06-15&x=%FF", "POST", "/",
     ("MalformedQueryString", 404)),
    (b"", "GET", "/?Action=GetCallerIdentity&Version=2011-06-15",
     ("MissingAuthenticationToken", 403)),
    (b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=" + UNAUTH_ROLE.encode()
     + b"&RoleSessionName=web&WebIdentityToken=a.b.c", "POST", "/", ("InvalidIdentityToken", 400)),
    (b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15", "POST", "/",
     ("ValidationError", 400)),
])
def test_query_protocol_errors(server: ServerProcess, body: bytes, method: str, path: str,
                               expected: tuple[str, int]) -> None:
    status, headers, root = _post(server, body, path, method=method)
    assert root.tag == f"{NS}ErrorResponse"
    assert (root.findtext(f"{NS}Error/{NS}Code"), status) == expected
    assert root.findtext(f"{NS}Error/{NS}Type") == "Sender"
    assert root.findtext(f"{NS}Error/{NS}Message")
    assert root.findtext(f"{NS}RequestId") == headers["x-amzn-requestid"]
    assert headers["content-type"].startswith("text/xml")


@independent_of_backend
def test_sts_credentials_work_on_every_replica(tmp_path: Path) -> None:
    """Two replicas over one PostgreSQL with one master key: a token from one, STS on the
    other, the credentials on the first."""
    database = postgres_database_for(tmp_path / "shared")
    env = {"COGSYNC_SECRET_KEY": "6b" * 32}
    first = ServerProcess(tmp_path / "a", env=env, database=database).start()
    second = ServerProcess(tmp_path / "b", env=env, database=database).start()
    try:
        second.credentials, second.pool_id = first.credentials, first.pool_id
        pool_id = classic_pool(first)
        identity_id, token = open_id_token(first, pool_id)
        creds = assume(second, token)["Credentials"]
        Dataset(sync_client_for(first, sts_credentials(creds)), pool_id,
                identity_id).update([put("k", "v")])
        who = sts_client(first, creds).get_caller_identity()
        assert who["Arn"].endswith("assumed-role/App_Unauth/web-identity")
    finally:
        first.stop()
        second.stop()
