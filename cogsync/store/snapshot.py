"""One consistent, streamed read of the whole database (or one pool): ``cogsync export``.

A snapshot is one read transaction on a connection of its own: REPEATABLE READ, READ
ONLY on PostgreSQL (rows come through a server-side cursor), a BEGIN'd read on SQLite
(its write-ahead log keeps the snapshot while writers go on). Rows are fetched in batches
and handed on one at a time, so memory does not grow with the database. Text is ordered
byte by byte (COLLATE "C" on PostgreSQL, SQLite's BINARY), so both engines list the same
rows in the same order.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Column, ColumnElement, Select, String, Table, and_, select

from cogsync.store.database import Store
from cogsync.store.schema import (
    access_keys,
    accounts,
    dataset_deletions,
    datasets,
    devices,
    identities,
    identity_logins,
    identity_pool_roles,
    identity_pools,
    inaccessible_identities,
    principal_tag_maps,
    records,
    server_keys,
    subscriptions,
)

FETCH = 2000
_cursor_names = itertools.count(1)

# Every table an export carries, with the columns that order its rows.
ORDER: dict[str, tuple[str, ...]] = {
    "accounts": ("account_id",),
    "access_keys": ("access_key_id",),
    "server_keys": ("name",),
    "identity_pools": ("identity_pool_id",),
    "identity_pool_roles": ("identity_pool_id",),
    "principal_tag_maps": ("identity_pool_id", "provider"),
    "identities": ("identity_pool_id", "identity_id"),
    "identity_logins": ("identity_pool_id", "provider", "subject"),
    "inaccessible_identities": ("identity_pool_id", "identity_id"),
    "dataset_deletions": ("identity_pool_id", "identity_id", "name"),
    "devices": ("identity_pool_id", "device_id"),
    "subscriptions": ("identity_pool_id", "identity_id", "dataset_name", "device_id"),
}
TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        accounts,
        access_keys,
        server_keys,
        identity_pools,
        identity_pool_roles,
        principal_tag_maps,
        identities,
        identity_logins,
        inaccessible_identities,
        dataset_deletions,
        devices,
        subscriptions,
    )
}
DATASET_FIELDS = tuple(c.name for c in datasets.columns if c.name != "dataset_id")
RECORD_FIELDS = tuple(c.name for c in records.columns if c.name != "dataset_id")


class Snapshot:
    """Rows of one read transaction, as dictionaries of column name to value."""

    def __init__(self, driver: Any, store: Store):
        self._driver = driver
        self._dialect = store.engine.dialect
        self._postgres = store.dialect == "postgresql"

    def _ordered(self, column: Column[Any]) -> ColumnElement[Any]:
        if self._postgres and isinstance(column.type, String):
            return column.collate("C")
        return column

    def _stream(self, query: Select[Any]) -> Iterator[tuple[Any, ...]]:
        compiled = query.compile(dialect=self._dialect, compile_kwargs={"render_postcompile": True})
        params: Any = compiled.params
        if compiled.positional:
            params = tuple(params[name] for name in compiled.positiontup or ())
        if self._postgres:
            cursor = self._driver.cursor(name=f"cogsync_export_{next(_cursor_names)}")
            cursor.itersize = FETCH
        else:
            cursor = self._driver.cursor()
        try:
            cursor.execute(str(compiled), params)
            while rows := cursor.fetchmany(FETCH):
                yield from rows
        finally:
            cursor.close()

    def rows(self, table_name: str, pool_id: str | None = None) -> Iterator[dict[str, Any]]:
        """The rows of a table (of one pool, for the tables that name one)."""
        table = TABLES[table_name]
        query = select(*table.columns).order_by(
            *(self._ordered(table.c[name]) for name in ORDER[table_name])
        )
        if pool_id is not None and "identity_pool_id" in table.c:
            query = query.where(table.c.identity_pool_id == pool_id)
        names = [c.name for c in table.columns]
        for row in self._stream(query):
            yield dict(zip(names, row, strict=True))

    def pool_account(self, pool_id: str) -> str | None:
        for row in self._stream(
            select(identity_pools.c.account_id).where(identity_pools.c.identity_pool_id == pool_id)
        ):
            return str(row[0])
        return None

    def account_rows(self, table_name: str, account_id: str) -> Iterator[dict[str, Any]]:
        """Rows of ``accounts`` or ``access_keys`` of one account."""
        table = TABLES[table_name]
        query = (
            select(*table.columns)
            .where(table.c.account_id == account_id)
            .order_by(*(self._ordered(table.c[name]) for name in ORDER[table_name]))
        )
        names = [c.name for c in table.columns]
        for row in self._stream(query):
            yield dict(zip(names, row, strict=True))

    def datasets_and_records(
        self, pool_id: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """("dataset", row) followed by its ("record", row)s, dataset by dataset, in one
        statement (a dataset without records comes alone)."""
        dataset_columns = [datasets.c[name] for name in DATASET_FIELDS]
        record_columns = [records.c[name] for name in RECORD_FIELDS]
        query = (
            select(datasets.c.dataset_id, *dataset_columns, *record_columns)
            .select_from(
                datasets.outerjoin(records, and_(records.c.dataset_id == datasets.c.dataset_id))
            )
            .order_by(
                self._ordered(datasets.c.identity_pool_id),
                self._ordered(datasets.c.identity_id),
                self._ordered(datasets.c.name),
                self._ordered(records.c.key),
            )
        )
        if pool_id is not None:
            query = query.where(datasets.c.identity_pool_id == pool_id)
        split = 1 + len(DATASET_FIELDS)
        current = None
        for row in self._stream(query):
            if row[0] != current:
                current = row[0]
                yield "dataset", dict(zip(DATASET_FIELDS, row[1:split], strict=True))
            if row[split] is not None:  # the key: None when the dataset has no records
                yield "record", dict(zip(RECORD_FIELDS, row[split:], strict=True))


@contextmanager
def snapshot(store: Store) -> Iterator[Snapshot]:
    """A read transaction of its own, ended (rolled back) when the block ends."""
    wrapper = store.engine.raw_connection()
    driver = wrapper.dbapi_connection
    try:
        if store.dialect == "postgresql":
            import psycopg

            driver.autocommit = False
            driver.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            driver.read_only = True
        else:
            driver.execute("BEGIN")
            driver.execute("SELECT count(*) FROM accounts").fetchall()  # the snapshot starts
        yield Snapshot(driver, store)
    finally:
        try:
            driver.rollback() if store.dialect == "postgresql" else driver.execute("ROLLBACK")
        finally:
            if store.dialect == "postgresql":
                driver.read_only = False
                driver.isolation_level = None
            wrapper.close()
