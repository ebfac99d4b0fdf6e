"""Cognito Identity's pool settings beyond the pool itself, for developers: IAM roles and
role mappings, resource tags, and principal tag maps."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cogsync.auth.caller import Caller
from cogsync.domain import IdentityPool
from cogsync.errors import InvalidParameter, ResourceNotFound
from cogsync.identity.pools import accepts_provider, own_pool
from cogsync.identity.roles import check_pool_roles
from cogsync.store.database import Store, Tx
from cogsync.store.pool_access_queries import PoolRoles, PrincipalTagMap

MAX_TAGS = 50  # tags per identity pool, as in AWS
TAGS = "IdentityPoolTags"


class PoolAccessService:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time):
        self.store = store
        self.clock = clock

    # --- roles and role mappings --------------------------------------------------

    def get_roles(self, caller: Caller, pool_id: str) -> PoolRoles:
        with self.store.read() as tx:
            own_pool(tx, caller, pool_id)
            return tx.pool_roles(pool_id)

    def set_roles(
        self,
        caller: Caller,
        pool_id: str,
        roles: dict[str, str],
        role_mappings: dict[str, Any] | None,
    ) -> None:
        """Replaces the pool's roles and role mappings (absent mappings: none)."""
        wanted = PoolRoles(dict(roles), dict(role_mappings or {}))
        with self.store.write() as tx:
            pool = own_pool(tx, caller, pool_id)
            check_pool_roles(wanted, lambda provider: accepts_provider(pool, provider))
            tx.set_pool_roles(pool_id, wanted, self.clock())

    # --- tags (on the pool's ARN) -------------------------------------------------

    def _tagged_pool(self, tx: Tx, caller: Caller, resource_arn: str) -> IdentityPool:
        """The pool an ARN names: arn:aws:cognito-identity:<region>:<account>:identitypool/<id>."""
        parts = resource_arn.split(":", 5)
        missing = ResourceNotFound(f"Resource '{resource_arn}' not found.")
        if (
            len(parts) != 6
            or parts[0] != "arn"
            or parts[2] != "cognito-identity"
            or not parts[5].startswith("identitypool/")
        ):
            raise InvalidParameter(f"'{resource_arn}' is not the ARN of an identity pool")
        pool = tx.get_pool(parts[5].removeprefix("identitypool/"))
        if pool is None or pool.account_id != caller.account_id or parts[4] != pool.account_id:
            raise missing
        return pool

    def _write_tags(self, tx: Tx, pool: IdentityPool, tags: dict[str, str]) -> None:
        if len(tags) > MAX_TAGS:
            raise InvalidParameter(f"An identity pool can have at most {MAX_TAGS} tags")
        attributes = {k: v for k, v in pool.attributes.items() if k != TAGS}
        if tags:
            attributes[TAGS] = tags
        tx.set_pool_identity(
            pool.identity_pool_id,
            name=pool.name,
            allow_unauthenticated=pool.allow_unauthenticated,
            allow_classic_flow=pool.allow_classic_flow,
            developer_provider_name=pool.developer_provider_name,
            attributes=attributes,
        )

    def list_tags(self, caller: Caller, resource_arn: str) -> dict[str, str]:
        with self.store.read() as tx:
            return dict(self._tagged_pool(tx, caller, resource_arn).attributes.get(TAGS) or {})

    def tag(self, caller: Caller, resource_arn: str, tags: dict[str, str]) -> None:
        for key in tags:
            if key.lower().startswith("aws:"):
                raise InvalidParameter(f"Tag keys beginning with 'aws:' are reserved: '{key}'")
        with self.store.write() as tx:
            pool = self._tagged_pool(tx, caller, resource_arn)
            self._write_tags(tx, pool, {**(pool.attributes.get(TAGS) or {}), **tags})

    def untag(self, caller: Caller, resource_arn: str, keys: list[str]) -> None:
        with self.store.write() as tx:
            pool = self._tagged_pool(tx, caller, resource_arn)
            current = pool.attributes.get(TAGS) or {}
            self._write_tags(tx, pool, {k: v for k, v in current.items() if k not in keys})

    # --- principal tag maps -------------------------------------------------------

    def _provider(self, pool: IdentityPool, provider: str) -> None:
        if not accepts_provider(pool, provider):
            raise ResourceNotFound(
                f"Identity provider '{provider}' is not configured for this identity pool."
            )

    def get_principal_tags(self, caller: Caller, pool_id: str, provider: str) -> PrincipalTagMap:
        """The stored map; a provider never set answers UseDefaults false and no tags."""
        with self.store.read() as tx:
            self._provider(own_pool(tx, caller, pool_id), provider)
            found = tx.principal_tag_map(pool_id, provider)
        return found or PrincipalTagMap(False, {})

    def set_principal_tags(
        self,
        caller: Caller,
        pool_id: str,
        provider: str,
        use_defaults: bool | None,
        principal_tags: dict[str, str] | None,
    ) -> PrincipalTagMap:
        """Sets the parts given; parts left out keep their stored value."""
        with self.store.write() as tx:
            self._provider(own_pool(tx, caller, pool_id), provider)
            current = tx.principal_tag_map(pool_id, provider) or PrincipalTagMap(False, {})
            wanted = PrincipalTagMap(
                current.use_defaults if use_defaults is None else use_defaults,
                current.principal_tags if principal_tags is None else dict(principal_tags),
            )
            tx.set_principal_tag_map(pool_id, provider, wanted, self.clock())
        return wanted
