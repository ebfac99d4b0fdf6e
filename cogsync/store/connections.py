"""Driver connections kept per thread.

Every thread that works with the store (the event loop on SQLite, each thread of the
pool, the dispatcher's) keeps one connection for its whole life, so a transaction costs
no pool checkout. Connections are opened through the SQLAlchemy engine, so they get the
engine's set-up (SQLite's pragmas, PostgreSQL's timeouts), and are then detached from
its pool. A connection that failed is closed and dropped; the thread opens a new one
for its next transaction.
"""

from __future__ import annotations

import contextlib
import select
import threading
from typing import Any

from sqlalchemy import Engine

from cogsync.metrics import DB_CONNECTIONS
from cogsync.store.prepared import DriverConnection

OPEN = DB_CONNECTIONS.labels("open")


class ThreadConnections:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._local = threading.local()
        self._open: dict[int, Any] = {}  # id -> the pool's detached wrapper, for close_all
        self._lock = threading.Lock()
        self._postgresql = engine.dialect.name == "postgresql"

    def get(self) -> DriverConnection:
        """This thread's connection; on PostgreSQL a new one if the server hung up on it
        while it sat idle (a restart, an outage, ``idle_session_timeout``), so that the
        first statement after that, in a transaction or not, does not fail."""
        driver: DriverConnection | None = getattr(self._local, "driver", None)
        if driver is not None and self._postgresql and _hung_up(driver):
            self.drop()
            driver = None
        if driver is None:
            driver = self._local.driver = self.dedicated()
        return driver

    def dedicated(self) -> DriverConnection:
        """A new connection of no thread's, closed with the others by close_all()."""
        wrapper = self.engine.raw_connection()
        wrapper.detach()
        driver: DriverConnection = wrapper.dbapi_connection  # type: ignore[assignment]
        if self.engine.dialect.name == "postgresql":
            # Transactions are begun explicitly (writes); reads run one statement at a
            # time under READ COMMITTED, as they would inside a transaction.
            driver.autocommit = True  # type: ignore[attr-defined]
        with self._lock:
            self._open[id(driver)] = wrapper
            OPEN.set(len(self._open))
        return driver

    def drop(self) -> None:
        """Closes this thread's connection (after a failure); the next get() reopens."""
        driver = getattr(self._local, "driver", None)
        self._local.driver = None
        if driver is not None:
            self.discard(driver)

    def discard(self, driver: DriverConnection) -> None:
        """Closes a connection that can no longer be trusted."""
        with self._lock:
            wrapper = self._open.pop(id(driver), None)
            OPEN.set(len(self._open))
        with contextlib.suppress(Exception):
            (wrapper or driver).close()  # type: ignore[attr-defined]

    def close_all(self) -> None:
        with self._lock:
            wrappers, self._open = list(self._open.values()), {}
            OPEN.set(0)
        for wrapper in wrappers:
            with contextlib.suppress(Exception):
                wrapper.close()
        self._local = threading.local()


def _hung_up(driver: DriverConnection) -> bool:
    """Whether an idle PostgreSQL connection has something to read: with no statement
    in flight and no LISTEN, only the server's goodbye (or the end of the socket) can be
    there. One poll, no round trip; a wrong guess costs only a new connection."""
    try:
        fileno = driver.fileno()  # type: ignore[attr-defined]
        return bool(select.select([fileno], [], [], 0)[0])
    except Exception:
        return True
