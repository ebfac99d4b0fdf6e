"""The Cognito Identity endpoint through boto3: pools, identities, logins, merges."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3
import jwt
import pytest
from botocore.exceptions import ClientError

from tests.identity_helpers import (
    DEVELOPER_PROVIDER,
    make_pool,
    sync_client_for,
    unauthenticated_credentials,
    unsigned_identity_client,
)
from tests.server import Credentials, ServerProcess
from tests.test_sync_semantics import Dataset, error_code, put


@pytest.fixture(scope="module")
def identity(server: ServerProcess) -> Any:
    return server.client("cognito-identity")


@pytest.fixture(scope="module")
def public(server: ServerProcess) -> Any:
    return unsigned_identity_client(server)


@pytest.fixture(scope="module")
def app_pool(server: ServerProcess) -> str:
    return make_pool(server)


# --- pools -------------------------------------------------------------------------


def test_pool_lifecycle(identity: Any) -> None:
    created = identity.create_identity_pool(
        IdentityPoolName="My app", AllowUnauthenticatedIdentities=False,
        SupportedLoginProviders={"accounts.example.com": "client-1"},
        IdentityPoolTags={"team": "mobile"},
    )
    pool_id = created["IdentityPoolId"]
    assert created["IdentityPoolName"] == "My app"
    assert created["AllowUnauthenticatedIdentities"] is False
    described = identity.describe_identity_pool(IdentityPoolId=pool_id)
    assert described["SupportedLoginProviders"] == {"accounts.example.com": "client-1"}
    assert described["IdentityPoolTags"] == {"team": "mobile"}
    updated = identity.update_identity_pool(
        IdentityPoolId=pool_id, IdentityPoolName="Renamed", AllowUnauthenticatedIdentities=True,
        DeveloperProviderName="dev.example",
    )
    assert updated["IdentityPoolName"] == "Renamed"
    assert updated["AllowUnauthenticatedIdentities"] is True
    assert "SupportedLoginProviders" not in updated  # an update replaces the whole pool
    with pytest.raises(ClientError) as excinfo:  # the developer provider is fixed once set
        identity.update_identity_pool(IdentityPoolId=pool_id, IdentityPoolName="Renamed",
                                      AllowUnauthenticatedIdentities=True,
                                      DeveloperProviderName="other.example")
    assert error_code(excinfo) == ("InvalidParameterException", 400)
    listed = identity.list_identity_pools(MaxResults=60)["IdentityPools"]
    assert {"IdentityPoolId": pool_id, "IdentityPoolName": "Renamed"} in listed
    identity.delete_identity_pool(IdentityPoolId=pool_id)
    with pytest.raises(ClientError) as excinfo:
        identity.describe_identity_pool(IdentityPoolId=pool_id)
    assert error_code(excinfo) == ("ResourceNotFoundException", 400)


def test_list_identity_pools_pages(server: ServerProcess) -> None:
    account = json.loads(server.cli("accounts", "create", "--json"))
    client = server.client("cognito-identity", credentials=Credentials(
        account["AccessKeyId"], account["SecretAccessKey"]))
    made = {client.create_identity_pool(IdentityPoolName=f"p{i}",
                                        AllowUnauthenticatedIdentities=False)["IdentityPoolId"]
            for i in range(5)}
    seen: list[str] = []
    token = None
    while True:
        page = client.list_identity_pools(MaxResults=2, **({"NextToken": token} if token
                                                            else {}))
        seen += [p["IdentityPoolId"] for p in page["IdentityPools"]]
        token = page.get("NextToken")
        if not token:
            break
    assert set(seen) == made and len(seen) == 5


def test_pools_are_account_scoped(server: ServerProcess, identity: Any, app_pool: str) -> None:
    account = json.loads(server.cli("accounts", "create", "--json"))
    other = server.client("cognito-identity", credentials=Credentials(
        account["AccessKeyId"], account["SecretAccessKey"]))
    for call, args in [
        (other.describe_identity_pool, {"IdentityPoolId": app_pool}),
        (other.delete_identity_pool, {"IdentityPoolId": app_pool}),
        (other.list_identities, {"IdentityPoolId": app_pool, "MaxResults": 10}),
        (other.get_open_id_token_for_developer_identity,
         {"IdentityPoolId": app_pool, "Logins": {DEVELOPER_PROVIDER: "mallory"}}),
    ]:
        with pytest.raises(ClientError) as excinfo:
            call(**args)
        assert error_code(excinfo)[0] == "ResourceNotFoundException"
    assert identity.describe_identity_pool(IdentityPoolId=app_pool)["IdentityPoolId"] == app_pool


@pytest.mark.parametrize("args", [
    {"IdentityPoolName": "bad/name", "AllowUnauthenticatedIdentities": True},
    {"IdentityPoolName": "", "AllowUnauthenticatedIdentities": True},
    {"IdentityPoolName": "ok", "AllowUnauthenticatedIdentities": "yes"},
    {"IdentityPoolName": "ok", "AllowUnauthenticatedIdentities": True,
     "DeveloperProviderName": "has space"},
])
def test_create_pool_validation(server: ServerProcess, args: dict[str, Any]) -> None:
    client = server.client("cognito-identity", parameter_validation=False)
    with pytest.raises(ClientError) as excinfo:
        client.create_identity_pool(**args)
    assert error_code(excinfo) == ("InvalidParameterException", 400)


# --- unauthenticated identities ------------------------------------------------------


def test_unauthenticated_identity_gets_credentials_that_sync(server: ServerProcess,
                                                            public: Any, app_pool: str) -> None:
    identity_id = public.get_id(IdentityPoolId=app_pool)["IdentityId"]
    assert identity_id.startswith("us-east-1:")
    response = public.get_credentials_for_identity(IdentityId=identity_id)
    creds = response["Credentials"]
    assert response["IdentityId"] == identity_id
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    client = sync_client_for(server, creds)
    ds = Dataset(client, app_pool, identity_id)
    ds.update([put("level", "3")])
    assert ds.values() == {"level": "3"}
    assert ds.list()["Records"][0]["LastModifiedBy"] == identity_id


def test_unauthenticated_access_can_be_refused(server: ServerProcess, public: Any) -> None:
    pool = make_pool(server, unauthenticated=False, push=False)
    with pytest.raises(ClientError) as excinfo:
        public.get_id(IdentityPoolId=pool)
    assert error_code(excinfo) == ("NotAuthorizedException", 400)


def test_get_id_errors(public: Any, app_pool: str) -> None:
    with pytest.raises(ClientError) as excinfo:
        public.get_id(IdentityPoolId="us-east-1:00000000-0000-0000-0000-000000000000")
    assert error_code(excinfo) == ("ResourceNotFoundException", 400)
    with pytest.raises(ClientError) as excinfo:
        public.get_id(IdentityPoolId=app_pool, AccountId="000000000000")
    assert error_code(excinfo) == ("NotAuthorizedException", 400)
    with pytest.raises(ClientError) as excinfo:
        public.get_credentials_for_identity(IdentityId="us-east-1:00000000-0000-0000-0000-0")
    assert error_code(excinfo) == ("ResourceNotFoundException", 400)
    with pytest.raises(ClientError) as excinfo:
        public.get_id(IdentityPoolId=app_pool, Logins={"unknown.example": "token"})
    assert error_code(excinfo) == ("NotAuthorizedException", 400)


# --- developer-authenticated identities and OpenID tokens ----------------------------


def test_developer_identity_tokens_are_signed_jwts(server: ServerProcess, identity: Any,
                                                   public: Any, app_pool: str) -> None:
    first = identity.get_open_id_token_for_developer_identity(
        IdentityPoolId=app_pool, Logins={DEVELOPER_PROVIDER: "alice"}, TokenDuration=120)
    again = identity.get_open_id_token_for_developer_identity(
        IdentityPoolId=app_pool, Logins={DEVELOPER_PROVIDER: "alice"})
    assert first["IdentityId"] == again["IdentityId"]
    with urllib.request.urlopen(server.endpoint + "/.well-known/jwks.json") as response:
        jwks = json.loads(response.read())
    header = jwt.get_unverified_header(first["Token"])
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    claims = jwt.decode(first["Token"], jwt.PyJWK(key).key, algorithms=["RS256"],
                        audience=app_pool)
    assert claims["sub"] == first["IdentityId"]
    assert claims["exp"] - claims["iat"] == 120
    assert "authenticated" in claims["amr"] and DEVELOPER_PROVIDER in claims["amr"]

    # The token is a login for the identity: credentials, and OpenID tokens of its own.
    logins = {"cognito-identity.amazonaws.com": first["Token"]}
    creds = public.get_credentials_for_identity(IdentityId=first["IdentityId"],
                                                Logins=logins)["Credentials"]
    client = sync_client_for(server, creds)
    Dataset(client, app_pool, first["IdentityId"], "prefs").update([put("theme", "dark")])
    token = public.get_open_id_token(IdentityId=first["IdentityId"], Logins=logins)["Token"]
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == first["IdentityId"]
    # Without its login, an authenticated identity gets nothing.
    with pytest.raises(ClientError) as excinfo:
        public.get_credentials_for_identity(IdentityId=first["IdentityId"])
    assert error_code(excinfo) == ("NotAuthorizedException", 400)
    # A forged token is refused.
    forged = first["Token"][:-6] + ("AAAAAA" if not first["Token"].endswith("AAAAAA")
                                    else "BBBBBB")
    with pytest.raises(ClientError) as excinfo:
        public.get_credentials_for_identity(
            IdentityId=first["IdentityId"], Logins={"cognito-identity.amazonaws.com": forged})
    assert error_code(excinfo) == ("NotAuthorizedException", 400)


def test_lookup_unlink_and_already_registered(identity: Any, app_pool: str) -> None:
    carol = identity.get_open_id_token_for_developer_identity(
        IdentityPoolId=app_pool, Logins={DEVELOPER_PROVIDER: "carol"})["IdentityId"]
    identity.get_open_id_token_for_developer_identity(
        IdentityPoolId=app_pool, IdentityId=carol, Logins={DEVELOPER_PROVIDER: "carol-2"})
    found = identity.lookup_developer_identity(IdentityPoolId=app_pool, IdentityId=carol)
    assert found["DeveloperUserIdentifierList"] == ["carol", "carol-2"]
    by_user = identity.lookup_developer_identity(IdentityPoolId=app_pool,
                                                 DeveloperUserIdentifier="carol-2")
    assert by_user["IdentityId"] == carol
    dave = identity.get_open_id_token_for_developer_identity(
        IdentityPoolId=app_pool, Logins={DEVELOPER_PROVIDER: "dave"})["IdentityId"]
    with pytest.raises(ClientError) as excinfo:
        identity.get_open_id_token_for_developer_identity(
            IdentityPoolId=app_pool, IdentityId=dave, Logins={DEVELOPER_PROVIDER: "carol"})
    assert error_code(excinfo)[0] == "DeveloperUserAlreadyRegisteredException"
    identity.unlink_developer_identity(IdentityId=carol, IdentityPoolId=app_pool,
                                       DeveloperProviderName=DEVELOPER_PROVIDER,
                                       DeveloperUserIdentifier="carol-2")
    found = identity.lookup_developer_identity(IdentityPoolId=app_pool, IdentityId=carol)
    assert found["DeveloperUserIdentifierList"] == ["carol"]
    with pytest.raises(ClientError) as excinfo:
        identity.lookup_developer_identity(IdentityPoolId=app_pool,
                                           DeveloperUserIdentifier="carol-2")
    assert error_code(excinfo)[0] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as excinfo:
        identity.unlink_developer_identity(IdentityId=dave, IdentityPoolId=app_pool,
                                           DeveloperProviderName=DEVELOPER_PROVIDER,
                                           DeveloperUserIdentifier="carol")
    assert error_code(excinfo)[0] == "ResourceNotFoundException"


def test_merge_moves_datasets_and_reports_merged_names(sync: Any, identity: Any,
                                                       app_pool: str) -> None:
    def developer_identity(user: str) -> str:
        return identity.get_open_id_token_for_developer_identity(
            IdentityPoolId=app_pool, Logins={DEVELOPER_PROVIDER: user})["IdentityId"]

    target, source = developer_identity("erin"), developer_identity("frank")
    Dataset(sync, app_pool, target, "settings").update([put("color", "blue")])
    Dataset(sync, app_pool, source, "settings").update([put("color", "red")])
    Dataset(sync, app_pool, source, "scores").update([put("best", "42")])
    merged = identity.merge_developer_identities(
        SourceUserIdentifier="frank", DestinationUserIdentifier="erin",
        DeveloperProviderName=DEVELOPER_PROVIDER, IdentityPoolId=app_pool)
    assert merged["IdentityId"] == target
    settings = Dataset(sync, app_pool, target, "settings")
    names = settings.list()["MergedDatasetNames"]
    assert names == [f"settings.{source}"]
    assert Dataset(sync, app_pool, target, names[0]).values() == {"color": "red"}
    assert settings.values() == {"color": "blue"}
    assert Dataset(sync, app_pool, target, "scores").values() == {"best": "42"}
    # Both logins now lead to the target identity; the source identity is gone.
    lookup = identity.lookup_developer_identity(IdentityPoolId=app_pool, IdentityId=target)
    assert lookup["DeveloperUserIdentifierList"] == ["erin", "frank"]
    with pytest.raises(ClientError):
        identity.describe_identity(IdentityId=source)
    # Deleting the merged copy, as the clients do, clears the list.
    sync.delete_dataset(IdentityPoolId=app_pool, IdentityId=target, DatasetName=names[0])
    assert settings.list()["MergedDatasetNames"] == []


def test_list_describe_and_delete_identities(server: ServerProcess, identity: Any,
                                             public: Any) -> None:
    pool = make_pool(server, push=False)
    made = [public.get_id(IdentityPoolId=pool)["IdentityId"] for _ in range(3)]
    listed = identity.list_identities(IdentityPoolId=pool, MaxResults=2)
    assert len(listed["Identities"]) == 2 and listed["NextToken"]
    rest = identity.list_identities(IdentityPoolId=pool, MaxResults=2,
                                    NextToken=listed["NextToken"])
    ids = [i["IdentityId"] for i in listed["Identities"] + rest["Identities"]]
    assert sorted(ids) == sorted(made)
    described = identity.describe_identity(IdentityId=made[0])
    assert described["IdentityId"] == made[0] and described["Logins"] == []
    foreign = "us-east-1:00000000-0000-0000-0000-00000000000f"
    result = identity.delete_identities(IdentityIdsToDelete=[made[0], foreign])
    assert result["UnprocessedIdentityIds"] == [{"IdentityId": foreign,
                                                 "ErrorCode": "AccessDenied"}]
    with pytest.raises(ClientError):
        identity.describe_identity(IdentityId=made[0])
    with pytest.raises(ClientError) as excinfo:
        public.get_credentials_for_identity(IdentityId=made[0])
    assert error_code(excinfo)[0] == "ResourceNotFoundException"


def test_identity_credentials_cannot_call_developer_operations(server: ServerProcess,
                                                               app_pool: str) -> None:
    _, creds = unauthenticated_credentials(server, app_pool)
    as_identity = boto3.client(
        "cognito-identity", endpoint_url=server.endpoint, region_name="us-east-1",
        aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretKey"],
        aws_session_token=creds["SessionToken"])
    with pytest.raises(ClientError) as excinfo:
        as_identity.list_identities(IdentityPoolId=app_pool, MaxResults=5)
    assert error_code(excinfo)[0] == "NotAuthorizedException"
