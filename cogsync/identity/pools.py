"""Small rules about identity pools that several identity services share."""

from __future__ import annotations

from cogsync.auth.caller import Caller
from cogsync.domain import IdentityPool
from cogsync.errors import ResourceNotFound
from cogsync.store.database import Tx


def own_pool(tx: Tx, caller: Caller, pool_id: str) -> IdentityPool:
    """The pool, if it exists and belongs to the caller's account."""
    pool = tx.get_pool(pool_id)
    if pool is None or pool.account_id != caller.account_id:
        raise ResourceNotFound(f"IdentityPool '{pool_id}' not found.")
    return pool


def accepts_provider(pool: IdentityPool, provider: str) -> bool:
    """Whether the pool is configured for an external identity provider."""
    attributes = pool.attributes
    if provider in (attributes.get("SupportedLoginProviders") or {}):
        return True
    for arn in attributes.get("OpenIdConnectProviderARNs") or ():
        if arn.split("oidc-provider/", 1)[-1] == provider:
            return True
    return any(
        entry.get("ProviderName") == provider
        for entry in attributes.get("CognitoIdentityProviders") or ()
    )
