"""The Cognito Sync queries: pools' sync settings, datasets, records and their documents.

The hot statements are compiled once per dialect (:class:`Prepared`); the rest use
SQLAlchemy Core.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from functools import cache
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    select,
    tuple_,
    update,
)

from cogsync.domain import Dataset, IdentityPool, Record
from cogsync.store.prepared import Prepared, Queries, dialect_insert
from cogsync.store.schema import (
    dataset_deletions,
    datasets,
    identity_pools,
    records,
)

DATASET_COLUMNS = (
    datasets.c.dataset_id,
    datasets.c.identity_pool_id,
    datasets.c.identity_id,
    datasets.c.name,
    datasets.c.sync_count,
    datasets.c.creation_date,
    datasets.c.last_modified_date,
    datasets.c.last_modified_by,
    datasets.c.data_storage,
    datasets.c.num_records,
)
RECORD_COLUMNS = (
    records.c.key,
    records.c.value,
    records.c.sync_count,
    records.c.last_modified_date,
    records.c.last_modified_by,
    records.c.device_last_modified_date,
)
POOL_COLUMNS = (
    identity_pools.c.identity_pool_id,
    identity_pools.c.account_id,
    identity_pools.c.name,
    identity_pools.c.created_at,
    identity_pools.c.events,
    identity_pools.c.push_sync,
    identity_pools.c.cognito_streams,
    identity_pools.c.sync_sessions_count,
    identity_pools.c.allow_unauthenticated,
    identity_pools.c.allow_classic_flow,
    identity_pools.c.developer_provider_name,
    identity_pools.c.identity_attributes,
)
RECORD_FIELDS = (
    "value",
    "sync_count",
    "last_modified_date",
    "last_modified_by",
    "device_last_modified_date",
    "document",
)


class DatasetState(NamedTuple):
    account_id: str  # the pool's owner
    dataset: Dataset | None
    deleted_sync_count: int | None  # the count a dataset of this name had when deleted
    has_merged: bool  # datasets of other identities were merged into this one


def _dataset(row: tuple[Any, ...]) -> Dataset:
    return Dataset(*row)


def _record(row: tuple[Any, ...]) -> Record:
    return Record(*row)


def _pool(row: tuple[Any, ...]) -> IdentityPool:
    (
        pool_id,
        account_id,
        name,
        created_at,
        events,
        push_sync,
        streams,
        sessions,
        unauthenticated,
        classic,
        developer_provider,
        attributes,
    ) = row
    return IdentityPool(
        identity_pool_id=pool_id,
        account_id=account_id,
        name=name,
        created_at=created_at,
        events=orjson.loads(events),
        push_sync=orjson.loads(push_sync) if push_sync else None,
        cognito_streams=orjson.loads(streams) if streams else None,
        sync_sessions_count=sessions,
        allow_unauthenticated=bool(unauthenticated),
        allow_classic_flow=bool(classic),
        developer_provider_name=developer_provider,
        attributes=orjson.loads(attributes),
    )


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


_insert = dialect_insert


def _upsert(dialect: str, table: Any, keys: list[str], columns: tuple[str, ...]) -> Any:
    stmt = _insert(dialect, table)
    return stmt.on_conflict_do_update(
        index_elements=keys, set_={name: stmt.excluded[name] for name in columns}
    )


def _dataset_where(query: Any, table: Any = datasets) -> Any:
    return query.where(
        table.c.identity_pool_id == bindparam("pool"),
        table.c.identity_id == bindparam("identity"),
    )


def _binds(*names: str) -> dict[str, Any]:
    """``column=bindparam(column)`` for each name: an INSERT or UPDATE of named values."""
    return {name: bindparam(name) for name in names}


# --- the statements, written once -----------------------------------------------

Q = Prepared
INSERT_POOL = Q(
    lambda d: insert(identity_pools).values(
        **_binds(
            "identity_pool_id",
            "account_id",
            "name",
            "created_at",
            "events",
            "sync_sessions_count",
        )
    )
)
GET_POOL = Q(
    lambda d: select(*POOL_COLUMNS).where(identity_pools.c.identity_pool_id == bindparam("pool"))
)
LIST_POOLS = Q(
    lambda d: (
        select(*POOL_COLUMNS)
        .where(
            identity_pools.c.account_id == bindparam("account"),
            identity_pools.c.identity_pool_id > bindparam("after"),
        )
        .order_by(identity_pools.c.identity_pool_id)
        .limit(bindparam("limit"))
    )
)
ADD_SESSIONS = Q(
    lambda d: (
        update(identity_pools)
        .where(identity_pools.c.identity_pool_id == bindparam("pool"))
        .values(sync_sessions_count=identity_pools.c.sync_sessions_count + bindparam("n"))
    )
)
POOL_STORAGE = Q(
    lambda d: select(
        func.coalesce(func.sum(datasets.c.data_storage), 0),
        func.max(datasets.c.last_modified_date),
    ).where(datasets.c.identity_pool_id == bindparam("pool"))
)
GET_DATASET = Q(
    lambda d: _dataset_where(select(*DATASET_COLUMNS)).where(datasets.c.name == bindparam("name"))
)
GET_DATASET_FOR_UPDATE = Q(
    lambda d: (
        _dataset_where(select(*DATASET_COLUMNS))
        .where(datasets.c.name == bindparam("name"))
        .with_for_update()
    )
)
POOL_AND_DATASET_FOR_UPDATE = Q(
    lambda d: (
        select(*POOL_COLUMNS, *DATASET_COLUMNS)
        .join_from(
            datasets,
            identity_pools,
            identity_pools.c.identity_pool_id == datasets.c.identity_pool_id,
        )
        .where(
            datasets.c.identity_pool_id == bindparam("pool"),
            datasets.c.identity_id == bindparam("identity"),
            datasets.c.name == bindparam("name"),
        )
        .with_for_update(of=datasets)
    )
)
COUNT_DATASETS = Q(lambda d: _dataset_where(select(func.count()).select_from(datasets)))
INSERT_DATASET = Q(
    lambda d: (
        insert(datasets)
        .values(
            **_binds(
                "identity_pool_id",
                "identity_id",
                "name",
                "sync_count",
                "creation_date",
                "last_modified_date",
                "last_modified_by",
                "data_storage",
                "num_records",
            )
        )
        .returning(datasets.c.dataset_id)
    )
)
SAVE_DATASET = Q(
    lambda d: (
        update(datasets)
        .where(datasets.c.dataset_id == bindparam("id"))
        .values(
            **_binds(
                "sync_count",
                "last_modified_date",
                "last_modified_by",
                "data_storage",
                "num_records",
            )
        )
    )
)
LIST_DATASETS = Q(
    lambda d: (
        _dataset_where(select(*DATASET_COLUMNS))
        .where(datasets.c.name > bindparam("after"))
        .order_by(datasets.c.name)
        .limit(bindparam("limit"))
    )
)
IDENTITY_STORAGE = Q(
    lambda d: _dataset_where(
        select(
            func.count(),
            func.coalesce(func.sum(datasets.c.data_storage), 0),
            func.max(datasets.c.last_modified_date),
        )
    )
)
DELETE_RECORDS = Q(lambda d: delete(records).where(records.c.dataset_id == bindparam("id")))
DELETE_DATASET = Q(lambda d: delete(datasets).where(datasets.c.dataset_id == bindparam("id")))
UPSERT_DELETION = Q(
    lambda d: _upsert(
        d,
        dataset_deletions,
        ["identity_pool_id", "identity_id", "name"],
        ("deleted_sync_count", "deleted_at"),
    ).values(
        **_binds(
            "identity_pool_id",
            "identity_id",
            "name",
            "deleted_sync_count",
            "deleted_at",
        )
    )
)
DELETED_SYNC_COUNT = Q(
    lambda d: _dataset_where(
        select(dataset_deletions.c.deleted_sync_count), dataset_deletions
    ).where(dataset_deletions.c.name == bindparam("name"))
)
HAS_DELETIONS = Q(
    lambda d: _dataset_where(select(dataset_deletions.c.name), dataset_deletions).limit(1)
)
UPSERT_RECORD = Q(
    lambda d: _upsert(d, records, ["dataset_id", "key"], RECORD_FIELDS).values(
        **_binds("dataset_id", "key", *RECORD_FIELDS)
    )
)
LIST_DOCUMENTS = Q(
    lambda d: (
        select(records.c.document)
        .where(
            records.c.dataset_id == bindparam("id"),
            records.c.sync_count > bindparam("after"),
            records.c.sync_count <= bindparam("upto"),
            tuple_(records.c.sync_count, records.c.key)
            > tuple_(bindparam("cursor_count"), bindparam("cursor_key")),
        )
        .order_by(records.c.sync_count, records.c.key)
        .limit(bindparam("limit"))
    )
)
_DELETION = dataset_deletions.alias("deletion")
_MERGED = datasets.alias("merged")
DATASET_STATE = Q(
    lambda d: (
        select(
            identity_pools.c.account_id,
            *DATASET_COLUMNS,
            select(_DELETION.c.deleted_sync_count)
            .where(
                _DELETION.c.identity_pool_id == identity_pools.c.identity_pool_id,
                _DELETION.c.identity_id == bindparam("identity"),
                _DELETION.c.name == bindparam("name"),
            )
            .scalar_subquery(),
            exists()
            .where(
                _MERGED.c.identity_pool_id == identity_pools.c.identity_pool_id,
                _MERGED.c.identity_id == bindparam("identity"),
                _MERGED.c.merged_into == bindparam("name"),
            ),
        )
        .select_from(
            identity_pools.outerjoin(
                datasets,
                and_(
                    datasets.c.identity_pool_id == identity_pools.c.identity_pool_id,
                    datasets.c.identity_id == bindparam("identity"),
                    datasets.c.name == bindparam("name"),
                ),
            )
        )
        .where(identity_pools.c.identity_pool_id == bindparam("pool"))
    )
)
MERGED_NAMES = Q(
    lambda d: (
        _dataset_where(select(datasets.c.name))
        .where(datasets.c.merged_into == bindparam("name"))
        .order_by(datasets.c.name)
    )
)
KEY_CHUNK = 100


@cache
def _records_by_keys(n: int) -> Prepared:
    """SELECT of the records among n keys (one compiled statement per n)."""
    return Q(
        lambda d: select(*RECORD_COLUMNS).where(
            records.c.dataset_id == bindparam("id"),
            records.c.key.in_([bindparam(f"k{i}") for i in range(n)]),
        )
    )


class SyncQueries(Queries):
    """Accounts, keys, pools, datasets and records: the sync hot path."""

    # --- identity pools ---------------------------------------------------------

    def create_pool(self, pool_id: str, account_id: str, name: str, now: float) -> None:
        INSERT_POOL.run(
            self,
            identity_pool_id=pool_id,
            account_id=account_id,
            name=name,
            created_at=now,
            events="{}",
            sync_sessions_count=0,
        )

    def get_pool(self, pool_id: str) -> IdentityPool | None:
        row = GET_POOL.first(self, pool=pool_id)
        return None if row is None else _pool(row)

    def list_pools(self, account_id: str, after: str | None, limit: int) -> list[IdentityPool]:
        rows = LIST_POOLS.rows(self, account=account_id, after=after or "", limit=limit)
        return [_pool(row) for row in rows]

    def update_pool(self, pool_id: str, **values: Any) -> None:
        """Sets events (dict), push_sync and cognito_streams (dict or None)."""
        encoded = {k: _json(v) for k, v in values.items()}
        self.execute(
            update(identity_pools)
            .where(identity_pools.c.identity_pool_id == pool_id)
            .values(**encoded)
        )

    def add_sync_sessions(self, counts: dict[str, int]) -> None:
        for pool_id, n in counts.items():
            ADD_SESSIONS.run(self, pool=pool_id, n=n)

    def pool_storage(self, pool_id: str) -> tuple[int, float | None]:
        """(DataStorage, LastModifiedDate) summed over the pool's datasets."""
        row = POOL_STORAGE.first(self, pool=pool_id)
        assert row is not None
        return int(row[0]), row[1]

    # --- datasets ---------------------------------------------------------------

    def notify(self, channel: str, payload: str) -> None:
        """PostgreSQL: a NOTIFY on ``channel``, sent to listeners when this commits."""
        self.cursor.execute("SELECT pg_notify(%s, %s)", (channel, payload))

    def lock_identity(self, pool_id: str, identity_id: str) -> None:
        """Serializes dataset creation per identity (the per-identity limit needs it)."""
        if self.dialect == "postgresql":
            key = zlib.crc32(f"{pool_id}/{identity_id}".encode())
            self.cursor.execute(f"SELECT pg_advisory_xact_lock({int(key)})")
        # SQLite: the write transaction already holds the database lock.

    def get_dataset(
        self, pool_id: str, identity_id: str, name: str, *, for_update: bool = False
    ) -> Dataset | None:
        statement = GET_DATASET_FOR_UPDATE if for_update else GET_DATASET
        row = statement.first(self, pool=pool_id, identity=identity_id, name=name)
        return None if row is None else _dataset(row)

    def pool_and_dataset_for_update(
        self, pool_id: str, identity_id: str, name: str
    ) -> tuple[IdentityPool, Dataset] | None:
        """An existing dataset, locked for this transaction, with its pool, in one
        statement (the common case of a write); None if the dataset does not exist."""
        row = POOL_AND_DATASET_FOR_UPDATE.first(self, pool=pool_id, identity=identity_id, name=name)
        if row is None:
            return None
        split = len(POOL_COLUMNS)
        return _pool(row[:split]), _dataset(row[split:])

    def count_datasets(self, pool_id: str, identity_id: str) -> int:
        return int(COUNT_DATASETS.scalar(self, pool=pool_id, identity=identity_id))

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
        dataset_id = INSERT_DATASET.scalar(self, **values)
        return Dataset(dataset_id=dataset_id, **values)

    def save_dataset(self, dataset: Dataset) -> None:
        SAVE_DATASET.run(
            self,
            id=dataset.dataset_id,
            sync_count=dataset.sync_count,
            last_modified_date=dataset.last_modified_date,
            last_modified_by=dataset.last_modified_by,
            data_storage=dataset.data_storage,
            num_records=dataset.num_records,
        )

    def list_datasets(
        self, pool_id: str, identity_id: str, after: str | None, limit: int
    ) -> list[Dataset]:
        rows = LIST_DATASETS.rows(
            self, pool=pool_id, identity=identity_id, after=after or "", limit=limit
        )
        return [_dataset(row) for row in rows]

    def identity_storage(self, pool_id: str, identity_id: str) -> tuple[int, int, float | None]:
        """(DatasetCount, DataStorage, LastModifiedDate) of one identity."""
        row = IDENTITY_STORAGE.first(self, pool=pool_id, identity=identity_id)
        assert row is not None
        return int(row[0]), int(row[1]), row[2]

    def delete_dataset(self, dataset: Dataset, now: float) -> None:
        DELETE_RECORDS.run(self, id=dataset.dataset_id)
        DELETE_DATASET.run(self, id=dataset.dataset_id)
        UPSERT_DELETION.run(
            self,
            identity_pool_id=dataset.identity_pool_id,
            identity_id=dataset.identity_id,
            name=dataset.name,
            deleted_sync_count=dataset.sync_count,
            deleted_at=now,
        )

    def deleted_sync_count(self, pool_id: str, identity_id: str, name: str) -> int | None:
        """The sync count a dataset of this name had when it was last deleted."""
        return DELETED_SYNC_COUNT.scalar(self, pool=pool_id, identity=identity_id, name=name)

    def pool_datasets(self, pool_id: str, after_id: int, limit: int) -> list[Dataset]:
        """The pool's datasets in creation order, after a dataset id (bulk publish)."""
        rows = self.execute(
            select(*DATASET_COLUMNS)
            .where(datasets.c.identity_pool_id == pool_id, datasets.c.dataset_id > after_id)
            .order_by(datasets.c.dataset_id)
            .limit(limit)
        )
        return [_dataset(tuple(row)) for row in rows]

    def live_records(self, dataset_id: int) -> list[Record]:
        rows = self.execute(
            select(*RECORD_COLUMNS)
            .where(records.c.dataset_id == dataset_id, records.c.value.is_not(None))
            .order_by(records.c.key)
        )
        return [_record(tuple(row)) for row in rows]

    def dataset_state(self, pool_id: str, identity_id: str, name: str) -> DatasetState | None:
        """The pool's owner and what ListRecords needs to know of one dataset, in one
        statement; None if the pool does not exist."""
        row = DATASET_STATE.first(self, pool=pool_id, identity=identity_id, name=name)
        if row is None:
            return None
        dataset = None if row[1] is None else _dataset(row[1 : 1 + len(DATASET_COLUMNS)])
        deleted, merged = row[1 + len(DATASET_COLUMNS) :]
        return DatasetState(row[0], dataset, deleted, bool(merged))

    def merged_names(self, pool_id: str, identity_id: str, name: str) -> list[str]:
        """Datasets merged into this one from another identity, not yet cleaned up."""
        rows = MERGED_NAMES.rows(self, pool=pool_id, identity=identity_id, name=name)
        return [row[0] for row in rows]

    def has_deletions(self, pool_id: str, identity_id: str) -> bool:
        return HAS_DELETIONS.first(self, pool=pool_id, identity=identity_id) is not None

    # --- records ----------------------------------------------------------------

    def get_records(self, dataset_id: int, keys: Iterable[str]) -> dict[str, Record]:
        found: dict[str, Record] = {}
        key_list = list(keys)
        for start in range(0, len(key_list), KEY_CHUNK):
            chunk = key_list[start : start + KEY_CHUNK]
            params = {f"k{i}": key for i, key in enumerate(chunk)}
            for row in _records_by_keys(len(chunk)).rows(self, id=dataset_id, **params):
                found[row[0]] = _record(row)
        return found

    def put_records(self, dataset_id: int, written: list[Record]) -> None:
        """Inserts or replaces the records, each with its document already rendered."""
        if not written:
            return
        UPSERT_RECORD.run_many(
            self,
            [
                {
                    "dataset_id": dataset_id,
                    "key": r.key,
                    "value": r.value,
                    "sync_count": r.sync_count,
                    "last_modified_date": r.last_modified_date,
                    "last_modified_by": r.last_modified_by,
                    "device_last_modified_date": r.device_last_modified_date,
                    "document": r.document,
                }
                for r in written
            ],
        )

    def record_documents(
        self,
        dataset_id: int,
        after_sync_count: int,
        up_to_sync_count: int,
        cursor: tuple[int, str] | None,
        limit: int,
    ) -> list[bytes]:
        """Documents of the records with after < SyncCount <= up_to, in (SyncCount, Key)
        order, after ``cursor``."""
        count, key = cursor if cursor is not None else (after_sync_count, "")
        rows = LIST_DOCUMENTS.rows(
            self,
            id=dataset_id,
            after=after_sync_count,
            upto=up_to_sync_count,
            cursor_count=count,
            cursor_key=key,
            limit=limit,
        )
        return [row[0] for row in rows]
