"""Statements compiled once per dialect, then run on the driver's cursor.

SQLAlchemy Core writes the SQL for each engine (SQLite's ``?`` or psycopg's
``%(name)s``, ``ON CONFLICT`` spelling, ``RETURNING``); building and caching an
expression on every call, though, costs more than the query itself on the hot path.
A :class:`Prepared` statement is compiled the first time a dialect asks for it and
afterwards costs one dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement


class Queries:
    """Base of the query mixins: one open transaction on one connection."""

    def __init__(self, conn: Connection):
        self.conn = conn
        self.dialect = conn.dialect.name


class _Compiled(NamedTuple):
    sql: str
    order: tuple[str, ...] | None  # parameter order for positional drivers
    defaults: dict[str, Any]


class Prepared:
    def __init__(self, build: Callable[[str], ClauseElement]):
        """``build(dialect_name)`` returns the statement, with named ``bindparam``s."""
        self._build = build
        self._compiled: dict[str, _Compiled] = {}

    def _sql(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self._build(dialect.name).compile(dialect=dialect)
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            # Literals in the statement (LIMIT 1, a boolean) became anonymous parameters.
            defaults = {k: v for k, v in compiled.params.items() if v is not None}
            found = _Compiled(str(compiled), order, defaults)
            self._compiled[dialect.name] = found
        return found

    @staticmethod
    def _params(compiled: _Compiled, params: dict[str, Any]) -> Any:
        if compiled.defaults:
            params = {**compiled.defaults, **params}
        if compiled.order is None:
            return params
        return tuple(params[name] for name in compiled.order)

    def rows(self, conn: Connection, **params: Any) -> list[tuple[Any, ...]]:
        compiled = self._sql(conn.dialect)
        cursor = conn.connection.cursor()
        try:
            cursor.execute(compiled.sql, self._params(compiled, params))
            return cursor.fetchall() if cursor.description else []
        finally:
            cursor.close()

    def first(self, conn: Connection, **params: Any) -> tuple[Any, ...] | None:
        found = self.rows(conn, **params)
        return found[0] if found else None

    def scalar(self, conn: Connection, **params: Any) -> Any:
        row = self.first(conn, **params)
        return None if row is None else row[0]

    def run(self, conn: Connection, **params: Any) -> None:
        self.rows(conn, **params)

    def run_many(self, conn: Connection, batch: Sequence[dict[str, Any]]) -> None:
        compiled = self._sql(conn.dialect)
        cursor = conn.connection.cursor()
        try:
            cursor.executemany(compiled.sql, [self._params(compiled, p) for p in batch])
        finally:
            cursor.close()
