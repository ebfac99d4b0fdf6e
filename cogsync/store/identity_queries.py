"""The Cognito Identity queries: server keys, pools' identity settings, identities,
logins, devices and subscriptions."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import (
    delete,
    insert,
    select,
    update,
)

from cogsync.domain import Dataset, Device, Identity
from cogsync.store.prepared import Queries, dialect_insert
from cogsync.store.schema import (
    dataset_deletions,
    datasets,
    devices,
    identities,
    identity_logins,
    identity_pools,
    records,
    server_keys,
    subscriptions,
)


class IdentityQueries(Queries):
    """The Cognito Identity side: pools' identity attributes, identities, logins, devices.

    These calls are rare next to the sync calls, so they use plain SQLAlchemy Core.
    """

    def _one(self, query: Any) -> Any:
        return self.execute(query).first()

    # --- server keys ------------------------------------------------------------

    def get_server_key(self, name: str) -> bytes | None:
        row = self._one(select(server_keys.c.sealed).where(server_keys.c.name == name))
        return None if row is None else bytes(row[0])

    def put_server_key(self, name: str, sealed: bytes, now: float) -> bytes:
        """Stores the key unless another replica stored one first; returns the stored one."""
        stmt = dialect_insert(self.dialect, server_keys).values(
            name=name, sealed=sealed, created_at=now
        )
        self.execute(stmt.on_conflict_do_nothing(index_elements=["name"]))
        stored = self.get_server_key(name)
        assert stored is not None
        return stored

    # --- pools ------------------------------------------------------------------

    def set_pool_identity(
        self,
        pool_id: str,
        name: str,
        allow_unauthenticated: bool,
        allow_classic_flow: bool,
        developer_provider_name: str | None,
        attributes: dict[str, Any],
    ) -> None:
        self.execute(
            update(identity_pools)
            .where(identity_pools.c.identity_pool_id == pool_id)
            .values(
                name=name,
                allow_unauthenticated=allow_unauthenticated,
                allow_classic_flow=allow_classic_flow,
                developer_provider_name=developer_provider_name,
                identity_attributes=orjson.dumps(attributes).decode(),
            )
        )

    def delete_pool(self, pool_id: str) -> None:
        dataset_ids = (
            select(datasets.c.dataset_id)
            .where(datasets.c.identity_pool_id == pool_id)
            .scalar_subquery()
        )
        self.execute(delete(records).where(records.c.dataset_id.in_(dataset_ids)))
        for table in (
            datasets,
            dataset_deletions,
            identities,
            identity_logins,
            devices,
            subscriptions,
        ):
            self.execute(delete(table).where(table.c.identity_pool_id == pool_id))
        self.execute(
            delete(identity_pools).where(identity_pools.c.identity_pool_id == pool_id)
        )

    # --- identities -------------------------------------------------------------

    def create_identity(self, identity_id: str, pool_id: str, now: float) -> None:
        self.execute(
            insert(identities).values(
                identity_id=identity_id,
                identity_pool_id=pool_id,
                created_at=now,
                last_modified_at=now,
            )
        )

    def get_identity(self, identity_id: str) -> Identity | None:
        row = self._one(select(identities).where(identities.c.identity_id == identity_id))
        if row is None:
            return None
        return Identity(
            row.identity_id,
            row.identity_pool_id,
            row.created_at,
            row.last_modified_at,
            self.logins_of(identity_id),
        )

    def touch_identity(self, identity_id: str, now: float) -> None:
        self.execute(
            update(identities)
            .where(identities.c.identity_id == identity_id)
            .values(last_modified_at=now)
        )

    def list_identities(self, pool_id: str, after: str | None, limit: int) -> list[Identity]:
        query = select(identities.c.identity_id).where(identities.c.identity_pool_id == pool_id)
        if after is not None:
            query = query.where(identities.c.identity_id > after)
        ids = self.execute(query.order_by(identities.c.identity_id).limit(limit)).scalars()
        found = [self.get_identity(identity_id) for identity_id in ids]
        return [identity for identity in found if identity is not None]

    def delete_identity(self, identity: Identity) -> None:
        """The identity, its logins, devices, subscriptions and sync data."""
        pool_id, identity_id = identity.identity_pool_id, identity.identity_id
        dataset_ids = (
            select(datasets.c.dataset_id)
            .where(datasets.c.identity_pool_id == pool_id, datasets.c.identity_id == identity_id)
            .scalar_subquery()
        )
        self.execute(delete(records).where(records.c.dataset_id.in_(dataset_ids)))
        for table in (datasets, dataset_deletions, devices, subscriptions):
            self.execute(
                delete(table).where(
                    table.c.identity_pool_id == pool_id, table.c.identity_id == identity_id
                )
            )
        self.execute(
            delete(identity_logins).where(identity_logins.c.identity_id == identity_id)
        )
        self.execute(delete(identities).where(identities.c.identity_id == identity_id))

    # --- logins -----------------------------------------------------------------

    def logins_of(self, identity_id: str) -> tuple[tuple[str, str], ...]:
        rows = self.execute(
            select(identity_logins.c.provider, identity_logins.c.subject)
            .where(identity_logins.c.identity_id == identity_id)
            .order_by(identity_logins.c.provider, identity_logins.c.subject)
        )
        return tuple((row.provider, row.subject) for row in rows)

    def find_login(self, pool_id: str, provider: str, subject: str) -> str | None:
        row = self._one(
            select(identity_logins.c.identity_id).where(
                identity_logins.c.identity_pool_id == pool_id,
                identity_logins.c.provider == provider,
                identity_logins.c.subject == subject,
            )
        )
        return None if row is None else row[0]

    def add_login(
        self, pool_id: str, provider: str, subject: str, identity_id: str, now: float
    ) -> None:
        self.execute(
            insert(identity_logins).values(
                identity_pool_id=pool_id,
                provider=provider,
                subject=subject,
                identity_id=identity_id,
                created_at=now,
            )
        )

    def remove_login(self, pool_id: str, provider: str, subject: str) -> None:
        self.execute(
            delete(identity_logins).where(
                identity_logins.c.identity_pool_id == pool_id,
                identity_logins.c.provider == provider,
                identity_logins.c.subject == subject,
            )
        )

    def subjects_of(
        self, identity_id: str, provider: str, after: str | None, limit: int
    ) -> list[str]:
        query = select(identity_logins.c.subject).where(
            identity_logins.c.identity_id == identity_id, identity_logins.c.provider == provider
        )
        if after is not None:
            query = query.where(identity_logins.c.subject > after)
        return list(
            self.execute(query.order_by(identity_logins.c.subject).limit(limit)).scalars()
        )

    def move_logins(self, source_identity: str, target_identity: str) -> None:
        self.execute(
            update(identity_logins)
            .where(identity_logins.c.identity_id == source_identity)
            .values(identity_id=target_identity)
        )

    # --- merges of sync data ----------------------------------------------------

    def move_dataset(
        self, dataset: Dataset, identity_id: str, name: str, merged_into: str | None
    ) -> None:
        self.execute(
            update(datasets)
            .where(datasets.c.dataset_id == dataset.dataset_id)
            .values(identity_id=identity_id, name=name, merged_into=merged_into)
        )

    # --- devices and subscriptions ----------------------------------------------

    def find_device(
        self, pool_id: str, identity_id: str, platform: str, token: str
    ) -> Device | None:
        row = self._one(
            select(devices).where(
                devices.c.identity_pool_id == pool_id,
                devices.c.identity_id == identity_id,
                devices.c.platform == platform,
                devices.c.token == token,
            )
        )
        return None if row is None else _device(row)

    def get_device(self, device_id: str) -> Device | None:
        row = self._one(select(devices).where(devices.c.device_id == device_id))
        return None if row is None else _device(row)

    def create_device(self, device: Device, now: float) -> None:
        self.execute(
            insert(devices).values(
                device_id=device.device_id,
                identity_pool_id=device.identity_pool_id,
                identity_id=device.identity_id,
                platform=device.platform,
                token=device.token,
                enabled=device.enabled,
                created_at=now,
            )
        )

    def subscribe(
        self, pool_id: str, identity_id: str, dataset: str, device_id: str, now: float
    ) -> None:
        stmt = dialect_insert(self.dialect, subscriptions).values(
            identity_pool_id=pool_id,
            identity_id=identity_id,
            dataset_name=dataset,
            device_id=device_id,
            created_at=now,
        )
        self.execute(
            stmt.on_conflict_do_nothing(
                index_elements=["identity_pool_id", "identity_id", "dataset_name", "device_id"]
            )
        )

    def unsubscribe(self, pool_id: str, identity_id: str, dataset: str, device_id: str) -> None:
        self.execute(
            delete(subscriptions).where(
                subscriptions.c.identity_pool_id == pool_id,
                subscriptions.c.identity_id == identity_id,
                subscriptions.c.dataset_name == dataset,
                subscriptions.c.device_id == device_id,
            )
        )

    def subscribers(self, pool_id: str, identity_id: str, dataset: str) -> list[str]:
        return list(
            self.execute(
                select(subscriptions.c.device_id)
                .where(
                    subscriptions.c.identity_pool_id == pool_id,
                    subscriptions.c.identity_id == identity_id,
                    subscriptions.c.dataset_name == dataset,
                )
                .order_by(subscriptions.c.device_id)
            ).scalars()
        )


def _device(row: Any) -> Device:
    return Device(
        row.device_id,
        row.identity_pool_id,
        row.identity_id,
        row.platform,
        row.token,
        bool(row.enabled),
    )
