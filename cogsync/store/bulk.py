"""Statements for moving data in bulk: ``cogsync import`` and ``cogsync restore``.

These write rows as they are given (sync counts, dates, creators, merge marks), where the
service's own writes derive them; they run in the caller's transaction, beside the
:class:`~cogsync.store.database.Tx` methods the service uses.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Table, bindparam, delete, func, insert, select, update

from cogsync.domain import Record
from cogsync.store.database import Tx
from cogsync.store.prepared import Prepared, Queries
from cogsync.store.schema import (
    access_keys,
    accounts,
    dataset_deletions,
    datasets,
    identities,
    identity_logins,
    identity_pools,
    records,
)
from cogsync.store.sync_queries import RECORD_COLUMNS

DATASET_VALUES = (
    "sync_count",
    "creation_date",
    "last_modified_date",
    "last_modified_by",
    "data_storage",
    "num_records",
    "merged_into",
)
BATCH = 1000


class StoredIdentity(NamedTuple):
    identity_pool_id: str
    created_at: float
    last_modified_at: float
    logins: tuple[tuple[str, str], ...]  # (provider, subject)


class StoredDataset(NamedTuple):
    """A dataset row as it is stored, its merge mark included."""

    dataset_id: int
    name: str
    sync_count: int
    creation_date: float
    last_modified_date: float
    last_modified_by: str | None
    data_storage: int
    num_records: int
    merged_into: str | None

    def values(self) -> tuple[Any, ...]:
        """What an import compares: everything but the row id and the name."""
        return self[2:]


def _binds(*names: str) -> dict[str, Any]:
    return {name: bindparam(name) for name in names}


GET_IDENTITY = Prepared(
    lambda d: select(
        identities.c.identity_pool_id, identities.c.created_at, identities.c.last_modified_at
    ).where(identities.c.identity_id == bindparam("id"))
)
IDENTITY_LOGINS = Prepared(
    lambda d: select(identity_logins.c.provider, identity_logins.c.subject)
    .where(identity_logins.c.identity_id == bindparam("id"))
    .order_by(identity_logins.c.provider, identity_logins.c.subject)
)
INSERT_IDENTITY = Prepared(
    lambda d: insert(identities).values(
        identity_id=bindparam("id"),
        identity_pool_id=bindparam("pool"),
        created_at=bindparam("created"),
        last_modified_at=bindparam("modified"),
    )
)
UPDATE_IDENTITY = Prepared(
    lambda d: update(identities)
    .where(identities.c.identity_id == bindparam("id"))
    .values(created_at=bindparam("created"), last_modified_at=bindparam("modified"))
)
IDENTITY_DATASETS = Prepared(
    lambda d: select(
        datasets.c.dataset_id, datasets.c.name, *(datasets.c[name] for name in DATASET_VALUES)
    ).where(
        datasets.c.identity_pool_id == bindparam("pool"),
        datasets.c.identity_id == bindparam("identity"),
    )
)
ALL_RECORDS = Prepared(
    lambda d: select(*RECORD_COLUMNS, records.c.document).where(
        records.c.dataset_id == bindparam("id")
    )
)
INSERT_DATASET = Prepared(
    lambda d: insert(datasets)
    .values(**_binds("identity_pool_id", "identity_id", "name", *DATASET_VALUES))
    .returning(datasets.c.dataset_id)
)
UPDATE_DATASET = Prepared(
    lambda d: update(datasets)
    .where(datasets.c.dataset_id == bindparam("id"))
    .values(**_binds(*DATASET_VALUES))
)
DELETE_RECORD = Prepared(
    lambda d: delete(records).where(
        records.c.dataset_id == bindparam("id"), records.c.key == bindparam("k")
    )
)
DELETE_ALL_RECORDS = Prepared(
    lambda d: delete(records).where(records.c.dataset_id == bindparam("id"))
)
DELETE_DATASET = Prepared(
    lambda d: delete(datasets).where(datasets.c.dataset_id == bindparam("id"))
)
GET_DELETION = Prepared(
    lambda d: select(dataset_deletions.c.deleted_sync_count).where(
        dataset_deletions.c.identity_pool_id == bindparam("pool"),
        dataset_deletions.c.identity_id == bindparam("identity"),
        dataset_deletions.c.name == bindparam("name"),
    )
)
INSERT_DELETION = Prepared(
    lambda d: insert(dataset_deletions).values(
        identity_pool_id=bindparam("pool"),
        identity_id=bindparam("identity"),
        name=bindparam("name"),
        deleted_sync_count=bindparam("count"),
        deleted_at=bindparam("at"),
    )
)
UPDATE_DELETION = Prepared(
    lambda d: update(dataset_deletions)
    .where(
        dataset_deletions.c.identity_pool_id == bindparam("pool"),
        dataset_deletions.c.identity_id == bindparam("identity"),
        dataset_deletions.c.name == bindparam("name"),
    )
    .values(deleted_sync_count=bindparam("count"), deleted_at=bindparam("at"))
)


def is_conflict(error: BaseException) -> bool:
    """Whether a driver error is a broken unique (or foreign key) constraint."""
    if isinstance(error, sqlite3.IntegrityError):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(error, psycopg.IntegrityError)


class BulkQueries(Queries):
    """Bulk statements on the driver connection of an open :class:`Tx`."""

    @classmethod
    def of(cls, tx: Tx) -> BulkQueries:
        return cls(tx.driver, tx.sql_dialect)

    # --- identities -------------------------------------------------------------

    def identity(self, identity_id: str) -> StoredIdentity | None:
        row = GET_IDENTITY.first(self, id=identity_id)
        if row is None:
            return None
        logins = tuple((r[0], r[1]) for r in IDENTITY_LOGINS.rows(self, id=identity_id))
        return StoredIdentity(row[0], row[1], row[2], logins)

    def put_identity(
        self, pool_id: str, identity_id: str, created_at: float, last_modified_at: float,
        *, exists: bool,
    ) -> None:
        """Inserts the identity, or (``exists``) sets its dates."""
        statement = UPDATE_IDENTITY if exists else INSERT_IDENTITY
        statement.run(self, id=identity_id, pool=pool_id, created=created_at,
                      modified=last_modified_at)

    # --- datasets and records ---------------------------------------------------

    def datasets_of(self, pool_id: str, identity_id: str) -> dict[str, StoredDataset]:
        rows = IDENTITY_DATASETS.rows(self, pool=pool_id, identity=identity_id)
        return {row[1]: StoredDataset(*row) for row in rows}

    def records_of(self, dataset_id: int) -> dict[str, Record]:
        """Every record of the dataset, tombstones included, with its document."""
        rows = ALL_RECORDS.rows(self, id=dataset_id)
        return {row[0]: Record(*row[:6], bytes(row[6]) if row[6] is not None else None)
                for row in rows}

    def insert_dataset(
        self, pool_id: str, identity_id: str, name: str, values: Sequence[Any]
    ) -> int:
        """A new dataset row with ``values`` in the order of DATASET_VALUES; its id."""
        params = dict(zip(DATASET_VALUES, values, strict=True))
        return int(
            INSERT_DATASET.scalar(
                self, identity_pool_id=pool_id, identity_id=identity_id, name=name, **params
            )
        )

    def update_dataset(self, dataset_id: int, values: Sequence[Any]) -> None:
        params = dict(zip(DATASET_VALUES, values, strict=True))
        UPDATE_DATASET.run(self, id=dataset_id, **params)

    def set_merged_into(self, dataset_id: int, name: str | None) -> None:
        """Marks a dataset as merged into the dataset ``name`` (None: no longer)."""
        self.execute(
            update(datasets).where(datasets.c.dataset_id == dataset_id).values(merged_into=name)
        )

    def delete_records(self, dataset_id: int, keys: Iterable[str]) -> None:
        batch = [{"id": dataset_id, "k": key} for key in keys]
        if batch:
            DELETE_RECORD.run_many(self, batch)

    def drop_dataset(self, dataset_id: int) -> None:
        """The dataset and its records, leaving no deletion mark (see put_deletion)."""
        DELETE_ALL_RECORDS.run(self, id=dataset_id)
        DELETE_DATASET.run(self, id=dataset_id)

    def put_deletion(
        self, pool_id: str, identity_id: str, name: str, deleted_sync_count: int, at: float
    ) -> bool:
        """Records that a dataset of this name was deleted at that sync count (keeping a
        higher count already recorded); whether anything changed."""
        where = dict(pool=pool_id, identity=identity_id, name=name)
        known = GET_DELETION.scalar(self, **where)
        if known is None:
            INSERT_DELETION.run(self, **where, count=deleted_sync_count, at=at)
            return True
        if known >= deleted_sync_count:
            return False
        UPDATE_DELETION.run(self, **where, count=deleted_sync_count, at=at)
        return True

    # --- restore ----------------------------------------------------------------

    def insert_rows(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        """Inserts rows of one table (all with the same columns), in batches."""
        if not rows:
            return
        statement = insert(table).values(**_binds(*rows[0]))
        compiled = statement.compile(dialect=self.sql_dialect)
        sql = str(compiled)
        order = tuple(compiled.positiontup or ()) if compiled.positional else None
        for start in range(0, len(rows), BATCH):
            chunk = rows[start : start + BATCH]
            params: list[Any] = (
                [tuple(row[name] for name in order) for row in chunk] if order else list(chunk)
            )
            self.cursor.executemany(sql, params)

    def insert_dataset_row(self, row: dict[str, Any]) -> int:
        return self.insert_dataset(
            row["identity_pool_id"],
            row["identity_id"],
            row["name"],
            [row[name] for name in DATASET_VALUES],
        )

    def account_exists(self, account_id: str) -> bool:
        query = select(accounts.c.account_id).where(accounts.c.account_id == account_id)
        return self.execute(query).first() is not None

    def access_key(self, access_key_id: str) -> tuple[str, bytes] | None:
        row = self.execute(
            select(access_keys.c.account_id, access_keys.c.secret_ciphertext).where(
                access_keys.c.access_key_id == access_key_id
            )
        ).first()
        return None if row is None else (row[0], bytes(row[1]))

    def pool_exists(self, pool_id: str) -> bool:
        found = self.execute(
            select(identity_pools.c.identity_pool_id).where(
                identity_pools.c.identity_pool_id == pool_id
            )
        )
        return found.first() is not None

    def is_empty(self) -> bool:
        """No account, pool, identity or dataset at all (a database to restore into)."""
        for table in (accounts, identity_pools, identities, identity_logins, datasets):
            if self.execute(select(func.count()).select_from(table)).scalar():
                return False
        return True
