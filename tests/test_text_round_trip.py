"""Every string the models allow round-trips through boto3 on every backend: U+0000, U+0001
and characters past the BMP in record keys, values and DeviceId, device tokens, developer
user identifiers (lookup, merge, unlink), tags, role mappings, principal tag maps and
login provider names (pool names' pattern allows none of these). PostgreSQL cannot store
U+0000 in text; the store escapes it there (store/text_codec.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.identity_helpers import DEVELOPER_PROVIDER, make_pool, new_unauthenticated
from tests.server import ServerProcess
from tests.test_oidc_logins import PROVIDER
from tests.test_sync_semantics import error_code

ODD = "\x00\x01\x01\x02\U0001f600"
ROLE = "arn:aws:iam::123456789012:role/R"


def test_developer_identifiers_round_trip(server: ServerProcess) -> None:
    identity = server.client("cognito-identity")
    pool = make_pool(server, push=False)
    users = [f"user{ODD}", f"user{ODD}2", "\x00", "\x01", "user"]

    def open_id(user: str) -> str:
        return str(identity.get_open_id_token_for_developer_identity(
            IdentityPoolId=pool, Logins={DEVELOPER_PROVIDER: user})["IdentityId"])

    ids = {user: open_id(user) for user in users}
    assert len(set(ids.values())) == len(users)  # each string names its own identity
    assert {user: open_id(user) for user in users} == ids  # and names it again
    for user, identity_id in ids.items():
        found = identity.lookup_developer_identity(IdentityPoolId=pool, IdentityId=identity_id)
        assert found["DeveloperUserIdentifierList"] == [user]
        by_user = identity.lookup_developer_identity(IdentityPoolId=pool,
                                                     DeveloperUserIdentifier=user)
        assert by_user["IdentityId"] == identity_id
    merged = identity.merge_developer_identities(
        SourceUserIdentifier=users[1], DestinationUserIdentifier=users[0],
        DeveloperProviderName=DEVELOPER_PROVIDER, IdentityPoolId=pool)["IdentityId"]
    assert merged == ids[users[0]]
    both = identity.lookup_developer_identity(IdentityPoolId=pool, IdentityId=merged)
    assert sorted(both["DeveloperUserIdentifierList"]) == sorted(users[:2])
    identity.unlink_developer_identity(IdentityId=merged, IdentityPoolId=pool,
                                       DeveloperProviderName=DEVELOPER_PROVIDER,
                                       DeveloperUserIdentifier=users[1])
    left = identity.lookup_developer_identity(IdentityPoolId=pool, IdentityId=merged)
    assert left["DeveloperUserIdentifierList"] == [users[0]]


def test_pool_names_tags_roles_and_principal_tags_round_trip(server: ServerProcess) -> None:
    identity = server.client("cognito-identity")
    name = "pool\tname +=,.@-_"  # the name's pattern allows no more
    tags = {f"k{ODD}": f"v{ODD}", "\x00": "", "\x01": "\x00"}
    pool = identity.create_identity_pool(
        IdentityPoolName=name, AllowUnauthenticatedIdentities=False, IdentityPoolTags=tags,
        OpenIdConnectProviderARNs=[f"arn:aws:iam::123456789012:oidc-provider/{PROVIDER}"],
        SupportedLoginProviders={f"p{ODD}": "app.id"},  # a provider name has no pattern
    )["IdentityPoolId"]
    described = identity.describe_identity_pool(IdentityPoolId=pool)
    assert described["IdentityPoolName"] == name
    assert described["IdentityPoolTags"] == tags
    assert described["SupportedLoginProviders"] == {f"p{ODD}": "app.id"}
    account = server.client("sts").get_caller_identity()["Account"]
    arn = f"arn:aws:cognito-identity:us-east-1:{account}:identitypool/{pool}"
    identity.tag_resource(ResourceArn=arn, Tags={f"more{ODD}": ODD})
    assert identity.list_tags_for_resource(ResourceArn=arn)["Tags"] == {
        **tags, f"more{ODD}": ODD}
    identity.untag_resource(ResourceArn=arn, TagKeys=["\x00"])
    assert "\x00" not in identity.list_tags_for_resource(ResourceArn=arn)["Tags"]

    mappings: dict[str, Any] = {PROVIDER: {
        "Type": "Rules", "AmbiguousRoleResolution": "Deny",
        "RulesConfiguration": {"Rules": [
            {"Claim": "group", "MatchType": "Equals", "Value": f"a{ODD}", "RoleARN": ROLE},
            {"Claim": "group", "MatchType": "Contains", "Value": "\x00", "RoleARN": ROLE}]}}}
    identity.set_identity_pool_roles(IdentityPoolId=pool, Roles={"authenticated": ROLE},
                                     RoleMappings=mappings)
    assert identity.get_identity_pool_roles(IdentityPoolId=pool)["RoleMappings"] == mappings

    for provider, principal_tags in ((PROVIDER, {f"t{ODD}": f"claim{ODD}"}),
                                     (f"p{ODD}", {"\x00": "\x01"})):
        identity.set_principal_tag_attribute_map(
            IdentityPoolId=pool, IdentityProviderName=provider, UseDefaults=False,
            PrincipalTags=principal_tags)
        stored = identity.get_principal_tag_attribute_map(IdentityPoolId=pool,
                                                          IdentityProviderName=provider)
        assert (stored["IdentityProviderName"], stored["PrincipalTags"]) == (
            provider, principal_tags)


def test_device_tokens_and_device_ids_round_trip(server: ServerProcess) -> None:
    pool = make_pool(server)
    identity_id, phone = new_unauthenticated(server, pool)
    tokens = [f"token{ODD}", f"token{ODD}\x00", "token", "\x00", "\x01"]

    def register(token: str) -> str:
        return str(phone.register_device(IdentityPoolId=pool, IdentityId=identity_id,
                                         Platform="GCM", Token=token)["DeviceId"])

    devices = {token: register(token) for token in tokens}
    assert len(set(devices.values())) == len(tokens)  # each token is its own device
    assert {token: register(token) for token in tokens} == devices  # found again
    where = {"IdentityPoolId": pool, "IdentityId": identity_id, "DatasetName": "data"}
    token = phone.list_records(**where)["SyncSessionToken"]
    phone.update_records(**where, SyncSessionToken=token, DeviceId=devices["\x00"],
                         RecordPatches=[{"Op": "replace", "Key": ODD, "Value": ODD,
                                         "SyncCount": 0}])
    for device in devices.values():
        phone.subscribe_to_dataset(**where, DeviceId=device)
        phone.unsubscribe_from_dataset(**where, DeviceId=device)
    # A DeviceId with U+0000 in the path names no device: the AWS error, not a 500.
    with pytest.raises(ClientError) as excinfo:
        phone.subscribe_to_dataset(**where, DeviceId=f"{devices['token']}\x00")
    assert error_code(excinfo) == ("ResourceNotFoundException", 404)
