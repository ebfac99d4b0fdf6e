"""Persistence: one transaction per operation, behind a small typed API.

``Store.write()`` and ``Store.read()`` hand out a :class:`Tx`; the service runs its rules
inside it and never sees SQL or the engine. On SQLite, writers of this process queue on
a lock and take the database lock up front (``BEGIN IMMEDIATE``), so they neither spin
in SQLite's busy handler nor fail to upgrade a read lock. On PostgreSQL, row locks
(``FOR UPDATE``) and transaction-scoped advisory locks serialize what must be serial.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from time import perf_counter
from typing import Any

from sqlalchemy import Engine

from cogsync.metrics import DB_BUSY, READ_SECONDS, TALLY, WRITE_SECONDS
from cogsync.store.account_queries import AccountQueries
from cogsync.store.connections import ThreadConnections
from cogsync.store.group_commit import GroupCommit
from cogsync.store.identity_queries import IdentityQueries
from cogsync.store.outbox import OutboxQueries
from cogsync.store.pool_access_queries import PoolAccessQueries
from cogsync.store.prepared import DriverConnection
from cogsync.store.sync_queries import SyncQueries


class Tx(SyncQueries, IdentityQueries, PoolAccessQueries, OutboxQueries, AccountQueries):
    """One open transaction. Every method is a single statement or a small batch."""


# A log that long is restarted even if writers must wait a moment (see Store.checkpoint):
# 65,536 frames of 4 KiB pages, 256 MiB. Under a steady full load of writes that is about
# every ten seconds on the machine of docs/performance.md, and each restart shows in the
# latency tail; under lighter load PASSIVE checkpoints finish on their own and it never
# comes to this.
RESTART_FRAMES = 65_536
CATCH_UP_PASSES = 4
CAUGHT_UP_FRAMES = 64


class Store:
    """Transactions over the database: ``write()`` and ``read()`` hand out a :class:`Tx`."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect.name
        self._sql_dialect = engine.dialect
        self._connections = ThreadConnections(engine)
        self._sqlite = self.dialect == "sqlite"
        self._write_lock = threading.Lock()
        self._group: GroupCommit | None = None
        self.restart_frames = RESTART_FRAMES

    def group_commits(self, loop: asyncio.AbstractEventLoop) -> None:
        """SQLite: from now on, writes made on this loop's thread are committed together,
        once per turn of the loop (see group_commit.py). Call from the loop's thread."""
        if self._sqlite:
            self._group = GroupCommit(self._connections, self._write_lock, loop)

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A read-write transaction, committed when the block ends without an error; in a
        group commit, a savepoint of the turn's transaction (see :meth:`durable`)."""
        group = self._group
        if group is not None and group.on_loop_thread():
            with group.savepoint() as driver:
                yield Tx(driver, self._sql_dialect)
            return
        lock: AbstractContextManager[Any] = self._write_lock if self._sqlite else nullcontext()
        with lock:
            yield from self._transaction("BEGIN IMMEDIATE" if self._sqlite else "BEGIN",
                                         WRITE_SECONDS)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read-only transaction and one consistent snapshot: a deferred BEGIN on SQLite
        (its write-ahead log keeps the snapshot), REPEATABLE READ, READ ONLY on PostgreSQL,
        so reads of several statements (a dataset, then its records) agree."""
        group = self._group
        driver = group.own_writes() if group is not None else None
        if driver is not None:
            yield Tx(driver, self._sql_dialect)  # inside the turn's transaction
            return
        yield from self._transaction(
            "BEGIN" if self._sqlite else "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
            READ_SECONDS,
        )

    @contextmanager
    def read_apart(self) -> Iterator[Tx]:
        """A read on a new connection of its own, one snapshot like :meth:`read`: usable
        while this thread is inside a transaction of its own connection. For rare reads
        only (it connects each time)."""
        driver = self._connections.dedicated()
        try:
            driver.execute(
                "BEGIN" if self._sqlite else "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY"
            )
            yield Tx(driver, self._sql_dialect)
        finally:
            self._connections.discard(driver)  # closing it ends its transaction

    async def durable(self) -> None:
        """Returns once what this request wrote is committed (at once without group
        commit); raises the commit's error if it failed."""
        if self._group is not None:
            await self._group.durable()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Runs ``callback`` once what the caller just wrote is committed."""
        if self._group is None or not self._group.after_commit(callback):
            callback()

    def _begun(self, begin: str) -> DriverConnection:
        """This thread's connection with ``begin`` run on it. A connection the database
        dropped while it sat idle (a restart, an outage since) fails at once: nothing
        has happened yet, so it is replaced and the BEGIN tried once more."""
        driver = self._connections.get()
        try:
            driver.execute(begin)
        except Exception:
            if not getattr(driver, "broken", False):
                raise
            self._connections.drop()
            driver = self._connections.get()
            driver.execute(begin)
        return driver

    def _transaction(self, begin: str | None, seconds: Any) -> Iterator[Tx]:
        started = perf_counter()
        driver = self._connections.get() if begin is None else self._begun(begin)
        TALLY.count(DB_BUSY)
        try:
            yield Tx(driver, self._sql_dialect)
            if begin is not None:
                driver.execute("COMMIT")
        except BaseException:
            if begin is not None:
                try:
                    driver.execute("ROLLBACK")
                except Exception:
                    # No transaction to roll back, or the connection is gone: start over.
                    self._connections.drop()
            elif getattr(driver, "broken", False):
                self._connections.drop()
            raise
        finally:
            TALLY.count(DB_BUSY, -1)
            TALLY.observe(seconds, perf_counter() - started)

    def checkpoint(self) -> int:
        """Copies the SQLite write-ahead log into the database file (a no-op on
        PostgreSQL); returns the number of frames the log held.

        A PASSIVE checkpoint waits for no one and copies what the log held when it began;
        but the frames written while it ran are left, and SQLite starts the log over from
        its beginning only after a checkpoint that left nothing. Under a steady stream of
        writes that never happens and the log grows without end. So once the log holds
        more than ``restart_frames``, further passes catch up with what was written
        during the last (each shorter than the one before), and a last one runs with this
        process's writers held back: it leaves nothing, and the next write starts the log
        over. (A RESTART checkpoint would also wait for readers to leave the log, through
        SQLite's busy handler, while the writers are held: tens of milliseconds.)"""
        if not self._sqlite:
            return 0
        driver = self._connections.get()
        log = self._passive_checkpoint(driver)
        if log <= self.restart_frames:
            return log
        for _ in range(CATCH_UP_PASSES):
            before, log = log, self._passive_checkpoint(driver)
            if log - before <= CAUGHT_UP_FRAMES:
                break
        with self._write_lock:
            return self._passive_checkpoint(driver)

    @staticmethod
    def _passive_checkpoint(driver: Any) -> int:
        """Frames in the log, all of which this checkpoint copied (unless busy)."""
        busy, log_frames, _ = driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()[0]
        return int(log_frames)

    def schema_revision(self) -> str | None:
        """The migration the database is at (one fresh read: also proves it answers)."""
        with self.read() as tx:
            tx.cursor.execute("SELECT version_num FROM alembic_version")
            row = tx.cursor.fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        self._connections.close_all()
        self.engine.dispose()
