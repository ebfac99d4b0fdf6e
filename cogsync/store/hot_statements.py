"""The four hot Cognito Sync calls, each one statement (so one round trip and, run with
``Store.statement()``, one snapshot without BEGIN or COMMIT on PostgreSQL).

- DescribeDataset and ListDatasets: the pool's owner and the dataset(s) in one outer join,
  the same statement on both engines.
- ListRecords: on PostgreSQL the pool's owner, the dataset, its deletion mark, the names
  merged into it and the page of documents (a ``bytea[]``) in one statement; on SQLite the
  same answers from three statements of one read transaction.
- UpdateRecords: on PostgreSQL the function ``cogsync_update_records``
  (``pg_functions.py``); SQLite keeps the step-by-step transaction of the service.

On PostgreSQL, parameters and results travel in binary (psycopg's ``%b``): no quoting of
arrays, no hex-text decoding of documents. psycopg prepares each statement on a
connection at its fifth use (``prepare_threshold``; off behind a transaction pooler, see
docs/scaling.md).
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from cogsync.domain import Dataset
from cogsync.errors import LimitExceeded, ResourceConflict, ResourceNotFound
from cogsync.store import text_codec
from cogsync.store.prepared import Prepared, Queries
from cogsync.store.schema import datasets, identity_pools
from cogsync.store.sync_queries import DATASET_COLUMNS, DatasetState, identity_lock_key

_REFUSALS = {"CS404": ResourceNotFound, "CS409": ResourceConflict, "CS413": LimitExceeded}
LIVE_PREFIX = "cogsync_live_"


def live_channel(pool_id: str, identity_id: str) -> str:
    """The NOTIFY channel of one identity's changes (identifiers are at most 63 bytes, so
    a digest); a replica LISTENs to it only while a live client of it is connected."""
    digest = hashlib.blake2b(f"{pool_id}/{identity_id}".encode(), digest_size=16).hexdigest()
    return LIVE_PREFIX + digest


def _owner_and_datasets(page: bool) -> Prepared:
    def build(dialect: str) -> Any:
        from sqlalchemy import and_, bindparam, select

        on = [
            datasets.c.identity_pool_id == identity_pools.c.identity_pool_id,
            datasets.c.identity_id == bindparam("identity"),
        ]
        on.append(datasets.c.name > bindparam("after") if page else datasets.c.name
                  == bindparam("name"))
        query = (
            select(identity_pools.c.account_id, *DATASET_COLUMNS)
            .select_from(identity_pools.outerjoin(datasets, and_(*on)))
            .where(identity_pools.c.identity_pool_id == bindparam("pool"))
        )
        if page:
            query = query.order_by(datasets.c.name).limit(bindparam("limit"))
        return query

    return Prepared(build, binary=True)


OWNER_AND_DATASET = _owner_and_datasets(page=False)
OWNER_AND_DATASETS = _owner_and_datasets(page=True)

# ListRecords on PostgreSQL, in one statement.
LISTING = """
SELECT p.account_id,
       d.dataset_id, d.identity_pool_id, d.identity_id, d.name, d.sync_count,
       d.creation_date, d.last_modified_date, d.last_modified_by, d.data_storage,
       d.num_records,
       (SELECT x.deleted_sync_count FROM dataset_deletions x
         WHERE x.identity_pool_id = p.identity_pool_id AND x.identity_id = %(identity)b
           AND x.name = %(name)b),
       ARRAY(SELECT m.name FROM datasets m
              WHERE m.identity_pool_id = p.identity_pool_id AND m.identity_id = %(identity)b
                AND m.merged_into = %(name)b
              ORDER BY m.name),
       ARRAY(SELECT r.document FROM records r
              WHERE r.dataset_id = d.dataset_id AND r.sync_count > %(after)b::int8
                AND r.sync_count <= coalesce(%(upto)b::int8, d.sync_count)
                AND (r.sync_count, r.key) > (%(cursor_count)b::int8, %(cursor_key)b::text)
              ORDER BY r.sync_count, r.key
              LIMIT %(limit)b::int8)
  FROM identity_pools p
  LEFT JOIN datasets d ON d.identity_pool_id = p.identity_pool_id
       AND d.identity_id = %(identity)b AND d.name = %(name)b
 WHERE p.identity_pool_id = %(pool)b
"""

UPDATE_RECORDS = """
SELECT cogsync_update_records(
    %(pool)b::text, %(identity)b::text, %(name)b::text, %(account)b::text,
    %(now)b::float8, %(by)b::text, %(device)b::text, %(lock)b::int8,
    %(keys)b::text[], %(values)b::text[], %(counts)b::int8[], %(dates)b::float8[],
    %(heads)b::bytea[], %(tails)b::bytea[], %(sizes)b::int8[],
    %(max_datasets)b::int8, %(max_bytes)b::int8, %(max_records)b::int8,
    %(channel)b::text)
"""


class Listing(NamedTuple):
    """What ListRecords reads of one dataset; ``state`` None: the pool does not exist."""

    state: DatasetState | None
    merged: list[str]
    documents: list[bytes]


class PatchBatch(NamedTuple):
    """UpdateRecords' patches as columns, each record's document rendered around its sync
    count (``head + count + tail``), which only the database knows."""

    keys: list[str]
    values: list[str | None]
    counts: list[int]
    dates: list[float | None]
    heads: list[bytes]
    tails: list[bytes]
    sizes: list[int]  # bytes each record will count toward DataStorage


def _dataset_or_none(row: Any) -> Dataset | None:
    return None if row[0] is None else Dataset(*row)


class HotQueries(Queries):
    def owner_and_dataset(
        self, pool_id: str, identity_id: str, name: str
    ) -> tuple[str | None, Dataset | None]:
        """(the pool's owner, the dataset); (None, None) if the pool does not exist."""
        row = OWNER_AND_DATASET.first(self, pool=pool_id, identity=identity_id, name=name)
        if row is None:
            return None, None
        return row[0], _dataset_or_none(row[1:])

    def owner_and_datasets(
        self, pool_id: str, identity_id: str, after: str | None, limit: int
    ) -> tuple[str | None, list[Dataset]]:
        """(the pool's owner, a page of the identity's datasets by name after ``after``)."""
        rows = OWNER_AND_DATASETS.rows(
            self, pool=pool_id, identity=identity_id, after=after or "", limit=limit
        )
        if not rows:
            return None, []
        found = [_dataset_or_none(row[1:]) for row in rows]
        return rows[0][0], [d for d in found if d is not None]

    def listing(
        self,
        pool_id: str,
        identity_id: str,
        name: str,
        after: int,
        up_to: int | None,
        cursor: tuple[int, str] | None,
        limit: int,
    ) -> Listing:
        """The dataset's state and its documents with after < SyncCount <= up_to (the
        dataset's count if None), in (SyncCount, Key) order after ``cursor``."""
        count, key = cursor if cursor is not None else (after, "")
        if self.dialect != "postgresql":
            return self._listing_in_steps(pool_id, identity_id, name, after, up_to, (count, key),
                                          limit)
        self.cursor.execute(
            LISTING,
            {
                "pool": pool_id,
                "identity": identity_id,
                "name": name,
                "after": after,
                "upto": up_to,
                "cursor_count": count,
                "cursor_key": key,
                "limit": limit,
            },
            binary=True,
        )
        row = self.cursor.fetchone()
        if row is None:
            return Listing(None, [], [])
        dataset = _dataset_or_none(row[1:11])
        state = DatasetState(row[0], dataset, row[11], bool(row[12]))
        return Listing(state, row[12], row[13] if dataset is not None else [])

    def _listing_in_steps(
        self,
        pool_id: str,
        identity_id: str,
        name: str,
        after: int,
        up_to: int | None,
        cursor: tuple[int, str],
        limit: int,
    ) -> Listing:
        state = self.dataset_state(pool_id, identity_id, name)  # type: ignore[attr-defined]
        if state is None:
            return Listing(None, [], [])
        merged = (
            self.merged_names(pool_id, identity_id, name)  # type: ignore[attr-defined]
            if state.has_merged
            else []
        )
        documents: list[bytes] = []
        if state.dataset is not None:
            upper = state.dataset.sync_count if up_to is None else up_to
            documents = self.record_documents(  # type: ignore[attr-defined]
                state.dataset.dataset_id, after, upper, cursor, limit
            )
        return Listing(state, merged, documents)

    def update_records_at_once(
        self,
        pool_id: str,
        identity_id: str,
        name: str,
        account_id: str,
        now: float,
        by: str,
        device_id: str | None,
        batch: PatchBatch,
        limits: tuple[int, int, int],
        announce: bool,
    ) -> int | None:
        """PostgreSQL: the whole UpdateRecords in one statement; the new sync count, or
        None when the change has outbox side effects (nothing done: run it in steps).
        Raises ResourceNotFound, ResourceConflict or LimitExceeded, having changed
        nothing."""
        max_datasets, max_bytes, max_records = limits
        try:
            self.cursor.execute(
                UPDATE_RECORDS,
                {
                    "pool": pool_id,
                    "identity": identity_id,
                    "name": name,
                    "account": account_id,
                    "now": now,
                    "by": by,
                    "device": device_id,
                    "lock": identity_lock_key(pool_id, identity_id),
                    "keys": batch.keys,
                    "values": batch.values,
                    "counts": batch.counts,
                    "dates": batch.dates,
                    "heads": batch.heads,
                    "tails": batch.tails,
                    "sizes": batch.sizes,
                    "max_datasets": max_datasets,
                    "max_bytes": max_bytes,
                    "max_records": max_records,
                    "channel": live_channel(pool_id, identity_id) if announce else None,
                },
                binary=True,
            )
        except Exception as exc:  # psycopg's (not imported here: SQLite starts without it)
            refusal = _REFUSALS.get(getattr(exc, "sqlstate", None) or "")
            if refusal is None:
                raise
            message = exc.diag.message_primary or str(exc)  # type: ignore[attr-defined]
            raise refusal(text_codec.decode(message)) from None  # it quotes stored text
        row = self.cursor.fetchone()
        count = None if row is None else row[0]
        return None if count is None or count < 0 else int(count)

