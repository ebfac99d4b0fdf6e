"""Persistence: one transaction per operation, behind a small typed API.

``Store.write()`` and ``Store.read()`` hand out a :class:`Tx`; the service runs its rules
inside it and never sees SQL or the engine. On SQLite, writers of this process queue on
a lock and take the database lock up front (``BEGIN IMMEDIATE``), so they neither spin
in SQLite's busy handler nor fail to upgrade a read lock. On PostgreSQL, row locks
(``FOR UPDATE``) and transaction-scoped advisory locks serialize what must be serial.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from cogsync.store.schema import (
    access_keys,
    accounts,
    dataset_deletions,
    datasets,
    identity_pools,
    records,
)
from cogsync.sync.models import Dataset, IdentityPool, Record


def _dataset(row: Any) -> Dataset:
    return Dataset(
        dataset_id=row.dataset_id,
        identity_pool_id=row.identity_pool_id,
        identity_id=row.identity_id,
        name=row.name,
        sync_count=row.sync_count,
        creation_date=row.creation_date,
        last_modified_date=row.last_modified_date,
        last_modified_by=row.last_modified_by,
        data_storage=row.data_storage,
        num_records=row.num_records,
    )


def _record(row: Any) -> Record:
    return Record(
        key=row.key,
        value=row.value,
        sync_count=row.sync_count,
        last_modified_date=row.last_modified_date,
        last_modified_by=row.last_modified_by,
        device_last_modified_date=row.device_last_modified_date,
    )


def _pool(row: Any) -> IdentityPool:
    return IdentityPool(
        identity_pool_id=row.identity_pool_id,
        account_id=row.account_id,
        name=row.name,
        created_at=row.created_at,
        events=orjson.loads(row.events),
        push_sync=orjson.loads(row.push_sync) if row.push_sync else None,
        cognito_streams=orjson.loads(row.cognito_streams) if row.cognito_streams else None,
        sync_sessions_count=row.sync_sessions_count,
    )


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


_RECORD_COLUMNS = (
    records.c.key,
    records.c.value,
    records.c.sync_count,
    records.c.last_modified_date,
    records.c.last_modified_by,
    records.c.device_last_modified_date,
)


class Tx:
    """One open transaction. Every method is a single statement or a small batch."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.dialect = conn.dialect.name

    # --- accounts and keys -------------------------------------------------------

    def create_account(self, account_id: str, now: float) -> None:
        self.conn.execute(insert(accounts).values(account_id=account_id, created_at=now))

    def account_exists(self, account_id: str) -> bool:
        query = select(accounts.c.account_id).where(accounts.c.account_id == account_id)
        return self.conn.execute(query).first() is not None

    def first_account(self) -> str | None:
        return self.conn.execute(
            select(accounts.c.account_id).order_by(accounts.c.created_at).limit(1)
        ).scalar()

    def create_access_key(
        self, access_key_id: str, account_id: str, secret_ciphertext: bytes, now: float
    ) -> None:
        self.conn.execute(
            insert(access_keys).values(
                access_key_id=access_key_id,
                account_id=account_id,
                secret_ciphertext=secret_ciphertext,
                enabled=True,
                created_at=now,
            )
        )

    def get_access_key(self, access_key_id: str) -> tuple[str, bytes] | None:
        """(account id, secret ciphertext) of an enabled key."""
        row = self.conn.execute(
            select(access_keys.c.account_id, access_keys.c.secret_ciphertext).where(
                access_keys.c.access_key_id == access_key_id, access_keys.c.enabled
            )
        ).first()
        return None if row is None else (row.account_id, row.secret_ciphertext)

    # --- identity pools ---------------------------------------------------------

    def create_pool(self, pool_id: str, account_id: str, name: str, now: float) -> None:
        self.conn.execute(
            insert(identity_pools).values(
                identity_pool_id=pool_id,
                account_id=account_id,
                name=name,
                created_at=now,
                events="{}",
                sync_sessions_count=0,
            )
        )

    def get_pool(self, pool_id: str) -> IdentityPool | None:
        row = self.conn.execute(
            select(identity_pools).where(identity_pools.c.identity_pool_id == pool_id)
        ).first()
        return None if row is None else _pool(row)

    def list_pools(self, account_id: str, after: str | None, limit: int) -> list[IdentityPool]:
        query = select(identity_pools).where(identity_pools.c.account_id == account_id)
        if after is not None:
            query = query.where(identity_pools.c.identity_pool_id > after)
        query = query.order_by(identity_pools.c.identity_pool_id).limit(limit)
        return [_pool(row) for row in self.conn.execute(query)]

    def update_pool(self, pool_id: str, **values: Any) -> None:
        """Sets events (dict), push_sync and cognito_streams (dict or None)."""
        encoded = {k: _json(v) for k, v in values.items()}
        self.conn.execute(
            update(identity_pools)
            .where(identity_pools.c.identity_pool_id == pool_id)
            .values(**encoded)
        )

    def add_sync_sessions(self, counts: dict[str, int]) -> None:
        for pool_id, n in counts.items():
            self.conn.execute(
                update(identity_pools)
                .where(identity_pools.c.identity_pool_id == pool_id)
                .values(sync_sessions_count=identity_pools.c.sync_sessions_count + n)
            )

    def pool_storage(self, pool_id: str) -> tuple[int, float | None]:
        """(DataStorage, LastModifiedDate) summed over the pool's datasets."""
        row = self.conn.execute(
            select(
                func.coalesce(func.sum(datasets.c.data_storage), 0),
                func.max(datasets.c.last_modified_date),
            ).where(datasets.c.identity_pool_id == pool_id)
        ).one()
        return int(row[0]), row[1]

    # --- datasets ---------------------------------------------------------------

    def lock_identity(self, pool_id: str, identity_id: str) -> None:
        """Serializes dataset creation per identity (the per-identity limit needs it)."""
        if self.dialect == "postgresql":
            key = zlib.crc32(f"{pool_id}/{identity_id}".encode())
            self.conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({int(key)})")
        # SQLite: the write transaction already holds the database lock.

    def get_dataset(
        self, pool_id: str, identity_id: str, name: str, *, for_update: bool = False
    ) -> Dataset | None:
        query = select(datasets).where(
            datasets.c.identity_pool_id == pool_id,
            datasets.c.identity_id == identity_id,
            datasets.c.name == name,
        )
        if for_update:
            query = query.with_for_update()
        row = self.conn.execute(query).first()
        return None if row is None else _dataset(row)

    def count_datasets(self, pool_id: str, identity_id: str) -> int:
        return self.conn.execute(
            select(func.count()).where(
                datasets.c.identity_pool_id == pool_id, datasets.c.identity_id == identity_id
            )
        ).scalar_one()

    def create_dataset(
        self,
        pool_id: str,
        identity_id: str,
        name: str,
        sync_count: int,
        now: float,
        by: str | None,
    ) -> Dataset:
        values = dict(
            identity_pool_id=pool_id,
            identity_id=identity_id,
            name=name,
            sync_count=sync_count,
            creation_date=now,
            last_modified_date=now,
            last_modified_by=by,
            data_storage=0,
            num_records=0,
        )
        dataset_id = self.conn.execute(
            insert(datasets).values(**values).returning(datasets.c.dataset_id)
        ).scalar_one()
        return Dataset(dataset_id=dataset_id, **values)

    def save_dataset(self, dataset: Dataset) -> None:
        self.conn.execute(
            update(datasets)
            .where(datasets.c.dataset_id == dataset.dataset_id)
            .values(
                sync_count=dataset.sync_count,
                last_modified_date=dataset.last_modified_date,
                last_modified_by=dataset.last_modified_by,
                data_storage=dataset.data_storage,
                num_records=dataset.num_records,
            )
        )

    def list_datasets(
        self, pool_id: str, identity_id: str, after: str | None, limit: int
    ) -> list[Dataset]:
        query = select(datasets).where(
            datasets.c.identity_pool_id == pool_id, datasets.c.identity_id == identity_id
        )
        if after is not None:
            query = query.where(datasets.c.name > after)
        query = query.order_by(datasets.c.name).limit(limit)
        return [_dataset(row) for row in self.conn.execute(query)]

    def identity_storage(self, pool_id: str, identity_id: str) -> tuple[int, int, float | None]:
        """(DatasetCount, DataStorage, LastModifiedDate) of one identity."""
        row = self.conn.execute(
            select(
                func.count(),
                func.coalesce(func.sum(datasets.c.data_storage), 0),
                func.max(datasets.c.last_modified_date),
            ).where(datasets.c.identity_pool_id == pool_id, datasets.c.identity_id == identity_id)
        ).one()
        return int(row[0]), int(row[1]), row[2]

    def delete_dataset(self, dataset: Dataset, now: float) -> None:
        self.conn.execute(delete(records).where(records.c.dataset_id == dataset.dataset_id))
        self.conn.execute(delete(datasets).where(datasets.c.dataset_id == dataset.dataset_id))
        key = dict(
            identity_pool_id=dataset.identity_pool_id,
            identity_id=dataset.identity_id,
            name=dataset.name,
        )
        values = dict(key, deleted_sync_count=dataset.sync_count, deleted_at=now)
        stmt = self._insert(dataset_deletions).values(**values)
        self.conn.execute(
            stmt.on_conflict_do_update(
                index_elements=list(key),
                set_={"deleted_sync_count": values["deleted_sync_count"], "deleted_at": now},
            )
        )

    def deleted_sync_count(self, pool_id: str, identity_id: str, name: str) -> int | None:
        """The sync count a dataset of this name had when it was last deleted."""
        return self.conn.execute(
            select(dataset_deletions.c.deleted_sync_count).where(
                dataset_deletions.c.identity_pool_id == pool_id,
                dataset_deletions.c.identity_id == identity_id,
                dataset_deletions.c.name == name,
            )
        ).scalar()

    def has_deletions(self, pool_id: str, identity_id: str) -> bool:
        return (
            self.conn.execute(
                select(dataset_deletions.c.name)
                .where(
                    dataset_deletions.c.identity_pool_id == pool_id,
                    dataset_deletions.c.identity_id == identity_id,
                )
                .limit(1)
            ).first()
            is not None
        )

    # --- records ----------------------------------------------------------------

    def get_records(self, dataset_id: int, keys: Iterable[str]) -> dict[str, Record]:
        found: dict[str, Record] = {}
        key_list = list(keys)
        for start in range(0, len(key_list), 500):
            chunk = key_list[start : start + 500]
            rows = self.conn.execute(
                select(*_RECORD_COLUMNS).where(
                    records.c.dataset_id == dataset_id, records.c.key.in_(chunk)
                )
            )
            for row in rows:
                found[row.key] = _record(row)
        return found

    def put_records(self, dataset_id: int, written: list[Record]) -> None:
        if not written:
            return
        rows = [
            {
                "dataset_id": dataset_id,
                "key": r.key,
                "value": r.value,
                "sync_count": r.sync_count,
                "last_modified_date": r.last_modified_date,
                "last_modified_by": r.last_modified_by,
                "device_last_modified_date": r.device_last_modified_date,
            }
            for r in written
        ]
        stmt = self._insert(records)
        stmt = stmt.on_conflict_do_update(
            index_elements=["dataset_id", "key"],
            set_={
                name: stmt.excluded[name]
                for name in (
                    "value",
                    "sync_count",
                    "last_modified_date",
                    "last_modified_by",
                    "device_last_modified_date",
                )
            },
        )
        self.conn.execute(stmt, rows)

    def list_records(
        self,
        dataset_id: int,
        after_sync_count: int,
        up_to_sync_count: int,
        cursor: tuple[int, str] | None,
        limit: int,
    ) -> list[Record]:
        """Records with after < SyncCount <= up_to, in (SyncCount, Key) order after cursor."""
        query = select(*_RECORD_COLUMNS).where(
            records.c.dataset_id == dataset_id,
            records.c.sync_count > after_sync_count,
            records.c.sync_count <= up_to_sync_count,
        )
        if cursor is not None:
            count, key = cursor
            query = query.where(
                or_(
                    records.c.sync_count > count,
                    and_(records.c.sync_count == count, records.c.key > key),
                )
            )
        query = query.order_by(records.c.sync_count, records.c.key).limit(limit)
        return [_record(row) for row in self.conn.execute(query)]

    def _insert(self, table: Any) -> Any:
        module = postgresql if self.dialect == "postgresql" else sqlite
        return module.insert(table)


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect.name
        self._write_lock = threading.Lock() if self.dialect == "sqlite" else None

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A read-write transaction; committed when the block ends without an error."""
        lock: AbstractContextManager[Any] = self._write_lock or nullcontext()
        with lock, self.engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield Tx(conn)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read-only transaction: one consistent snapshot (WAL on SQLite)."""
        with self.engine.connect() as conn, conn.begin():
            yield Tx(conn)

    def close(self) -> None:
        self.engine.dispose()
