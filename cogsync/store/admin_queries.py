"""What operators ask of the store (the admin commands and the web console): identities
found by id or login, every row of one identity, records with their tombstones.

Rare, operator-paced statements: plain SQLAlchemy Core on the driver connection of an
open :class:`Tx`, like :mod:`cogsync.store.bulk`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, delete, func, literal, or_, select, union

from cogsync.domain import Record
from cogsync.store.prepared import Queries
from cogsync.store.schema import (
    dataset_deletions,
    datasets,
    devices,
    identities,
    identity_logins,
    records,
    subscriptions,
)

if TYPE_CHECKING:
    from cogsync.store.database import Tx


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class AdminQueries(Queries):
    @classmethod
    def of(cls, tx: Tx) -> AdminQueries:
        return cls(tx.driver, tx.sql_dialect)

    def identity_ids(
        self, pool_id: str, search: str | None, after: str | None, limit: int
    ) -> list[str]:
        """Identity ids of the pool in order: identities made by Cognito Identity and ids
        that only hold data (developer credentials may write to any well-formed id).
        ``search`` matches part of the id or of a login's subject or provider."""
        made = select(identities.c.identity_id.label("identity_id")).where(
            identities.c.identity_pool_id == pool_id
        )
        holding = select(datasets.c.identity_id.label("identity_id")).where(
            datasets.c.identity_pool_id == pool_id
        )
        if search:
            pattern = _like(search)
            logins = select(identity_logins.c.identity_id).where(
                identity_logins.c.identity_pool_id == pool_id,
                or_(
                    identity_logins.c.subject.ilike(pattern, escape="\\"),
                    identity_logins.c.provider.ilike(pattern, escape="\\"),
                ),
            )
            made = made.where(
                or_(
                    identities.c.identity_id.ilike(pattern, escape="\\"),
                    identities.c.identity_id.in_(logins),
                )
            )
            holding = holding.where(datasets.c.identity_id.ilike(pattern, escape="\\"))
        both = union(made, holding).subquery()
        query = select(both.c.identity_id)
        if after is not None:
            query = query.where(both.c.identity_id > after)
        return list(self.execute(query.order_by(both.c.identity_id).limit(limit)).scalars())

    def dataset_counts(self, pool_id: str, identity_ids: list[str]) -> dict[str, tuple[int, int]]:
        """(datasets, bytes) of each of these identities that holds data."""
        if not identity_ids:
            return {}
        rows = self.execute(
            select(datasets.c.identity_id, func.count(), func.sum(datasets.c.data_storage))
            .where(datasets.c.identity_pool_id == pool_id,
                   datasets.c.identity_id.in_(identity_ids))
            .group_by(datasets.c.identity_id)
        )
        return {row[0]: (int(row[1]), int(row[2] or 0)) for row in rows}

    def all_records(self, dataset_id: int, search: str | None = None) -> list[Record]:
        """The dataset's records by key, removed ones (tombstones) included; ``search``
        matches part of a key or of a value."""
        query = select(
            records.c.key, records.c.value, records.c.sync_count, records.c.last_modified_date,
            records.c.last_modified_by, records.c.device_last_modified_date,
        ).where(records.c.dataset_id == dataset_id)
        if search:
            pattern = _like(search)
            query = query.where(or_(records.c.key.ilike(pattern, escape="\\"),
                                    records.c.value.ilike(pattern, escape="\\")))
        return [Record(*row) for row in self.execute(query.order_by(records.c.key))]

    def identity_rows(self, pool_id: str, identity_id: str, table: Table) -> list[dict[str, Any]]:
        """One identity's rows of a table that names pool and identity."""
        where = [table.c.identity_id == identity_id]
        if "identity_pool_id" in table.c:
            where.append(table.c.identity_pool_id == pool_id)
        order = [c for c in table.primary_key.columns] or list(table.columns)[:1]
        rows = self.execute(select(*table.columns).where(*where).order_by(*order))
        return [row._asdict() for row in rows]

    def dataset_records_rows(self, dataset_id: int) -> list[dict[str, Any]]:
        rows = self.execute(
            select(*(c for c in records.columns if c.name not in ("dataset_id", "document")))
            .where(records.c.dataset_id == dataset_id)
            .order_by(records.c.key)
        )
        return [row._asdict() for row in rows]

    def device_count(self, pool_id: str, identity_id: str) -> int:
        query = select(func.count()).select_from(devices).where(
            devices.c.identity_pool_id == pool_id, devices.c.identity_id == identity_id)
        return int(self.execute(query).scalar())

    def forget_devices(self, pool_id: str, identity_id: str) -> int:
        """Removes the identity's devices and subscriptions; returns how many devices."""
        self.execute(
            delete(subscriptions).where(subscriptions.c.identity_pool_id == pool_id,
                                        subscriptions.c.identity_id == identity_id)
        )
        gone = self.execute(
            delete(devices).where(devices.c.identity_pool_id == pool_id,
                                  devices.c.identity_id == identity_id)
        )
        return int(gone.rowcount or 0)

    def forget_identity(self, pool_id: str, identity_id: str) -> bool:
        """Removes the identity and its logins (its deletion markers stay, so clients
        that still hold a copy are told to wipe it); True if there was an identity."""
        self.execute(
            delete(identity_logins).where(identity_logins.c.identity_pool_id == pool_id,
                                          identity_logins.c.identity_id == identity_id)
        )
        gone = self.execute(
            delete(identities).where(identities.c.identity_pool_id == pool_id,
                                     identities.c.identity_id == identity_id)
        )
        return bool(gone.rowcount)

    def has_any(self, pool_id: str, identity_id: str) -> bool:
        """Whether the pool knows this identity at all (made, holding data, or deleted
        data)."""
        checks = [
            select(literal(1)).where(t.c.identity_pool_id == pool_id,
                                     t.c.identity_id == identity_id)
            for t in (identities, datasets, dataset_deletions)
        ]
        return self.execute(union(*checks).limit(1)).first() is not None


EXPORT_TABLES = {
    "login": identity_logins,
    "dataset_deletion": dataset_deletions,
    "device": devices,
    "subscription": subscriptions,
}
