"""Group commit: the SQLite writes of one turn of the event loop share one transaction.

On SQLite a commit costs more than a small write itself (the changed pages go to the
write-ahead log, with its index and checksums). Writes that arrive together (many
clients, one event loop) can share that cost:

- the first write of a turn begins a transaction on a connection kept for this, and
  schedules its COMMIT for the end of the turn, after every request already waiting;
- each write runs in a SAVEPOINT of its own, so one that fails (a conflict, a limit) is
  rolled back alone and changes nothing;
- no write is acknowledged before the COMMIT: a request that wrote awaits
  :meth:`GroupCommit.durable` before it answers, and if the COMMIT fails, every request
  of the batch fails and nothing of the batch is applied;
- what the service does after a change (telling the dispatcher, the live channel) waits
  for the COMMIT too (:meth:`GroupCommit.after_commit`).

Reads go on in the thread's own connection and see committed data only, except that a
request reads its own writes through the batch.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from cogsync.metrics import GROUP_COMMIT_WRITES, GROUP_SECONDS, TALLY
from cogsync.store.connections import ThreadConnections
from cogsync.store.prepared import DriverConnection

log = logging.getLogger("cogsync")


class _Batch:
    __slots__ = ("after", "began", "broken", "done", "driver", "failure", "writes")

    def __init__(self, driver: DriverConnection):
        self.driver = driver
        self.after: list[Callable[[], None]] = []
        self.broken: BaseException | None = None
        self.done = False  # the COMMIT (or its failure) is over
        self.failure: Exception | None = None  # why the batch was not committed
        self.writes = 0
        self.began = time.perf_counter()


# The open batch this request (asyncio task) wrote in, if any.
_WROTE_IN: ContextVar[_Batch | None] = ContextVar("cogsync_wrote_in", default=None)


class GroupCommit:
    def __init__(
        self,
        connections: ThreadConnections,
        write_lock: threading.Lock,
        loop: asyncio.AbstractEventLoop,
    ):
        self._connections = connections
        self._driver = connections.dedicated()
        self._write_lock = write_lock
        self._loop = loop
        self._thread = threading.get_ident()
        self._batch: _Batch | None = None

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread

    @contextmanager
    def savepoint(self) -> Iterator[DriverConnection]:
        """One write, inside the turn's transaction (begun here if it is the first)."""
        batch = self._batch or self._begin()
        driver = batch.driver
        driver.execute("SAVEPOINT write")
        try:
            yield driver
        except BaseException:
            try:
                driver.execute("ROLLBACK TO write")
                driver.execute("RELEASE write")
            except BaseException as exc:
                batch.broken = exc  # the batch can no longer be trusted: it will fail whole
            raise
        driver.execute("RELEASE write")
        batch.writes += 1
        _WROTE_IN.set(batch)

    def own_writes(self) -> DriverConnection | None:
        """The batch's connection, if this request wrote in the open batch (so that it
        reads its own writes); otherwise None."""
        batch = _WROTE_IN.get()
        if batch is not None and batch is self._batch and self.on_loop_thread():
            return batch.driver
        return None

    async def durable(self) -> None:
        """Returns once what this request wrote is committed; raises if the commit failed.

        No future per request: the COMMIT was scheduled on the loop when the batch began,
        so it runs before a request that yields after writing in it is resumed; the
        request yields until the batch is done, then reads how it ended."""
        batch = _WROTE_IN.get()
        if batch is not None:
            _WROTE_IN.set(None)
            while not batch.done:
                await asyncio.sleep(0)
            if batch.failure is not None:
                raise batch.failure

    def after_commit(self, callback: Callable[[], None]) -> bool:
        """Defers ``callback`` to the commit of the batch this request wrote in; False if
        there is none (the caller's write is committed already)."""
        batch = _WROTE_IN.get()
        if batch is None or batch is not self._batch or not self.on_loop_thread():
            return False
        batch.after.append(callback)
        return True

    def _begin(self) -> _Batch:
        self._write_lock.acquire()
        try:
            self._driver.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._write_lock.release()
            self._reopen()
            raise
        batch = self._batch = _Batch(self._driver)
        self._loop.call_soon(self._commit)
        return batch

    def _commit(self) -> None:
        batch, self._batch = self._batch, None
        assert batch is not None
        try:
            if batch.broken is not None:
                raise batch.broken
            batch.driver.execute("COMMIT")
        except BaseException as exc:
            try:
                batch.driver.execute("ROLLBACK")
            except BaseException:
                self._reopen()
            batch.failure = (
                exc if isinstance(exc, Exception) else RuntimeError(f"commit failed: {exc!r}")
            )
            if not isinstance(exc, Exception):
                raise
        else:
            TALLY.observe(GROUP_SECONDS, time.perf_counter() - batch.began)
            TALLY.observe(GROUP_COMMIT_WRITES, batch.writes)
            for callback in batch.after:
                try:
                    callback()
                except Exception:
                    log.exception("a callback after a commit failed")
        finally:
            batch.done = True
            self._write_lock.release()

    def _reopen(self) -> None:
        self._connections.discard(self._driver)
        self._driver = self._connections.dedicated()
