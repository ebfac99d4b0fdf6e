"""The rest of Cognito Identity through boto3: pool roles and role mappings (and the role
GetCredentialsForIdentity picks with them), tags, principal tag maps and UnlinkIdentity.

Logins come from an OpenID Connect provider the test plays (its JWKS in a file), so role
mapping rules can read real, verified claims.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.identity_helpers import (
    DEVELOPER_PROVIDER,
    make_pool,
    sts_client,
    sync_client_for,
    unsigned_identity_client,
)
from tests.server import Credentials, ServerProcess
from tests.test_oidc_logins import CLIENT_ID, ISSUER, PROVIDER, Provider
from tests.test_sync_semantics import Dataset, error_code, put

ACCOUNT = "123456789012"


def role(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


ROLES = {"authenticated": role("Auth"), "unauthenticated": role("Unauth")}


@pytest.fixture(scope="module")
def idp() -> Provider:
    return Provider()


@pytest.fixture(scope="module")
def idp_server(idp: Provider, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("pool-access")
    jwks = folder / "jwks.json"
    jwks.write_text(json.dumps(idp.jwks))
    config = [{"issuer": ISSUER, "jwks_file": str(jwks), "audiences": [CLIENT_ID]}]
    proc = ServerProcess(folder / "server", env={"COGSYNC_OIDC_PROVIDERS": json.dumps(config)})
    yield proc.start()
    proc.kill()


def oidc_pool(server: ServerProcess) -> str:
    return make_pool(server, unauthenticated=True, push=False, OpenIdConnectProviderARNs=[
        f"arn:aws:iam::{ACCOUNT}:oidc-provider/{PROVIDER}"])


def role_of(server: ServerProcess, creds: dict[str, Any]) -> str:
    """The role the credentials were issued for, as STS GetCallerIdentity names it."""
    arn = sts_client(server, creds).get_caller_identity()["Arn"]
    return arn.split(":assumed-role/", 1)[1].split("/", 1)[0]


# --- roles and role mappings ------------------------------------------------------------


def test_roles_round_trip_and_validation(idp_server: ServerProcess) -> None:
    identity = idp_server.client("cognito-identity", parameter_validation=False)
    pool = oidc_pool(idp_server)
    assert identity.get_identity_pool_roles(IdentityPoolId=pool)["Roles"] == {}
    mappings = {PROVIDER: {
        "Type": "Rules", "AmbiguousRoleResolution": "AuthenticatedRole",
        "RulesConfiguration": {"Rules": [
            {"Claim": "group", "MatchType": "Equals", "Value": "admins",
             "RoleARN": role("Admin")}]}}}
    identity.set_identity_pool_roles(IdentityPoolId=pool, Roles=ROLES, RoleMappings=mappings)
    stored = identity.get_identity_pool_roles(IdentityPoolId=pool)
    assert (stored["IdentityPoolId"], stored["Roles"], stored["RoleMappings"]) == (
        pool, ROLES, mappings)

    bad: list[tuple[dict[str, Any], str]] = [
        ({"Roles": {"authenticated": "arn:aws:s3:::bucket-not-role"}}, "InvalidParameterException"),
        ({"Roles": {"guests": role("X")}}, "InvalidParameterException"),
        ({"Roles": ROLES, "RoleMappings": {"nobody.example": mappings[PROVIDER]}},
         "InvalidParameterException"),
        ({"Roles": ROLES, "RoleMappings": {PROVIDER: {"Type": "Rules",
                                                      "AmbiguousRoleResolution": "Deny"}}},
         "InvalidParameterException"),
        ({"Roles": ROLES, "RoleMappings": {PROVIDER: {"Type": "Token"}}},
         "InvalidParameterException"),
        ({"Roles": ROLES, "RoleMappings": {PROVIDER: {"Type": "Groups",
                                                      "AmbiguousRoleResolution": "Deny"}}},
         "InvalidParameterException"),
    ]
    for change, code in bad:
        with pytest.raises(ClientError) as excinfo:
            identity.set_identity_pool_roles(IdentityPoolId=pool, **change)
        assert error_code(excinfo)[0] == code, change
    # A refused call changed nothing.
    assert identity.get_identity_pool_roles(IdentityPoolId=pool)["RoleMappings"] == mappings

    # Setting roles again replaces both parts.
    identity.set_identity_pool_roles(IdentityPoolId=pool, Roles={"authenticated": role("Auth")})
    again = identity.get_identity_pool_roles(IdentityPoolId=pool)
    assert again["Roles"] == {"authenticated": role("Auth")} and "RoleMappings" not in again


def test_roles_belong_to_the_account(idp_server: ServerProcess) -> None:
    pool = oidc_pool(idp_server)
    account = json.loads(idp_server.cli("accounts", "create", "--json"))
    other = idp_server.client("cognito-identity", credentials=Credentials(
        account["AccessKeyId"], account["SecretAccessKey"]))
    for call, args in [(other.get_identity_pool_roles, {}),
                       (other.set_identity_pool_roles, {"Roles": ROLES})]:
        with pytest.raises(ClientError) as excinfo:
            call(IdentityPoolId=pool, **args)
        assert error_code(excinfo)[0] == "ResourceNotFoundException"


def test_credentials_take_the_role_the_mappings_give(idp_server: ServerProcess,
                                                     idp: Provider) -> None:
    identity = idp_server.client("cognito-identity")
    public = unsigned_identity_client(idp_server)
    pool = oidc_pool(idp_server)
    rules = [{"Claim": "group", "MatchType": "Equals", "Value": "admins",
              "RoleARN": role("Admin")},
             {"Claim": "email", "MatchType": "StartsWith", "Value": "ops@",
              "RoleARN": role("Ops")}]

    def credentials(user: str, custom: str | None = None, **claims: Any) -> dict[str, Any]:
        logins = {PROVIDER: idp.token(user, **claims)}
        identity_id = public.get_id(IdentityPoolId=pool, Logins=logins)["IdentityId"]
        extra = {"CustomRoleArn": custom} if custom else {}
        return public.get_credentials_for_identity(IdentityId=identity_id, Logins=logins,
                                                   **extra)["Credentials"]

    def mapping(kind: str, ambiguous: str) -> None:
        rules_config = {"RulesConfiguration": {"Rules": rules}} if kind == "Rules" else {}
        identity.set_identity_pool_roles(IdentityPoolId=pool, Roles=ROLES, RoleMappings={
            PROVIDER: {"Type": kind, "AmbiguousRoleResolution": ambiguous, **rules_config}})

    mapping("Rules", "AuthenticatedRole")
    assert role_of(idp_server, credentials("ann", group="admins")) == "Admin"
    assert role_of(idp_server, credentials("bob", email="ops@example.com")) == "Ops"
    assert role_of(idp_server, credentials("cid", group="users")) == "Auth"  # no rule matched
    with pytest.raises(ClientError) as excinfo:  # not the role the rules give
        credentials("ann", custom=role("Auth"), group="admins")
    assert error_code(excinfo)[0] == "NotAuthorizedException"

    mapping("Rules", "Deny")
    with pytest.raises(ClientError) as excinfo:
        credentials("cid", group="users")
    assert error_code(excinfo)[0] == "NotAuthorizedException"
    assert "denied" in str(excinfo.value)

    mapping("Token", "Deny")
    offered = [role("Reader"), role("Writer")]
    assert role_of(idp_server, credentials(
        "dee", **{"cognito:roles": offered, "cognito:preferred_role": role("Writer")})) == "Writer"
    assert role_of(idp_server, credentials(
        "dee", custom=role("Reader"), **{"cognito:roles": offered})) == "Reader"
    with pytest.raises(ClientError) as excinfo:  # two roles, none preferred: ambiguous
        credentials("dee", **{"cognito:roles": offered})
    assert error_code(excinfo)[0] == "NotAuthorizedException"

    # An unauthenticated identity gets the unauthenticated role, or nothing without one.
    guest = public.get_id(IdentityPoolId=pool)["IdentityId"]
    creds = public.get_credentials_for_identity(IdentityId=guest)["Credentials"]
    assert role_of(idp_server, creds) == "Unauth"
    Dataset(sync_client_for(idp_server, creds), pool, guest).update([put("k", "v")])
    identity.set_identity_pool_roles(IdentityPoolId=pool, Roles={"authenticated": role("Auth")})
    with pytest.raises(ClientError) as excinfo:
        public.get_credentials_for_identity(IdentityId=guest)
    assert error_code(excinfo)[0] == "InvalidIdentityPoolConfigurationException"


# --- tags -----------------------------------------------------------------------------


def test_tags_on_the_pool_arn(idp_server: ServerProcess) -> None:
    identity = idp_server.client("cognito-identity", parameter_validation=False)
    account = idp_server.client("sts").get_caller_identity()["Account"]
    pool = identity.create_identity_pool(IdentityPoolName="tagged",
                                         AllowUnauthenticatedIdentities=False,
                                         IdentityPoolTags={"team": "mobile"})["IdentityPoolId"]
    arn = f"arn:aws:cognito-identity:us-east-1:{account}:identitypool/{pool}"
    assert identity.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"team": "mobile"}
    identity.tag_resource(ResourceArn=arn, Tags={"stage": "beta", "team": "apps"})
    assert identity.list_tags_for_resource(ResourceArn=arn)["Tags"] == {
        "team": "apps", "stage": "beta"}
    assert identity.describe_identity_pool(IdentityPoolId=pool)["IdentityPoolTags"] == {
        "team": "apps", "stage": "beta"}
    identity.untag_resource(ResourceArn=arn, TagKeys=["team", "absent"])
    assert identity.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"stage": "beta"}

    too_many = {f"k{i}": "v" for i in range(50)}
    for args, code in [
        ({"ResourceArn": arn, "Tags": {"aws:owner": "x"}}, "InvalidParameterException"),
        ({"ResourceArn": arn, "Tags": too_many}, "InvalidParameterException"),
        ({"ResourceArn": "arn:aws:s3:::bucket-name-here", "Tags": {"a": "b"}},
         "InvalidParameterException"),
        ({"ResourceArn": arn.replace(account, "000000000000"), "Tags": {"a": "b"}},
         "ResourceNotFoundException"),
        ({"ResourceArn": arn.replace(pool, "us-east-1:00000000-0000-0000-0000-000000000000"),
          "Tags": {"a": "b"}}, "ResourceNotFoundException"),
    ]:
        with pytest.raises(ClientError) as excinfo:
            identity.tag_resource(**args)
        assert error_code(excinfo)[0] == code, args
    assert identity.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"stage": "beta"}


# --- principal tag maps ---------------------------------------------------------------


def test_principal_tag_attribute_maps(idp_server: ServerProcess) -> None:
    identity = idp_server.client("cognito-identity")
    pool = oidc_pool(idp_server)
    where = {"IdentityPoolId": pool, "IdentityProviderName": PROVIDER}
    first = identity.get_principal_tag_attribute_map(**where)
    assert first["UseDefaults"] is False and first.get("PrincipalTags", {}) == {}
    stored = identity.set_principal_tag_attribute_map(
        **where, UseDefaults=False, PrincipalTags={"department": "dept", "level": "lvl"})
    assert stored["PrincipalTags"] == {"department": "dept", "level": "lvl"}
    identity.set_principal_tag_attribute_map(**where, UseDefaults=True)  # tags kept
    again = identity.get_principal_tag_attribute_map(**where)
    assert again["UseDefaults"] is True
    assert again["PrincipalTags"] == {"department": "dept", "level": "lvl"}
    assert (again["IdentityPoolId"], again["IdentityProviderName"]) == (pool, PROVIDER)
    with pytest.raises(ClientError) as excinfo:
        identity.get_principal_tag_attribute_map(IdentityPoolId=pool,
                                                 IdentityProviderName="other.example")
    assert error_code(excinfo)[0] == "ResourceNotFoundException"


# --- UnlinkIdentity -------------------------------------------------------------------


def test_unlink_identity(idp_server: ServerProcess, idp: Provider) -> None:
    developer = idp_server.client("cognito-identity")
    public = unsigned_identity_client(idp_server)
    pool = oidc_pool(idp_server)
    # One identity with a developer login and a provider login.
    first = developer.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool, Logins={DEVELOPER_PROVIDER: "hal"})
    identity_id = first["IdentityId"]
    provider_login = {PROVIDER: idp.token("hal-idp")}
    developer.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool, IdentityId=identity_id,
        Logins={DEVELOPER_PROVIDER: "hal", **provider_login})
    assert sorted(developer.describe_identity(IdentityId=identity_id)["Logins"]) == sorted(
        [DEVELOPER_PROVIDER, PROVIDER])

    stranger = public.get_id(IdentityPoolId=pool, Logins={PROVIDER: idp.token("stranger")})
    for logins, remove, code in [
        ({PROVIDER: idp.token("stranger")}, [PROVIDER], "NotAuthorizedException"),
        ({}, [PROVIDER], "NotAuthorizedException"),
        (provider_login, ["never.linked"], "InvalidParameterException"),
    ]:
        with pytest.raises(ClientError) as excinfo:
            public.unlink_identity(IdentityId=identity_id, Logins=logins, LoginsToRemove=remove)
        assert error_code(excinfo)[0] == code
    assert stranger["IdentityId"] != identity_id

    public.unlink_identity(IdentityId=identity_id, Logins=provider_login,
                           LoginsToRemove=[PROVIDER])
    assert developer.describe_identity(IdentityId=identity_id)["Logins"] == [DEVELOPER_PROVIDER]
    # The unlinked login is a stranger now: it gets a new identity.
    assert public.get_id(IdentityPoolId=pool, Logins={PROVIDER: idp.token("hal-idp")})[
        "IdentityId"] != identity_id

    # Unlinking the last login leaves the identity inaccessible, even though the pool
    # allows unauthenticated identities: its id alone opens nothing.
    token = developer.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool, Logins={DEVELOPER_PROVIDER: "hal"})["Token"]
    cognito_login = {"cognito-identity.amazonaws.com": token}
    public.unlink_identity(IdentityId=identity_id, Logins=cognito_login,
                           LoginsToRemove=[DEVELOPER_PROVIDER])
    assert developer.describe_identity(IdentityId=identity_id)["Logins"] == []
    for call in (lambda: public.get_credentials_for_identity(IdentityId=identity_id),
                 lambda: public.get_open_id_token(IdentityId=identity_id),
                 lambda: public.get_id(IdentityPoolId=pool, Logins=cognito_login),
                 lambda: public.get_credentials_for_identity(IdentityId=identity_id,
                                                             Logins=cognito_login)):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert error_code(excinfo)[0] == "NotAuthorizedException"
    with pytest.raises(ClientError) as excinfo:
        public.unlink_identity(IdentityId="us-east-1:00000000-0000-0000-0000-000000000000",
                               Logins=cognito_login, LoginsToRemove=[PROVIDER])
    assert error_code(excinfo)[0] == "ResourceNotFoundException"


def test_unlinking_the_last_developer_login_closes_the_identity(
        idp_server: ServerProcess) -> None:
    developer = idp_server.client("cognito-identity")
    public = unsigned_identity_client(idp_server)
    pool = oidc_pool(idp_server)
    identity_id = developer.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool, Logins={DEVELOPER_PROVIDER: "ivy"})["IdentityId"]
    developer.unlink_developer_identity(IdentityId=identity_id, IdentityPoolId=pool,
                                        DeveloperProviderName=DEVELOPER_PROVIDER,
                                        DeveloperUserIdentifier="ivy")
    with pytest.raises(ClientError) as excinfo:
        public.get_credentials_for_identity(IdentityId=identity_id)
    assert error_code(excinfo)[0] == "NotAuthorizedException"
    again = developer.get_open_id_token_for_developer_identity(
        IdentityPoolId=pool, Logins={DEVELOPER_PROVIDER: "ivy"})["IdentityId"]
    assert again != identity_id
