"""The Cognito Identity domain: pools, identities, logins, credentials, merges.

Plain Python over the store's transactions, like the sync service. Logins are verified
before a transaction opens (verification may fetch a provider's keys).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cogsync.auth.caller import Caller
from cogsync.auth.temporary import CredentialIssuer, TemporaryCredentials
from cogsync.domain import Identity, IdentityPool, Page
from cogsync.errors import (
    InvalidParameter,
    NotAuthorized,
    ResourceNotFound,
    ServiceError,
)
from cogsync.identity.openid import COGNITO_PROVIDER, OpenIdProvider, TokenSigner
from cogsync.identity.pool_access import PoolAccessService
from cogsync.identity.pools import accepts_provider, own_pool
from cogsync.identity.roles import LoginClaims, resolve_role
from cogsync.store.database import Store, Tx
from cogsync.sync.merges import merge_sync_data
from cogsync.sync.tokens import TokenSealer

POOL_ATTRIBUTES = (
    "SupportedLoginProviders",
    "OpenIdConnectProviderARNs",
    "CognitoIdentityProviders",
    "SamlProviderARNs",
    "IdentityPoolTags",
)
OPEN_ID_TOKEN_SECONDS = 600
DEVELOPER_TOKEN_SECONDS = 900
PAGE_LIMIT = 60


class DeveloperUserAlreadyRegistered(ServiceError):
    code = "DeveloperUserAlreadyRegisteredException"


@dataclass(frozen=True)
class Login:
    """A verified login: the provider's name and the user's stable subject there."""

    provider: str
    subject: str
    identity_id: str | None = None  # set for cogsync's own tokens: they name the identity
    claims: dict[str, Any] = field(default_factory=dict, compare=False)  # for role mappings


class IdentityService:
    def __init__(
        self,
        store: Store,
        signer: TokenSigner,
        providers: dict[str, OpenIdProvider],
        credentials: CredentialIssuer,
        tokens: TokenSealer,
        region: str,
        clock: Callable[[], float] = time.time,
    ):
        self.store = store
        self.signer = signer
        self.providers = providers
        self.credentials = credentials
        self.tokens = tokens
        self.region = region
        self.clock = clock
        self.access = PoolAccessService(store, clock)  # roles, tags, principal tag maps

    # --- pools (developer credentials) ------------------------------------------

    def create_pool(self, caller: Caller, p: dict[str, Any]) -> IdentityPool:
        pool_id = f"{self.region}:{uuid.uuid4()}"
        with self.store.write() as tx:
            tx.create_pool(pool_id, caller.account_id, p["IdentityPoolName"], self.clock())
            self._write_attributes(tx, pool_id, p, current=None)
            pool = tx.get_pool(pool_id)
        assert pool is not None
        return pool

    def describe_pool(self, caller: Caller, pool_id: str) -> IdentityPool:
        with self.store.read() as tx:
            return own_pool(tx, caller, pool_id)

    def update_pool(self, caller: Caller, p: dict[str, Any]) -> IdentityPool:
        with self.store.write() as tx:
            current = own_pool(tx, caller, p["IdentityPoolId"])
            self._write_attributes(tx, current.identity_pool_id, p, current)
            pool = tx.get_pool(current.identity_pool_id)
        assert pool is not None
        return pool

    def _write_attributes(
        self, tx: Tx, pool_id: str, p: dict[str, Any], current: IdentityPool | None
    ) -> None:
        developer = p.get("DeveloperProviderName")
        if (
            current is not None
            and current.developer_provider_name
            and (developer != current.developer_provider_name)
        ):
            raise InvalidParameter("DeveloperProviderName cannot be changed once it is set.")
        attributes = {k: p[k] for k in POOL_ATTRIBUTES if p.get(k) is not None}
        tx.set_pool_identity(
            pool_id,
            name=p["IdentityPoolName"],
            allow_unauthenticated=bool(p["AllowUnauthenticatedIdentities"]),
            allow_classic_flow=bool(p.get("AllowClassicFlow", False)),
            developer_provider_name=developer,
            attributes=attributes,
        )

    def delete_pool(self, caller: Caller, pool_id: str) -> None:
        with self.store.write() as tx:
            own_pool(tx, caller, pool_id)
            tx.delete_pool(pool_id)
            tx.forget_pool_access(pool_id)

    def list_pools(
        self, caller: Caller, max_results: int, next_token: str | None
    ) -> Page[IdentityPool]:
        scope = f"identity-pools/{caller.account_id}"
        after = self.tokens.open_next_token(next_token, scope) if next_token else None
        limit = min(max_results, PAGE_LIMIT)
        with self.store.read() as tx:
            pools = tx.list_pools(caller.account_id, after, limit + 1)
        token = None
        if len(pools) > limit:
            token = self.tokens.next_token(scope, pools[limit - 1].identity_pool_id)
        return Page(pools[:limit], token)

    # --- logins -----------------------------------------------------------------

    def verify_logins(self, pool: IdentityPool, logins: dict[str, str]) -> list[Login]:
        verified: list[Login] = []
        for provider, token in logins.items():
            if provider == COGNITO_PROVIDER:
                claims = self.signer.verify(token)
                if claims.get("aud") != pool.identity_pool_id:
                    raise NotAuthorized("Invalid login token. The token is for another pool.")
                verified.append(Login(provider, str(claims["sub"]), str(claims["sub"]), claims))
                continue
            external = self.providers.get(provider)
            if external is None or not accepts_provider(pool, provider):
                raise NotAuthorized(
                    f"Invalid login token. Provider '{provider}' is not configured for this "
                    "identity pool."
                )
            claims = external.verify(token)
            verified.append(Login(provider, str(claims["sub"]), claims=claims))
        return verified

    def _pool_of_identity(self, tx: Tx, identity_id: str) -> tuple[Identity, IdentityPool]:
        identity = tx.get_identity(identity_id)
        pool = tx.get_pool(identity.identity_pool_id) if identity else None
        if identity is None or pool is None:
            raise ResourceNotFound(f"Identity '{identity_id}' not found.")
        return identity, pool

    def _link(
        self, tx: Tx, pool: IdentityPool, target: str, logins: list[Login], now: float
    ) -> str:
        """Links the logins to ``target``, merging identities that already hold one."""
        for login in logins:
            owner = login.identity_id or tx.find_login(
                pool.identity_pool_id, login.provider, login.subject
            )
            if owner is None:
                tx.add_login(pool.identity_pool_id, login.provider, login.subject, target, now)
            elif owner != target:
                self._merge(tx, pool, source=owner, target=target, now=now)
        tx.touch_identity(target, now)
        return target

    def _new_identity(self, tx: Tx, pool: IdentityPool, now: float) -> str:
        region = pool.identity_pool_id.split(":", 1)[0]
        identity_id = f"{region}:{uuid.uuid4()}"
        tx.create_identity(identity_id, pool.identity_pool_id, now)
        return identity_id

    def _merge(self, tx: Tx, pool: IdentityPool, source: str, target: str, now: float) -> None:
        """Identity ``source`` becomes part of ``target``: logins and sync data move."""
        source_identity = tx.get_identity(source)
        if source_identity is None or tx.is_inaccessible(source):  # a token for a gone one
            raise NotAuthorized(f"Identity '{source}' no longer exists.")
        tx.move_logins(source, target)
        merge_sync_data(tx, pool.identity_pool_id, source, target)
        tx.delete_identity(source_identity)

    # --- identities (unsigned calls) --------------------------------------------

    def _public_pool(self, tx: Tx, pool_id: str) -> IdentityPool:
        pool = tx.get_pool(pool_id)
        if pool is None:
            raise ResourceNotFound(f"IdentityPool '{pool_id}' not found.")
        return pool

    def get_id(self, pool_id: str, account_id: str | None, logins: dict[str, str]) -> str:
        with self.store.read() as tx:
            pool = self._public_pool(tx, pool_id)
        if account_id is not None and account_id != pool.account_id:
            raise NotAuthorized("The identity pool does not belong to that account.")
        verified = self.verify_logins(pool, logins)
        now = self.clock()
        with self.store.write() as tx:
            if not verified:
                if not pool.allow_unauthenticated:
                    raise NotAuthorized(
                        "Unauthenticated access is not supported for this identity pool."
                    )
                return self._new_identity(tx, pool, now)
            owners = [
                login.identity_id or tx.find_login(pool_id, login.provider, login.subject)
                for login in verified
            ]
            known = [owner for owner in owners if owner is not None]
            target = known[0] if known else self._new_identity(tx, pool, now)
            if tx.is_inaccessible(target):  # a token of an identity closed since
                raise NotAuthorized(f"Identity '{target}' is no longer accessible.")
            return self._link(tx, pool, target, verified, now)

    def _authorize_identity(
        self, tx: Tx, identity_id: str, logins: dict[str, str]
    ) -> tuple[IdentityPool, list[str], list[Login]]:
        """Checks that the caller may act as the identity; returns its pool, amr and the
        verified logins."""
        identity, pool = self._pool_of_identity(tx, identity_id)
        if tx.is_inaccessible(identity_id):
            raise NotAuthorized(
                f"Identity '{identity_id}' is no longer accessible: its last login was unlinked."
            )
        verified = self.verify_logins(pool, logins)
        now = self.clock()
        if not verified:
            if identity.logins:
                raise NotAuthorized("Logins are required for this authenticated identity.")
            if not pool.allow_unauthenticated:
                raise NotAuthorized(
                    "Unauthenticated access is not supported for this identity pool."
                )
            return pool, ["unauthenticated"], []
        for login in verified:
            owner = login.identity_id or tx.find_login(
                pool.identity_pool_id, login.provider, login.subject
            )
            if owner is not None and owner != identity_id:
                raise NotAuthorized(
                    "Logins don't match. Please include at least one valid "
                    "login for this identity or identity pool."
                )
        self._link(tx, pool, identity_id, verified, now)
        providers = sorted(
            {login.provider for login in verified} | {provider for provider, _ in identity.logins}
        )
        return pool, ["authenticated", *providers], verified

    def get_credentials(
        self, identity_id: str, logins: dict[str, str], custom_role_arn: str | None = None
    ) -> TemporaryCredentials:
        """The enhanced flow: credentials for the role the pool's roles and role mappings
        give this identity (none if the pool has no roles)."""
        with self.store.write() as tx:
            pool, _, verified = self._authorize_identity(tx, identity_id, logins)
            roles = tx.pool_roles(pool.identity_pool_id)
        role = resolve_role(
            roles,
            authenticated=bool(verified),
            logins=[LoginClaims(login.provider, login.claims) for login in verified],
            custom_role_arn=custom_role_arn,
        )
        return self.credentials.issue(
            pool.account_id, pool.identity_pool_id, identity_id, role_arn=role
        )

    def get_open_id_token(self, identity_id: str, logins: dict[str, str]) -> str:
        with self.store.write() as tx:
            pool, amr, _ = self._authorize_identity(tx, identity_id, logins)
        return self.signer.issue(pool.identity_pool_id, identity_id, amr, OPEN_ID_TOKEN_SECONDS)

    # --- developer-authenticated identities -------------------------------------

    def _developer_provider(self, pool: IdentityPool, provider: str) -> None:
        if not pool.developer_provider_name or provider != pool.developer_provider_name:
            raise NotAuthorized(
                f"'{provider}' is not the developer provider of this identity pool."
            )

    def get_open_id_token_for_developer_identity(
        self,
        caller: Caller,
        pool_id: str,
        identity_id: str | None,
        logins: dict[str, str],
        duration: int | None,
    ) -> tuple[str, str]:
        with self.store.read() as tx:
            pool = own_pool(tx, caller, pool_id)
        developer = pool.developer_provider_name
        if not developer or developer not in logins:
            raise InvalidParameter(
                "Logins must contain the developer provider name of this identity pool."
            )
        user = logins[developer]
        others = self.verify_logins(pool, {k: v for k, v in logins.items() if k != developer})
        now = self.clock()
        with self.store.write() as tx:
            owner = tx.find_login(pool_id, developer, user)
            if identity_id is not None:
                identity = tx.get_identity(identity_id)
                if identity is None or identity.identity_pool_id != pool_id:
                    raise ResourceNotFound(f"Identity '{identity_id}' not found.")
                if owner is not None and owner != identity_id:
                    raise DeveloperUserAlreadyRegistered(
                        "The developer user identifier is already registered with another "
                        "identity ID."
                    )
                target = identity_id
            else:
                target = owner or self._new_identity(tx, pool, now)
            self._link(tx, pool, target, [Login(developer, user), *others], now)
            providers = sorted({developer, *(login.provider for login in others)})
        token = self.signer.issue(
            pool_id, target, ["authenticated", *providers], duration or DEVELOPER_TOKEN_SECONDS
        )
        return target, token

    def lookup_developer_identity(
        self,
        caller: Caller,
        pool_id: str,
        identity_id: str | None,
        user: str | None,
        max_results: int | None,
        next_token: str | None,
    ) -> tuple[str, Page[str]]:
        if identity_id is None and user is None:
            raise InvalidParameter("Either IdentityId or DeveloperUserIdentifier is required.")
        with self.store.read() as tx:
            pool = own_pool(tx, caller, pool_id)
            developer = pool.developer_provider_name
            if not developer:
                raise ResourceNotFound("This identity pool has no developer provider.")
            if user is not None:
                owner = tx.find_login(pool_id, developer, user)
                if owner is None or (identity_id is not None and owner != identity_id):
                    raise ResourceNotFound(f"Developer user '{user}' not found.")
                identity_id = owner
            assert identity_id is not None
            identity = tx.get_identity(identity_id)
            if identity is None or identity.identity_pool_id != pool_id:
                raise ResourceNotFound(f"Identity '{identity_id}' not found.")
            scope = f"developer-users/{identity_id}"
            after = self.tokens.open_next_token(next_token, scope) if next_token else None
            limit = min(max_results or PAGE_LIMIT, PAGE_LIMIT)
            users = tx.subjects_of(identity_id, developer, after, limit + 1)
        token = self.tokens.next_token(scope, users[limit - 1]) if len(users) > limit else None
        return identity_id, Page(users[:limit], token)

    def merge_developer_identities(
        self, caller: Caller, pool_id: str, provider: str, source_user: str, destination_user: str
    ) -> str:
        now = self.clock()
        with self.store.write() as tx:
            pool = own_pool(tx, caller, pool_id)
            self._developer_provider(pool, provider)
            source = tx.find_login(pool_id, provider, source_user)
            target = tx.find_login(pool_id, provider, destination_user)
            if source is None or target is None:
                missing = source_user if source is None else destination_user
                raise ResourceNotFound(f"Developer user '{missing}' not found.")
            if source != target:
                self._merge(tx, pool, source=source, target=target, now=now)
                tx.touch_identity(target, now)
        return target

    def merge_identities(self, caller: Caller, pool_id: str, source: str, target: str) -> None:
        """Merges identity ``source`` into ``target`` as a login shared by both would:
        its logins and datasets move to ``target``, and it is deleted. (The test
        controls' move; the API merges only through logins.)"""
        if source == target:
            raise InvalidParameter("An identity cannot be merged into itself.")
        now = self.clock()
        with self.store.write() as tx:
            pool = own_pool(tx, caller, pool_id)
            for identity_id in (source, target):
                identity = tx.get_identity(identity_id)
                if identity is None or identity.identity_pool_id != pool_id:
                    raise ResourceNotFound(f"Identity '{identity_id}' not found.")
            self._merge(tx, pool, source=source, target=target, now=now)
            tx.touch_identity(target, now)

    def unlink_developer_identity(
        self, caller: Caller, pool_id: str, identity_id: str, provider: str, user: str
    ) -> None:
        with self.store.write() as tx:
            pool = own_pool(tx, caller, pool_id)
            self._developer_provider(pool, provider)
            if tx.find_login(pool_id, provider, user) != identity_id:
                raise ResourceNotFound(
                    f"Developer user '{user}' is not linked to identity '{identity_id}'."
                )
            tx.remove_login(pool_id, provider, user)
            self._after_unlink(tx, pool_id, identity_id)

    def _after_unlink(self, tx: Tx, pool_id: str, identity_id: str) -> None:
        """An identity whose last login went is inaccessible, as in AWS: without this
        anyone knowing its id could act as it through the unauthenticated flow."""
        now = self.clock()
        if not tx.logins_of(identity_id):
            tx.make_inaccessible(pool_id, identity_id, now)
        tx.touch_identity(identity_id, now)

    def unlink_identity(
        self, identity_id: str, logins: dict[str, str], logins_to_remove: list[str]
    ) -> None:
        """Unlinks providers from an identity; ``logins`` must prove the caller is it."""
        with self.store.read() as tx:
            _, pool = self._pool_of_identity(tx, identity_id)
        verified = self.verify_logins(pool, logins)
        with self.store.write() as tx:
            identity, pool = self._pool_of_identity(tx, identity_id)
            if tx.is_inaccessible(identity_id):
                raise NotAuthorized(f"Identity '{identity_id}' is no longer accessible.")
            owners = {
                login.identity_id
                or tx.find_login(pool.identity_pool_id, login.provider, login.subject)
                for login in verified
            }
            if not verified or owners != {identity_id}:
                raise NotAuthorized(
                    "Logins don't match. Please include at least one valid login for this "
                    "identity."
                )
            linked = {provider for provider, _ in identity.logins}
            for provider in logins_to_remove:
                if provider not in linked:
                    raise InvalidParameter(
                        f"'{provider}' is not a login provider linked to this identity."
                    )
            for provider, subject in identity.logins:
                if provider in logins_to_remove:
                    tx.remove_login(pool.identity_pool_id, provider, subject)
            self._after_unlink(tx, pool.identity_pool_id, identity_id)

    # --- identities (developer credentials) -------------------------------------

    def list_identities(
        self, caller: Caller, pool_id: str, max_results: int, next_token: str | None
    ) -> Page[Identity]:
        scope = f"identities/{pool_id}"
        after = self.tokens.open_next_token(next_token, scope) if next_token else None
        limit = min(max_results, PAGE_LIMIT)
        with self.store.read() as tx:
            own_pool(tx, caller, pool_id)
            found = tx.list_identities(pool_id, after, limit + 1)
        token = None
        if len(found) > limit:
            token = self.tokens.next_token(scope, found[limit - 1].identity_id)
        return Page(found[:limit], token)

    def describe_identity(self, caller: Caller, identity_id: str) -> Identity:
        with self.store.read() as tx:
            identity = tx.get_identity(identity_id)
            pool = tx.get_pool(identity.identity_pool_id) if identity else None
            if identity is None or pool is None or pool.account_id != caller.account_id:
                raise ResourceNotFound(f"Identity '{identity_id}' not found.")
            return identity

    def delete_identities(self, caller: Caller, identity_ids: list[str]) -> list[str]:
        """Deletes what it may; returns the ids it could not delete."""
        refused: list[str] = []
        with self.store.write() as tx:
            for identity_id in identity_ids:
                identity = tx.get_identity(identity_id)
                pool = tx.get_pool(identity.identity_pool_id) if identity else None
                if identity is None or pool is None or pool.account_id != caller.account_id:
                    refused.append(identity_id)
                    continue
                tx.delete_identity(identity)
                tx.forget_identity_access(identity_id)
        return refused
