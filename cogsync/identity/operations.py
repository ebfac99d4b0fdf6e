"""The Cognito Identity operations (JSON 1.1): validated input in, output shape out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cogsync.auth.caller import Caller
from cogsync.domain import Identity, IdentityPool
from cogsync.identity.service import IdentityService

Params = dict[str, Any]
Result = dict[str, Any] | None
Handler = Callable[[IdentityService, Caller | None, Params], Result]


def _pool(pool: IdentityPool) -> dict[str, Any]:
    return {
        "IdentityPoolId": pool.identity_pool_id,
        "IdentityPoolName": pool.name,
        "AllowUnauthenticatedIdentities": pool.allow_unauthenticated,
        "AllowClassicFlow": pool.allow_classic_flow,
        "DeveloperProviderName": pool.developer_provider_name,
        **pool.attributes,
    }


def _identity(identity: Identity) -> dict[str, Any]:
    return {
        "IdentityId": identity.identity_id,
        "Logins": sorted({provider for provider, _ in identity.logins}),
        "CreationDate": identity.created_at,
        "LastModifiedDate": identity.last_modified_at,
    }


def _developer(caller: Caller | None) -> Caller:
    assert caller is not None, "the app authenticates developer operations"
    return caller


def create_identity_pool(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    return _pool(svc.create_pool(_developer(caller), p))


def describe_identity_pool(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    return _pool(svc.describe_pool(_developer(caller), p["IdentityPoolId"]))


def update_identity_pool(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    return _pool(svc.update_pool(_developer(caller), p))


def delete_identity_pool(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    svc.delete_pool(_developer(caller), p["IdentityPoolId"])
    return None


def list_identity_pools(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    page = svc.list_pools(_developer(caller), p["MaxResults"], p.get("NextToken"))
    return {
        "IdentityPools": [
            {"IdentityPoolId": pool.identity_pool_id, "IdentityPoolName": pool.name}
            for pool in page.items
        ],
        "NextToken": page.next_token,
    }


def get_id(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    identity_id = svc.get_id(p["IdentityPoolId"], p.get("AccountId"), p.get("Logins") or {})
    return {"IdentityId": identity_id}


def get_credentials_for_identity(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    creds = svc.get_credentials(p["IdentityId"], p.get("Logins") or {}, p.get("CustomRoleArn"))
    return {
        "IdentityId": p["IdentityId"],
        "Credentials": {
            "AccessKeyId": creds.access_key_id,
            "SecretKey": creds.secret_key,
            "SessionToken": creds.session_token,
            "Expiration": creds.expiration,
        },
    }


def get_open_id_token(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    token = svc.get_open_id_token(p["IdentityId"], p.get("Logins") or {})
    return {"IdentityId": p["IdentityId"], "Token": token}


def get_open_id_token_for_developer_identity(
    svc: IdentityService, caller: Caller | None, p: Params
) -> Result:
    identity_id, token = svc.get_open_id_token_for_developer_identity(
        _developer(caller),
        p["IdentityPoolId"],
        p.get("IdentityId"),
        p["Logins"],
        p.get("TokenDuration"),
    )
    return {"IdentityId": identity_id, "Token": token}


def lookup_developer_identity(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    identity_id, page = svc.lookup_developer_identity(
        _developer(caller),
        p["IdentityPoolId"],
        p.get("IdentityId"),
        p.get("DeveloperUserIdentifier"),
        p.get("MaxResults"),
        p.get("NextToken"),
    )
    return {
        "IdentityId": identity_id,
        "DeveloperUserIdentifierList": page.items,
        "NextToken": page.next_token,
    }


def merge_developer_identities(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    identity_id = svc.merge_developer_identities(
        _developer(caller),
        p["IdentityPoolId"],
        p["DeveloperProviderName"],
        p["SourceUserIdentifier"],
        p["DestinationUserIdentifier"],
    )
    return {"IdentityId": identity_id}


def unlink_developer_identity(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    svc.unlink_developer_identity(
        _developer(caller),
        p["IdentityPoolId"],
        p["IdentityId"],
        p["DeveloperProviderName"],
        p["DeveloperUserIdentifier"],
    )
    return None


def list_identities(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    page = svc.list_identities(
        _developer(caller), p["IdentityPoolId"], p["MaxResults"], p.get("NextToken")
    )
    return {
        "IdentityPoolId": p["IdentityPoolId"],
        "Identities": [_identity(identity) for identity in page.items],
        "NextToken": page.next_token,
    }


def describe_identity(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    return _identity(svc.describe_identity(_developer(caller), p["IdentityId"]))


def delete_identities(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    refused = svc.delete_identities(_developer(caller), p["IdentityIdsToDelete"])
    return {
        "UnprocessedIdentityIds": [
            {"IdentityId": identity_id, "ErrorCode": "AccessDenied"} for identity_id in refused
        ]
    }


def unlink_identity(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    svc.unlink_identity(p["IdentityId"], p["Logins"], p["LoginsToRemove"])
    return None


# --- pool access settings (developer credentials) ------------------------------------


def get_identity_pool_roles(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    roles = svc.access.get_roles(_developer(caller), p["IdentityPoolId"])
    return {
        "IdentityPoolId": p["IdentityPoolId"],
        "Roles": roles.roles,
        "RoleMappings": roles.role_mappings or None,
    }


def set_identity_pool_roles(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    svc.access.set_roles(
        _developer(caller), p["IdentityPoolId"], p["Roles"], p.get("RoleMappings")
    )
    return None


def tag_resource(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    svc.access.tag(_developer(caller), p["ResourceArn"], p["Tags"])
    return {}


def untag_resource(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    svc.access.untag(_developer(caller), p["ResourceArn"], p["TagKeys"])
    return {}


def list_tags_for_resource(svc: IdentityService, caller: Caller | None, p: Params) -> Result:
    return {"Tags": svc.access.list_tags(_developer(caller), p["ResourceArn"])}


def _principal_tags(p: Params, use_defaults: bool, tags: dict[str, str]) -> Result:
    return {
        "IdentityPoolId": p["IdentityPoolId"],
        "IdentityProviderName": p["IdentityProviderName"],
        "UseDefaults": use_defaults,
        "PrincipalTags": tags,
    }


def get_principal_tag_attribute_map(
    svc: IdentityService, caller: Caller | None, p: Params
) -> Result:
    found = svc.access.get_principal_tags(
        _developer(caller), p["IdentityPoolId"], p["IdentityProviderName"]
    )
    return _principal_tags(p, found.use_defaults, found.principal_tags)


def set_principal_tag_attribute_map(
    svc: IdentityService, caller: Caller | None, p: Params
) -> Result:
    stored = svc.access.set_principal_tags(
        _developer(caller),
        p["IdentityPoolId"],
        p["IdentityProviderName"],
        p.get("UseDefaults"),
        p.get("PrincipalTags"),
    )
    return _principal_tags(p, stored.use_defaults, stored.principal_tags)


HANDLERS: dict[str, Handler] = {
    "CreateIdentityPool": create_identity_pool,
    "DescribeIdentityPool": describe_identity_pool,
    "UpdateIdentityPool": update_identity_pool,
    "DeleteIdentityPool": delete_identity_pool,
    "ListIdentityPools": list_identity_pools,
    "GetId": get_id,
    "GetCredentialsForIdentity": get_credentials_for_identity,
    "GetOpenIdToken": get_open_id_token,
    "GetOpenIdTokenForDeveloperIdentity": get_open_id_token_for_developer_identity,
    "LookupDeveloperIdentity": lookup_developer_identity,
    "MergeDeveloperIdentities": merge_developer_identities,
    "UnlinkDeveloperIdentity": unlink_developer_identity,
    "ListIdentities": list_identities,
    "DescribeIdentity": describe_identity,
    "DeleteIdentities": delete_identities,
    "UnlinkIdentity": unlink_identity,
    "GetIdentityPoolRoles": get_identity_pool_roles,
    "SetIdentityPoolRoles": set_identity_pool_roles,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
    "GetPrincipalTagAttributeMap": get_principal_tag_attribute_map,
    "SetPrincipalTagAttributeMap": set_principal_tag_attribute_map,
}
