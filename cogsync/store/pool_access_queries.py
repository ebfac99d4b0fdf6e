"""Queries for who may get which credentials from a pool: its IAM roles and role
mappings, its principal tag maps, and identities no one may act as any more.

Rare calls next to the sync path, so plain SQLAlchemy Core through ``Queries.execute``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import delete, select

from cogsync.store.prepared import Queries, dialect_insert
from cogsync.store.schema import identity_pool_roles, inaccessible_identities, principal_tag_maps


@dataclass(frozen=True, slots=True)
class PoolRoles:
    """SetIdentityPoolRoles' Roles and RoleMappings, as the API shapes them."""

    roles: dict[str, str] = field(default_factory=dict)
    role_mappings: dict[str, Any] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.roles or self.role_mappings)


@dataclass(frozen=True, slots=True)
class PrincipalTagMap:
    use_defaults: bool
    principal_tags: dict[str, str]


def _upsert(dialect: str, table: Any, keys: list[str], values: dict[str, Any]) -> Any:
    stmt = dialect_insert(dialect, table).values(**values)
    changed = {name: stmt.excluded[name] for name in values if name not in keys}
    return stmt.on_conflict_do_update(index_elements=keys, set_=changed)


class PoolAccessQueries(Queries):
    # --- roles and role mappings --------------------------------------------------

    def pool_roles(self, pool_id: str) -> PoolRoles:
        row = self.execute(
            select(identity_pool_roles.c.roles, identity_pool_roles.c.role_mappings).where(
                identity_pool_roles.c.identity_pool_id == pool_id
            )
        ).first()
        if row is None:
            return PoolRoles()
        return PoolRoles(orjson.loads(row.roles), orjson.loads(row.role_mappings))

    def set_pool_roles(self, pool_id: str, roles: PoolRoles, now: float) -> None:
        values = {
            "identity_pool_id": pool_id,
            "roles": orjson.dumps(roles.roles).decode(),
            "role_mappings": orjson.dumps(roles.role_mappings).decode(),
            "updated_at": now,
        }
        self.execute(_upsert(self.dialect, identity_pool_roles, ["identity_pool_id"], values))

    # --- principal tag maps -------------------------------------------------------

    def principal_tag_map(self, pool_id: str, provider: str) -> PrincipalTagMap | None:
        row = self.execute(
            select(principal_tag_maps.c.use_defaults, principal_tag_maps.c.principal_tags).where(
                principal_tag_maps.c.identity_pool_id == pool_id,
                principal_tag_maps.c.provider == provider,
            )
        ).first()
        if row is None:
            return None
        return PrincipalTagMap(bool(row.use_defaults), orjson.loads(row.principal_tags))

    def set_principal_tag_map(
        self, pool_id: str, provider: str, tags: PrincipalTagMap, now: float
    ) -> None:
        values = {
            "identity_pool_id": pool_id,
            "provider": provider,
            "use_defaults": tags.use_defaults,
            "principal_tags": orjson.dumps(tags.principal_tags).decode(),
            "updated_at": now,
        }
        keys = ["identity_pool_id", "provider"]
        self.execute(_upsert(self.dialect, principal_tag_maps, keys, values))

    # --- identities left without a login ------------------------------------------

    def make_inaccessible(self, pool_id: str, identity_id: str, now: float) -> None:
        values = {"identity_id": identity_id, "identity_pool_id": pool_id, "since": now}
        self.execute(_upsert(self.dialect, inaccessible_identities, ["identity_id"], values))

    def is_inaccessible(self, identity_id: str) -> bool:
        found = self.execute(
            select(inaccessible_identities.c.identity_id).where(
                inaccessible_identities.c.identity_id == identity_id
            )
        ).first()
        return found is not None

    # --- clean-up with the pool or identity they belong to -------------------------

    def forget_pool_access(self, pool_id: str) -> None:
        for table in (identity_pool_roles, principal_tag_maps, inaccessible_identities):
            self.execute(delete(table).where(table.c.identity_pool_id == pool_id))

    def forget_identity_access(self, identity_id: str) -> None:
        self.execute(
            delete(inaccessible_identities).where(
                inaccessible_identities.c.identity_id == identity_id
            )
        )
