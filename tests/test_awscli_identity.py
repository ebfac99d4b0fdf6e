"""The real AWS CLI on the Cognito Identity operations that came with the classic flow
(roles, role mappings, tags, principal tag maps, UnlinkIdentity) and on STS: the classic
flow from the command line, and ``aws sts get-caller-identity``."""

from __future__ import annotations

import json

import pytest

from tests.identity_helpers import DEVELOPER_PROVIDER
from tests.server import ServerProcess, backend
from tests.test_awscli import Aws, aws_executable

# What the CLI proves is the wire (its parsing of our answers, its shorthand and its
# unsigned requests); boto3 proves the same operations on both backends
# (test_identity_pool_access.py, test_sts.py). Each CLI call costs about two seconds.
pytestmark = pytest.mark.skipif(
    backend() != "sqlite", reason="the CLI's part does not depend on the backend: SQLite pass"
)

ROLES = {"authenticated": "arn:aws:iam::123456789012:role/Cli_Auth",
         "unauthenticated": "arn:aws:iam::123456789012:role/Cli_Unauth"}
OIDC = "idp.example.test"


@pytest.fixture(scope="module")
def identity(server: ServerProcess) -> Aws:
    return Aws(aws_executable(), server, "cognito-identity")


@pytest.fixture(scope="module")
def public(server: ServerProcess) -> Aws:
    return Aws(aws_executable(), server, "cognito-identity", unsigned=True)


@pytest.fixture(scope="module")
def sts(server: ServerProcess) -> Aws:
    return Aws(aws_executable(), server, "sts")


@pytest.fixture(scope="module")
def cli_pool(identity: Aws) -> str:
    created = identity(
        "create-identity-pool", "--identity-pool-name", "cli-classic",
        "--allow-unauthenticated-identities", "--allow-classic-flow",
        "--developer-provider-name", DEVELOPER_PROVIDER,
        "--open-id-connect-provider-arns", f"arn:aws:iam::123456789012:oidc-provider/{OIDC}")
    assert created["AllowClassicFlow"] is True
    return str(created["IdentityPoolId"])


def test_roles_and_role_mappings(identity: Aws, cli_pool: str) -> None:
    mappings = {OIDC: {"Type": "Rules", "AmbiguousRoleResolution": "Deny",
                       "RulesConfiguration": {"Rules": [
                           {"Claim": "group", "MatchType": "Contains", "Value": "admin",
                            "RoleARN": "arn:aws:iam::123456789012:role/Cli_Admin"}]}}}
    assert identity("set-identity-pool-roles", "--identity-pool-id", cli_pool,
                    "--roles", json.dumps(ROLES), "--role-mappings", json.dumps(mappings)) is None
    assert identity("get-identity-pool-roles", "--identity-pool-id", cli_pool) == {
        "IdentityPoolId": cli_pool, "Roles": ROLES, "RoleMappings": mappings}
    refused = identity.run("set-identity-pool-roles", "--identity-pool-id", cli_pool,
                           "--roles", json.dumps({"authenticated": "arn:aws:s3:::not-a-role"}))
    assert refused.code != 0 and "InvalidParameterException" in refused.stderr


def test_tags(identity: Aws, sts: Aws, cli_pool: str) -> None:
    account = sts("get-caller-identity")["Account"]
    arn = f"arn:aws:cognito-identity:us-east-1:{account}:identitypool/{cli_pool}"
    identity("tag-resource", "--resource-arn", arn, "--tags", "team=mobile,stage=beta")
    identity("untag-resource", "--resource-arn", arn, "--tag-keys", "stage")
    assert identity("list-tags-for-resource", "--resource-arn", arn) == {
        "Tags": {"team": "mobile"}}


def test_principal_tag_attribute_map(identity: Aws, cli_pool: str) -> None:
    where = ["--identity-pool-id", cli_pool, "--identity-provider-name", OIDC]
    stored = identity("set-principal-tag-attribute-map", *where, "--no-use-defaults",
                      "--principal-tags", "department=dept")
    assert stored == {"IdentityPoolId": cli_pool, "IdentityProviderName": OIDC,
                      "UseDefaults": False, "PrincipalTags": {"department": "dept"}}
    assert identity("get-principal-tag-attribute-map", *where) == stored


def test_classic_flow_and_unlink_from_the_command_line(
        server: ServerProcess, identity: Aws, public: Aws, cli_pool: str) -> None:
    identity("set-identity-pool-roles", "--identity-pool-id", cli_pool,
             "--roles", json.dumps(ROLES))  # (again: the tests of this module may run alone)
    identity_id = public("get-id", "--identity-pool-id", cli_pool)["IdentityId"]
    token = public("get-open-id-token", "--identity-id", identity_id)["Token"]
    anonymous_sts = Aws(aws_executable(), server, "sts", unsigned=True)
    assumed = anonymous_sts("assume-role-with-web-identity",
                            "--role-arn", ROLES["unauthenticated"], "--role-session-name", "cli",
                            f"--web-identity-token={token}")
    assert assumed["SubjectFromWebIdentityToken"] == identity_id
    creds = assumed["Credentials"]
    as_identity = Aws(aws_executable(), server, "sts")
    as_identity.env.update(AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
                           AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                           AWS_SESSION_TOKEN=creds["SessionToken"])
    assert as_identity("get-caller-identity")["Arn"] == (
        "arn:aws:sts::123456789012:assumed-role/Cli_Unauth/cli")

    # UnlinkIdentity (unsigned): a developer identity proves itself with its OpenID token.
    signed_in = identity("get-open-id-token-for-developer-identity", "--identity-pool-id",
                         cli_pool, "--logins", json.dumps({DEVELOPER_PROVIDER: "cli-user"}))
    logins = json.dumps({"cognito-identity.amazonaws.com": signed_in["Token"]})
    assert public("unlink-identity", "--identity-id", signed_in["IdentityId"],
                  "--logins", logins, "--logins-to-remove", DEVELOPER_PROVIDER) is None
    closed = public.run("get-credentials-for-identity", "--identity-id", signed_in["IdentityId"])
    assert closed.code != 0 and "NotAuthorizedException" in closed.stderr
