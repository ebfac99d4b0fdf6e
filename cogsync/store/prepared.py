"""Statements written with SQLAlchemy Core, run on the database driver's own connection.

SQLAlchemy Core writes the SQL for each engine (SQLite's ``?`` or psycopg's
``%(name)s``, ``ON CONFLICT`` spelling, ``RETURNING``). Running it through SQLAlchemy's
``Connection``, though, costs more than the query itself on the hot path (pool checkout,
transaction bookkeeping, result processing: about 60 us a transaction). So a
transaction here is a driver connection plus the dialect that compiles for it:

- a :class:`Prepared` statement (the hot path) is compiled the first time a dialect
  asks for it and afterwards costs one dictionary lookup;
- :meth:`Queries.execute` compiles a one-off statement on each call (rare paths).

Values go to the driver as they are: the schema uses only types both drivers map
natively (text, integers, floats, booleans, bytes). On PostgreSQL the driver's own
adapters encode text so that U+0000 round-trips (text_codec.py), under every statement.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from operator import itemgetter
from typing import Any, NamedTuple, Protocol

from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ClauseElement


class DriverCursor(Protocol):
    description: Any
    rowcount: int

    def fetchall(self) -> list[Any]: ...


class DriverConnection(Protocol):
    """What sqlite3 and psycopg connections both offer."""

    def execute(self, sql: str, params: Any = ...) -> DriverCursor: ...

    def cursor(self) -> Any: ...


class Queries:
    """Base of the query mixins: one open transaction on one driver connection."""

    def __init__(self, driver: DriverConnection, dialect: Dialect):
        self.driver = driver
        # One cursor for all the transaction's statements (a new one per statement costs
        # psycopg a fifth of its time per statement).
        self.cursor: Any = driver.cursor()
        self.sql_dialect = dialect
        self.dialect = dialect.name

    def execute(self, statement: ClauseElement) -> Rows:
        """Compiles a one-off statement (its values inline as parameters) and runs it."""
        compiled = statement.compile(
            dialect=self.sql_dialect, compile_kwargs={"render_postcompile": True}
        )
        params: Any = compiled.params
        if compiled.positional:
            params = tuple(params[name] for name in compiled.positiontup or ())
        self.cursor.execute(str(compiled), params)
        return Rows.of(self.cursor)


@cache
def _row_type(names: tuple[str, ...]) -> Any:
    return namedtuple("Row", names, rename=True)  # type: ignore[misc]


class Rows:
    """The rows of one statement, with column names as attributes; or its row count."""

    def __init__(self, rows: list[Any], rowcount: int):
        self._rows = rows
        self.rowcount = rowcount

    @staticmethod
    def of(cursor: DriverCursor) -> Rows:
        if not cursor.description:
            return Rows([], cursor.rowcount)
        row = _row_type(tuple(column[0] for column in cursor.description))
        return Rows([row._make(values) for values in cursor.fetchall()], cursor.rowcount)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar(self) -> Any:
        """The first column of the first row, or None."""
        return self._rows[0][0] if self._rows else None

    def scalars(self) -> list[Any]:
        return [row[0] for row in self._rows]


class _Compiled(NamedTuple):
    sql: str
    # Positional drivers (SQLite): picks the values out of a dict in the statement's order.
    positional: Callable[[dict[str, Any]], tuple[Any, ...]] | None
    defaults: dict[str, Any]


def _picker(names: tuple[str, ...]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A C-level getter of ``names`` from a dict, always answering a tuple."""
    if not names:
        return lambda params: ()
    if len(names) == 1:
        name = names[0]
        return lambda params: (params[name],)
    return itemgetter(*names)


class Prepared:
    def __init__(self, build: Callable[[str], ClauseElement]):
        """``build(dialect_name)`` returns the statement, with named ``bindparam``s."""
        self._build = build
        self._compiled: dict[str, _Compiled] = {}

    def _sql(self, dialect: Dialect) -> _Compiled:
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self._build(dialect.name).compile(dialect=dialect)
            positional = None
            if compiled.positional:
                positional = _picker(tuple(compiled.positiontup or ()))
            # Literals in the statement (LIMIT 1, a boolean) became anonymous parameters.
            defaults = {k: v for k, v in compiled.params.items() if v is not None}
            found = _Compiled(str(compiled), positional, defaults)
            self._compiled[dialect.name] = found
        return found

    @staticmethod
    def _params(compiled: _Compiled, params: dict[str, Any]) -> Any:
        if compiled.defaults:
            params = {**compiled.defaults, **params}
        if compiled.positional is None:
            return params
        return compiled.positional(params)

    def rows(self, tx: Queries, **params: Any) -> list[tuple[Any, ...]]:
        compiled = self._sql(tx.sql_dialect)
        cursor = tx.cursor
        cursor.execute(compiled.sql, self._params(compiled, params))
        return cursor.fetchall() if cursor.description else []

    def first(self, tx: Queries, **params: Any) -> tuple[Any, ...] | None:
        found = self.rows(tx, **params)
        return found[0] if found else None

    def scalar(self, tx: Queries, **params: Any) -> Any:
        row = self.first(tx, **params)
        return None if row is None else row[0]

    def run(self, tx: Queries, **params: Any) -> int:
        """Runs the statement; returns the number of rows it changed."""
        compiled = self._sql(tx.sql_dialect)
        tx.cursor.execute(compiled.sql, self._params(compiled, params))
        return int(tx.cursor.rowcount)

    def run_many(self, tx: Queries, batch: Sequence[dict[str, Any]]) -> None:
        compiled = self._sql(tx.sql_dialect)
        tx.cursor.executemany(compiled.sql, [self._params(compiled, p) for p in batch])


def dialect_insert(dialect: str, table: Any) -> Any:
    """The dialect's INSERT (with ON CONFLICT). Imported here: loading SQLAlchemy's
    PostgreSQL dialect costs a SQLite server a twentieth of a second at start."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)
