"""The per-operation authorization matrix of Cognito Sync."""

from __future__ import annotations

from typing import Any

from cogsync.auth.caller import Caller
from cogsync.errors import NotAuthorized

DEVELOPER_ONLY = frozenset(
    {
        "ListIdentityPoolUsage",
        "DescribeIdentityPoolUsage",
        "BulkPublish",
        "GetBulkPublishDetails",
        "GetCognitoEvents",
        "SetCognitoEvents",
        "GetIdentityPoolConfiguration",
        "SetIdentityPoolConfiguration",
    }
)
IDENTITY_ONLY = frozenset({"RegisterDevice", "SubscribeToDataset", "UnsubscribeFromDataset"})


def authorize(caller: Caller, operation: str, params: dict[str, Any]) -> None:
    """Raises NotAuthorized unless ``caller`` may call ``operation`` with ``params``.

    Developers may act on any identity of their own pools (pool ownership is checked by
    the service, which answers ResourceNotFound for other accounts' pools). Identities
    act only on themselves, in their own pool.
    """
    if caller.is_developer:
        if operation in IDENTITY_ONLY:
            raise NotAuthorized(
                f"{operation} can only be called with temporary credentials provided by "
                "Cognito Identity, not with developer credentials"
            )
        return
    if operation in DEVELOPER_ONLY:
        raise NotAuthorized(f"{operation} can only be called with developer credentials")
    if params.get("IdentityPoolId") != caller.identity_pool_id or (
        "IdentityId" in params and params["IdentityId"] != caller.identity_id
    ):
        raise NotAuthorized("Access to the requested identity is denied for these credentials")
